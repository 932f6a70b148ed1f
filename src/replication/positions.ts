import type { Message } from 'kafkajs';
import { CrrError } from '../errors.js';

/**
 * Source positions of a flow, stored on the target cluster in a compacted internal topic and
 * written in the same target transaction as the records they cover — the pattern of KIP-618
 * (exactly-once source connectors), where the offsets of a source task are committed with its
 * records. A reader with isolation `read_committed` therefore never sees a position without
 * its records, nor records without their position.
 *
 * Key: JSON `{"flow":"primary->dr","topic":"orders","partition":0}`.
 * Value: JSON `{"offset":1234,"timestampMs":1700000000000,"committedAtMs":1700000000050,
 * "topicId":"…","resumeDownstream":17}`, where `offset` is the next upstream offset to mirror
 * (like a committed consumer offset), `timestampMs` the source timestamp of the last record
 * mirrored, `committedAtMs` the wall clock of the commit, and the optional `topicId` and
 * `resumeDownstream` as documented on {@link Position}.
 */
export interface Position {
  /** Next upstream (source) offset to mirror. */
  offset: number;
  /** Source timestamp of the last mirrored record, ms since the epoch; 0 if none yet. */
  timestampMs: number;
  /** Wall-clock time of the transaction that stored this position, ms since the epoch. */
  committedAtMs: number;
  /**
   * The source topic's id (KIP-516) the offset belongs to: positions belong to one incarnation
   * of a topic, and a new id is a sync break (src/replication/sync-break.ts). Absent in positions
   * written before crr recorded ids, or when the source broker could not say.
   */
  topicId?: string;
  /**
   * The downstream offset just past the latest `topic-recreated` marker the mirror wrote on this
   * partition's remote partition: a replica restored from a backup replays that partition from
   * here, not from its start. Absent when there was none.
   */
  resumeDownstream?: number;
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
 *   `offset` (an integer >= 0, required), `timestampMs` or `committedAtMs` (integers >= 0, 0 when absent),
 *   `topicId` (a UUID string, optional), `resumeDownstream` (an integer >= 0, optional)
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
  for (const f of ['timestampMs', 'committedAtMs', 'resumeDownstream'] as const) {
    if (v[f] !== undefined && !isCount(v[f])) throw invalid(`${f} is not a non-negative integer`);
  }
  if (v.topicId !== undefined && (typeof v.topicId !== 'string' || !UUID.test(v.topicId))) throw invalid('topicId is not a UUID string');
  const position: Position = {
    offset: v.offset,
    timestampMs: (v.timestampMs as number | undefined) ?? 0,
    committedAtMs: (v.committedAtMs as number | undefined) ?? 0,
  };
  if (v.topicId !== undefined) position.topicId = v.topicId;
  if (v.resumeDownstream !== undefined) position.resumeDownstream = v.resumeDownstream as number;
  return { topic, partition, position };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A non-negative safe integer: an offset, a partition, a time in ms. */
const isCount = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
