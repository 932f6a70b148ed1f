import { setTimeout as sleep } from 'node:timers/promises';
import type { Store, StoreCounts, StorePosition } from '../store/store.js';

/**
 * Options of {@link verifyStores}.
 * - `topics`: the primary's change topics (`clusters.<primary>.changeTopics.data` and
 *   `.metadata`, by default `graph.data` and `graph.metadata`). Only positions of these topics
 *   are compared; a replica's rows for the remote topics it reads (`primary.graph.data`, in
 *   downstream offsets) are ignored.
 * - `timeoutMs`: how long to wait for both stores to reach a common position, ms. The last
 *   attempt may end up to one read of both stores later.
 * - `pollIntervalMs`: pause between two reads of the positions, ms.
 * - `signal`: aborts the wait; {@link verifyStores} then rejects with the signal's reason.
 * - `labels`: names of the two stores in `differences` (the cluster aliases); default
 *   `primary` and `replica`.
 */
export interface VerifyOptions {
  topics: readonly string[];
  timeoutMs: number;
  pollIntervalMs: number;
  signal?: AbortSignal;
  labels?: { primary?: string; replica?: string };
}

/** One partition of a change topic: the next offset each store has to apply (a missing row = 0). */
export interface PositionPair {
  topic: string;
  partition: number;
  primary: number;
  replica: number;
}

/** What was read of one store: row counts, content digest (SHA-256 hex) and epoch (absent: no cluster state recorded). */
export interface StoreSnapshot {
  counts: StoreCounts;
  digest: string;
  epoch?: number;
}

/**
 * The outcome of {@link verifyStores}.
 * - `commonPosition`: both stores were at the same position of every partition of `topics`
 *   while their counts and digests were read. When false, nothing was compared: `equal` is
 *   false, `differences` lists the partitions whose positions still differed at the timeout,
 *   and the snapshots are informational (read after the timeout).
 * - `equal`: at the common position, the counts, digests and epochs are the same.
 * - `positions`: per partition (sorted by topic, partition), both positions: the common ones,
 *   or the last ones read.
 * - `differences`: one line per difference, like `vertices City: primary 1000, dr 998`,
 *   `digest: primary 3fa2..., dr 9c01...`, `epoch: primary 4, dr 3`,
 *   `position graph.data[2]: primary 120, dr 118`.
 * - `attempts`: how many times the positions were read.
 */
export interface VerifyResult {
  equal: boolean;
  commonPosition: boolean;
  positions: PositionPair[];
  differences: string[];
  primary: StoreSnapshot;
  replica: StoreSnapshot;
  attempts: number;
}

/**
 * Compares the primary's store and a replica's store at a common position: row counts per
 * vertex type, edge type and catalog kind, the order-independent content digest
 * ({@link Store.digest}) and the epoch ({@link Store.clusterState}).
 *
 * A replica keeps its positions in upstream terms under the primary's topic names, so "a
 * common position" is: for every partition of `topics` in either store, the same next offset
 * (a missing row counts as 0). The stream may still be arriving, so the positions are polled
 * every `pollIntervalMs` until they agree or `timeoutMs` passes. Once they agree, counts,
 * digests and epochs are read, and then the positions and epochs again: if either store moved
 * meanwhile (it was written), the attempt is discarded and polling goes on. A primary that keeps
 * being written while its replica follows may thus never be comparable: verify when writes pause.
 *
 * Read-only: nothing is written to either store.
 *
 * @throws CrrError CRR_STORE when a store cannot be read
 * @throws the signal's reason (an AbortError by default) when `signal` aborts
 */
export async function verifyStores(primary: Store, replica: Store, opts: VerifyOptions): Promise<VerifyResult> {
  const names = { primary: opts.labels?.primary ?? 'primary', replica: opts.labels?.replica ?? 'replica' };
  const topics = new Set(opts.topics);
  const deadline = Date.now() + opts.timeoutMs;
  let attempts = 0;
  for (;;) {
    opts.signal?.throwIfAborted();
    attempts++;
    const before = await readPositions(primary, replica, topics);
    if (agree(before.pairs)) {
      const [p, r] = await Promise.all([snapshot(primary), snapshot(replica)]);
      const after = await readPositions(primary, replica, topics);
      if (sameReading(before, after)) {
        const differences = compare(p, r, names);
        return { equal: differences.length === 0, commonPosition: true, positions: before.pairs, differences, primary: p, replica: r, attempts };
      }
    }
    if (Date.now() >= deadline) {
      const [p, r] = await Promise.all([snapshot(primary), snapshot(replica)]);
      const differences = before.pairs
        .filter((x) => x.primary !== x.replica)
        .map((x) => `position ${x.topic}[${x.partition}]: ${names.primary} ${x.primary}, ${names.replica} ${x.replica}`);
      if (differences.length === 0) differences.push(`the stores kept being written: no stable common position within ${opts.timeoutMs} ms`);
      return { equal: false, commonPosition: false, positions: before.pairs, differences, primary: p, replica: r, attempts };
    }
    await sleep(Math.max(0, Math.min(opts.pollIntervalMs, deadline - Date.now())), undefined, opts.signal ? { signal: opts.signal } : {});
  }
}

/** Positions of both stores, paired per partition of `topics`, with both epochs (to notice a write that moves no position). */
interface Reading {
  pairs: PositionPair[];
  epochs: [number | undefined, number | undefined];
}

async function readPositions(primary: Store, replica: Store, topics: ReadonlySet<string>): Promise<Reading> {
  const [pp, rp, ps, rs] = await Promise.all([primary.positions(), replica.positions(), primary.clusterState(), replica.clusterState()]);
  return { pairs: pairPositions(pp, rp, topics), epochs: [ps?.epoch, rs?.epoch] };
}

/** Pairs the rows of `topics` of both stores (a row only one store has counts 0 in the other), sorted by topic and partition. */
export function pairPositions(primary: readonly StorePosition[], replica: readonly StorePosition[], topics: ReadonlySet<string>): PositionPair[] {
  const pairs = new Map<string, PositionPair>();
  const at = (p: StorePosition): PositionPair => {
    const key = `${p.partition}\u0000${p.topic}`;
    let pair = pairs.get(key);
    if (!pair) pairs.set(key, (pair = { topic: p.topic, partition: p.partition, primary: 0, replica: 0 }));
    return pair;
  };
  for (const p of primary) if (topics.has(p.topic)) at(p).primary = p.nextOffset;
  for (const p of replica) if (topics.has(p.topic)) at(p).replica = p.nextOffset;
  return [...pairs.values()].sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition));
}

const agree = (pairs: readonly PositionPair[]): boolean => pairs.every((p) => p.primary === p.replica);

function sameReading(a: Reading, b: Reading): boolean {
  return a.epochs[0] === b.epochs[0] && a.epochs[1] === b.epochs[1] && JSON.stringify(a.pairs) === JSON.stringify(b.pairs);
}

async function snapshot(store: Store): Promise<StoreSnapshot> {
  const [counts, digest, state] = await Promise.all([store.counts(), store.digest(), store.clusterState()]);
  return { counts, digest, ...(state ? { epoch: state.epoch } : {}) };
}

/** Differences between two snapshots, counts first (sorted by section and name), then digest and epoch. */
function compare(p: StoreSnapshot, r: StoreSnapshot, names: { primary: string; replica: string }): string[] {
  const out: string[] = [];
  for (const section of ['vertices', 'edges', 'catalog'] as const) {
    const keys = [...new Set([...Object.keys(p.counts[section]), ...Object.keys(r.counts[section])])].sort();
    for (const k of keys) {
      const a = p.counts[section][k] ?? 0;
      const b = r.counts[section][k] ?? 0;
      if (a !== b) out.push(`${section} ${k}: ${names.primary} ${a}, ${names.replica} ${b}`);
    }
  }
  if (p.digest !== r.digest) {
    const note = out.length === 0 ? ' (same counts: ids, attributes or catalog bodies differ)' : '';
    out.push(`digest: ${names.primary} ${p.digest}, ${names.replica} ${r.digest}${note}`);
  }
  if (p.epoch !== r.epoch) out.push(`epoch: ${names.primary} ${p.epoch ?? 'none'}, ${names.replica} ${r.epoch ?? 'none'}`);
  return out;
}
