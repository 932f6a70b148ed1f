import { describe, expect, it } from 'vitest';
import { decodePosition, encodePosition } from '../../../src/replication/positions.js';
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

  it('round-trips the incarnation fields: the source topic id and where a reseeded replica resumes', () => {
    const pos = { offset: 7, timestampMs: 1, committedAtMs: 2, topicId: 'c79cfb14-05f6-47a8-8783-97f85d59aee0', resumeDownstream: 42 };
    const m = encodePosition('primary->dr', 'orders', 0, pos);
    expect(decodePosition('primary->dr', m.key as Buffer, m.value as Buffer)?.position).toEqual(pos);
    const key = m.key as Buffer;
    expect(() => decodePosition('primary->dr', key, Buffer.from('{"offset":1,"topicId":"zz"}'))).toThrow(/orders:0 is invalid: topicId is not a UUID/);
    expect(() => decodePosition('primary->dr', key, Buffer.from('{"offset":1,"resumeDownstream":-1}'))).toThrow(
      /resumeDownstream is not a non-negative integer/,
    );
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
