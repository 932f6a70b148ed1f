import { describe, expect, it } from 'vitest';
import { OffsetSyncStore } from '../../../src/checkpoint/offset-sync-store.js';
import { OffsetSyncState } from '../../../src/mirror/offset-sync-writer.js';

describe('OffsetSyncState (MM2 PartitionState.update)', () => {
  it('syncs the first record, then at least every offsetLagMax downstream offsets', () => {
    const s = new OffsetSyncState(100);
    const due: number[] = [];
    for (let up = 0; up < 1000; up++) if (s.update(up, up + 5)) due.push(up);
    expect(due[0]).toBe(0);
    // next sync when downstream - (lastSyncDownstream + 1) >= 100
    expect(due.slice(0, 4)).toEqual([0, 101, 202, 303]);
  });
  it('syncs after a gap in upstream offsets and when downstream goes backwards', () => {
    const s = new OffsetSyncState(100);
    expect(s.update(0, 0)).toBe(true);
    expect(s.update(1, 1)).toBe(false);
    expect(s.update(5, 2)).toBe(true); // upstream gap (compaction, aborted records)
    expect(s.update(6, 3)).toBe(false);
    expect(s.update(7, 1)).toBe(true); // remote topic truncated
  });
});

describe('OffsetSyncStore.translateDownstream (MM2 OffsetSyncStore)', () => {
  const store = (): OffsetSyncStore => {
    const st = new OffsetSyncStore();
    st.add({ topic: 't', partition: 0, upstreamOffset: 100, downstreamOffset: 10 });
    st.add({ topic: 't', partition: 0, upstreamOffset: 200, downstreamOffset: 115 });
    return st;
  };
  it('translates exactly at a sync, and one past the latest sync below otherwise (never skips)', () => {
    expect(store().translateDownstream('t', 0, 100)).toMatchObject({ status: 'translated', downstreamOffset: 10 });
    expect(store().translateDownstream('t', 0, 150)).toMatchObject({ status: 'translated', downstreamOffset: 11 });
    expect(store().translateDownstream('t', 0, 200)).toMatchObject({ status: 'translated', downstreamOffset: 115 });
    expect(store().translateDownstream('t', 0, 5000)).toMatchObject({ status: 'translated', downstreamOffset: 116 });
  });
  it('keeps "unknown" (no sync for the partition) apart from "too old" (all syncs above)', () => {
    expect(store().translateDownstream('t', 1, 150)).toEqual({ status: 'unknown' });
    expect(store().translateDownstream('other', 0, 150)).toEqual({ status: 'unknown' });
    expect(store().translateDownstream('t', 0, 99)).toEqual({ status: 'too-old', oldestUpstreamOffset: 100 });
  });
  it('starts the history over when the upstream offset goes backwards (recreated source topic)', () => {
    const st = store();
    st.add({ topic: 't', partition: 0, upstreamOffset: 0, downstreamOffset: 300 });
    expect(st.translateDownstream('t', 0, 150)).toMatchObject({ status: 'translated', downstreamOffset: 301 });
    expect(st.size).toBe(1);
  });
  it('re-reads fewer than offsetLagMax records when syncs follow the emission rule', () => {
    const lagMax = 100;
    const state = new OffsetSyncState(lagMax);
    const st = new OffsetSyncStore();
    // records land two downstream offsets apart every 10 (transaction markers)
    const down = (up: number): number => up + Math.floor(up / 10);
    for (let up = 0; up < 5000; up++) if (state.update(up, down(up))) st.add({ topic: 't', partition: 0, upstreamOffset: up, downstreamOffset: down(up) });
    for (let committed = 0; committed <= 5000; committed++) {
      const t = st.translateDownstream('t', 0, committed);
      if (t.status !== 'translated') throw new Error(`not translated: ${committed}`);
      const firstUnread = committed < 5000 ? down(committed) : down(4999) + 1;
      expect(t.downstreamOffset).toBeLessThanOrEqual(firstUnread); // nothing skipped
      const reread = [...Array(5000).keys()].filter((u) => u < committed && down(u) >= t.downstreamOffset).length;
      expect(reread).toBeLessThan(lagMax);
    }
  });
});
