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
