import type { Admin, Kafka, Message } from 'kafkajs';
import { CrrError } from '../errors.js';
import { ensureTopic } from '../kafka/topics.js';
import { readToEnd } from '../kafka/read-to-end.js';

/**
 * A checkpoint (docs/glossary.md, "checkpoint"): a source consumer group's committed offset on a partition,
 * translated to the remote topic on the target. MM2's `Checkpoint`.
 *
 * Record in `<sourceAlias>.checkpoints.internal` on the target: key JSON
 * `{"group":"billing","topic":"primary.orders","partition":0}` (the remote topic), value JSON
 * `{"upstreamOffset":1234,"downstreamOffset":1240,"metadata":"","checkpointedAtMs":1700000000000}`.
 */
export interface Checkpoint {
  group: string;
  /** Remote topic on the target. */
  topic: string;
  partition: number;
  /** The group's committed offset on the source (next record to read). */
  upstreamOffset: number;
  /** The translated offset on the remote topic. */
  downstreamOffset: number;
  /** The metadata string committed with the source offset ('' when none). */
  metadata: string;
  /** Wall-clock time the source offset was read, ms since the epoch. */
  checkpointedAtMs: number;
}


/** `group\u0000topic:partition`, the key of checkpoints in memory. */
export const checkpointKey = (group: string, topic: string, partition: number): string => `${group}\u0000${topic}:${partition}`;

/**
 * Creates the checkpoints topic if missing: one partition, `cleanup.policy=compact` (as MM2's):
 * only the latest checkpoint of a group partition matters.
 * @param replicationFactor -1 for the broker default
 */
export async function ensureCheckpointsTopic(admin: Admin, topic: string, replicationFactor: number): Promise<void> {
  await ensureTopic(admin, topic, 1, replicationFactor, [{ name: 'cleanup.policy', value: 'compact' }]);
}

/** Encodes a checkpoint record (partition 0). */
export function encodeCheckpoint(c: Checkpoint): Message {
  return {
    partition: 0,
    key: Buffer.from(JSON.stringify({ group: c.group, topic: c.topic, partition: c.partition })),
    value: Buffer.from(JSON.stringify({ upstreamOffset: c.upstreamOffset, downstreamOffset: c.downstreamOffset, metadata: c.metadata, checkpointedAtMs: c.checkpointedAtMs })),
  };
}

/**
 * Decodes a checkpoint record; `undefined` for a tombstone.
 * @throws CrrError CRR_CHECKPOINT_CORRUPT when the key or value is not the JSON above
 */
export function decodeCheckpoint(key: Buffer | null, value: Buffer | null): Checkpoint | undefined {
  if (!value) return undefined;
  try {
    const k = JSON.parse(key?.toString('utf8') ?? 'null') as { group?: unknown; topic?: unknown; partition?: unknown };
    const v = JSON.parse(value.toString('utf8')) as { upstreamOffset?: unknown; downstreamOffset?: unknown; metadata?: unknown; checkpointedAtMs?: unknown };
    const ok = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
    if (typeof k.group !== 'string' || typeof k.topic !== 'string' || !Number.isInteger(k.partition) || !ok(v.upstreamOffset) || !ok(v.downstreamOffset)) throw new Error('missing or invalid fields');
    return { group: k.group, topic: k.topic, partition: k.partition as number, upstreamOffset: v.upstreamOffset, downstreamOffset: v.downstreamOffset, metadata: typeof v.metadata === 'string' ? v.metadata : '', checkpointedAtMs: ok(v.checkpointedAtMs) ? v.checkpointedAtMs : 0 };
  } catch (cause) {
    throw new CrrError('CRR_CHECKPOINT_CORRUPT', `checkpoint record is invalid: ${key?.toString('utf8').slice(0, 100)} = ${value.toString('utf8').slice(0, 100)}`, { cause });
  }
}

/**
 * Reads the latest checkpoint of every group partition from the checkpoints topic, to its end.
 * @param kafka client of the target cluster
 * @param timeoutMs how long to wait for the end, ms; default 30000
 * @returns checkpoints by {@link checkpointKey}; `complete: false` when the end was not reached
 * @throws CrrError CRR_CHECKPOINT_CORRUPT; KafkaJS errors
 */
export async function readCheckpoints(kafka: Kafka, admin: Admin, topic: string, timeoutMs = 30_000): Promise<{ checkpoints: Map<string, Checkpoint>; complete: boolean }> {
  const checkpoints = new Map<string, Checkpoint>();
  const { complete } = await readToEnd(
    kafka,
    admin,
    topic,
    (m) => {
      const c = decodeCheckpoint(m.key, m.value);
      if (c) checkpoints.set(checkpointKey(c.group, c.topic, c.partition), c);
    },
    timeoutMs,
  );
  return { checkpoints, complete };
}
