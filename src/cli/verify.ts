import { InvalidArgumentError, type Command } from 'commander';
import { CrrError, describeError } from '../errors.js';
import { openStore } from '../store/open.js';
import type { StoreConfig } from '../store/schema.js';
import type { Store } from '../store/store.js';
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
 */
export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description('compare the primary and the DR store at a common position (exit 0 equal, 1 different, 3 no common position in time)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--primary <alias>', 'the primary cluster (default: the source of the enabled flow into the replica)')
    .option('--replica <alias>', 'the replica cluster (default: the single replica with a store)')
    .option('--timeout-ms <n>', 'wait this long for both stores to reach a common position, ms', parseTimeoutMs, DEFAULT_VERIFY_TIMEOUT_MS)
    .option('--json', 'print JSON instead of a summary')
    .action(async (opts: { config: string; primary?: string; replica?: string; timeoutMs: number; json?: boolean }) => {
      const config = loadConfigOrExit(opts.config);
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
