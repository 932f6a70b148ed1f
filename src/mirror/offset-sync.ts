import type { Admin, Message } from 'kafkajs';
import { CrrError } from '../errors.js';
import { ensureTopic } from '../kafka/read-to-end.js';

/**
 * An offset sync (DESIGN.md): the downstream offset on the target of the record that had
 * `upstreamOffset` on the source, for one source topic partition. MM2's `OffsetSync`.
 *
 * Record in `crr-offset-syncs.<sourceAlias>.internal` on the target cluster:
 * key JSON `{"flow":"primary->dr","topic":"orders","partition":0}` (the source topic),
 * value JSON `{"upstreamOffset":1234,"downstreamOffset":1240}`.
 */
export interface OffsetSync {
  /** Source topic. */
  topic: string;
  partition: number;
  /** Offset of the record on the source. */
  upstreamOffset: number;
  /** Offset of the same record in the remote topic on the target. */
  downstreamOffset: number;
}

/**
 * Name of the offset-syncs topic on the target for a source alias. MM2 names its topic
 * `mm2-offset-syncs.<targetAlias>.internal` and keeps it on the source by default
 * (`offset-syncs.topic.location`); crr keeps it on the target, because the syncs are written in
 * the target transaction that writes the records they describe. Excluded from mirroring by
 * MM2's `.*[-.]internal`.
 */
export const offsetSyncsTopicName = (sourceAlias: string): string => `crr-offset-syncs.${sourceAlias}.internal`;

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

/** Encodes one offset sync record for the mirror's target transaction (partition 0). */
export function encodeOffsetSync(flow: string, sync: OffsetSync): Message {
  return {
    partition: 0,
    key: Buffer.from(JSON.stringify({ flow, topic: sync.topic, partition: sync.partition })),
    value: Buffer.from(JSON.stringify({ upstreamOffset: sync.upstreamOffset, downstreamOffset: sync.downstreamOffset })),
  };
}

/**
 * Decodes an offset sync record. Returns `undefined` for another flow's record or a tombstone.
 * @throws CrrError CRR_OFFSET_SYNC_CORRUPT when the key or value is not the JSON above
 */
export function decodeOffsetSync(flow: string, key: Buffer | null, value: Buffer | null): OffsetSync | undefined {
  let k: { flow?: unknown; topic?: unknown; partition?: unknown };
  let v: { upstreamOffset?: unknown; downstreamOffset?: unknown };
  try {
    k = JSON.parse(key?.toString('utf8') ?? 'null') ?? {};
  } catch (cause) {
    throw new CrrError('CRR_OFFSET_SYNC_CORRUPT', `offset sync key is not JSON: ${key?.toString('utf8').slice(0, 100)}`, { cause });
  }
  if (k.flow !== flow || !value) return undefined;
  try {
    v = JSON.parse(value.toString('utf8'));
  } catch (cause) {
    throw new CrrError('CRR_OFFSET_SYNC_CORRUPT', `offset sync value is not JSON: ${value.toString('utf8').slice(0, 100)}`, { cause });
  }
  const ok = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  if (typeof k.topic !== 'string' || !Number.isInteger(k.partition) || !ok(v.upstreamOffset) || !ok(v.downstreamOffset)) {
    throw new CrrError('CRR_OFFSET_SYNC_CORRUPT', `offset sync record is invalid: ${key?.toString('utf8').slice(0, 100)} = ${value.toString('utf8').slice(0, 100)}`);
  }
  return { topic: k.topic, partition: k.partition as number, upstreamOffset: v.upstreamOffset, downstreamOffset: v.downstreamOffset };
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
