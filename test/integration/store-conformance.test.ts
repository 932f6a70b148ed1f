import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { CrrError } from '../../src/errors.js';
import { checkFence, fence, unfence } from '../../src/store/fence.js';
import { PgliteStore } from '../../src/store/pglite.js';
import { PostgresStore } from '../../src/store/postgres.js';
import type { SqlStore } from '../../src/store/sql-store.js';
import type { ChangeEvent } from '../../src/protocol/schema.js';
import type { EdgeRow, SnapshotHeader, StorePosition, VertexRow } from '../../src/store/store.js';
import { Events, randomEvents } from '../support/store-events.js';

/** The PostgreSQL server on this machine (trust auth). Every test uses its own schema and drops it. */
const PG_URL = process.env.CRR_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const RUN = `crr_test_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
let schemas = 0;
const created: string[] = [];

/** Opens a fresh, migrated store of one implementation, in a schema of its own. */
type Open = () => Promise<SqlStore>;
const implementations: Array<[string, Open]> = [
  [
    'pglite',
    async () => {
      const store = new PgliteStore({ schema: `${RUN}_${++schemas}` });
      await store.migrate();
      return store;
    },
  ],
  [
    'postgres',
    async () => {
      const schema = `${RUN}_${++schemas}`;
      created.push(schema);
      const store = new PostgresStore({ connectionString: PG_URL, schema });
      await store.migrate();
      return store;
    },
  ],
];

afterAll(async () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  for (const schema of created) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

/** Runs `fn` with stores that are closed afterwards. */
async function withStores<T>(open: Open, n: number, fn: (...stores: SqlStore[]) => Promise<T>): Promise<T> {
  const stores: SqlStore[] = [];
  try {
    for (let i = 0; i < n; i++) stores.push(await open());
    return await fn(...stores);
  } finally {
    for (const s of stores) await s.close();
  }
}

async function rejection(p: Promise<unknown>): Promise<CrrError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CrrError);
  return err as CrrError;
}

/** Rows of one of the store's views of what applications see (`live_vertices`, `live_edges`), sorted. */
async function live(store: SqlStore, view: 'live_vertices' | 'live_edges'): Promise<Array<Record<string, unknown>>> {
  const sql = `SELECT * FROM "${store.schema}".${view} ORDER BY 1, 2, 3`;
  if (store instanceof PgliteStore) return (await store.pglite.query<Record<string, unknown>>(sql)).rows;
  return (await (store as PostgresStore).pool.query<Record<string, unknown>>(sql)).rows;
}

const pos = (topic: string, partition: number, nextOffset: number): StorePosition => ({ topic, partition, nextOffset });
const alice: [string, string] = ['person', 'alice'];
const bob: [string, string] = ['person', 'bob'];
const paris: [string, string] = ['city', 'paris'];

describe.each(implementations)('store conformance: %s', (_name, open) => {
  it('migrates idempotently and starts empty, with no cluster state', () =>
    withStores(open, 1, async (store) => {
      await store.migrate();
      expect(await store.positions()).toEqual([]);
      expect(await store.counts()).toEqual({ vertices: {}, edges: {}, catalog: {} });
      expect(await store.clusterState()).toBeUndefined();
      expect(await store.digest()).toMatch(/^[0-9a-f]{64}$/);
    }));

  it('applies a batch with its positions: counts, positions and digest follow', () =>
    withStores(open, 1, async (store) => {
      const e = new Events();
      const empty = await store.digest();
      await store.applyBatch(
        [
          e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'person', primaryIdType: 'STRING', attributes: [{ name: 'age', type: 'INT' }] }),
          e.upsertV(...alice, { age: 42, tags: ['a', 'b'] }),
          e.upsertV(...bob, { age: 7 }),
          e.upsertV(...paris),
          e.upsertE('knows', alice, bob, { since: 2019 }),
          e.upsertE('lives_in', alice, paris),
          e.ev({ op: 'CREATE_USER', name: 'analyst' }),
        ],
        [pos('primary.graph-data', 1, 10), pos('primary.graph-data', 0, 5), pos('primary.graph-meta', 0, 3)],
      );
      expect(await store.counts()).toEqual({ vertices: { person: 2, city: 1 }, edges: { knows: 1, lives_in: 1 }, catalog: { vertex_type: 1, user: 1 } });
      expect(await store.positions()).toEqual([pos('primary.graph-data', 0, 5), pos('primary.graph-data', 1, 10), pos('primary.graph-meta', 0, 3)]);
      const full = await store.digest();
      expect(full).not.toBe(empty);
      await store.applyBatch([], [pos('primary.graph-data', 0, 9)]);
      expect((await store.positions())[0]).toEqual(pos('primary.graph-data', 0, 9));
      expect(await store.digest()).toBe(full);
    }));

  it('fences a replay activation once another one activates (issue 11 item 3); positions never move back', () =>
    withStores(open, 1, async (store) => {
      await store.migrate();
      const e = new Events();
      const first = await store.activateReplay('first');
      await store.applyBatch(
        [e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'person', primaryIdType: 'STRING', attributes: [] }), e.upsertV(...alice)],
        [pos('t', 0, 10)],
        first,
      );
      // a standby took over while the first stalled (SIGSTOP, GC pause) past its session timeout
      const second = await store.activateReplay('second');
      expect(second.generation).toBe(first.generation + 1);
      const before = await store.digest();
      const refused = await rejection(store.applyBatch([e.upsertV(...bob)], [pos('t', 0, 5)], first));
      expect(refused.code).toBe('CRR_REPLAY_FENCED');
      expect(refused.retriable).toBe(true);
      expect(await store.digest()).toBe(before);
      expect(await store.positions()).toEqual([pos('t', 0, 10)]);
      // the current activation applies; a position below the stored one does not move it back
      await store.applyBatch([e.upsertV(...bob)], [pos('t', 0, 4)], second);
      expect(await store.positions()).toEqual([pos('t', 0, 10)]);
      expect((await store.counts()).vertices).toEqual({ person: 2 });
    }));

  it('applies a batch as if event by event: later events win', () =>
    withStores(open, 2, async (store, reference) => {
      const e = new Events();
      const before = [e.upsertV(...bob, { age: 1, old: true }), e.upsertE('lives_in', bob, paris, { old: true })];
      await store.applyBatch(before, []);
      await reference.applyBatch(before, []);
      const batch = [
        e.upsertV(...alice, { age: 1 }),
        e.deleteV(...alice), // upsert then delete: absent
        e.deleteV(...bob), // its stored edge goes too
        e.upsertV(...bob, { age: 2 }), // delete then upsert: present, without the stored attributes
        e.upsertV(...bob, { name: 'Bob' }), // upserts merge attributes
        e.upsertV(...paris, { zip: '75' }),
        e.upsertE('lives_in', bob, paris, { since: 1 }),
        e.deleteE('lives_in', bob, paris),
        e.upsertE('lives_in', bob, paris, { since: 2 }), // delete then upsert: only the last attributes
      ];
      await store.applyBatch(batch, []);
      for (const ev of batch) await reference.applyBatch([ev], []);
      expect(await store.counts()).toEqual({ vertices: { person: 1, city: 1 }, edges: { lives_in: 1 }, catalog: {} });
      expect(await store.digest()).toBe(await reference.digest());
      // The same content built differently has the same digest: {age:2,name:'Bob'} in one upsert.
      const other = new Events();
      await withStores(open, 1, async (third) => {
        await third.applyBatch(
          [other.upsertE('lives_in', bob, paris, { since: 2 }), other.upsertV(...paris, { zip: '75' }), other.upsertV(...bob, { name: 'Bob', age: 2 })],
          [],
        );
        expect(await third.digest()).toBe(await store.digest());
      });
    }));

  it('changes only the entity an operation names: a vertex delete keeps its edges, which live_edges hides; partition order does not matter', () =>
    withStores(open, 2, async (store, other) => {
      const e = new Events();
      // one partition holds alice's changes, another the edges: any interleaving gives one result
      const vertexPartition = [e.upsertV(...alice), e.upsertV(...bob), e.deleteV(...alice)];
      const edgePartition = [e.upsertE('knows', alice, bob), e.upsertE('knows', bob, alice), e.upsertE('likes', bob, alice)];
      await store.applyBatch([...vertexPartition, ...edgePartition], []);
      await other.applyBatch([edgePartition[0]!, vertexPartition[0]!, edgePartition[1]!, vertexPartition[1]!, vertexPartition[2]!, edgePartition[2]!], []);
      expect(await store.counts()).toEqual({ vertices: { person: 1 }, edges: { knows: 2, likes: 1 }, catalog: {} });
      expect(await other.digest()).toBe(await store.digest());
      await store.applyBatch(
        [
          e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'person', primaryIdType: 'STRING', attributes: [] }),
          e.ev({ op: 'CREATE_EDGE_TYPE', name: 'knows', fromType: 'person', toType: 'person', directed: true, attributes: [] }),
          e.ev({ op: 'CREATE_EDGE_TYPE', name: 'likes', fromType: 'person', toType: 'person', directed: true, attributes: [] }),
        ],
        [],
      );
      expect(await live(store, 'live_edges')).toEqual([]);
      await store.applyBatch([e.upsertV(...alice)], []);
      expect((await live(store, 'live_edges')).length).toBe(3);
    }));

  it('changes only the catalog on a type change: live views hide a dropped type and a dropped attribute, in any interleaving with data', () =>
    withStores(open, 2, async (store, other) => {
      const e = new Events();
      const metadata = [
        e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'city', primaryIdType: 'STRING', attributes: [] }),
        e.ev({
          op: 'CREATE_VERTEX_TYPE',
          name: 'person',
          primaryIdType: 'STRING',
          attributes: [
            { name: 'age', type: 'INT' },
            { name: 'pet', type: 'STRING' },
          ],
        }),
        e.ev({ op: 'CREATE_EDGE_TYPE', name: 'lives_in', fromType: 'person', toType: 'city', directed: true, attributes: [] }),
        e.ev({ op: 'DROP_VERTEX_TYPE', name: 'city' }),
        e.ev({ op: 'ALTER_VERTEX_TYPE', name: 'person', dropAttributes: ['pet'], addAttributes: [{ name: 'email', type: 'STRING' }] }),
        e.ev({ op: 'CREATE_USER', name: 'analyst' }),
        e.ev({ op: 'GRANT_ROLE', name: 'analyst', role: 'designer' }),
        e.ev({ op: 'CREATE_QUERY', name: 'q', text: 'PRINT 1;' }),
        e.ev({ op: 'INSTALL_QUERY', name: 'q' }),
      ];
      const data = [
        e.upsertV(...paris),
        e.upsertV(...alice, { age: 3, pet: 'cat' }),
        e.upsertE('lives_in', alice, paris),
        e.upsertV('city', 'rome'),
        e.upsertV(...bob, { email: 'b@x' }),
      ];
      // the metadata topic first on one side, the data topic first on the other: one result
      await store.applyBatch([...metadata, ...data], []);
      await other.applyBatch([...data.slice(0, 3), ...metadata.slice(0, 5), ...data.slice(3), ...metadata.slice(5)], []);
      expect(await other.digest()).toBe(await store.digest());
      expect(await store.counts()).toEqual({
        vertices: { person: 2, city: 2 },
        edges: { lives_in: 1 },
        catalog: { vertex_type: 1, edge_type: 1, user: 1, query: 1 },
      });
      // what applications see: no city (its type is gone), so no edge to one; no pet (dropped)
      expect(await live(store, 'live_vertices')).toEqual([
        { type: 'person', id: 'alice', attributes: { age: 3 } },
        { type: 'person', id: 'bob', attributes: { email: 'b@x' } },
      ]);
      expect(await live(store, 'live_edges')).toEqual([]);
      // re-creating the type shows its vertices again, and the edge to paris
      await store.applyBatch([e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'city', primaryIdType: 'STRING', attributes: [] })], []);
      expect((await live(store, 'live_vertices')).filter((v) => v.type === 'city').map((v) => v.id)).toEqual(['paris', 'rome']);
      expect((await live(store, 'live_edges')).length).toBe(1);
    }));

  it('gives the same result for a random sequence applied as one batch, in small batches, and event by event', () =>
    withStores(open, 3, async (one, small, each) => {
      const events = randomEvents(20261123, 600);
      await one.applyBatch(events, [pos('t', 0, events.length)]);
      for (let i = 0; i < events.length; i += 23) {
        const end = Math.min(i + 23, events.length);
        await small.applyBatch(events.slice(i, end), [pos('t', 0, end)]);
        for (const ev of events.slice(i, end)) await each.applyBatch([ev], []);
        expect(await small.digest(), `after event ${end}`).toBe(await each.digest());
      }
      expect(await one.digest()).toBe(await each.digest());
      expect(await small.positions()).toEqual(await one.positions());
    }));

  it.each([
    [
      'a sync-breaking marker',
      (e: Events) => e.ev({ op: 'IMPORT', reason: 'bulk load', source: '/data/x.csv' }),
      'CRR_STORE_APPLY',
      /sync-breaking marker IMPORT/,
    ],
    [
      'an ALTER of an unknown type',
      (e: Events) => e.ev({ op: 'ALTER_EDGE_TYPE', name: 'nope', dropAttributes: ['x'] }),
      'CRR_STORE_APPLY',
      /ALTER_EDGE_TYPE of unknown edge_type "nope"/,
    ],
    ['a GRANT_ROLE to an unknown user', (e: Events) => e.ev({ op: 'GRANT_ROLE', name: 'ghost', role: 'r' }), 'CRR_STORE_APPLY', /unknown user "ghost"/],
    // built past the protocol (which now refuses U+0000 itself): the store's own data error, never retried
    [
      'a value the database refuses (NUL in text)',
      (e: Events) => ({ ...e.upsertV('person', 'placeholder'), vertex: { type: 'person', id: 'nul\u0000id' } }) as ChangeEvent,
      'CRR_STORE_APPLY',
      /store \(schema .*\) refused the data \[22/,
    ],
  ] as const)('refuses a batch with %s and changes neither data nor positions', (_what, bad, code, message) =>
    withStores(open, 1, async (store) => {
      const e = new Events();
      await store.applyBatch([e.upsertV(...alice, { age: 1 }), e.ev({ op: 'CREATE_USER', name: 'u' })], [pos('t', 0, 2)]);
      const before = { digest: await store.digest(), positions: await store.positions(), counts: await store.counts() };
      const err = await rejection(
        store.applyBatch(
          [e.deleteV(...alice), e.upsertV(...bob), e.ev({ op: 'DROP_USER', name: 'u' }), bad(e), e.upsertV('city', 'x')],
          [pos('t', 0, 7), pos('t', 1, 1)],
        ),
      );
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
      expect(err.retriable).toBe(false);
      expect({ digest: await store.digest(), positions: await store.positions(), counts: await store.counts() }).toEqual(before);
    }),
  );

  it('records the cluster state and refuses a state of another role', () =>
    withStores(open, 1, async (store) => {
      await store.setClusterState({ role: 'replica', state: 'REPLICATING', epoch: 3 });
      expect(await store.clusterState()).toMatchObject({ role: 'replica', state: 'REPLICATING', epoch: 3 });
      await store.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 4, reason: 'promoted by operator' });
      const state = await store.clusterState();
      expect(state).toMatchObject({ role: 'primary', state: 'ACTIVE', epoch: 4, reason: 'promoted by operator' });
      expect(state!.updatedAt).toBeInstanceOf(Date);
      const err = await rejection(store.setClusterState({ role: 'primary', state: 'REPLICATING', epoch: 5 } as never));
      expect(err.code).toBe('CRR_STORE_APPLY');
      expect((await store.clusterState())!.epoch).toBe(4);
      // the backup a state refers to (issue 11 item 5): recorded, read back, and cleared by a state without it
      await store.setClusterState({ role: 'replica', state: 'RESEEDING', epoch: 4, reason: 'restoring backup Y', backupId: '20261202T060000Z-east-00ff' });
      expect(await store.clusterState()).toMatchObject({ state: 'RESEEDING', reason: 'restoring backup Y', backupId: '20261202T060000Z-east-00ff' });
      await store.setClusterState({ role: 'replica', state: 'OUTDATED', epoch: 4 });
      expect(await store.clusterState()).not.toHaveProperty('backupId');
      expect((await rejection(store.setClusterState({ role: 'replica', state: 'RESEEDING', epoch: 4, backupId: 'not an id' }))).code).toBe('CRR_STORE_APPLY');
    }));

  it('exports a snapshot consistent with the positions it reports while another connection keeps writing', () =>
    withStores(open, 1, async (store) => {
      const e = new Events();
      await store.applyBatch(
        [e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'person', primaryIdType: 'STRING', attributes: [] }), e.ev({ op: 'CREATE_USER', name: 'u' })],
        [],
      );
      // each batch adds 20 vertices and 5 edges, and advances partition 0 by 20 and partition 1 by 5
      let vertices = 0;
      let edges = 0;
      let batches = 0;
      let writing = true;
      const writer = (async () => {
        while (writing) {
          const batch = [];
          for (let i = 0; i < 20; i++) batch.push(e.upsertV('person', `v${String(vertices + i).padStart(6, '0')}`, { n: vertices + i }));
          for (let i = 0; i < 5; i++) batch.push(e.upsertE('knows', ['person', `v${String(edges + i).padStart(6, '0')}`], ['person', 'x'], { n: edges + i }));
          vertices += 20;
          edges += 5;
          // on PostgreSQL the pool gives this another connection than the snapshot's
          await store.applyBatch(batch, [pos('t', 0, vertices), pos('t', 1, edges)]);
          batches++;
          await new Promise((r) => setImmediate(r));
        }
      })();
      try {
        while (batches < 5) await new Promise((r) => setTimeout(r, 5));
        for (let round = 0; round < 3; round++) {
          let header: SnapshotHeader | undefined;
          const rows = { vertices: [] as VertexRow[], edges: [] as EdgeRow[] };
          const before = batches;
          const totals = await store.exportSnapshot(
            {
              header: async (h) => void (header = h),
              // slow pages: writes commit between them (PostgreSQL), yet none is seen
              vertices: async (r) => {
                rows.vertices.push(...r);
                await new Promise((res) => setTimeout(res, 2));
              },
              edges: async (r) => {
                rows.edges.push(...r);
                await new Promise((res) => setTimeout(res, 2));
              },
            },
            { batchRows: 17 },
          );
          const during = batches - before;
          const at = (p: number): number => header!.positions.find((x) => x.topic === 't' && x.partition === p)!.nextOffset;
          expect(totals).toEqual({ vertices: rows.vertices.length, edges: rows.edges.length });
          expect(rows.vertices.length).toBe(at(0));
          expect(rows.edges.length).toBe(at(1));
          expect(at(0)).toBe(at(1) * 4);
          expect(header!.catalog.map((c) => `${c.kind}:${c.name}`)).toEqual(['user:u', 'vertex_type:person']);
          // keyset pages: every row once, in primary-key order
          expect(rows.vertices.map((v) => v.id)).toEqual(Array.from({ length: at(0) }, (_, i) => `v${String(i).padStart(6, '0')}`));
          expect(new Set(rows.edges.map((x) => x.from.id)).size).toBe(at(1));
          if (store instanceof PostgresStore) expect(during, 'writes committed while the snapshot was read').toBeGreaterThan(0);
        }
      } finally {
        writing = false;
        await writer;
      }
    }));
});

describe('store conformance: across implementations', () => {
  it('gives the same digest for the same events on PGlite and PostgreSQL', async () => {
    const events = randomEvents(7, 300);
    const digests: string[] = [];
    for (const [, open] of implementations) {
      digests.push(
        await withStores(open, 1, async (store) => {
          await store.applyBatch(events, []);
          return store.digest();
        }),
      );
    }
    expect(digests[1]).toBe(digests[0]);
  });
});

describe('write fence (PostgreSQL)', () => {
  const roles = { appRole: `${RUN}_app`, replayRole: `${RUN}_replay` };
  const as = (role: string): string => {
    const url = new URL(PG_URL);
    url.username = role;
    url.password = '';
    return url.toString();
  };

  afterAll(async () => {
    const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
    for (const role of [roles.appRole, roles.replayRole]) {
      const exists = await pool.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
      if (exists.rowCount) {
        await pool.query(`DROP OWNED BY "${role}"`);
        await pool.query(`DROP ROLE "${role}"`);
      }
    }
    await pool.end();
  });

  /** The SQLSTATE of a failed statement, or `ok`. */
  async function sqlState(pool: pg.Pool, sql: string): Promise<string> {
    try {
      await pool.query(sql);
      return 'ok';
    } catch (err) {
      return (err as { code?: string }).code ?? String(err);
    }
  }

  it('lets applications read but not write, while replay writes; unfence lets applications write', async () => {
    const schema = `${RUN}_fence`;
    created.push(schema);
    const owner = new PostgresStore({ connectionString: PG_URL, schema });
    const app = new pg.Pool({ connectionString: as(roles.appRole), max: 1 });
    const replay = new PostgresStore({ connectionString: as(roles.replayRole), schema });
    try {
      await owner.migrate();
      const e = new Events();
      await owner.applyBatch([e.upsertV(...alice, { age: 1 })], [pos('t', 0, 1)]);
      await fence(owner.pool, { schema, ...roles });
      await fence(owner.pool, { schema, ...roles }); // idempotent

      const s = `"${schema}"`;
      expect((await app.query(`SELECT id FROM ${s}.vertices`)).rows).toEqual([{ id: 'alice' }]);
      expect({
        insert: await sqlState(app, `INSERT INTO ${s}.vertices VALUES ('person', 'mallory', '{}')`),
        update: await sqlState(app, `UPDATE ${s}.vertices SET attributes = '{}'`),
        delete: await sqlState(app, `DELETE FROM ${s}.vertices`),
        truncate: await sqlState(app, `TRUNCATE ${s}.edges`),
        positions: await sqlState(app, `UPDATE ${s}.positions SET next_offset = 0`),
        createTable: await sqlState(app, `CREATE TABLE ${s}.sneaky (x int)`),
      }).toEqual({ insert: '42501', update: '42501', delete: '42501', truncate: '42501', positions: '42501', createTable: '42501' });

      await replay.applyBatch([e.upsertV(...bob, { age: 2 }), e.deleteV(...alice)], [pos('t', 0, 3)]);
      await replay.setClusterState({ role: 'replica', state: 'REPLICATING', epoch: 1 });
      expect(await owner.counts()).toEqual({ vertices: { person: 1 }, edges: {}, catalog: {} });
      expect(await owner.positions()).toEqual([pos('t', 0, 3)]);
      expect((await app.query(`SELECT id FROM ${s}.vertices`)).rows).toEqual([{ id: 'bob' }]);

      await unfence(owner.pool, { schema, ...roles });
      expect(await sqlState(app, `INSERT INTO ${s}.vertices VALUES ('person', 'carol', '{}')`)).toBe('ok');
      expect(await sqlState(app, `DELETE FROM ${s}.vertices WHERE id = 'carol'`)).toBe('ok');
      expect(await sqlState(app, `CREATE TABLE ${s}.sneaky (x int)`)).toBe('42501'); // unfence grants data writes, not DDL
    } finally {
      await app.end();
      await replay.close();
      await owner.close();
    }
  });

  it("reports the fence only as PostgreSQL's catalogs show it, and applies it without CREATEROLE to roles a DBA made with docs/sql/write-fence-roles.sql", async () => {
    const schema = `${RUN}_fence2`;
    const su = `${RUN}_su`;
    const daemon = `${RUN}_daemon`;
    created.push(schema, `${schema}_d`);
    const owner = new PostgresStore({ connectionString: PG_URL, schema });
    const admin = new pg.Pool({ connectionString: PG_URL, max: 1 });
    try {
      await owner.migrate();
      expect(await fence(owner.pool, { schema, ...roles })).toEqual({ inPlace: true, problems: [] });
      // a right granted by hand is found, and the next fence takes it back
      await admin.query(`GRANT INSERT, DELETE ON "${schema}".vertices TO "${roles.appRole}"`);
      expect(await checkFence(owner.pool, { schema, ...roles })).toEqual({
        inPlace: false,
        problems: [`the application role ${roles.appRole} may INSERT,DELETE on ${schema}.vertices`],
      });
      expect((await fence(owner.pool, { schema, ...roles })).inPlace).toBe(true);
      // no grant binds a superuser: never reported as fenced
      await admin.query(`CREATE ROLE "${su}" LOGIN SUPERUSER`);
      const superuser = await fence(owner.pool, { schema, appRole: su, replayRole: roles.replayRole });
      expect(superuser.inPlace).toBe(false);
      expect(superuser.problems[0]).toBe(`the application role ${su} is a superuser: no privilege binds it`);

      // a DBA creates the roles once; the daemon's role has no CREATEROLE and owns only its schema
      const { execFileSync } = await import('node:child_process');
      const sql = new URL('../../docs/sql/write-fence-roles.sql', import.meta.url).pathname;
      const vars = ['-v', `app_role=${roles.appRole}`, '-v', `replay_role=${roles.replayRole}`, '-v', `daemon_role=${daemon}`];
      for (let i = 0; i < 2; i++) execFileSync('psql', [PG_URL, '-q', ...vars, '-f', sql], { stdio: 'pipe' }); // idempotent
      const url = new URL(PG_URL);
      url.username = daemon;
      const asDaemon = new PostgresStore({ connectionString: url.toString(), schema: `${schema}_d` });
      try {
        await asDaemon.migrate();
        expect(await fence(asDaemon.pool, { schema: `${schema}_d`, ...roles })).toEqual({ inPlace: true, problems: [] });
        await expect(fence(asDaemon.pool, { schema: `${schema}_d`, appRole: `${RUN}_nobody`, replayRole: roles.replayRole })).rejects.toThrow(
          /permission denied to create role/,
        );
      } finally {
        await asDaemon.close();
      }
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS "${schema}_d" CASCADE`);
      for (const r of [su, daemon]) {
        if ((await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [r])).rowCount) {
          await admin.query(`DROP OWNED BY "${r}"`);
          await admin.query(`DROP ROLE "${r}"`);
        }
      }
      await admin.end();
      await owner.close();
    }
  });
});
