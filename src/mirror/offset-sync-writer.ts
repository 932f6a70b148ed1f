import type { Admin, Message } from 'kafkajs';
import { ensureTopic } from '../kafka/topics.js';
import { encodeOffsetSync } from '../replication/offset-sync.js';
import { tpKey } from '../replication/topic-partition.js';
import type { Pending } from './pending.js';

/**
 * Creates the offset-syncs topic on the target if it is missing: one partition,
 * `cleanup.policy=delete` with the broker's default retention.
 *
 * Not compacted, unlike MM2's (keyed by topic partition, so compaction keeps one sync per
 * partition): translation needs the *latest sync at or below* a group's committed offset
 * (OffsetSyncStore.translateDownstream), and a group behind the newest sync of its partition
 * can only be translated closely from older syncs. Compaction would leave such a group "too
 * old" or translated from far back; MM2's OffsetSyncStore itself only keeps older syncs it
 * read before compaction removed them. The volume stays small: at most one sync per
 * `offsetLagMax` mirrored records of a partition (plus one per task start or gap).
 *
 * @param replicationFactor -1 for the broker default
 */
export async function ensureOffsetSyncsTopic(admin: Admin, topic: string, replicationFactor: number): Promise<void> {
  await ensureTopic(admin, topic, 1, replicationFactor, [{ name: 'cleanup.policy', value: 'delete' }]);
}

/**
 * Decides, record by record, when one source partition needs an offset sync — the rule of MM2's
 * `OffsetSyncWriter.PartitionState.update` (`MirrorSourceTask` before Kafka 3.8). A sync is due for
 * a record when:
 * - it is the first record of the partition this task run mirrors;
 * - its upstream offset is not the previous one + 1 (a gap: compaction, aborted or control
 *   records, a retention gap, a skipped cycle record);
 * - its downstream offset is below the previous one (the remote topic was truncated or recreated);
 * - its downstream offset is `offsetLagMax` or more past the last sync's downstream offset + 1,
 *   the offset a group just past that sync is translated to. This bounds what a group
 *   translated from the last sync re-reads to fewer than `offsetLagMax` records.
 *
 * Unlike MM2, which sends the sync later and may delay one that is not urgent, the mirror
 * writes every due sync in the target transaction of its record, so a sync never points at an
 * aborted record. State is per task run: a new run starts with a sync for each partition.
 */
export class OffsetSyncState {
  private previousUpstream = -1;
  private previousDownstream = -1;
  private lastSyncDownstream = -1;

  /** @param offsetLagMax MM2's `offset.lag.max`, records; default 100 */
  constructor(private readonly offsetLagMax = 100) {}

  /**
   * Records that the record with `upstreamOffset` was written at `downstreamOffset`.
   * @returns whether an offset sync for this record is due
   */
  update(upstreamOffset: number, downstreamOffset: number): boolean {
    const first = this.lastSyncDownstream === -1;
    const stale = downstreamOffset - (this.lastSyncDownstream + 1) >= this.offsetLagMax;
    const gap = upstreamOffset - this.previousUpstream !== 1;
    const truncated = downstreamOffset < this.previousDownstream;
    this.previousUpstream = upstreamOffset;
    this.previousDownstream = downstreamOffset;
    if (first || stale || gap || truncated) {
      this.lastSyncDownstream = downstreamOffset;
      return true;
    }
    return false;
  }
}

/**
 * MM2's `OffsetSyncWriter`: keeps one {@link OffsetSyncState} per source partition and turns the
 * records a target transaction wrote into the offset-sync records due for them, which the mirror
 * writes in the same transaction (a sync never points at an aborted record).
 */
export class OffsetSyncWriter {
  private readonly states = new Map<string, OffsetSyncState>();

  /**
   * @param flowId `source->target`, the key's `flow`
   * @param offsetLagMax MM2's `offset.lag.max`, records
   */
  constructor(
    private readonly flowId: string,
    private readonly offsetLagMax: number,
  ) {}

  /**
   * The offset-sync records due for records just written, in the order written.
   * @param written each record's message and its offset on the target (pending.ts `downstreamOffsets`)
   * @param byMessage the buffered record of each message (its source topic, partition and offset)
   * @returns records for the offset-syncs topic (see encodeOffsetSync)
   */
  due(written: Array<{ message: Message; downstreamOffset: number }>, byMessage: Map<Message, Pending>): Message[] {
    const out: Message[] = [];
    for (const { message, downstreamOffset } of written) {
      const p = byMessage.get(message);
      if (!p) continue;
      const key = tpKey(p.topic, p.partition);
      let state = this.states.get(key);
      if (!state) this.states.set(key, (state = new OffsetSyncState(this.offsetLagMax)));
      if (state.update(p.upstreamOffset, downstreamOffset)) {
        out.push(encodeOffsetSync(this.flowId, { topic: p.topic, partition: p.partition, upstreamOffset: p.upstreamOffset, downstreamOffset }));
      }
    }
    return out;
  }

  /**
   * Forgets every partition's state, as a new task run does: after an aborted transaction whose
   * records are written again, the next record of each partition gets a sync.
   */
  reset(): void {
    this.states.clear();
  }
}
