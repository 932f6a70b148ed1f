import { CrrError } from '../errors.js';
import type { ChangeEvent } from '../protocol/schema.js';
import type { ReplayFence } from '../store/apply.js';
import type { Store, StorePosition } from '../store/store.js';

/** A record replay accepted for the store (classify.ts verdict `apply`), with where it came from. */
export interface Accepted {
  event: ChangeEvent;
  /** Its offset in the read topic partition. */
  offset: number;
  /** On a replica, its upstream offset (the `crr.upstream.offset` header). */
  upstreamOffset: number | undefined;
}

/** Where a batch of accepted records was read: the read topic partition and, on a replica, its upstream topic. */
export interface BatchOrigin {
  topic: string;
  partition: number;
  upstreamTopic: string | undefined;
}

/**
 * The store positions after the record at `offset` (and, on a replica, at `upstreamOffset` of
 * the upstream topic): next offsets, as Store.applyBatch writes them.
 */
export function positionsAfter(origin: BatchOrigin, offset: number, upstreamOffset: number | undefined): StorePosition[] {
  const rows: StorePosition[] = [{ topic: origin.topic, partition: origin.partition, nextOffset: offset + 1 }];
  if (origin.upstreamTopic !== undefined && upstreamOffset !== undefined)
    rows.push({ topic: origin.upstreamTopic, partition: origin.partition, nextOffset: upstreamOffset + 1 });
  return rows;
}

/**
 * Applies accepted events with the positions after `handled` (and `upHandled`) the way replay
 * does (docs/architecture.md, "Replay"): in ONE store transaction; when the store refuses the
 * batch (CRR_STORE_APPLY: an event that contradicts it, or a data error of the database), event by
 * event, handing each refused one to `hooks.refused`, which decides whether to pass it (its
 * position is then written alone) or to stop there. Used by replay and by the audit against the
 * change log (src/verify/against-log.ts), so both apply by the same rules.
 * @param fence the replay activation's fence token, when the store must check it
 * @returns true when every record up to `handled` was applied or passed; false when `refused` stopped
 * @throws CrrError what Store.applyBatch throws other than CRR_STORE_APPLY (CRR_STORE, CRR_REPLAY_FENCED)
 */
export async function applyAccepted(
  store: Store,
  origin: BatchOrigin,
  accepted: readonly Accepted[],
  handled: number,
  upHandled: number | undefined,
  hooks: {
    fence?: ReplayFence | undefined;
    /** Called after each store transaction with the events it applied and the positions it wrote. */
    applied(events: ChangeEvent[], offset: number, upstreamOffset: number | undefined): void;
    /** Called when the store refuses the batch, before it is applied event by event. */
    batchRefused?(): void;
    /** An event the store refuses alone: true passes it, false stops. */
    refused(record: Accepted, error: CrrError): Promise<boolean>;
  },
): Promise<boolean> {
  try {
    await store.applyBatch(
      accepted.map((a) => a.event),
      positionsAfter(origin, handled, upHandled),
      hooks.fence,
    );
    hooks.applied(
      accepted.map((a) => a.event),
      handled,
      upHandled,
    );
    return true;
  } catch (err) {
    if (!(err instanceof CrrError && err.code === 'CRR_STORE_APPLY')) throw err;
    hooks.batchRefused?.();
  }
  for (const a of accepted) {
    try {
      await store.applyBatch([a.event], positionsAfter(origin, a.offset, a.upstreamOffset), hooks.fence);
      hooks.applied([a.event], a.offset, a.upstreamOffset);
    } catch (err) {
      if (!(err instanceof CrrError && err.code === 'CRR_STORE_APPLY')) throw err;
      if (!(await hooks.refused(a, err))) return false;
      await store.applyBatch([], positionsAfter(origin, a.offset, a.upstreamOffset), hooks.fence);
      hooks.applied([], a.offset, a.upstreamOffset);
    }
  }
  await store.applyBatch([], positionsAfter(origin, handled, upHandled), hooks.fence);
  hooks.applied([], handled, upHandled);
  return true;
}
