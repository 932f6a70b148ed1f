import { describe, expect, it } from 'vitest';
import { decodePosition, encodePosition } from '../../../src/mirror/positions.js';
import { positionsTopicName } from '../../../src/replication/internal-topics.js';
import { tpKey } from '../../../src/replication/topic-partition.js';

describe('position bookkeeping', () => {
  it('round-trips a position record', () => {
    const m = encodePosition('primary->dr', 'orders', 3, { offset: 1234, timestampMs: 1700000000000, committedAtMs: 1700000000050 });
    expect(decodePosition('primary->dr', m.key as Buffer, m.value as Buffer)).toEqual({
      topic: 'orders',
      partition: 3,
      position: { offset: 1234, timestampMs: 1700000000000, committedAtMs: 1700000000050 },
    });
  });

  it("ignores another flow's positions sharing the topic", () => {
    const m = encodePosition('backup->dr', 'orders', 0, { offset: 1, timestampMs: 0, committedAtMs: 0 });
    expect(decodePosition('primary->dr', m.key as Buffer, m.value as Buffer)).toBeUndefined();
  });

  it('treats a tombstone as a deleted position', () => {
    const m = encodePosition('primary->dr', 'orders', 0, { offset: 1, timestampMs: 0, committedAtMs: 0 });
    expect(decodePosition('primary->dr', m.key as Buffer, null)?.position).toBeNull();
  });

  it('rejects corrupt records with a message naming the partition', () => {
    const key = Buffer.from(JSON.stringify({ flow: 'primary->dr', topic: 'orders', partition: 2 }));
    expect(() => decodePosition('primary->dr', key, Buffer.from('{"offset":-5}'))).toThrow(/orders:2 is invalid/);
    expect(() => decodePosition('primary->dr', Buffer.from('nope'), Buffer.from('{}'))).toThrow(/not JSON/);
  });

  it('names topics and keys as documented', () => {
    expect(positionsTopicName('primary')).toBe('crr-offsets.primary.internal');
    expect(tpKey('a.b:c', 7)).toBe('a.b:c:7');
  });
});
