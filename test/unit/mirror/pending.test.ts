import { createRequire } from 'node:module';
import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { CrrError } from '../../../src/errors.js';
import { chunkBudget, chunks, encodedRecordBound, RECORD_BATCH_OVERHEAD, type Pending } from '../../../src/mirror/pending.js';
import { splitKey } from '../../../src/replication/topic-partition.js';

const require = createRequire(import.meta.url);
/** KafkaJS's own v2 record batch encoder: what it sends is what the broker measures. */
const { RecordBatch } = require('kafkajs/src/protocol/recordBatch/v0') as { RecordBatch: (o: object) => Promise<{ size(): number }> };
const Record = require('kafkajs/src/protocol/recordBatch/record/v0') as (o: object) => unknown;

const rec = (topic: string, partition: number, seq: number, bytes: number): Pending => ({
  topic: `src-${topic}`,
  upstreamOffset: seq,
  remoteTopic: topic,
  partition,
  message: { value: String(seq), partition },
  bytes,
  encodedBytes: bytes,
  timestampMs: 0,
  heartbeatMs: undefined,
});

/** The size KafkaJS gives the record batch of `messages` (uncompressed), as the broker checks it. */
async function batchSize(messages: Message[]): Promise<number> {
  const base = Number(messages[0]?.timestamp ?? 0);
  const records = messages.map((m, i) =>
    Record({ offsetDelta: i, timestampDelta: Number(m.timestamp ?? 0) - base, key: m.key ?? null, value: m.value ?? null, headers: m.headers ?? {} }),
  );
  return (await RecordBatch({ records, firstTimestamp: base, lastOffsetDelta: messages.length - 1 })).size();
}

describe('encodedRecordBound (a record inside a v2 record batch)', () => {
  it('is never below what KafkaJS encodes, with crr provenance headers, source headers, null keys and tombstones', async () => {
    const provenance = { 'crr.source.alias': 'primary', 'crr.upstream.offset': '123456789' };
    for (const valueBytes of [0, 50, 150, 1000, 200_000]) {
      const messages: Message[] = Array.from({ length: 500 }, (_, i) => ({
        key: i % 5 === 0 ? null : `key-${i}`,
        value: i % 7 === 0 ? null : Buffer.alloc(valueBytes, 'x'),
        headers: i % 2 === 0 ? { ...provenance, app: 'a'.repeat(i % 40), multi: ['1', '22'] } : provenance,
        timestamp: String(1_700_000_000_000 + (i % 3 === 0 ? -i * 1000 : i)),
      }));
      const bound = messages.reduce((n, m) => n + encodedRecordBound(m), 0);
      const actual = await batchSize(messages);
      expect(bound + RECORD_BATCH_OVERHEAD).toBeGreaterThanOrEqual(actual);
      // and not so loose that it wastes the batch: within 16 bytes a record of the exact size
      expect(bound + RECORD_BATCH_OVERHEAD - actual).toBeLessThanOrEqual(16 * messages.length);
    }
  });
});

describe('chunks (records of one transaction split into send calls)', () => {
  it('keeps every record once, in order per partition, and no partition over its budget per call', () => {
    const records: Pending[] = [];
    for (let i = 0; i < 10000; i++) records.push(rec(i % 3 === 0 ? 'a' : 'b', i % 4, i, 1024));
    const budget = (t: string): number => (t === 'a' ? 900 * 1024 : 300 * 1024);
    const calls = [...chunks(records, budget)];
    expect(calls.length).toBeGreaterThan(1);
    const seen = new Map<string, number[]>();
    for (const call of calls) {
      const perPartition = new Map<string, number>();
      for (const tm of call) {
        for (const m of tm.messages) {
          const tp = `${tm.topic}:${String(m.partition)}`;
          perPartition.set(tp, (perPartition.get(tp) ?? 0) + 1024);
          seen.set(tp, [...(seen.get(tp) ?? []), Number(m.value)]);
        }
      }
      for (const [tp, size] of perPartition) expect(size).toBeLessThanOrEqual(budget(splitKey(tp)[0]));
    }
    const expected = new Map<string, number[]>();
    for (let i = 0; i < 10000; i++) {
      const tp = `${i % 3 === 0 ? 'a' : 'b'}:${i % 4}`;
      expected.set(tp, [...(expected.get(tp) ?? []), i]);
    }
    expect(seen).toEqual(expected);
  });

  it('refuses a record larger than its topic accepts, naming it, instead of sending it', () => {
    const run = (): unknown => [...chunks([rec('a', 0, 1, 10), rec('a', 0, 2, 2_000_000)], () => chunkBudget(1_048_588, false))];
    expect(run).toThrow(CrrError);
    expect(run).toThrow(/record src-a\[0\]@2 .* more than a accepts/);
  });

  it('leaves room for the batch header, and a margin when compressed', () => {
    expect(chunkBudget(1_048_588, false)).toBe(1_048_588 - RECORD_BATCH_OVERHEAD);
    expect(chunkBudget(1_048_588, true)).toBeLessThan(1_048_588 - RECORD_BATCH_OVERHEAD - 1024);
  });

  it('splits position keys of topics that contain a colon', () => {
    expect(splitKey('ns:orders:12')).toEqual(['ns:orders', 12]);
  });
});
