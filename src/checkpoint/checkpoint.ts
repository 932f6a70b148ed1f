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
    value: Buffer.from(
      JSON.stringify({ upstreamOffset: c.upstreamOffset, downstreamOffset: c.downstreamOffset, metadata: c.metadata, checkpointedAtMs: c.checkpointedAtMs }),
    ),
  };
}

/**
 * Decodes a checkpoint record; `undefined` for a tombstone.
 * @throws CrrError CRR_CHECKPOINT_CORRUPT when the key or value is not the JSON above; the
 *   message names the invalid fields (`key.group`, `key.topic`, `key.partition`,
 *   `value.upstreamOffset`, `value.downstreamOffset`)
 */
export function decodeCheckpoint(key: Buffer | null, value: Buffer | null): Checkpoint | undefined {
  if (!value) return undefined;
  const keyText = key?.toString('utf8');
  const valueText = value.toString('utf8');
  const invalid = (why: string, cause?: unknown): CrrError =>
    new CrrError(
      'CRR_CHECKPOINT_CORRUPT',
      `checkpoint record is invalid (${why}): ${keyText?.slice(0, 100)} = ${valueText.slice(0, 100)}`,
      cause === undefined ? {} : { cause },
    );
  let k: unknown;
  let v: unknown;
  try {
    k = JSON.parse(keyText ?? 'null');
  } catch (cause) {
    throw invalid('the key is not JSON', cause);
  }
  try {
    v = JSON.parse(valueText);
  } catch (cause) {
    throw invalid('the value is not JSON', cause);
  }
  const ok = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  const isObject = (o: unknown): o is Record<string, unknown> => typeof o === 'object' && o !== null && !Array.isArray(o);
  const key_ = isObject(k) ? k : {};
  const val = isObject(v) ? v : {};
  const wrong = [
    !isObject(k) ? 'key (not a JSON object)' : false,
    isObject(k) && typeof key_.group !== 'string' && 'key.group',
    isObject(k) && typeof key_.topic !== 'string' && 'key.topic',
    isObject(k) && !ok(key_.partition) && 'key.partition',
    !isObject(v) ? 'value (not a JSON object)' : false,
    isObject(v) && !ok(val.upstreamOffset) && 'value.upstreamOffset',
    isObject(v) && !ok(val.downstreamOffset) && 'value.downstreamOffset',
  ].filter((w): w is string => typeof w === 'string');
  if (wrong.length > 0) throw invalid(wrong.join(', '));
  return {
    group: key_.group as string,
    topic: key_.topic as string,
    partition: key_.partition as number,
    upstreamOffset: val.upstreamOffset as number,
    downstreamOffset: val.downstreamOffset as number,
    metadata: typeof val.metadata === 'string' ? val.metadata : '',
    checkpointedAtMs: ok(val.checkpointedAtMs) ? val.checkpointedAtMs : 0,
  };
}

/**
 * Reads the latest checkpoint of every group partition from the checkpoints topic, to its end.
 * @param kafka client of the target cluster
 * @param timeoutMs how long to wait for the end, ms; default 30000
 * @returns checkpoints by {@link checkpointKey}; `complete: false` when the end was not reached
 * @throws CrrError CRR_CHECKPOINT_CORRUPT; KafkaJS errors
 */
export async function readCheckpoints(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  timeoutMs = 30_000,
): Promise<{ checkpoints: Map<string, Checkpoint>; complete: boolean }> {
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
