import { describe, expect, it } from 'vitest';
import { classifyRecord, type ClassifyContext, type ReplayRecord } from '../../../src/replay/classify.js';
import { syncBreakMessage } from '../../../src/replication/sync-break.js';

const base = { v: 1, ts: 1763900000000, origin: 'primary' };
const upsert = (id: string, epoch: number): object => ({ ...base, id, epoch, op: 'UPSERT_VERTEX', vertex: { type: 'City', id }, attributes: {} });
const marker = (epoch: number): object => ({ ...base, id: 'm1', epoch, op: 'IMPORT', reason: 'reload', source: 's3://x' });
const rec = (offset: number, value: object | string | null, upstream?: string): ReplayRecord => ({
  offset: String(offset),
  value: value === null ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
  ...(upstream === undefined ? {} : { headers: { 'crr.upstream.offset': upstream } }),
});
const primary: ClassifyContext = { next: 10, replica: false, upstreamNext: undefined, epoch: 2 };
const replica: ClassifyContext = { next: 10, replica: true, upstreamNext: 100, epoch: 2 };

describe('classifyRecord (replay rules, one verdict per record)', () => {
  it('skips what the store holds: below the position, or on a replica below the upstream position', () => {
    expect(classifyRecord(rec(9, upsert('a', 2)), primary)).toEqual({ kind: 'below-position' });
    expect(classifyRecord(rec(9, 'not json'), replica)).toEqual({ kind: 'below-position' });
    expect(classifyRecord(rec(10, upsert('a', 2), '99'), replica)).toEqual({ kind: 'below-upstream-position', upstreamOffset: 99 });
  });

  it('applies an event of the store epoch at or past both positions, with its upstream offset', () => {
    expect(classifyRecord(rec(10, upsert('a', 2)), primary)).toMatchObject({ kind: 'apply', upstreamOffset: undefined, event: { id: 'a' } });
    expect(classifyRecord(rec(10, upsert('a', 2), '100'), replica)).toMatchObject({ kind: 'apply', upstreamOffset: 100 });
    expect(classifyRecord(rec(0, upsert('a', 2)), { ...primary, next: undefined })).toMatchObject({ kind: 'apply' });
  });

  it('dead-letters a replica record without a valid upstream offset header, and an invalid event', () => {
    expect(classifyRecord(rec(10, upsert('a', 2)), replica)).toEqual({ kind: 'no-upstream-offset' });
    expect(classifyRecord(rec(10, upsert('a', 2), '-1'), replica)).toEqual({ kind: 'no-upstream-offset' });
    expect(classifyRecord(rec(10, upsert('a', 2), 'x'), replica)).toEqual({ kind: 'no-upstream-offset' });
    const bad = classifyRecord(rec(10, { ...(upsert('a', 2) as Record<string, unknown>), epoch: -1 }, '100'), replica);
    expect(bad).toMatchObject({ kind: 'invalid', upstreamOffset: 100 });
    expect(bad.kind === 'invalid' && bad.error).toContain('epoch');
    expect(classifyRecord(rec(10, null), primary)).toMatchObject({ kind: 'invalid', upstreamOffset: undefined });
  });

  it('refuses an event of an older epoch, before any marker rule', () => {
    expect(classifyRecord(rec(10, upsert('a', 1)), primary)).toMatchObject({ kind: 'stale-epoch' });
    expect(classifyRecord(rec(10, marker(1), '100'), replica)).toMatchObject({ kind: 'stale-epoch', upstreamOffset: 100 });
  });

  it('a marker outdates a replica whatever its epoch; on a primary it passes once its epoch is the store epoch', () => {
    expect(classifyRecord(rec(10, marker(3), '100'), replica)).toMatchObject({ kind: 'sync-breaking-marker', event: { op: 'IMPORT' } });
    expect(classifyRecord(rec(10, marker(2), '100'), replica)).toMatchObject({ kind: 'sync-breaking-marker' });
    expect(classifyRecord(rec(10, marker(3)), primary)).toMatchObject({ kind: 'higher-epoch' });
    expect(classifyRecord(rec(10, marker(3)), { ...primary, epoch: 3 })).toMatchObject({ kind: 'marker-done' });
  });

  it('an event of a newer epoch is named as such (a replica becomes OUTDATED; a primary re-reads its epoch)', () => {
    expect(classifyRecord(rec(10, upsert('a', 5), '100'), replica)).toMatchObject({ kind: 'higher-epoch', upstreamOffset: 100 });
    expect(classifyRecord(rec(10, upsert('a', 5)), primary)).toMatchObject({ kind: 'higher-epoch' });
  });

  it("a mirror's sync-break marker outdates a replica; a retention-gap marker a reseeded replica already covers is skipped", () => {
    const markerRecord = (reason: 'retention-gap' | 'topic-recreated', resumeAt: number): ReplayRecord => {
      const m = syncBreakMessage('primary', { syncBreak: reason, detail: `${reason} on t[0]`, topic: 't', partition: 0, resumeAt });
      return { offset: '10', value: m.value as Buffer, headers: m.headers! };
    };
    expect(classifyRecord(markerRecord('retention-gap', 100), replica)).toEqual({
      kind: 'mirror-sync-break',
      reason: 'retention-gap',
      detail: 'retention-gap on t[0]',
      upstreamOffset: 100,
    });
    expect(classifyRecord(markerRecord('retention-gap', 99), replica)).toEqual({ kind: 'below-upstream-position', upstreamOffset: 99 });
    // a new incarnation's offsets start again: never compared with the old upstream position
    expect(classifyRecord(markerRecord('topic-recreated', 0), replica)).toMatchObject({
      kind: 'mirror-sync-break',
      reason: 'topic-recreated',
      upstreamOffset: 0,
    });
    // below the read position it was handled already; on a primary it is not an event
    expect(classifyRecord({ ...markerRecord('topic-recreated', 0), offset: '9' }, replica)).toEqual({ kind: 'below-position' });
    expect(classifyRecord(markerRecord('topic-recreated', 0), primary)).toMatchObject({ kind: 'invalid' });
  });
});
