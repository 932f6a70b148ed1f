import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../../../src/protocol/schema.js';
import { PgliteStore } from '../../../src/store/pglite.js';
import type { Store, StorePosition } from '../../../src/store/store.js';
import { verifyStores, type VerifyOptions } from '../../../src/verify/verify.js';
import { Events } from '../../support/store-events.js';

const TOPICS = ['graph.data', 'graph.metadata'];
const opts = (over: Partial<VerifyOptions> = {}): VerifyOptions => ({
  topics: TOPICS,
  timeoutMs: 5000,
  pollIntervalMs: 20,
  labels: { primary: 'primary', replica: 'dr' },
  ...over,
});
const pos = (topic: string, partition: number, nextOffset: number): StorePosition => ({ topic, partition, nextOffset });

/** Two batches of one small graph, with the positions they bring the primary to. */
function history(): Array<{ events: ChangeEvent[]; positions: StorePosition[] }> {
  const e = new Events();
  return [
    {
      events: [
        e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [] }),
        e.upsertV('City', 'paris', { pop: 2 }),
        e.upsertV('City', 'rome'),
        e.upsertV('Person', 'ada'),
        e.upsertE('lives_in', ['Person', 'ada'], ['City', 'paris']),
      ],
      positions: [pos('graph.metadata', 0, 1), pos('graph.data', 0, 2), pos('graph.data', 1, 2)],
    },
    {
      events: [e.upsertV('City', 'oslo'), e.ev({ op: 'CREATE_USER', name: 'analyst' })],
      positions: [pos('graph.metadata', 0, 2), pos('graph.data', 1, 3)],
    },
  ];
}

/** The replica also keeps downstream positions of the remote topics it reads: verify ignores them. */
const remote = (positions: StorePosition[]): StorePosition[] => [
  ...positions,
  ...positions.map((p) => pos(`primary.${p.topic}`, p.partition, p.nextOffset + 100)),
];

// Two in-memory stores for the whole file (starting PGlite is the slow part), emptied before each test.
let primary: PgliteStore;
let dr: PgliteStore;
beforeAll(async () => {
  primary = new PgliteStore({ schema: 'crr' });
  dr = new PgliteStore({ schema: 'crr' });
  await Promise.all([primary.migrate(), dr.migrate()]);
});
afterAll(async () => {
  await Promise.all([primary?.close(), dr?.close()]);
});
beforeEach(async () => {
  for (const s of [primary, dr]) await s.pglite.exec('TRUNCATE crr.vertices, crr.edges, crr.catalog, crr.positions, crr.cluster_state');
  await Promise.all([
    primary.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 1 }),
    dr.setClusterState({ role: 'replica', state: 'REPLICATING', epoch: 1 }),
  ]);
});

async function applyAll(): Promise<void> {
  for (const b of history()) {
    await primary.applyBatch(b.events, b.positions);
    await dr.applyBatch(b.events, remote(b.positions));
  }
}

describe('verifyStores', () => {
  it('finds equal content at a common position equal', async () => {
    await applyAll();
    const r = await verifyStores(primary, dr, opts());
    expect(r).toMatchObject({ equal: true, commonPosition: true, differences: [] });
    expect(r.positions).toEqual([
      { topic: 'graph.data', partition: 0, primary: 2, replica: 2 },
      { topic: 'graph.data', partition: 1, primary: 3, replica: 3 },
      { topic: 'graph.metadata', partition: 0, primary: 2, replica: 2 },
    ]);
    expect(r.primary.counts).toEqual({ vertices: { City: 3, Person: 1 }, edges: { lives_in: 1 }, catalog: { vertex_type: 1, user: 1 } });
    expect(r.replica.digest).toBe(r.primary.digest);
    expect(r.primary.epoch).toBe(1);
  });

  it('lists an extra vertex on the replica, by type, with the digests', async () => {
    await applyAll();
    await dr.applyBatch([new Events().upsertV('City', 'lyon')], []);
    const r = await verifyStores(primary, dr, opts());
    expect(r.commonPosition).toBe(true);
    expect(r.equal).toBe(false);
    expect(r.differences[0]).toBe('vertices City: primary 3, dr 4');
    expect(r.differences[1]).toMatch(/^digest: primary [0-9a-f]{64}, dr [0-9a-f]{64}$/);
    expect(r.differences).toHaveLength(2);
  });

  it('notices content that differs with equal counts, and a different epoch', async () => {
    await applyAll();
    await dr.applyBatch([new Events().upsertV('City', 'paris', { pop: 3 })], []);
    await dr.setClusterState({ role: 'replica', state: 'OUTDATED', epoch: 2 });
    const r = await verifyStores(primary, dr, opts());
    expect(r.equal).toBe(false);
    expect(r.differences).toEqual([expect.stringMatching(/^digest: .* \(same counts: ids, attributes or catalog bodies differ\)$/), 'epoch: primary 1, dr 2']);
  });

  it('says when no common position is reached within the timeout, per partition', async () => {
    const [first, second] = history();
    await primary.applyBatch(first!.events, first!.positions);
    await primary.applyBatch(second!.events, second!.positions);
    await dr.applyBatch(first!.events, remote(first!.positions));
    const r = await verifyStores(primary, dr, opts({ timeoutMs: 200 }));
    expect(r.commonPosition).toBe(false);
    expect(r.equal).toBe(false);
    expect(r.attempts).toBeGreaterThan(1);
    expect(r.positions).toContainEqual({ topic: 'graph.data', partition: 1, primary: 3, replica: 2 });
    expect(r.differences).toEqual(['position graph.data[1]: primary 3, dr 2', 'position graph.metadata[0]: primary 2, dr 1']);
  });

  it('counts a partition one store has no row for as 0', async () => {
    await primary.applyBatch([new Events().upsertV('City', 'paris')], [pos('graph.data', 4, 1)]);
    const r = await verifyStores(primary, dr, opts({ timeoutMs: 0 }));
    expect(r.commonPosition).toBe(false);
    expect(r.positions).toEqual([{ topic: 'graph.data', partition: 4, primary: 1, replica: 0 }]);
  });

  it('waits for the stream: equal once the last batch is applied 300 ms later', async () => {
    const [first, second] = history();
    await primary.applyBatch(first!.events, first!.positions);
    await primary.applyBatch(second!.events, second!.positions);
    await dr.applyBatch(first!.events, remote(first!.positions));
    const late = new Promise<void>((resolve, reject) => setTimeout(() => dr.applyBatch(second!.events, remote(second!.positions)).then(resolve, reject), 300));
    const r = await verifyStores(primary, dr, opts());
    await late;
    expect(r).toMatchObject({ equal: true, commonPosition: true, differences: [] });
    expect(r.attempts).toBeGreaterThan(1);
  });

  it('reads again when a store was written while its counts were read', async () => {
    await applyAll();
    // The first counts() of the primary lets one more batch land on both stores, moving their positions.
    let written = false;
    const moving: Store = Object.assign(Object.create(primary) as Store, {
      counts: async () => {
        const counts = await primary.counts();
        if (!written) {
          written = true;
          const extra = [new Events().upsertV('Person', 'bob')];
          await primary.applyBatch(extra, [pos('graph.data', 0, 3)]);
          await dr.applyBatch(extra, [pos('graph.data', 0, 3)]);
        }
        return counts;
      },
    });
    const r = await verifyStores(moving, dr, opts());
    expect(r).toMatchObject({ equal: true, commonPosition: true });
    expect(r.attempts).toBe(2);
    expect(r.primary.counts.vertices).toEqual({ City: 3, Person: 2 });
  });

  it('stops waiting when aborted', async () => {
    await primary.applyBatch([], [pos('graph.data', 0, 1)]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await expect(verifyStores(primary, dr, opts({ signal: ac.signal }))).rejects.toMatchObject({ name: 'AbortError' });
  });
});
