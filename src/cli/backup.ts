import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { listBackups, type BackupSummary } from '../backup/catalog.js';
import { openRepository } from '../backup/open-repository.js';
import { describePin, type FoundPin } from '../backup/pin.js';
import type { BackupRepository } from '../backup/repository.js';
import { applyRetention, deleteBackup } from '../backup/retention.js';
import type { BackupConfig } from '../backup/schema.js';
import { resolveBackupTarget } from '../backup/targets.js';
import { verifyBackup } from '../backup/verify.js';
import { createBackup } from '../backup/write.js';
import { CrrError, describeError } from '../errors.js';
import { openStore } from '../store/open.js';
import type { StoreConfig } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { onStopSignals } from './interrupt.js';
import { CliUsageError } from './usage-error.js';

interface CommonOptions {
  config: string;
  cluster: string;
  json?: boolean;
}

/**
 * Runs one `crr backup` subcommand: loads the config (exit 78 when invalid), resolves the
 * cluster, opens the repository, runs `fn`, and maps failures to exit codes: a
 * CliUsageError to its own; CRR_BACKUP_NOT_FOUND to 2; CRR_BACKUP_PINNED to 3;
 * CRR_CONFIG_INVALID to 78; SIGINT to
 * 130 and SIGTERM to 143, once `fn` has cleaned up (src/cli/interrupt.ts); any other CrrError
 * (repository, store, a locked PGlite store) to 70, with its message on stderr.
 */
async function run(
  sub: string,
  opts: CommonOptions,
  needStore: boolean,
  fn: (ctx: { repo: BackupRepository; backup: BackupConfig; store?: StoreConfig; signal: AbortSignal }) => Promise<number>,
): Promise<void> {
  const config = loadConfigOrExit(opts.config);
  const stop = onStopSignals();
  let repo: BackupRepository | undefined;
  try {
    const target = resolveBackupTarget(config, opts.cluster, needStore);
    repo = await openRepository(target.backup, `clusters.${opts.cluster}.backup`);
    process.exitCode = await fn({ repo, ...target, signal: stop.signal });
  } catch (err) {
    if (stop.signal.aborted) {
      process.stderr.write(`crr backup ${sub}: interrupted by ${stop.received}\n`);
      process.exitCode = stop.exitCode();
    } else if (err instanceof CliUsageError) {
      process.stderr.write(`crr backup ${sub}: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if (err instanceof CrrError) {
      process.stderr.write(`crr backup ${sub}: ${describeError(err)}\n`);
      process.exitCode =
        err.code === 'CRR_BACKUP_NOT_FOUND'
          ? EXIT.USAGE
          : err.code === 'CRR_BACKUP_PINNED'
            ? EXIT.BACKUP_PINNED
            : err.code === 'CRR_CONFIG_INVALID'
              ? EXIT.CONFIG
              : EXIT.SOFTWARE;
    } else {
      throw err;
    }
  } finally {
    stop.dispose();
    repo?.close();
  }
}

/** `1.5 MiB`: a byte count for people. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/** Rows as aligned columns, two spaces apart, indented by two. */
function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cols: string[]): string => `  ${cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}

const iso = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

/** A backup as one row of `crr backup list` (and its JSON form). */
function listRow(b: BackupSummary): string[] {
  const m = b.manifest;
  return [
    b.id,
    iso(b.createdAtMs),
    m ? String(m.epoch) : '-',
    m ? String(m.totals.vertices + m.totals.edges) : '-',
    formatBytes(b.bytes),
    m ? String(m.totals.parts) : '-',
    b.status,
    b.pins.map((p) => p.cluster).join(',') || '-',
  ];
}

/** A pin as JSON: the pinning cluster, and what its body says when it could be read. */
const pinJson = (p: FoundPin): object => ({
  cluster: p.cluster,
  ...(p.pin ? { purpose: p.pin.purpose, holder: p.pin.holder, pinnedAt: p.pin.pinnedAt } : { problem: p.problem }),
});

function listJson(b: BackupSummary): object {
  const m = b.manifest;
  return {
    id: b.id,
    cluster: b.cluster,
    status: b.status,
    createdAt: iso(b.createdAtMs),
    createdAtMs: b.createdAtMs,
    objects: b.objects,
    bytes: b.bytes,
    ...(m ? { epoch: m.epoch, records: m.totals.vertices + m.totals.edges, totals: m.totals, positions: m.positions } : {}),
    ...(b.problem ? { problem: b.problem } : {}),
    pins: b.pins.map(pinJson),
  };
}

/**
 * `crr backup` and its subcommands (docs/architecture.md, "Backups, restore and reseed" and "Operator surface"):
 * - `create --config F --cluster A [--json]`: an online full backup of the cluster's store into
 *   its repository (`clusters.<A>.backup`); a progress bar on stderr when it is a terminal;
 *   prints the id and totals. A PGlite store can be opened by one process only: while `crr run`
 *   holds it, this fails with CRR_STORE_LOCKED (exit 70); back up a PostgreSQL store online.
 * - `list --config F --cluster A [--json] [--all]`: the cluster's complete backups, oldest
 *   first (id, created, epoch, records, size, parts, status, and the clusters whose reseed or
 *   restore pins it); `--all` adds incomplete and invalid ones.
 * - `verify --config F --cluster A ID [--json]`: re-reads every part (checksums, gzip, counts).
 * - `delete --config F --cluster A ID [--execute] [--force]`: without `--execute` prints what it
 *   would delete and exits 0. A pinned backup (a reseed or restore uses it) is refused (exit 3)
 *   unless `--force`, which deletes it with its pins (the reseed then takes a fresh backup).
 * - `prune --config F --cluster A [--execute] [--json]`: applies `clusters.<A>.backup.retention`;
 *   without `--execute` prints what it would delete. Pinned backups are kept, and listed.
 *
 * Exit codes: 0 done (or, without --execute, the plan printed); 1 `verify` found problems (each
 * listed, naming the part); 2 a bad argument, an unknown cluster alias or backup id; 3 `delete`
 * of a pinned backup without `--force` (nothing deleted); 78 a bad
 * config, a cluster without `backup` (or, for create, without a store it can open); 70 the
 * store or the repository failed (CRR_STORE, CRR_STORE_LOCKED, CRR_REPOSITORY); 130 SIGINT,
 * 143 SIGTERM (`create`: the upload aborted and the objects written so far removed).
 */
export function registerBackupCommand(program: Command): void {
  const backup = program.command('backup').description("back up a cluster's store, and list, verify, delete and prune its backups");
  const common = (cmd: Command): Command =>
    cmd
      .requiredOption('-c, --config <file>', 'YAML configuration file')
      .requiredOption('--cluster <alias>', 'the cluster whose backups these are (clusters.<alias>.backup)');

  common(backup.command('create'))
    .description("take an online full backup of the cluster's store into its backup repository")
    .option('--json', 'print the result as JSON')
    .action((opts: CommonOptions) =>
      run('create', opts, true, async ({ repo, backup: cfg, store: storeConfig, signal }) => {
        const store: Store = openStore(storeConfig!);
        try {
          // read-only: a store crr never created is an error, not an empty backup
          await store.positions().catch((err: unknown) => {
            throw new CrrError(
              'CRR_STORE',
              `the store of cluster ${opts.cluster} has no crr tables (${describeError(err)}); was crr run or crr replay ever started for it?`,
              { retriable: false },
            );
          });
          const counts = await store.counts();
          const expected = Object.values(counts.vertices).reduce((a, b) => a + b, 0) + Object.values(counts.edges).reduce((a, b) => a + b, 0);
          const bar = new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format: 'backup [{bar}] {percentage}% | {value}/{total} rows | {parts} parts | {size}',
              hideCursor: true,
              clearOnComplete: true,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(Math.max(expected, 1), 0, { parts: 0, size: formatBytes(0) });
          let manifest;
          try {
            manifest = await createBackup(store, repo, {
              cluster: opts.cluster,
              partSizeBytes: cfg.partSizeBytes,
              signal,
              onProgress: (p) => {
                const done = p.vertices + p.edges;
                if (done > bar.getTotal()) bar.setTotal(done); // writes went on since the count
                bar.update(done, { parts: p.parts, size: formatBytes(p.bytes) });
              },
            });
          } finally {
            bar.stop();
          }
          const t = manifest.totals;
          if (opts.json) {
            process.stdout.write(
              `${JSON.stringify({ id: manifest.id, cluster: manifest.cluster, repository: repo.description, createdAt: manifest.createdAt, epoch: manifest.epoch, durationMs: manifest.completedAtMs - manifest.createdAtMs, totals: t, positions: manifest.positions }, null, 2)}\n`,
            );
          } else {
            process.stdout.write(
              [
                `created backup ${manifest.id}`,
                `  repository: ${repo.description}`,
                `  epoch ${manifest.epoch}; ${t.vertices} vertices, ${t.edges} edges, ${t.catalog} catalog entries`,
                `  ${t.parts} parts, ${formatBytes(t.bytes)} (${formatBytes(t.uncompressedBytes)} uncompressed), in ${((manifest.completedAtMs - manifest.createdAtMs) / 1000).toFixed(1)} s`,
                `  consistent with positions: ${manifest.positions.map((p) => `${p.topic}[${p.partition}]=${p.nextOffset}`).join(', ') || 'none'}`,
                '',
              ].join('\n'),
            );
          }
          return EXIT.OK;
        } finally {
          await store.close().catch(() => undefined);
        }
      }),
    );

  common(backup.command('list'))
    .description("list the cluster's backups, oldest first")
    .option('--all', 'also list incomplete backups (no manifest: failed or being written) and invalid ones')
    .option('--json', 'print JSON')
    .action((opts: CommonOptions & { all?: boolean }) =>
      run('list', opts, false, async ({ repo }) => {
        const all = await listBackups(repo, { cluster: opts.cluster });
        const shown = opts.all ? all : all.filter((b) => b.status === 'complete');
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(shown.map(listJson), null, 2)}\n`);
          return EXIT.OK;
        }
        const lines = [`backups of ${opts.cluster} in ${repo.description}:`];
        if (shown.length === 0) lines.push('  none');
        else lines.push(...table(['ID', 'CREATED', 'EPOCH', 'RECORDS', 'SIZE', 'PARTS', 'STATUS', 'PINNED BY'], shown.map(listRow)));
        for (const b of shown) if (b.problem) lines.push(`  ${b.id}: ${b.problem}`);
        for (const b of shown) if (b.pins.length > 0) lines.push(`  ${b.id}: pinned by ${b.pins.map(describePin).join(', ')}`);
        const hidden = all.length - shown.length;
        if (hidden > 0) lines.push(`  (${hidden} incomplete or invalid not shown; --all lists them)`);
        process.stdout.write(`${lines.join('\n')}\n`);
        return EXIT.OK;
      }),
    );

  common(backup.command('verify'))
    .description('re-read every part of a backup: SHA-256, gzip, record counts (exit 0 OK, 1 problems)')
    .argument('<id>', 'the backup id (crr backup list)')
    .option('--json', 'print JSON')
    .action((id: string, opts: CommonOptions) =>
      run('verify', opts, false, async ({ repo }) => {
        const r = await verifyBackup(repo, id);
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ id, ok: r.ok, partsChecked: r.partsChecked, records: r.records, bytes: r.bytes, encryption: r.manifest?.encryption ?? null, manifestHmac: r.manifestHmac ?? null, problems: r.problems }, null, 2)}\n`,
          );
        } else {
          const lines = [
            `verify backup ${id} in ${repo.description}: ${r.partsChecked} of ${r.manifest?.parts.length ?? '?'} parts, ${r.records} records, ${formatBytes(r.bytes)} read`,
          ];
          if (r.manifest?.encryption) lines.push(`parts encrypted (${r.manifest.encryption.algorithm}, key id ${r.manifest.encryption.keyId})`);
          if (r.manifestHmac === 'verified') lines.push(`manifest HMAC verified (key id ${r.manifest?.hmac?.keyId})`);
          else if (r.manifestHmac === 'not-checked')
            lines.push(`manifest HMAC not checked: no manifest HMAC key configured (it names key id ${r.manifest?.hmac?.keyId})`);
          if (r.ok) lines.push('OK');
          else lines.push('PROBLEMS:', ...r.problems.map((p) => `  - ${p.part}: ${p.problem}: ${p.message}`));
          process.stdout.write(`${lines.join('\n')}\n`);
        }
        return r.ok ? EXIT.OK : EXIT.BACKUP_PROBLEMS;
      }),
    );

  common(backup.command('delete'))
    .description('delete a backup (prints what it would delete unless --execute)')
    .argument('<id>', 'the backup id (crr backup list --all)')
    .option('--execute', 'delete it; without this, only print what would be deleted')
    .option('--force', 'delete it even when a reseed or restore pins it (the reseed then takes a fresh backup)')
    .action((id: string, opts: CommonOptions & { execute?: boolean; force?: boolean }) =>
      run('delete', opts, false, async ({ repo }) => {
        const all = await listBackups(repo);
        const b = all.find((x) => x.id === id);
        if (!b) throw new CrrError('CRR_BACKUP_NOT_FOUND', `no backup ${id} in ${repo.description}`);
        if (b.cluster !== opts.cluster) throw new CliUsageError(`backup ${id} is a backup of cluster ${b.cluster}, not ${opts.cluster}`, EXIT.USAGE);
        const newest = all.filter((x) => x.cluster === opts.cluster && x.status === 'complete').at(-1);
        const what = `backup ${id} (${b.status}, created ${iso(b.createdAtMs)}, ${b.objects} objects, ${formatBytes(b.bytes)})`;
        const notes = [
          ...(newest?.id === id ? [`note: it is the newest complete backup of ${opts.cluster}`] : []),
          ...(b.pins.length > 0
            ? [`pinned by ${b.pins.map(describePin).join(', ')}: ${opts.force ? '--force deletes it anyway' : 'refused unless --force'}`]
            : []),
        ];
        const warning = notes.map((n) => `\n  ${n}`).join('');
        if (!opts.execute) {
          process.stdout.write(`would delete ${what} from ${repo.description}${warning}\nrun again with --execute to delete it\n`);
          return EXIT.OK;
        }
        const done = await deleteBackup(repo, id, { force: opts.force === true });
        process.stdout.write(`deleted ${what}: ${done.objects} objects${warning}\n`);
        return EXIT.OK;
      }),
    );

  common(backup.command('prune'))
    .description('apply the retention policy (clusters.<alias>.backup.retention); prints what it would delete unless --execute')
    .option('--execute', 'delete; without this, only print what would be deleted')
    .option('--json', 'print JSON')
    .action((opts: CommonOptions & { execute?: boolean }) =>
      run('prune', opts, false, async ({ repo, backup: cfg }) => {
        const r = await applyRetention(repo, cfg.retention, { cluster: opts.cluster, execute: opts.execute === true });
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify(
              {
                executed: r.executed,
                retention: cfg.retention,
                deleted: r.deleted.map((d) => ({ id: d.backup.id, status: d.backup.status, reason: d.reason, bytes: d.backup.bytes })),
                pinned: r.pinned.map((d) => ({ id: d.backup.id, status: d.backup.status, reason: d.reason, pins: d.backup.pins.map(pinJson) })),
                kept: r.kept.map((b) => b.id),
              },
              null,
              2,
            )}\n`,
          );
          return EXIT.OK;
        }
        const rules = [
          cfg.retention.keepLast !== undefined ? `keepLast ${cfg.retention.keepLast}` : '',
          cfg.retention.maxAgeMs !== undefined ? `maxAgeMs ${cfg.retention.maxAgeMs}` : '',
        ].filter(Boolean);
        const lines = [
          `retention of ${opts.cluster} in ${repo.description}: ${rules.join(', ') || `no rule (clusters.${opts.cluster}.backup.retention): only stale incomplete backups are pruned`}`,
        ];
        if (r.deleted.length === 0) lines.push('  nothing to delete');
        else {
          lines.push(r.executed ? 'deleted:' : 'would delete:');
          lines.push(
            ...table(
              ['ID', 'STATUS', 'SIZE', 'WHY'],
              r.deleted.map((d) => [d.backup.id, d.backup.status, formatBytes(d.backup.bytes), d.reason]),
            ),
          );
        }
        if (r.pinned.length > 0) {
          lines.push('kept, pinned (a reseed or restore uses them):');
          lines.push(
            ...table(
              ['ID', 'STATUS', 'PINNED BY', 'WOULD GO BECAUSE'],
              r.pinned.map((d) => [d.backup.id, d.backup.status, d.backup.pins.map(describePin).join(', '), d.reason]),
            ),
          );
        }
        lines.push(`kept: ${r.kept.length} backups${r.kept.length > 0 ? ` (newest ${r.kept.at(-1)!.id})` : ''}`);
        if (!r.executed && r.deleted.length > 0) lines.push('run again with --execute to delete them');
        process.stdout.write(`${lines.join('\n')}\n`);
        return EXIT.OK;
      }),
    );
  for (const cmd of backup.commands) cmd.exitOverride().showHelpAfterError();
}
