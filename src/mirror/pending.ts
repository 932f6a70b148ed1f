import type { IHeaders, Message, RecordMetadata, TopicMessages } from 'kafkajs';
import { CrrError } from '../errors.js';

/**
 * Bytes of a record batch (message format v2) outside its records: the 12-byte log overhead
 * (base offset, length) and the 49-byte v2 header (Kafka's `DefaultRecordBatch.RECORD_BATCH_OVERHEAD`
 * = 61). The broker compares the whole batch, these bytes included, with the topic's
 * `max.message.bytes` and answers MESSAGE_TOO_LARGE above it.
 */
export const RECORD_BATCH_OVERHEAD = 61;

/** The broker's default `message.max.bytes` (1 MiB + 12), used until a topic's own limit is known. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1_048_588;

/** A record read from the source and buffered for the next target transaction. */
export interface Pending {
  /** Source topic. */
  topic: string;
  /** Offset of the record on the source. */
  upstreamOffset: number;
  remoteTopic: string;
  partition: number;
  message: Message;
  /** Key, value and the source's header bytes, as counted in `crr_mirror_bytes_total`. */
  bytes: number;
  /**
   * An upper bound of the record's size inside a v2 record batch sent to the target, crr's
   * provenance headers and the record framing included ({@link encodedRecordBound}). Chunks are
   * cut on this, never on `bytes`.
   */
  encodedBytes: number;
  timestampMs: number;
  heartbeatMs: undefined | number;
  /** Set on a sync-break marker the mirror writes itself (src/replication/sync-break.ts), not a copy of a source record. */
  marker?: 'retention-gap' | 'topic-recreated';
}

/** Bytes of header names and values, as counted in `crr_mirror_bytes_total`. */
export function headerBytes(headers: IHeaders | undefined): number {
  if (!headers) return 0;
  let n = 0;
  for (const [k, v] of Object.entries(headers)) {
    for (const x of Array.isArray(v) ? v : [v]) n += Buffer.byteLength(k) + (x === undefined ? 0 : Buffer.byteLength(x as Buffer | string));
  }
  return n;
}

/** Bytes of a zigzag varint (Kafka's `ByteUtils.sizeOfVarint`) of a non-negative length or -1. */
function varintSize(n: number): number {
  let v = n < 0 ? 1 : n * 2; // zigzag: -1 → 1, n ≥ 0 → 2n
  let bytes = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 128);
    bytes += 1;
  }
  return bytes;
}

const byteLen = (x: Buffer | string | null | undefined): number => (x === null || x === undefined ? 0 : Buffer.byteLength(x));

/**
 * An upper bound of the bytes one record takes inside a v2 record batch (Kafka's
 * `DefaultRecord.sizeInBytes`, KIP-98 "Message format"): the length varint, attributes (1),
 * timestamp delta (≤ 10, a varlong), offset delta (≤ 5), key and value with their length
 * varints, the header count and each header's name and value with their length varints.
 * The deltas are counted at their largest, so the bound holds wherever the record sits in its batch.
 *
 * @param message what is passed to KafkaJS, headers included (crr's provenance headers too)
 * @returns bytes, ≥ the record's encoded size (uncompressed)
 */
export function encodedRecordBound(message: Message): number {
  const key = byteLen(message.key as Buffer | string | null | undefined);
  const value = byteLen(message.value as Buffer | string | null);
  let body = 1 + 10 + 5 + varintSize(message.key == null ? -1 : key) + key + varintSize(message.value === null ? -1 : value) + value;
  let count = 0;
  for (const [k, v] of Object.entries(message.headers ?? {})) {
    for (const x of Array.isArray(v) ? v : [v]) {
      const hk = Buffer.byteLength(k);
      const hv = byteLen(x as Buffer | string | undefined);
      body += varintSize(hk) + hk + varintSize(x === undefined ? -1 : hv) + hv;
      count += 1;
    }
  }
  body += varintSize(count);
  return varintSize(body) + body;
}

/**
 * The most record bytes (sum of {@link encodedRecordBound}) one partition may get in one send
 * call so that its record batch stays within `maxMessageBytes`: the batch overhead is taken
 * off, and with compression a margin for codecs that expand incompressible data (LZ4 and zstd
 * frames add at most ~0.4 % plus a header; gzip less).
 *
 * @param maxMessageBytes the remote topic's effective `max.message.bytes`
 * @param compressed whether the target batches are compressed
 */
export function chunkBudget(maxMessageBytes: number, compressed: boolean): number {
  const room = maxMessageBytes - RECORD_BATCH_OVERHEAD;
  return compressed ? Math.floor((room - 1024) / 1.01) : room;
}

/**
 * Splits records into sendBatch calls so that no partition's records of one call exceed its
 * remote topic's budget (KafkaJS puts each partition's records of a call into one record
 * batch, which the broker caps at the topic's `max.message.bytes`). Order per partition is kept.
 *
 * @param records what one target transaction writes, in the order read
 * @param budgetOf bytes of {@link encodedRecordBound} allowed per partition and call for a remote
 *   topic ({@link chunkBudget})
 * @throws CrrError CRR_RECORD_TOO_LARGE (not retriable) when one record alone exceeds its
 *   topic's budget: the target topic cannot hold it (raise its `max.message.bytes`, or let
 *   topic config sync raise it to the source's)
 */
export function* chunks(records: Pending[], budgetOf: (remoteTopic: string) => number): Generator<TopicMessages[]> {
  let current = new Map<string, Message[]>();
  let sizes = new Map<string, number>();
  const flush = (): TopicMessages[] => [...current].map(([topic, messages]) => ({ topic, messages }));
  for (const r of records) {
    const budget = budgetOf(r.remoteTopic);
    if (r.encodedBytes > budget) {
      throw new CrrError(
        'CRR_RECORD_TOO_LARGE',
        `record ${r.topic}[${r.partition}]@${r.upstreamOffset} takes up to ${r.encodedBytes} bytes in a record batch, more than ${r.remoteTopic} accepts (${budget} bytes of records within its max.message.bytes); raise max.message.bytes of ${r.remoteTopic} (topic config sync raises it to the source topic's) and restart the flow`,
      );
    }
    const tp = `${r.remoteTopic}:${r.partition}`;
    const size = sizes.get(tp) ?? 0;
    if (size > 0 && size + r.encodedBytes > budget) {
      yield flush();
      current = new Map();
      sizes = new Map();
    }
    const list = current.get(r.remoteTopic) ?? [];
    list.push(r.message);
    current.set(r.remoteTopic, list);
    sizes.set(tp, (sizes.get(tp) ?? 0) + r.encodedBytes);
  }
  if (current.size > 0) yield flush();
}

/**
 * The downstream offset of every record of one sendBatch call, from the RecordMetadata it
 * returned: KafkaJS writes the records of one partition in one call as one record batch, so
 * they have consecutive offsets from that partition's `baseOffset`, in the order given.
 *
 * @param chunk what was passed as `topicMessages` (each message names its partition)
 * @param metadata what sendBatch returned (one entry per topic partition)
 * @returns each message with its offset on the target, in the order of `chunk`
 * @throws Error when `metadata` lacks a partition of `chunk` (a KafkaJS contract broken)
 */
export function downstreamOffsets(chunk: TopicMessages[], metadata: RecordMetadata[]): Array<{ message: Message; downstreamOffset: number }> {
  const base = new Map(metadata.map((m) => [`${m.topicName}:${m.partition}`, Number(m.baseOffset)]));
  const next = new Map<string, number>();
  const out: Array<{ message: Message; downstreamOffset: number }> = [];
  for (const { topic, messages } of chunk) {
    for (const message of messages) {
      const tp = `${topic}:${message.partition ?? 0}`;
      const offset = next.get(tp) ?? base.get(tp);
      if (offset === undefined || !Number.isSafeInteger(offset)) throw new Error(`no base offset returned for ${tp}`);
      out.push({ message, downstreamOffset: offset });
      next.set(tp, offset + 1);
    }
  }
  return out;
}
