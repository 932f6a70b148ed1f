import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { CrrError } from '../../src/errors.js';
import { PgliteStore } from '../../src/store/pglite.js';
import { PostgresStore } from '../../src/store/postgres.js';
import type { ChangeEvent } from '../../src/protocol/schema.js';
import type { Store } from '../../src/store/store.js';
import { admin, http, PG_URL, PRIMARY, readTopic, runCrr, testPair, uniq, useCrrProcesses, waitFor, type TestPair } from '../support/helpers.js';

const start = useCrrProcesses();
const schemas: string[] = [];
const roles: string[] = [];

afterAll(async () => {
  if (process.env.CRR_KEEP_SCHEMAS) return;
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  for (const s of schemas) await db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
  for (const r of roles) {
    await db.query(
      `DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${r}') THEN EXECUTE 'DROP OWNED BY ${r}'; EXECUTE 'DROP ROLE ${r}'; END IF; END $$`,
    );
  }
  await db.end();
});

function pair(): TestPair {
  const p = testPair();
  schemas.push(p.primarySchema, p.drSchema);
  roles.push(p.appRole, p.replayRole);
  return p;
}

function ndjson(events: object[]): string {
  const file = join(tmpdir(), 'crr-tests', `admin-${uniq()}.ndjson`);
  writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
  return file;
}

/** Schema, 20 vertices, 10 edges and a user: 33 events (1 + 1 + 20 + 10 + 1). */
const initial = (): object[] => [
  { op: 'CREATE_VERTEX_TYPE', name: 'Person', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] },
  { op: 'CREATE_EDGE_TYPE', name: 'KNOWS', fromType: 'Person', toType: 'Person', directed: true, attributes: [] },
  ...Array.from({ length: 20 }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: `p${i}` }, attributes: { n: i } })),
  ...Array.from({ length: 10 }, (_, i) => ({
    op: 'UPSERT_EDGE',
    type: 'KNOWS',
    from: { type: 'Person', id: `p${i}` },
    to: { type: 'Person', id: `p${i + 1}` },
    attributes: {},
  })),
  { op: 'CREATE_USER', name: 'analyst', roles: ['queryreader'] },
];

async function write(p: TestPair, cluster: string, events: object[]): Promise<void> {
  const r = await runCrr(['write', '--config', p.configPath, '--cluster', cluster, '--file', ndjson(events)]);
  expect(r.code, r.stderr).toBe(0);
}

/** Replays the primary's topics into its store until caught up (`crr replay --exit-when-caught-up`). */
async function replayPrimary(p: TestPair): Promise<void> {
  const r = await runCrr(['replay', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort), '--exit-when-caught-up']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

/** A primary with the initial data written through the log and replayed into its store (epoch 0). */
async function seeded(): Promise<TestPair> {
  const p = pair();
  await write(p, p.source, initial());
  await replayPrimary(p);
  return p;
}

interface StoreView {
  epoch: number;
  state: string;
  reason: string | null;
  vertices: number;
  edges: number;
  catalog: number;
  positions: Array<{ topic: string; partition: number; next_offset: number }>;
}

async function storeView(schema: string): Promise<StoreView> {
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  try {
    const st = (await db.query(`SELECT state, epoch::int AS epoch, reason FROM ${schema}.cluster_state`)).rows[0];
    const n = async (t: string): Promise<number> => (await db.query(`SELECT count(*)::int AS n FROM ${schema}.${t}`)).rows[0].n;
    const positions = (await db.query(`SELECT topic, partition, next_offset::int AS next_offset FROM ${schema}.positions ORDER BY topic, partition`)).rows;
    return {
      epoch: st.epoch,
      state: st.state,
      reason: st.reason,
      vertices: await n('vertices'),
      edges: await n('edges'),
      catalog: await n('catalog'),
      positions,
    };
  } finally {
    await db.end();
  }
}

async function endOffsets(topic: string): Promise<number[]> {
  const a = await admin(PRIMARY);
  try {
    return (await a.fetchTopicOffsets(topic)).sort((x, y) => x.partition - y.partition).map((o) => Number(o.high));
  } finally {
    await a.disconnect();
  }
}

const adminCmd = (p: TestPair, op: string, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  runCrr(['admin', op, '--config', p.configPath, '--cluster', p.source, '--reason', `test ${op}`, ...args]);

/** The dry run prints the plan and changes nothing (store, topics). */
async function expectDryRun(p: TestPair, op: string, marker: string, args: string[] = []): Promise<void> {
  const before = await storeView(p.primarySchema);
  const offsets = await endOffsets(p.metadataTopic);
  const r = await adminCmd(p, op, ...args);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(new RegExp(`would run ${marker} on cluster ${p.source}`));
  expect(r.stdout).toMatch(/epoch: 0 -> 1/);
  expect(r.stdout).toMatch(new RegExp(`marker: ${marker} \\(key "marker", epoch 1\\) on ${p.metadataTopic.replace('.', '\\.')}`));
  expect(r.stdout).toMatch(/every replica .* will become OUTDATED .* reseeded/);
  expect(r.stdout).toMatch(/run again with --execute/);
  const json = await adminCmd(p, op, ...args, '--json');
  expect(json.code, json.stderr).toBe(0);
  expect(JSON.parse(json.stdout)).toMatchObject({ executed: false, plan: { op: marker, oldEpoch: 0, newEpoch: 1, lagRecords: 0 } });
  expect(await storeView(p.primarySchema)).toEqual(before);
  expect(await endOffsets(p.metadataTopic)).toEqual(offsets);
}

/** The marker is the last record of the metadata topic: key `marker`, the new epoch, origin the primary. */
async function expectMarker(p: TestPair, expectedRecords: number, marker: string, extra: Record<string, unknown> = {}): Promise<void> {
  const records = await readTopic(PRIMARY, p.metadataTopic, expectedRecords, 30_000);
  expect(records).toHaveLength(expectedRecords);
  const last = records.at(-1)!;
  expect(last.key).toBe('marker');
  expect(JSON.parse(last.value!)).toMatchObject({
    v: 1,
    op: marker,
    epoch: 1,
    origin: p.source,
    reason: `test ${marker.toLowerCase().replace(/_/g, '-')}`,
    ...extra,
  });
}

/** `crr write` after the operation stamps the new epoch (the published state), and the primary's replay applies it. */
async function expectWritesAtNewEpoch(p: TestPair, dataRecordsBefore: number): Promise<void> {
  await write(p, p.source, [{ op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'after' }, attributes: { n: 99 } }]);
  const records = await readTopic(PRIMARY, p.dataTopic, dataRecordsBefore + 1, 30_000);
  const after = records.map((r) => JSON.parse(r.value!)).find((e) => e.vertex?.id === 'after');
  expect(after).toMatchObject({ epoch: 1, origin: p.source });
  // the primary's replay passes the marker (its epoch is the store's) and applies the new write
  await replayPrimary(p);
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  try {
    const { rows } = await db.query(`SELECT attributes FROM ${p.primarySchema}.vertices WHERE type = 'Person' AND id = 'after'`);
    expect(rows[0]?.attributes).toEqual({ n: 99 });
  } finally {
    await db.end();
  }
  expect((await storeView(p.primarySchema)).epoch).toBe(1);
}

describe('Store.applySyncBreak: the effect and the raised epoch in one transaction', () => {
  const envelope = (i: number) => ({ v: 1 as const, id: `e${i}`, ts: 1, epoch: 0, origin: 'p' });
  const data: ChangeEvent[] = [
    { ...envelope(1), op: 'CREATE_VERTEX_TYPE' as const, name: 'T', primaryIdType: 'STRING' as const, attributes: [] },
    { ...envelope(2), op: 'UPSERT_VERTEX' as const, vertex: { type: 'T', id: 'a' }, attributes: { x: 1 } },
    { ...envelope(3), op: 'UPSERT_EDGE' as const, type: 'E', from: { type: 'T', id: 'a' }, to: { type: 'T', id: 'b' }, attributes: {} },
  ];
  const stores: Array<[string, () => Store]> = [
    ['PGlite', () => new PgliteStore({ schema: 'crr' })],
    [
      'PostgreSQL',
      () => {
        const schema = `crr_t_${uniq()}_s`;
        schemas.push(schema);
        return new PostgresStore({ connectionString: PG_URL, schema });
      },
    ],
  ];
  for (const [name, open] of stores) {
    it(`${name}: refuses a changed epoch and a failing import with nothing changed; applies each operation with its state`, async () => {
      const store = open();
      try {
        await store.migrate();
        await store.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 0 });
        await store.applyBatch(data, [
          { topic: 'd', partition: 0, nextOffset: 7 },
          { topic: 'm', partition: 0, nextOffset: 2 },
          { topic: 'other', partition: 0, nextOffset: 5 },
        ]);
        const state = (epoch: number, reason: string) => ({ role: 'primary' as const, state: 'ACTIVE' as const, epoch, reason });
        // the epoch moved since the plan: refused, nothing done
        await expect(store.applySyncBreak('DROP_ALL', { newState: state(6, 'DROP_ALL: x'), expectedEpoch: 5 })).rejects.toMatchObject({
          code: 'CRR_WRITE_REFUSED',
        });
        // an import whose second batch the store refuses (ALTER of an unknown type): the first batch is rolled back too
        async function* batches(): AsyncGenerator<ChangeEvent[]> {
          yield [{ ...envelope(4), op: 'UPSERT_VERTEX', vertex: { type: 'T', id: 'imported' }, attributes: {} }];
          yield [{ ...envelope(5), op: 'ALTER_VERTEX_TYPE', name: 'nope', addAttributes: [], dropAttributes: [] }];
        }
        await expect(store.applySyncBreak('IMPORT', { newState: state(1, 'IMPORT: x'), expectedEpoch: 0, events: batches() })).rejects.toBeInstanceOf(CrrError);
        expect(await store.counts()).toEqual({ vertices: { T: 1 }, edges: { E: 1 }, catalog: { vertex_type: 1 } });
        expect((await store.clusterState())?.epoch).toBe(0);
        // a marker among the events is refused
        await expect(
          store.applySyncBreak('IMPORT', { newState: state(1, 'IMPORT: x'), events: [{ ...envelope(6), op: 'DROP_ALL', reason: 'r' }] }),
        ).rejects.toMatchObject({ code: 'CRR_STORE_APPLY' });

        expect(
          await store.applySyncBreak('IMPORT', {
            newState: state(1, 'IMPORT: x'),
            expectedEpoch: 0,
            events: [{ ...envelope(7), op: 'UPSERT_VERTEX', vertex: { type: 'T', id: 'b' }, attributes: {} }],
          }),
        ).toMatchObject({ eventsApplied: 1 });
        expect(await store.clusterState()).toMatchObject(state(1, 'IMPORT: x'));
        expect(await store.applySyncBreak('RESET', { newState: state(2, 'RESET: x'), expectedEpoch: 1, resetTopics: ['d', 'm'] })).toMatchObject({
          positionsReset: 2,
        });
        expect(await store.positions()).toEqual([
          { topic: 'd', partition: 0, nextOffset: 0 },
          { topic: 'm', partition: 0, nextOffset: 0 },
          { topic: 'other', partition: 0, nextOffset: 5 },
        ]);
        expect(await store.applySyncBreak('CLEAR_GRAPH_STORE', { newState: state(3, 'CLEAR_GRAPH_STORE: x'), expectedEpoch: 2 })).toEqual({
          verticesDeleted: 2,
          edgesDeleted: 1,
          catalogDeleted: 0,
          eventsApplied: 0,
          positionsReset: 0,
        });
        expect(await store.counts()).toEqual({ vertices: {}, edges: {}, catalog: { vertex_type: 1 } });
        expect(await store.applySyncBreak('DROP_ALL', { newState: state(4, 'DROP_ALL: x'), expectedEpoch: 3 })).toMatchObject({ catalogDeleted: 1 });
        expect(await store.counts()).toEqual({ vertices: {}, edges: {}, catalog: {} });
        expect(await store.clusterState()).toMatchObject(state(4, 'DROP_ALL: x'));
        // a replica's store refuses (the guard wants an ACTIVE primary)
        await store.setClusterState({ role: 'replica', state: 'REPLICATING', epoch: 4 });
        await expect(store.applySyncBreak('DROP_ALL', { newState: state(5, 'DROP_ALL: x'), expectedEpoch: 4 })).rejects.toMatchObject({
          code: 'CRR_WRITE_REFUSED',
        });
      } finally {
        await store.close();
      }
    });
  }
});

describe("crr admin: the primary's sync-breaking operations", () => {
  it('drop-all: plan, then deletes vertices, edges and catalog, raises the epoch, writes DROP_ALL, publishes; refused on the replica', async () => {
    const p = await seeded();
    expect(await storeView(p.primarySchema)).toMatchObject({ epoch: 0, vertices: 20, edges: 10, catalog: 3 });
    await expectDryRun(p, 'drop-all', 'DROP_ALL');

    const refused = await runCrr(['admin', 'drop-all', '--config', p.configPath, '--cluster', p.target, '--execute']);
    expect(refused.code, refused.stderr).toBe(4);
    expect(refused.stderr).toMatch(/is a replica/);

    const r = await adminCmd(p, 'drop-all', '--execute');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/DROP_ALL done on cluster .*: epoch 0 -> 1/);
    expect(r.stdout).toMatch(/rows: 20 vertices, 10 edges, 3 catalog entries deleted/);
    expect(r.stdout).toMatch(new RegExp(`marker: [0-9a-f-]{36} at ${p.metadataTopic.replace('.', '\\.')}\\[0\\]@3`));
    expect(await storeView(p.primarySchema)).toMatchObject({ epoch: 1, state: 'ACTIVE', reason: 'DROP_ALL: test drop-all', vertices: 0, edges: 0, catalog: 0 });
    await expectMarker(p, 4, 'DROP_ALL');
    await expectWritesAtNewEpoch(p, 30);
  }, 180_000);

  it('clear-graph-store: keeps the catalog; refuses while replay lags unless --force', async () => {
    const p = await seeded();
    await expectDryRun(p, 'clear-graph-store', 'CLEAR_GRAPH_STORE');

    // written but not replayed: the operation refuses (exit 1), naming the lag
    await write(p, p.source, [{ op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'late' }, attributes: { n: 1 } }]);
    const lagging = await adminCmd(p, 'clear-graph-store', '--execute');
    expect(lagging.code, lagging.stderr).toBe(1);
    expect(lagging.stderr).toMatch(/has not caught up: 1 records are not applied/);
    expect(lagging.stderr).toMatch(/stale/);
    expect((await storeView(p.primarySchema)).epoch).toBe(0);

    const r = await adminCmd(p, 'clear-graph-store', '--execute', '--force', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({
      executed: true,
      rows: { verticesDeleted: 20, edgesDeleted: 10, catalogDeleted: 0 },
      marker: { topic: p.metadataTopic, partition: 0, offset: '3', epoch: 1 },
      published: true,
    });
    expect(await storeView(p.primarySchema)).toMatchObject({
      epoch: 1,
      reason: 'CLEAR_GRAPH_STORE: test clear-graph-store',
      vertices: 0,
      edges: 0,
      catalog: 3,
    });
    await expectMarker(p, 4, 'CLEAR_GRAPH_STORE');
    await expectWritesAtNewEpoch(p, 31);
    // the late event of epoch 0 was refused as stale by the primary's replay
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    try {
      expect((await db.query(`SELECT 1 FROM ${p.primarySchema}.vertices WHERE id = 'late'`)).rows).toHaveLength(0);
    } finally {
      await db.end();
    }
  }, 180_000);

  it('import: loads the file directly into the store (not the log), in one transaction; IMPORT names the file and its sha256', async () => {
    const p = await seeded();
    const events = [
      ...Array.from({ length: 12_000 }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: `i${i}` }, attributes: { n: i } })),
      ...Array.from({ length: 50 }, (_, i) => ({
        op: 'UPSERT_EDGE',
        type: 'KNOWS',
        from: { type: 'Person', id: `i${i}` },
        to: { type: 'Person', id: `p${i % 20}` },
        attributes: {},
      })),
      { op: 'CREATE_QUERY', name: 'imported', text: 'SELECT 1' },
    ];
    const file = ndjson(events);
    const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
    await expectDryRun(p, 'import', 'IMPORT', ['--file', file]);

    // a bad line anywhere: nothing applied, exit 65
    const bad = ndjson([...events.slice(0, 6000), { op: 'UPSERT_VERTEX', vertex: { type: 'Person' } }]);
    const refused = await adminCmd(p, 'import', '--file', bad, '--execute');
    expect(refused.code, refused.stderr).toBe(65);
    expect(refused.stderr).toMatch(/line 6001/);
    expect(await storeView(p.primarySchema)).toMatchObject({ epoch: 0, vertices: 20 });

    const dataBefore = await endOffsets(p.dataTopic);
    const r = await adminCmd(p, 'import', '--file', file, '--execute');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rows: 12051 events applied/);
    expect(await storeView(p.primarySchema)).toMatchObject({ epoch: 1, reason: 'IMPORT: test import', vertices: 12_020, edges: 60, catalog: 4 });
    expect(await endOffsets(p.dataTopic)).toEqual(dataBefore); // bypassed the log
    await expectMarker(p, 4, 'IMPORT', { source: `${basename(file)} sha256:${sha}` });
    await expectWritesAtNewEpoch(p, 30);
  }, 180_000);

  it('reset: recreates the change topics, sets the positions back to 0, keeps the data; RESET is on the new metadata topic', async () => {
    const p = await seeded();
    expect((await storeView(p.primarySchema)).positions.some((x) => x.next_offset > 0)).toBe(true);
    await expectDryRun(p, 'reset', 'RESET');

    const r = await adminCmd(p, 'reset', '--execute');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/RESET done/);
    expect(r.stdout).toMatch(new RegExp(`marker: [0-9a-f-]{36} at ${p.metadataTopic.replace('.', '\\.')}\\[0\\]@0`));
    const view = await storeView(p.primarySchema);
    expect(view).toMatchObject({ epoch: 1, reason: 'RESET: test reset', vertices: 20, edges: 10, catalog: 3 });
    expect(view.positions.length).toBeGreaterThan(0);
    expect(view.positions.every((x) => x.next_offset === 0)).toBe(true);
    expect(await endOffsets(p.dataTopic)).toEqual([0, 0, 0]);
    await expectMarker(p, 1, 'RESET');
    await expectWritesAtNewEpoch(p, 0);
  }, 180_000);

  it('end to end: after drop-all on the primary, the replica is OUTDATED (DROP_ALL) and the primary keeps replaying new writes', async () => {
    const p = pair();
    await write(p, p.source, initial());
    start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    const status = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;
    await waitFor(
      'both stores caught up',
      async () => {
        const [a, b] = await Promise.all([status(p.primaryHttpPort).catch(() => undefined), status(p.httpPort).catch(() => undefined)]);
        return a?.lagRecords === 0 && a.eventsApplied >= 33 && b?.lagRecords === 0 && b.eventsApplied >= 33;
      },
      90_000,
      300,
    );
    // the store is the truth: every record of the primary's topics applied
    await waitFor(
      'the primary store to hold every position',
      async () => (await storeView(p.primarySchema)).positions.reduce((n, x) => n + x.next_offset, 0) === 33,
      30_000,
      300,
    );

    const r = await adminCmd(p, 'drop-all', '--execute');
    expect(r.code, r.stderr).toBe(0);
    expect(await storeView(p.primarySchema)).toMatchObject({ epoch: 1, vertices: 0, catalog: 0 });

    await waitFor('the replica to be OUTDATED', async () => (await status(p.httpPort).catch(() => undefined))?.state === 'outdated', 60_000, 300);
    const dr = await status(p.httpPort);
    expect(dr.clusterState).toMatchObject({ role: 'replica', state: 'OUTDATED' });
    expect(dr.haltReason).toMatch(/DROP_ALL/);

    await write(p, p.source, [
      { op: 'CREATE_VERTEX_TYPE', name: 'Person', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] },
      { op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'new' }, attributes: { n: 1 } },
    ]);
    // the primary's replay adopts the epoch the operation raised in its store (it must not halt at the marker)
    await waitFor(
      'the primary to apply the new writes (or halt)',
      async () => (await storeView(p.primarySchema)).vertices === 1 || (await status(p.primaryHttpPort)).state === 'halted',
      60_000,
      300,
    );
    const primary = await status(p.primaryHttpPort);
    expect(primary.state, primary.haltReason).toBe('active');
    expect((await storeView(p.primarySchema)).vertices).toBe(1);
    expect(primary.clusterState).toMatchObject({ role: 'primary', state: 'ACTIVE', epoch: 1 });
  }, 240_000);
});
