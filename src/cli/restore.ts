import { randomUUID } from 'node:crypto';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { readManifest } from '../backup/catalog.js';
import type { Manifest } from '../backup/manifest.js';
import { openRepository } from '../backup/open-repository.js';
import type { BackupRepository } from '../backup/repository.js';
import { restoreBackup } from '../backup/restore.js';
import type { Role } from '../cluster/schema.js';
import { publishClusterState } from '../cluster/state.js';
import { configuredRole } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { createLogger } from '../log/logger.js';
import { openStore } from '../store/open.js';
import { PostgresStore } from '../store/postgres.js';
import { SQL_IDENTIFIER, type StoreConfig } from '../store/schema.js';
import type { ClusterStateInput, Store } from '../store/store.js';
import { formatBytes } from './backup.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { CliUsageError } from './usage-error.js';

/** The backup cannot be restored as it is (a part missing or corrupt, an unknown format version): nothing changed. */
const EXIT_BACKUP_INVALID = 1;
/** How long publishing the new cluster state to Kafka may take before crr restore gives up on it (it only warns), ms. */
const PUBLISH_TIMEOUT_MS = 15_000;

interface RestoreCliOptions {
  config: string;
  cluster: string;
  backup: string;
  from?: string;
  as?: string;
  execute?: boolean;
  json?: boolean;
}

/** What `crr restore` restores, from where, into what. */
export interface RestoreTarget {
  /** The cluster whose repository holds the backup: `--from`, else the source of the flow into a replica, else the cluster itself. */
  from: string;
  repository: NonNullable<Config['clusters'][string]['backup']>['repository'];
  store: StoreConfig;
  role: Role;
}

/**
 * Resolves `crr restore`'s cluster, repository and store from the config.
 * @throws CliUsageError exit 2 for an unknown alias (`--cluster` or `--from`) or an invalid
 *   `--as`; 78 for a cluster without a store crr restore can open, or a `--from` cluster without `backup`
 */
export function resolveRestoreTarget(config: Config, alias: string, from: string | undefined, as: string | undefined): RestoreTarget {
  const known = Object.keys(config.clusters).join(', ');
  const cluster = config.clusters[alias];
  if (!cluster) throw new CliUsageError(`unknown cluster alias "${alias}"; known: ${known}`, EXIT.USAGE);
  const role = configuredRole(config, alias);
  const source = from ?? (role === 'replica' ? (config.mirror.flows.find((f) => f.enabled && f.target === alias)?.source ?? alias) : alias);
  const repoCluster = config.clusters[source];
  if (!repoCluster) throw new CliUsageError(`--from: unknown cluster alias "${source}"; known: ${known}`, EXIT.USAGE);
  if (!repoCluster.backup) {
    throw new CliUsageError(`clusters.${source}.backup: required by crr restore (the repository the backups of ${source} are in)`, EXIT.CONFIG);
  }
  if (as !== undefined && !SQL_IDENTIFIER.test(as)) throw new CliUsageError(`--as: "${as}" is not a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)`, EXIT.USAGE);
  const store = cluster.store;
  if (!store) throw new CliUsageError(`clusters.${alias}.store: required by crr restore (the store to restore into)`, EXIT.CONFIG);
  if (store.type === 'pglite' && (store.dataDir === undefined || store.dataDir.startsWith('memory://'))) {
    throw new CliUsageError(`clusters.${alias}.store.dataDir: crr restore needs a store it can open; an in-memory PGlite store exists only inside the crr process that runs it`, EXIT.CONFIG);
  }
  return { from: source, repository: repoCluster.backup.repository, store, role };
}

/**
 * The cluster state a restore records: a replica becomes `REPLICATING` at the backup's epoch
 * (replay then refuses events of a higher epoch, and skips what the backup holds); a primary
 * keeps its state (`ACTIVE` when none) at the higher of its epoch and the backup's.
 */
export function restoredClusterState(role: Role, manifest: Manifest, current: ClusterStateInput | undefined): ClusterStateInput {
  if (role === 'replica') return { role: 'replica', state: 'REPLICATING', epoch: manifest.epoch };
  const state = current?.role === 'primary' ? current.state : 'ACTIVE';
  return { role: 'primary', state, epoch: Math.max(manifest.epoch, current?.epoch ?? 0) };
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
 * PostgreSQL replica with `appRole`, records the cluster state (see {@link restoredClusterState})
 * and publishes it to the cluster's Kafka (a warning if Kafka cannot be reached), then prints a
 * summary. `--as NAME` restores beside the live state under schema NAME instead (no swap,
 * nothing published). Stop replay (`crr run`) of the cluster during the restore; a PGlite store
 * cannot be opened while it runs anyway.
 *
 * Exit codes: 0 restored (or the plan printed); 1 the backup cannot be restored (a part missing
 * or corrupt, an unknown format version: named; the live state untouched); 2 an unknown
 * cluster alias or backup id, a bad argument, `--as` naming an existing schema; 78 a bad
 * config (no store, no `backup` on the `--from` cluster); 70 the store or the repository
 * failed; 130 SIGINT (nothing changed unless the swap had begun).
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

async function runRestore(opts: RestoreCliOptions): Promise<void> {
  const config = loadConfigOrExit(opts.config);
  const abort = new AbortController();
  const onSigint = (): void => abort.abort(new Error('interrupted'));
  process.once('SIGINT', onSigint);
  let repo: BackupRepository | undefined;
  let store: Store | undefined;
  try {
    const target = resolveRestoreTarget(config, opts.cluster, opts.from, opts.as);
    repo = await openRepository(target.repository);
    const schema = opts.as ?? target.store.schema;
    if (!opts.execute) {
      const m = await readManifest(repo, opts.backup);
      printPlan(opts, m, repo, target, schema);
      process.exitCode = EXIT.OK;
      return;
    }
    store = openStore(target.store);
    const current = await store.clusterState().catch(() => undefined);
    const role: Role = current?.role ?? target.role;
    const cfg = target.store;
    const fenceRoles = role === 'replica' && store instanceof PostgresStore && cfg.appRole ? { appRole: cfg.appRole, replayRole: cfg.replayRole ?? `${cfg.schema}_replay` } : undefined;
    const bar = new cliProgress.SingleBar(
      { stream: process.stderr, format: 'restore [{bar}] {percentage}% | {value}/{total} rows | {phase}', hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    let state: ClusterStateInput | undefined;
    let started = false;
    const t0 = Date.now();
    let restored;
    try {
      restored = await restoreBackup(store, repo, opts.backup, {
        ...(opts.as === undefined ? {} : { as: opts.as }),
        ...(fenceRoles ? { fence: fenceRoles } : {}),
        signal: abort.signal,
        clusterState: (m) => (state = restoredClusterState(role, m, current)),
        onManifest: (m) => {
          bar.start(Math.max(m.totals.vertices + m.totals.edges, 1), 0, { phase: 'load' });
          started = true;
        },
        onProgress: (p) => bar.update(p.vertices + p.edges, { phase: p.phase }),
      });
    } finally {
      if (started) bar.stop();
    }
    const { manifest, result } = restored;
    let published: string | undefined;
    if (result.swapped && state) published = await publish(config, opts.cluster, state);
    const durationMs = Date.now() - t0;
    if (opts.json) {
      process.stdout.write(
        `${JSON.stringify(
          {
            backup: manifest.id,
            cluster: opts.cluster,
            from: target.from,
            repository: repo.description,
            schema: result.schema,
            swapped: result.swapped,
            epoch: manifest.epoch,
            totals: { vertices: result.vertices, edges: result.edges, catalog: result.catalog, positions: result.positions },
            positions: manifest.positions,
            clusterState: state,
            fenced: fenceRoles !== undefined,
            published: published === undefined,
            ...(published === undefined ? {} : { publishWarning: published }),
            durationMs,
          },
          null,
          2,
        )}\n`,
      );
    } else {
      const lines = [
        result.swapped ? `restored backup ${manifest.id} into ${opts.cluster}: schema ${result.schema} replaced atomically` : `restored backup ${manifest.id} as schema ${result.schema}, beside the live state of ${opts.cluster}`,
        `  from ${repo.description} (backups of ${target.from})`,
        `  epoch ${manifest.epoch}; ${result.vertices} vertices, ${result.edges} edges, ${result.catalog} catalog entries, in ${(durationMs / 1000).toFixed(1)} s`,
        `  positions: ${positionsText(manifest)}`,
        state ? `  cluster state: ${state.role} ${state.state}, epoch ${state.epoch}` : '',
        fenceRoles ? `  write fence re-applied: ${fenceRoles.appRole} can only read` : '',
        published !== undefined ? `  warning: ${published}` : '',
        result.swapped && role === 'replica' ? `  replay resumes from these positions: restart crr run for ${opts.cluster}` : '',
      ].filter(Boolean);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    process.exitCode = EXIT.OK;
  } catch (err) {
    if (abort.signal.aborted) {
      process.stderr.write('crr restore: interrupted; the live state is unchanged\n');
      process.exitCode = EXIT.INTERRUPTED;
    } else if (err instanceof CliUsageError) {
      process.stderr.write(`crr restore: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if (err instanceof CrrError) {
      const untouched = opts.execute ? '; the live state is unchanged' : '';
      process.stderr.write(`crr restore: ${describeError(err)}${untouched}\n`);
      process.exitCode =
        err.code === 'CRR_BACKUP_INVALID'
          ? EXIT_BACKUP_INVALID
          : err.code === 'CRR_BACKUP_NOT_FOUND' || err.code === 'CRR_RESTORE_REFUSED'
            ? EXIT.USAGE
            : err.code === 'CRR_CONFIG_INVALID'
              ? EXIT.CONFIG
              : EXIT.SOFTWARE;
    } else {
      throw err;
    }
  } finally {
    process.off('SIGINT', onSigint);
    repo?.close();
    await store?.close().catch(() => undefined);
  }
}

function printPlan(opts: RestoreCliOptions, m: Manifest, repo: BackupRepository, target: RestoreTarget, schema: string): void {
  const replaces = opts.as === undefined;
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          executed: false,
          backup: m.id,
          cluster: opts.cluster,
          from: target.from,
          repository: repo.description,
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
      `  from ${repo.description} (backups of ${target.from})`,
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

/**
 * Publishes the restored cluster state to the cluster's Kafka.
 * @returns undefined when published, else a warning (Kafka unreachable: the store's record stands)
 */
async function publish(config: Config, alias: string, state: ClusterStateInput): Promise<string | undefined> {
  const c = config.clusters[alias]!;
  const kafka = createKafka(alias, { ...c, connectionTimeoutMs: Math.min(c.connectionTimeoutMs, 3000) }, `restore-${randomUUID().slice(0, 8)}`, createLogger('fatal'), 'fatal');
  const admin = kafka.admin();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        await publishClusterState(kafka, admin, alias, state);
      })(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${PUBLISH_TIMEOUT_MS} ms`)), PUBLISH_TIMEOUT_MS))),
    ]);
    return undefined;
  } catch (err) {
    return `could not publish the cluster state to the Kafka of ${alias} (${describeError(err)}); crr run publishes it when it starts`;
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(() => undefined);
  }
}
