import type { Message } from 'kafkajs';
import { CrrError } from '../errors.js';

/**
 * An offset sync (docs/glossary.md, "offset sync"): the downstream offset on the target of the record that had
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
 * @throws CrrError CRR_OFFSET_SYNC_CORRUPT when the key or value is not the JSON above; the
 *   message names the invalid fields (`key.topic`, `key.partition`, `value.upstreamOffset`, `value.downstreamOffset`)
 */
export function decodeOffsetSync(flow: string, key: Buffer | null, value: Buffer | null): OffsetSync | undefined {
  const keyText = key?.toString('utf8');
  let k: unknown;
  let v: unknown;
  try {
    k = JSON.parse(keyText ?? 'null') ?? {};
  } catch (cause) {
    throw new CrrError('CRR_OFFSET_SYNC_CORRUPT', `offset sync key is not JSON: ${keyText?.slice(0, 100)}`, { cause });
  }
  if (!isObject(k) || k.flow !== flow || !value) return undefined;
  const valueText = value.toString('utf8');
  try {
    v = JSON.parse(valueText);
  } catch (cause) {
    throw new CrrError('CRR_OFFSET_SYNC_CORRUPT', `offset sync value is not JSON: ${valueText.slice(0, 100)}`, { cause });
  }
  const ok = (n: unknown): n is number => Number.isSafeInteger(n) && (n as number) >= 0;
  const val = isObject(v) ? v : {};
  const wrong = [
    typeof k.topic !== 'string' && 'key.topic',
    !ok(k.partition) && 'key.partition',
    !isObject(v) ? 'value (not a JSON object)' : false,
    isObject(v) && !ok(val.upstreamOffset) && 'value.upstreamOffset',
    isObject(v) && !ok(val.downstreamOffset) && 'value.downstreamOffset',
  ].filter((w): w is string => typeof w === 'string');
  if (wrong.length > 0) {
    throw new CrrError(
      'CRR_OFFSET_SYNC_CORRUPT',
      `offset sync record is invalid (${wrong.join(', ')}): ${keyText?.slice(0, 100)} = ${valueText.slice(0, 100)}`,
    );
  }
  return {
    topic: k.topic as string,
    partition: k.partition as number,
    upstreamOffset: val.upstreamOffset as number,
    downstreamOffset: val.downstreamOffset as number,
  };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
