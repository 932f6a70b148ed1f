import type { Admin, Kafka } from 'kafkajs';
import { readToEnd } from '../kafka/read-to-end.js';
import { decodeOffsetSync, type OffsetSync } from '../replication/offset-sync.js';
import { tpKey } from '../replication/topic-partition.js';

/**
 * The answer of {@link OffsetSyncStore.translateDownstream} for one committed upstream offset:
 * - `translated`: `downstreamOffset` is where a consumer of the remote topic resumes without
 *   missing a record the group had not consumed; `sync` is the offset sync it came from;
 * - `unknown`: no offset sync for the partition at all (nothing mirrored yet, offset syncs
 *   disabled, or the partition is not mirrored);
 * - `too-old`: offset syncs exist, but all of them lie above the committed offset (the group is
 *   further behind than the oldest sync kept, e.g. syncs deleted by retention, or the history
 *   restarted after the source topic was recreated). `oldestUpstreamOffset` says where they begin.
 */
export type Translation =
  | { status: 'translated'; downstreamOffset: number; sync: OffsetSync }
  | { status: 'unknown' }
  | { status: 'too-old'; oldestUpstreamOffset: number };

/**
 * The offset syncs of one flow, per source topic partition, in upstream order, and the offset
 * translation of MM2's `OffsetSyncStore.translateDownstream`.
 *
 * Invariant per partition: upstream and downstream offsets of the kept syncs both strictly
 * increase. A sync whose upstream or downstream offset is not above the newest one (the source
 * or the remote topic was recreated or truncated) starts the history over, as MM2's
 * `updateSyncArray` clears its array when the upstream offset goes backwards. Unlike MM2, which
 * keeps 64 syncs spaced by powers of two, every sync read is kept (16 bytes each), so a group
 * anywhere in the history is translated from the sync closest below it.
 */
export class OffsetSyncStore {
  private readonly syncs = new Map<string, { topic: string; partition: number; up: number[]; down: number[] }>();

  /** Number of syncs kept, over all partitions. */
  get size(): number {
    let n = 0;
    for (const s of this.syncs.values()) n += s.up.length;
    return n;
  }

  /** Adds a sync read from the offset-syncs topic, in the topic's order. */
  add(sync: OffsetSync): void {
    const key = tpKey(sync.topic, sync.partition);
    let s = this.syncs.get(key);
    if (!s) this.syncs.set(key, (s = { topic: sync.topic, partition: sync.partition, up: [], down: [] }));
    const n = s.up.length;
    if (n > 0) {
      const lastUp = s.up[n - 1]!;
      const lastDown = s.down[n - 1]!;
      if (sync.upstreamOffset === lastUp && sync.downstreamOffset === lastDown) return;
      if (sync.upstreamOffset <= lastUp || sync.downstreamOffset <= lastDown) {
        s.up = [];
        s.down = [];
      }
    }
    s.up.push(sync.upstreamOffset);
    s.down.push(sync.downstreamOffset);
  }

  /**
   * Translates a consumer group's committed offset on the source (the next record it would
   * read) to an offset of the remote topic (MM2's `OffsetSyncStore.translateDownstream`):
   * the latest sync with `upstreamOffset <= committed`; if `committed` equals its upstream
   * offset, its downstream offset, else its downstream offset + 1. The "+ 1" never skips a
   * record: records after the sync may have been dropped or moved, so nothing further can be
   * assumed; the price is re-reading the records between the sync and the committed offset.
   * With syncs written at least every `offsetLagMax` downstream offsets (OffsetSyncState),
   * that is fewer than `offsetLagMax` records.
   *
   * @param topic source topic
   * @param upstreamOffset committed offset on the source, >= 0
   */
  translateDownstream(topic: string, partition: number, upstreamOffset: number): Translation {
    const s = this.syncs.get(tpKey(topic, partition));
    if (!s || s.up.length === 0) return { status: 'unknown' };
    // binary search for the last index with up[i] <= upstreamOffset
    let lo = 0;
    let hi = s.up.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (s.up[mid]! <= upstreamOffset) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found === -1) return { status: 'too-old', oldestUpstreamOffset: s.up[0]! };
    const up = s.up[found]!;
    const down = s.down[found]!;
    return {
      status: 'translated',
      downstreamOffset: upstreamOffset === up ? down : down + 1,
      sync: { topic, partition, upstreamOffset: up, downstreamOffset: down },
    };
  }
}

/**
 * Reads a flow's offset syncs from the offset-syncs topic on the target, from its beginning to
 * its end, `read_committed` (syncs of aborted mirror transactions are never seen).
 *
 * @param kafka client of the target cluster
 * @param topic `crr-offset-syncs.<source>.internal`
 * @param flow `source->target`; other flows' records are ignored
 * @param timeoutMs how long to wait for the end, ms; default 30000
 * @returns the store, and `complete: false` when the end was not reached in time (translate
 *   nothing from it then: MM2 declines to translate before its first read to the end)
 * @throws CrrError CRR_OFFSET_SYNC_CORRUPT on a record that cannot be decoded; KafkaJS errors
 */
export async function readOffsetSyncs(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  flow: string,
  timeoutMs = 30_000,
): Promise<{ store: OffsetSyncStore; complete: boolean }> {
  const store = new OffsetSyncStore();
  const { complete } = await readToEnd(
    kafka,
    admin,
    topic,
    (m) => {
      const sync = decodeOffsetSync(flow, m.key, m.value);
      if (sync) store.add(sync);
    },
    timeoutMs,
  );
  return { store, complete };
}
