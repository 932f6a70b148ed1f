import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import type { Manifest } from '../backup/manifest.js';
import { planClusterRestore, restoreCluster, type ClusterRestore, type ClusterRestorePlan } from '../backup/restore-cluster.js';
import { CrrError, describeError } from '../errors.js';
import { formatBytes } from './backup.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { onStopSignals } from './interrupt.js';
import { CliUsageError } from './usage-error.js';

interface RestoreCliOptions {
  config: string;
  cluster: string;
  backup: string;
  from?: string;
  as?: string;
  execute?: boolean;
  json?: boolean;
}

const positionsText = (m: Manifest): string => m.positions.map((p) => `${p.topic}[${p.partition}]=${p.nextOffset}`).join(', ') || 'none';

/**
 * `crr restore --config F --cluster A --backup ID [--from B] [--as NAME] [--execute] [--json]`
 * (docs/architecture.md, "Backups, restore and reseed" and "Operator surface"): restores a backup into the
 * store of cluster A. The backup is read from the repository of cluster B (`--from`; default:
 * the source of the flow into A when A is a replica — a replica restores the PRIMARY's
 * backups — else A itself).
 *
 * Without `--execute`: prints the plan (backup, epoch, records, parts, target schema, that the
 * live state will be replaced) and exits 0; nothing is opened but the repository. With it: loads
 * the backup into a staging schema (a progress bar on stderr), verifies it, swaps it in
 * atomically (readers keep the old state until then), re-applies the write fence of a
 * PostgreSQL replica with `appRole`, records the cluster state (see restoredClusterState in src/backup/restore-cluster.ts)
 * and publishes it to the cluster's Kafka (a warning if Kafka cannot be reached), then prints a
 * summary. `--as NAME` restores beside the live state under schema NAME instead (no swap,
 * nothing published). Stop replay (`crr run`) of the cluster during the restore; a PGlite store
 * cannot be opened while it runs anyway.
 *
 * Exit codes: 0 restored (or the plan printed); 1 the backup cannot be restored (a part missing
 * or corrupt, an unknown format version: named; the live state untouched); 2 an unknown
 * cluster alias or backup id, a bad argument, `--as` naming an existing schema; 78 a bad
 * config (no store, no `backup` on the `--from` cluster); 70 the store or the repository
 * failed; 130 SIGINT, 143 SIGTERM (the staging schema dropped; nothing changed unless the swap
 * had begun).
 */
export function registerRestoreCommand(program: Command): void {
  program
    .command('restore')
    .description("restore a backup into a cluster's store: staging schema, verification, atomic swap (prints the plan unless --execute)")
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .requiredOption('--cluster <alias>', 'the cluster whose store is restored')
    .requiredOption('--backup <id>', 'the backup id (crr backup list --cluster <from>)')
    .option('--from <alias>', 'the cluster whose backup repository holds the backup (default: the primary a replica mirrors, else --cluster)')
    .option('--as <schema>', 'restore beside the live state under this new schema instead of replacing it')
    .option('--execute', 'restore; without this, only print the plan')
    .option('--json', 'print JSON')
    .action((opts: RestoreCliOptions) => runRestore(opts));
}

/** `crr restore`: the plan ({@link planClusterRestore}) or the restore ({@link restoreCluster}), printed; failures mapped to exit codes. */
async function runRestore(opts: RestoreCliOptions): Promise<void> {
  const config = loadConfigOrExit(opts.config);
  const stop = onStopSignals();
  const request = { cluster: opts.cluster, backup: opts.backup, from: opts.from, as: opts.as };
  try {
    if (!opts.execute) {
      printPlan(opts, await planClusterRestore(config, request));
      process.exitCode = EXIT.OK;
      return;
    }
    const bar = new cliProgress.SingleBar(
      { stream: process.stderr, format: 'restore [{bar}] {percentage}% | {value}/{total} rows | {phase}', hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    const stopBar = (): void => {
      if (!started) return;
      started = false;
      bar.stop();
    };
    let restored: ClusterRestore;
    try {
      restored = await restoreCluster(config, request, {
        signal: stop.signal,
        onManifest: (m) => {
          bar.start(Math.max(m.totals.vertices + m.totals.edges, 1), 0, { phase: 'load' });
          started = true;
        },
        onProgress: (p) => {
          bar.update(p.vertices + p.edges, { phase: p.phase });
          if (p.phase === 'done') stopBar(); // before the cluster state is published
        },
      });
    } finally {
      stopBar();
    }
    printRestored(opts, restored);
    process.exitCode = EXIT.OK;
  } catch (err) {
    if (stop.signal.aborted) {
      process.stderr.write(`crr restore: interrupted by ${stop.received}; the live state is unchanged\n`);
      process.exitCode = stop.exitCode();
    } else if (err instanceof CliUsageError) {
      process.stderr.write(`crr restore: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if (err instanceof CrrError) {
      const untouched = opts.execute ? '; the live state is unchanged' : '';
      process.stderr.write(`crr restore: ${describeError(err)}${untouched}\n`);
      process.exitCode =
        err.code === 'CRR_BACKUP_INVALID'
          ? EXIT.BACKUP_INVALID
          : err.code === 'CRR_BACKUP_NOT_FOUND' || err.code === 'CRR_RESTORE_REFUSED'
            ? EXIT.USAGE
            : err.code === 'CRR_CONFIG_INVALID'
              ? EXIT.CONFIG
              : err.code === 'CRR_RESEED_IN_PROGRESS'
                ? EXIT.TEMPFAIL
                : EXIT.SOFTWARE;
    } else {
      throw err;
    }
  } finally {
    stop.dispose();
  }
}

/** The summary of a restore done (`--json`: one JSON document). */
function printRestored(opts: RestoreCliOptions, r: ClusterRestore): void {
  const { manifest, result, target, role, durationMs } = r;
  const state = r.clusterState;
  const fenceRoles = r.fence;
  const published = r.publishWarning;
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          backup: manifest.id,
          cluster: opts.cluster,
          from: target.from,
          repository: r.repository,
          schema: result.schema,
          swapped: result.swapped,
          epoch: manifest.epoch,
          totals: { vertices: result.vertices, edges: result.edges, catalog: result.catalog, positions: result.positions },
          positions: manifest.positions,
          clusterState: state,
          fenced: fenceRoles !== undefined,
          published: published === undefined,
          ...(published === undefined ? {} : { publishWarning: published }),
          ...(r.pinWarning === undefined ? {} : { pinWarning: r.pinWarning }),
          durationMs,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const lines = [
      result.swapped
        ? `restored backup ${manifest.id} into ${opts.cluster}: schema ${result.schema} replaced atomically`
        : `restored backup ${manifest.id} as schema ${result.schema}, beside the live state of ${opts.cluster}`,
      `  from ${r.repository} (backups of ${target.from})`,
      `  epoch ${manifest.epoch}; ${result.vertices} vertices, ${result.edges} edges, ${result.catalog} catalog entries, in ${(durationMs / 1000).toFixed(1)} s`,
      `  positions: ${positionsText(manifest)}`,
      state ? `  cluster state: ${state.role} ${state.state}, epoch ${state.epoch}` : '',
      fenceRoles ? `  write fence re-applied: ${fenceRoles.appRole} can only read` : '',
      published !== undefined ? `  warning: ${published}` : '',
      r.pinWarning !== undefined ? `  warning: ${r.pinWarning}` : '',
      result.swapped && role === 'replica' ? `  replay resumes from these positions: restart crr run for ${opts.cluster}` : '',
    ].filter(Boolean);
    process.stdout.write(`${lines.join('\n')}\n`);
  }
}

/** The plan `crr restore` prints without `--execute`. */
function printPlan(opts: RestoreCliOptions, plan: ClusterRestorePlan): void {
  const { manifest: m, target, schema } = plan;
  const replaces = opts.as === undefined;
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          executed: false,
          backup: m.id,
          cluster: opts.cluster,
          from: target.from,
          repository: plan.repository,
          createdAt: m.createdAt,
          epoch: m.epoch,
          records: m.totals.vertices + m.totals.edges,
          totals: m.totals,
          positions: m.positions,
          schema,
          replacesLiveState: replaces,
        },
        null,
        2,
      )}\n`,
    );
    return;
  }
  const t = m.totals;
  process.stdout.write(
    [
      `would restore backup ${m.id} (cluster ${m.cluster}, created ${m.createdAt}) into ${opts.cluster}`,
      `  from ${plan.repository} (backups of ${target.from})`,
      `  epoch ${m.epoch}; ${t.vertices + t.edges} records (${t.vertices} vertices, ${t.edges} edges), ${t.catalog} catalog entries, ${t.parts} parts, ${formatBytes(t.bytes)}`,
      `  positions: ${positionsText(m)}`,
      replaces
        ? `  target: schema ${schema} of the ${target.store.type} store; its live state will be REPLACED (loaded into a staging schema, verified, then swapped in atomically)`
        : `  target: new schema ${schema} beside the live state (schema ${target.store.schema}, left as it is)`,
      'run again with --execute to restore',
      '',
    ].join('\n'),
  );
}
