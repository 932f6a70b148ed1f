import type { IHeaders, Message, RecordMetadata, TopicMessages } from 'kafkajs';

/** Per record batch sent to the target: stay under the broker's default `message.max.bytes` (1 MiB). */
const MAX_CHUNK_BYTES_PER_PARTITION = 900 * 1024;

/** A record read from the source and buffered for the next target transaction. */
export interface Pending {
  /** Source topic. */
  topic: string;
  /** Offset of the record on the source. */
  upstreamOffset: number;
  remoteTopic: string;
  partition: number;
  message: Message;
  bytes: number;
  timestampMs: number;
  heartbeatMs: number | undefined;
}

/** Bytes of header names and values, as counted in `crr_mirror_bytes_total`. */
export function headerBytes(headers: IHeaders | undefined): number {
  if (!headers) return 0;
  let n = 0;
  for (const [k, v] of Object.entries(headers)) {
    for (const x of Array.isArray(v) ? v : [v]) n += k.length + (x === undefined ? 0 : Buffer.byteLength(x as Buffer | string));
  }
  return n;
}

/** `topic:partition` → `[topic, partition]` (topics may contain `:`). */
export function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(':');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}

/**
 * Splits records into sendBatch calls so that no partition gets more than
 * {@link MAX_CHUNK_BYTES_PER_PARTITION} in one call (KafkaJS puts each partition's records of a
 * call into one record batch, which the broker caps at `message.max.bytes`). Order per
 * partition is kept.
 */
export function* chunks(records: Pending[]): Generator<TopicMessages[]> {
  let current = new Map<string, Message[]>();
  let sizes = new Map<string, number>();
  const flush = (): TopicMessages[] => [...current].map(([topic, messages]) => ({ topic, messages }));
  for (const r of records) {
    const tp = `${r.remoteTopic}:${r.partition}`;
    const size = sizes.get(tp) ?? 0;
    if (size > 0 && size + r.bytes > MAX_CHUNK_BYTES_PER_PARTITION) {
      yield flush();
      current = new Map();
      sizes = new Map();
    }
    const list = current.get(r.remoteTopic) ?? [];
    list.push(r.message);
    current.set(r.remoteTopic, list);
    sizes.set(tp, (sizes.get(tp) ?? 0) + r.bytes);
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
