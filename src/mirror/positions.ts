import type { Admin, Kafka, Message } from 'kafkajs';
import { CrrError } from '../errors.js';
import { ensureTopic } from '../kafka/topics.js';
import { readToEnd } from '../kafka/read-to-end.js';
import { tpKey } from '../replication/topic-partition.js';

/**
 * Source positions of a flow, stored on the target cluster in a compacted internal topic and
 * written in the same target transaction as the records they cover — the pattern of KIP-618
 * (exactly-once source connectors), where the offsets of a source task are committed with its
 * records. A reader with isolation `read_committed` therefore never sees a position without
 * its records, nor records without their position.
 *
 * Key: JSON `{"flow":"primary->dr","topic":"orders","partition":0}`.
 * Value: JSON `{"offset":1234,"timestampMs":1700000000000,"committedAtMs":1700000000050}`, where
 * `offset` is the next upstream offset to mirror (like a committed consumer offset),
 * `timestampMs` the source timestamp of the last record mirrored and `committedAtMs` the wall
 * clock of the commit.
 */
export interface Position {
  /** Next upstream (source) offset to mirror. */
  offset: number;
  /** Source timestamp of the last mirrored record, ms since the epoch; 0 if none yet. */
  timestampMs: number;
  /** Wall-clock time of the transaction that stored this position, ms since the epoch. */
  committedAtMs: number;
}

/** Encodes one position record for the transaction. */
export function encodePosition(flow: string, topic: string, partition: number, pos: Position): Message {
  return {
    key: Buffer.from(JSON.stringify({ flow, topic, partition })),
    value: Buffer.from(JSON.stringify(pos)),
  };
}

/**
 * Decodes a position record. Returns `undefined` for a tombstone or another flow's record.
 * @throws CrrError CRR_POSITION_CORRUPT when the key or value is not the JSON above; the message
 *   names the field: the key's `topic` (a string) or `partition` (an integer >= 0), the value's
 *   `offset` (an integer >= 0, required), `timestampMs` or `committedAtMs` (integers >= 0, 0 when absent)
 */
export function decodePosition(
  flow: string,
  key: Buffer | null,
  value: Buffer | null,
): { topic: string; partition: number; position: Position | null } | undefined {
  if (!key) throw new CrrError('CRR_POSITION_CORRUPT', 'position record without a key');
  const keyText = key.toString('utf8');
  let k: unknown;
  try {
    k = JSON.parse(keyText);
  } catch (cause) {
    throw new CrrError('CRR_POSITION_CORRUPT', `position key is not JSON: ${keyText.slice(0, 100)}`, { cause });
  }
  if (!isObject(k)) throw new CrrError('CRR_POSITION_CORRUPT', `position key is not a JSON object: ${keyText.slice(0, 100)}`);
  if (k.flow !== flow) return undefined;
  if (typeof k.topic !== 'string' || !isCount(k.partition)) {
    throw new CrrError(
      'CRR_POSITION_CORRUPT',
      `position key lacks ${typeof k.topic !== 'string' ? 'topic (a string)' : 'partition (an integer >= 0)'}: ${keyText.slice(0, 100)}`,
    );
  }
  const { topic, partition } = k;
  if (!value) return { topic, partition, position: null };
  const invalid = (why: string, cause?: unknown): CrrError =>
    new CrrError('CRR_POSITION_CORRUPT', `position value for ${topic.slice(0, 100)}:${partition} is invalid: ${why}`, cause === undefined ? {} : { cause });
  let v: unknown;
  try {
    v = JSON.parse(value.toString('utf8'));
  } catch (cause) {
    throw invalid(`not JSON (${(cause as Error).message.slice(0, 200)})`, cause);
  }
  if (!isObject(v)) throw invalid('not a JSON object');
  if (!isCount(v.offset)) throw invalid('offset is not a non-negative integer');
  for (const f of ['timestampMs', 'committedAtMs'] as const) {
    if (v[f] !== undefined && !isCount(v[f])) throw invalid(`${f} is not a non-negative integer`);
  }
  return {
    topic,
    partition,
    position: { offset: v.offset, timestampMs: (v.timestampMs as number | undefined) ?? 0, committedAtMs: (v.committedAtMs as number | undefined) ?? 0 },
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A non-negative safe integer: an offset, a partition, a time in ms. */
const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;

/**
 * Creates the positions topic on the target if it is missing: one partition,
 * `cleanup.policy=compact`.
 *
 * @param replicationFactor -1 for the broker default
 */
export async function ensurePositionsTopic(admin: Admin, topic: string, replicationFactor: number): Promise<void> {
  await ensureTopic(admin, topic, 1, replicationFactor, [{ name: 'cleanup.policy', value: 'compact' }]);
}

/**
 * Reads every committed position of a flow from the positions topic, to its end.
 *
 * "End" is the topic's high watermark when the read starts. Call it after the flow's
 * transactional producer has been initialised (which aborts a zombie's open transaction), so
 * that no open transaction holds the read back. If one does (another live instance), the read
 * stops after `timeoutMs` and says it is incomplete.
 *
 * @param kafka client of the target cluster
 * @param flow `source->target`
 * @param timeoutMs how long to wait for the end, ms; default 30000
 * @returns positions by {@link tpKey}, and `complete: false` when the end was not reached
 */
export async function readPositions(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  flow: string,
  timeoutMs = 30_000,
): Promise<{ positions: Map<string, Position>; complete: boolean }> {
  const positions = new Map<string, Position>();
  const { complete } = await readToEnd(
    kafka,
    admin,
    topic,
    (m) => {
      const decoded = decodePosition(flow, m.key, m.value);
      if (!decoded) return;
      const key = tpKey(decoded.topic, decoded.partition);
      if (decoded.position) positions.set(key, decoded.position);
      else positions.delete(key);
    },
    timeoutMs,
  );
  return { positions, complete };
}
