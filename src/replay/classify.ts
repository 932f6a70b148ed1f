import type { IHeaders } from 'kafkajs';
import { describeError } from '../errors.js';
import { decodeEvent } from '../protocol/codec.js';
import { isMarkerOp, type ChangeEvent } from '../protocol/schema.js';
import { HEADER_UPSTREAM_OFFSET } from '../replication/headers.js';
import { syncBreakDetail, syncBreakReason } from '../replication/sync-break.js';

/** What replay knows of one partition when a record arrives (docs/architecture.md, "Replay"). */
export interface ClassifyContext {
  /** The partition's position in the store: the next offset to apply; `undefined` = none yet. */
  next: number | undefined;
  /** Whether the cluster is a replica: its records come from the mirror and carry an upstream offset. */
  replica: boolean;
  /** On a replica, the position of the upstream (source) partition in the store; `undefined` = none yet. */
  upstreamNext: number | undefined;
  /** The store's epoch this run replays at. */
  epoch: number;
}

/** A record as KafkaJS hands it to replay. */
export interface ReplayRecord {
  offset: string;
  headers?: IHeaders | undefined;
  value: Buffer | null;
}

/**
 * What replay does with one record — the rules of replay in one place, each verdict naming its
 * rule:
 * - `below-position`: the store already holds it (offset below the position); skipped, uncounted;
 * - `below-upstream-position`: on a replica, its upstream offset is below the upstream position
 *   (a reseed's backup already holds it); skipped, counted;
 * - `mirror-sync-break`: on a replica, a sync-break marker the mirror wrote (src/replication/sync-break.ts):
 *   the replica becomes OUTDATED; a `retention-gap` marker below the upstream position (a reseed's
 *   backup holds the records after the gap) is `below-upstream-position` instead;
 * - `no-upstream-offset`: on a replica, it lacks the `crr.upstream.offset` header (not written
 *   by the mirror); dead-lettered;
 * - `invalid`: not a valid change event of protocol v1 (docs/protocol.md); dead-lettered;
 * - `stale-epoch`: an event of an older epoch (a late event of an old primary); counted, never applied;
 * - `sync-breaking-marker`: on a replica, a marker (IMPORT, DROP_ALL, CLEAR_GRAPH_STORE, RESET):
 *   the replica becomes OUTDATED;
 * - `higher-epoch`: an event of a newer epoch: a replica becomes OUTDATED; a primary re-reads
 *   its store's epoch (a `crr admin` operation raised it) and classifies the record again;
 * - `marker-done`: on a primary, a marker whose operation already made its effect; passed;
 * - `apply`: applied to the store.
 */
export type Verdict =
  | { kind: 'below-position' }
  | { kind: 'below-upstream-position'; upstreamOffset: number }
  | { kind: 'mirror-sync-break'; reason: string; detail: string; upstreamOffset: number | undefined }
  | { kind: 'no-upstream-offset' }
  | { kind: 'invalid'; error: string; upstreamOffset: number | undefined }
  | { kind: 'stale-epoch'; event: ChangeEvent; upstreamOffset: number | undefined }
  | { kind: 'sync-breaking-marker'; event: ChangeEvent; upstreamOffset: number | undefined }
  | { kind: 'higher-epoch'; event: ChangeEvent; upstreamOffset: number | undefined }
  | { kind: 'marker-done'; event: ChangeEvent }
  | { kind: 'apply'; event: ChangeEvent; upstreamOffset: number | undefined };

/**
 * Classifies one record of a change topic (or, on a replica, of a remote topic). Pure: reads
 * nothing but its arguments and throws nothing.
 */
export function classifyRecord(record: ReplayRecord, ctx: ClassifyContext): Verdict {
  const offset = Number(record.offset);
  if (ctx.next !== undefined && offset < ctx.next) return { kind: 'below-position' };
  let upstreamOffset: number | undefined;
  if (ctx.replica) {
    upstreamOffset = headerNumber(record.headers, HEADER_UPSTREAM_OFFSET);
    const syncBreak = syncBreakReason(record.headers);
    if (syncBreak !== undefined) {
      // a topic-recreated marker is always a break: its upstream offsets restart, so they are not comparable
      if (syncBreak === 'retention-gap' && upstreamOffset !== undefined && ctx.upstreamNext !== undefined && upstreamOffset < ctx.upstreamNext)
        return { kind: 'below-upstream-position', upstreamOffset };
      return { kind: 'mirror-sync-break', reason: syncBreak, detail: syncBreakDetail(record.value), upstreamOffset };
    }
    if (upstreamOffset === undefined) return { kind: 'no-upstream-offset' };
    if (ctx.upstreamNext !== undefined && upstreamOffset < ctx.upstreamNext) return { kind: 'below-upstream-position', upstreamOffset };
  }
  let event: ChangeEvent;
  try {
    event = decodeEvent(record.value);
  } catch (err) {
    return { kind: 'invalid', error: describeError(err), upstreamOffset };
  }
  if (event.epoch < ctx.epoch) return { kind: 'stale-epoch', event, upstreamOffset };
  // a marker comes with the epoch its operation raised: name the marker, not the epoch
  if (isMarkerOp(event.op) && ctx.replica) return { kind: 'sync-breaking-marker', event, upstreamOffset };
  if (event.epoch > ctx.epoch) return { kind: 'higher-epoch', event, upstreamOffset };
  if (isMarkerOp(event.op)) return { kind: 'marker-done', event };
  return { kind: 'apply', event, upstreamOffset };
}

/** A header holding a non-negative decimal integer, or `undefined` when absent or not one. */
export function headerNumber(headers: IHeaders | undefined, name: string): number | undefined {
  const raw = headers?.[name];
  const value = Array.isArray(raw) ? raw[0] : raw;
  if (value === undefined) return undefined;
  const n = Number(value.toString());
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
