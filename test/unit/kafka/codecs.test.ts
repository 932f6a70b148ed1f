import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { snappyCompress, snappyDecompress } from '../../../src/kafka/codecs.js';

describe('snappy in xerial framing (what Kafka Java clients write)', () => {
  it('round-trips data larger than one 32 KiB block', () => {
    const data = Buffer.concat([randomBytes(50_000), Buffer.alloc(70_000, 'a')]);
    const framed = snappyCompress(data);
    expect(framed.subarray(1, 7).toString()).toBe('SNAPPY');
    expect(snappyDecompress(framed).equals(data)).toBe(true);
  });
  it('rejects a truncated frame', () => {
    const framed = snappyCompress(Buffer.alloc(1000, 'x'));
    expect(() => snappyDecompress(framed.subarray(0, framed.length - 3))).toThrow(/truncated/);
  });
});
