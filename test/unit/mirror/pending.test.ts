import { describe, expect, it } from 'vitest';
import { chunks, splitKey, type Pending } from '../../../src/mirror/pending.js';

const rec = (topic: string, partition: number, seq: number, bytes: number): Pending => ({
  topic: `src-${topic}`,
  upstreamOffset: seq,
  remoteTopic: topic,
  partition,
  message: { value: String(seq), partition },
  bytes,
  timestampMs: 0,
  heartbeatMs: undefined,
});

describe('chunks (records of one transaction split into send calls)', () => {
  it('keeps every record once, in order per partition, and no partition over 900 KiB per call', () => {
    const records: Pending[] = [];
    for (let i = 0; i < 10000; i++) records.push(rec(i % 3 === 0 ? 'a' : 'b', i % 4, i, 1024));
    const calls = [...chunks(records)];
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
      for (const size of perPartition.values()) expect(size).toBeLessThanOrEqual(900 * 1024);
    }
    const expected = new Map<string, number[]>();
    for (let i = 0; i < 10000; i++) {
      const tp = `${i % 3 === 0 ? 'a' : 'b'}:${i % 4}`;
      expected.set(tp, [...(expected.get(tp) ?? []), i]);
    }
    expect(seen).toEqual(expected);
  });

  it('sends a record larger than the cap alone rather than dropping it', () => {
    const calls = [...chunks([rec('a', 0, 1, 2_000_000), rec('a', 0, 2, 10)])];
    expect(calls.map((c) => c[0]!.messages.map((m) => m.value))).toEqual([['1'], ['2']]);
  });

  it('splits position keys of topics that contain a colon', () => {
    expect(splitKey('ns:orders:12')).toEqual(['ns:orders', 12]);
  });
});
