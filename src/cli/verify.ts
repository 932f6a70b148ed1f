import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { createCliLogger } from '../log/logger.js';
import { openStore } from '../store/open.js';
import type { StoreConfig } from '../store/schema.js';
import type { EntityDifference, Store, StoreCounts } from '../store/store.js';
import { auditAgainstLog, resolveAuditTarget, type AuditResult, type AuditTarget } from '../verify/against-log.js';
import { resolveVerifyPair, type VerifyPair } from '../verify/pair.js';
import { verifyStores, type VerifyResult } from '../verify/verify.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { onStopSignals } from './interrupt.js';
import { CliUsageError } from './usage-error.js';

/** Default of `--timeout-ms`: how long to wait for a common position, ms. */
export const DEFAULT_VERIFY_TIMEOUT_MS = 30_000;
/** How often the positions are read while waiting for a common position, ms. */
const POLL_INTERVAL_MS = 500;

function parseTimeoutMs(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError('expected a whole number of milliseconds >= 0');
  return n;
}

/** The options of `crr verify`, both forms. */
interface VerifyCliOptions {
  config: string;
  primary?: string;
  replica?: string;
  timeoutMs: number;
  json?: boolean;
  againstLog?: boolean;
  cluster?: string;
  fromBackup?: string;
}

/**
 * `crr verify --config F [--primary ALIAS] [--replica ALIAS] [--timeout-ms N] [--json]`:
 * compares the primary's and a replica's store at a common position (see
 * src/verify/verify.ts): counts per vertex type, edge type and catalog kind, the
 * order-independent digest and the epoch. Read-only: a store whose tables crr never created is
 * refused (exit 70), never taken for an empty one. Talks to the stores only, never to Kafka.
 *
 * Exit codes: 0 equal; 1 different (each difference listed); 3 no common position within
 * `--timeout-ms` (default 30000); 2 a bad argument; 78 a bad config or a cluster without a
 * `store`; 70 a store that cannot be opened or read (CRR_STORE, CRR_STORE_LOCKED); 130 SIGINT,
 * 143 SIGTERM (the stores closed).
 *
 * `crr verify --against-log --cluster A [--from-backup ID] [--timeout-ms N] [--json] --config F`
 * audits one store against its change log instead (src/verify/against-log.ts). Exit codes: 0
 * equal; 1 different (the first differing entity named); 6 the log cannot explain the store
 * from where the audit starts (use `--from-backup`); 3 the store kept being written for
 * `--timeout-ms`; 2, 78, 70 (a store, repository or Kafka failure), 130, 143 as above (the scratch
 * schema dropped).
 */
export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description(
      'compare the primary and the DR store at a common position (exit 0 equal, 1 different, 3 no common position in time); ' +
        'with --against-log, audit one store against its change log (exit 0 equal, 1 different, 6 cannot audit from there)',
    )
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--primary <alias>', 'the primary cluster (default: the source of the enabled flow into the replica)')
    .option('--replica <alias>', 'the replica cluster (default: the single replica with a store)')
    .option('--against-log', 'audit the store of --cluster against its change log: replay the log into a scratch schema and compare')
    .option('--cluster <alias>', 'with --against-log: the cluster whose store is audited')
    .option('--from-backup <id>', "with --against-log: start from this backup (the cluster's, or on a replica its primary's) instead of the log start")
    .option(
      '--timeout-ms <n>',
      'wait this long for both stores to reach a common position (with --against-log: follow a store being written this long), ms',
      parseTimeoutMs,
      DEFAULT_VERIFY_TIMEOUT_MS,
    )
    .option('--json', 'print JSON instead of a summary')
    .action(async (opts: VerifyCliOptions) => {
      const config = loadConfigOrExit(opts.config);
      if (opts.againstLog || opts.cluster !== undefined || opts.fromBackup !== undefined) {
        await audit(config, opts);
        return;
      }
      let pair: VerifyPair;
      try {
        pair = resolveVerifyPair(config, opts);
      } catch (err) {
        if (!(err instanceof CliUsageError)) throw err;
        process.stderr.write(`crr verify: ${err.message}\n`);
        process.exitCode = err.exitCode;
        return;
      }
      const stop = onStopSignals();
      const stores: Store[] = [];
      try {
        for (const side of [pair.primary, pair.replica]) {
          const store = openStore(side.store);
          stores.push(store);
          // read-only: a store crr never created is an error, not an empty store that "equals" another
          await store.positions().catch((err: unknown) => {
            throw new CrrError(
              'CRR_STORE',
              `the store of cluster ${side.alias} has no crr tables (${describeError(err)}); was crr run or crr replay ever started for it?`,
              { retriable: false },
            );
          });
        }
        const result = await verifyStores(stores[0]!, stores[1]!, {
          topics: pair.topics,
          timeoutMs: opts.timeoutMs,
          pollIntervalMs: POLL_INTERVAL_MS,
          signal: stop.signal,
          labels: { primary: pair.primary.alias, replica: pair.replica.alias },
        });
        process.stdout.write(opts.json ? `${JSON.stringify(toJson(pair, result), null, 2)}\n` : render(pair, result, opts.timeoutMs));
        process.exitCode = result.equal ? EXIT.OK : result.commonPosition ? EXIT.DIFFERENT : EXIT.NOT_COMPARABLE;
      } catch (err) {
        if (stop.signal.aborted) {
          process.stderr.write(`crr verify: interrupted by ${stop.received}\n`);
          process.exitCode = stop.exitCode();
        } else if (err instanceof CrrError) {
          process.stderr.write(`crr verify: ${describeError(err)}\n`);
          process.exitCode = err.code === 'CRR_CONFIG_INVALID' ? EXIT.CONFIG : EXIT.SOFTWARE;
        } else {
          throw err;
        }
      } finally {
        stop.dispose();
        for (const s of stores) await s.close().catch(() => undefined);
      }
    });
}

/** `crr verify --against-log`: resolves the cluster, opens its store and Kafka, audits, prints, sets the exit code. */
async function audit(config: Config, opts: VerifyCliOptions): Promise<void> {
  let target: AuditTarget;
  try {
    if (!opts.againstLog) throw new CliUsageError(`${opts.cluster !== undefined ? '--cluster' : '--from-backup'} is an option of --against-log`, EXIT.USAGE);
    if (opts.primary !== undefined || opts.replica !== undefined)
      throw new CliUsageError('--against-log audits one cluster: give --cluster, not --primary or --replica', EXIT.USAGE);
    if (opts.cluster === undefined) throw new CliUsageError('--against-log needs --cluster <alias>: the cluster whose store is audited', EXIT.USAGE);
    target = resolveAuditTarget(config, opts.cluster);
  } catch (err) {
    if (!(err instanceof CliUsageError)) throw err;
    process.stderr.write(`crr verify: ${err.message}\n`);
    process.exitCode = err.exitCode;
    return;
  }
  const stop = onStopSignals();
  const logger = createCliLogger(config.log.level === 'info' ? 'warn' : config.log.level);
  let store: Store | undefined;
  try {
    store = openStore(target.store);
    // read-only: a store crr never created is an error, not an empty store that "equals" an empty log
    await store.positions().catch((err: unknown) => {
      throw new CrrError(
        'CRR_STORE',
        `the store of cluster ${target.alias} has no crr tables (${describeError(err)}); was crr run or crr replay ever started for it?`,
        {
          retriable: false,
        },
      );
    });
    const kafka = createKafka(target.alias, config.clusters[target.alias]!, 'audit', logger, config.log.level === 'info' ? 'fatal' : config.log.level);
    const result = await auditAgainstLog(config, target.alias, store, kafka, {
      timeoutMs: opts.timeoutMs,
      maxBatchEvents: config.replay.maxBatchEvents,
      signal: stop.signal,
      log: logger,
      ...(opts.fromBackup === undefined ? {} : { fromBackup: opts.fromBackup }),
    });
    process.stdout.write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : renderAudit(target, result));
    process.exitCode =
      result.outcome === 'equal'
        ? EXIT.OK
        : result.outcome === 'different'
          ? EXIT.DIFFERENT
          : result.outcome === 'cannot-audit'
            ? EXIT.CANNOT_AUDIT
            : EXIT.NOT_COMPARABLE;
  } catch (err) {
    if (stop.signal.aborted) {
      process.stderr.write(`crr verify: interrupted by ${stop.received}\n`);
      process.exitCode = stop.exitCode();
    } else if (err instanceof CliUsageError) {
      process.stderr.write(`crr verify: ${err.message}\n`);
      process.exitCode = err.exitCode;
    } else if (err instanceof CrrError) {
      process.stderr.write(`crr verify: ${describeError(err)}\n`);
      process.exitCode = err.code === 'CRR_CONFIG_INVALID' ? EXIT.CONFIG : err.code === 'CRR_BACKUP_NOT_FOUND' ? EXIT.USAGE : EXIT.SOFTWARE;
    } else {
      throw err;
    }
  } finally {
    stop.dispose();
    await store?.close().catch(() => undefined);
  }
}

/** An entity as the summary names it: `vertex City/c7`, `edge lives_in Person/ada -> City/c1`, `catalog vertex_type City`. */
export function describeEntity(d: EntityDifference): string {
  const k = d.key as Record<string, unknown>;
  if (d.section === 'catalog') return `catalog ${String(k.kind)} ${String(k.name)}`;
  if (d.section === 'vertices') return `vertex ${String(k.type)}/${String(k.id)}`;
  const end = (e: unknown): string => `${(e as { type: string }).type}/${(e as { id: string }).id}`;
  return `edge ${String(k.type)} ${end(k.from)} -> ${end(k.to)}`;
}

/** The human summary of an audit: where it started, positions, what was replayed, counts, digests, then the verdict. */
function renderAudit(target: AuditTarget, r: AuditResult): string {
  const lines: string[] = [
    `audit ${r.cluster} (${r.role}) against its change log: ${r.topics.join(', ')}`,
    `  store: ${describeStore(target.store)}`,
    `  from: ${r.from.backup === undefined ? 'the log start' : `backup ${r.from.backup} (epoch ${r.from.epoch})`}`,
    `  scratch schema: ${r.scratchSchema} (dropped)`,
    '',
    "the store's positions (next offset to apply):",
  ];
  if (r.positions.length === 0) lines.push('  none: the store applied nothing of its log yet');
  else
    lines.push(
      ...table(
        ['TOPIC', 'PARTITION', 'STORE'],
        r.positions.map((p) => [p.topic, String(p.partition), String(p.nextOffset)]),
      ),
    );
  const x = r.replayed;
  lines.push(
    '',
    `replayed: ${x.read} records read, ${x.applied} events applied, ${x.skipped} skipped (below a position or stale epoch), ${x.deadLettered} that replay dead-letters, ${x.markersPassed} markers passed${r.rounds > 1 ? ` (${r.rounds} rounds: the store moved meanwhile)` : ''}`,
    '',
  );
  if (r.outcome === 'cannot-audit') {
    lines.push(`CANNOT AUDIT: ${r.refusal!.message}`);
    return `${lines.join('\n')}\n`;
  }
  if (r.outcome === 'not-comparable') {
    lines.push(`NOT COMPARABLE: ${r.message}`);
    return `${lines.join('\n')}\n`;
  }
  const c = r.comparison!;
  const rows: string[][] = [];
  for (const section of ['vertices', 'edges', 'catalog'] as const) {
    const count = (s: StoreCounts, k: string): number => s[section][k] ?? 0;
    const keys = [...new Set([...Object.keys(c.counts.store[section]), ...Object.keys(c.counts.log[section])])].sort();
    for (const k of keys) {
      const a = count(c.counts.store, k);
      const b = count(c.counts.log, k);
      rows.push([section, k, String(a), String(b), a === b ? '' : '<- differs']);
    }
  }
  lines.push('counts:');
  if (rows.length === 0) lines.push('  both are empty');
  else lines.push(...table(['KIND', 'NAME', 'STORE', 'LOG', ''], rows));
  lines.push('', 'digest:', `  store  ${c.digests.store}`, `  log    ${c.digests.log}`, '', `epoch: ${c.epoch ?? 'none'}`, '');
  if (r.outcome === 'equal') {
    lines.push('EQUAL');
    return `${lines.join('\n')}\n`;
  }
  const n = c.differing;
  lines.push(`DIFFERENT: ${n.vertices} vertices, ${n.edges} edges and ${n.catalog} catalog entries differ between the store and its log`);
  if (c.first) {
    const f = c.first;
    const side = (v: unknown): string => (v === undefined ? 'none' : JSON.stringify(v));
    lines.push(`  first: ${describeEntity(f)}: the store has ${side(f.here)}; the log has ${side(f.other)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The `--json` output: the result, with each side's alias next to its snapshot. */
function toJson(pair: VerifyPair, r: VerifyResult): object {
  return {
    equal: r.equal,
    commonPosition: r.commonPosition,
    topics: pair.topics,
    positions: r.positions,
    differences: r.differences,
    primary: { alias: pair.primary.alias, ...r.primary },
    replica: { alias: pair.replica.alias, ...r.replica },
    attempts: r.attempts,
  };
}

/** Rows as aligned columns, two spaces apart, indented by two. */
function table(head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cols: string[]): string => `  ${cols.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [fmt(head), ...rows.map(fmt)];
}

function describeStore(s: StoreConfig): string {
  return s.type === 'postgres' ? `postgres, schema ${s.schema}` : `pglite ${s.dataDir ?? '(in memory)'}, schema ${s.schema}`;
}

/** The human summary: positions, counts side by side, digests, epochs, then the verdict. */
function render(pair: VerifyPair, r: VerifyResult, timeoutMs: number): string {
  const P = pair.primary.alias;
  const R = pair.replica.alias;
  const lines: string[] = [
    `verify ${P} -> ${R}`,
    `  ${P}: ${describeStore(pair.primary.store)}`,
    `  ${R}: ${describeStore(pair.replica.store)}`,
    '',
    `positions (next offset to apply) of ${pair.topics.join(', ')}:`,
  ];
  if (r.positions.length === 0) lines.push('  none applied yet in either store');
  else
    lines.push(
      ...table(
        ['TOPIC', 'PARTITION', P.toUpperCase(), R.toUpperCase(), ''],
        r.positions.map((p) => [p.topic, String(p.partition), String(p.primary), String(p.replica), p.primary === p.replica ? '' : '<- differs']),
      ),
    );
  lines.push('');
  if (!r.commonPosition) {
    lines.push(
      `NOT COMPARABLE: no common position within ${timeoutMs} ms (replay may still be catching up, or the primary is being written; try again with a longer --timeout-ms)`,
    );
    for (const d of r.differences) lines.push(`  - ${d}`);
    return `${lines.join('\n')}\n`;
  }
  const rows: string[][] = [];
  for (const section of ['vertices', 'edges', 'catalog'] as const) {
    const keys = [...new Set([...Object.keys(r.primary.counts[section]), ...Object.keys(r.replica.counts[section])])].sort();
    for (const k of keys) {
      const a = r.primary.counts[section][k] ?? 0;
      const b = r.replica.counts[section][k] ?? 0;
      rows.push([section, k, String(a), String(b), a === b ? '' : '<- differs']);
    }
  }
  lines.push('counts:');
  if (rows.length === 0) lines.push('  both stores are empty');
  else lines.push(...table(['KIND', 'NAME', P.toUpperCase(), R.toUpperCase(), ''], rows));
  const w = Math.max(P.length, R.length);
  lines.push('', 'digest:', `  ${P.padEnd(w)}  ${r.primary.digest}`, `  ${R.padEnd(w)}  ${r.replica.digest}`);
  lines.push('', `epoch: ${P} ${r.primary.epoch ?? 'none'}, ${R} ${r.replica.epoch ?? 'none'}`, '');
  if (r.equal) lines.push('EQUAL');
  else lines.push('DIFFERENT:', ...r.differences.map((d) => `  - ${d}`));
  return `${lines.join('\n')}\n`;
}
