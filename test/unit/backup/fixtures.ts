import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, afterEach, expect } from 'vitest';
import { readBackup, readManifest } from '../../../src/backup/catalog.js';
import type { BackupRepository } from '../../../src/backup/repository.js';
import { CrrError } from '../../../src/errors.js';
import type { SqlClient } from '../../../src/store/sql-client.js';
import { SqlStore } from '../../../src/store/sql-store.js';
import type { EdgeRow, Store, VertexRow } from '../../../src/store/store.js';
import { Events } from '../../support/store-events.js';

/** A fresh folder under the OS temp dir, removed after the test. */
export function useTempDirs(): () => string {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return () => {
    const d = mkdtempSync(join(tmpdir(), 'crr-backup-test-'));
    dirs.push(d);
    return d;
  };
}

/** A store in its own schema of a PGlite database shared by a test file (PGlite takes seconds to start). */
export class TestStore extends SqlStore {
  constructor(
    readonly pglite: PGlite,
    schema: string,
  ) {
    super(
      {
        query: async <R>(text: string, params?: unknown[]) => ({ rows: (await pglite.query<R>(text, params)).rows }),
        transaction: <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> =>
          pglite.transaction(async (tx) => fn({ query: async <R>(text: string, params?: unknown[]) => ({ rows: (await tx.query<R>(text, params)).rows }) })),
        close: async () => undefined, // the database is the file's, closed after all its tests
      },
      schema,
    );
  }
}

/** Opens fresh, migrated stores, each in a schema of its own, in one in-memory PGlite per test file. */
export function useStores(): () => Promise<TestStore> {
  let db: PGlite | undefined;
  let n = 0;
  afterAll(async () => {
    await db?.close();
  });
  return async () => {
    db ??= new PGlite();
    const s = new TestStore(db, `crr_t${++n}`);
    await s.migrate();
    return s;
  };
}

/**
 * Fills a store with `vertices` people (varied attributes, some non-ASCII), `edges` knows-edges
 * between them, a few catalog entries of every kind, positions and a cluster state of epoch 3.
 */
export async function fill(store: Store, vertices: number, edges: number): Promise<void> {
  const e = new Events();
  await store.applyBatch(
    [
      e.ev({
        op: 'CREATE_VERTEX_TYPE',
        name: 'person',
        primaryIdType: 'STRING',
        attributes: [
          { name: 'age', type: 'INT' },
          { name: 'name', type: 'STRING' },
        ],
      }),
      e.ev({ op: 'CREATE_EDGE_TYPE', name: 'knows', fromType: 'person', toType: 'person', directed: true, attributes: [{ name: 'since', type: 'INT' }] }),
      e.ev({ op: 'CREATE_USER', name: 'analyst', roles: ['reader'] }),
      e.ev({ op: 'CREATE_QUERY', name: 'q1', text: 'PRINT "héllo";' }),
      e.ev({ op: 'INSTALL_QUERY', name: 'q1' }),
      e.ev({ op: 'CREATE_UDF', name: 'f', source: 'int f() { return 1; }' }),
      e.ev({ op: 'CREATE_LOADING_JOB', name: 'load', text: 'LOAD ...' }),
    ],
    [{ topic: 'graph.metadata', partition: 0, nextOffset: 7 }],
  );
  const step = 2000;
  for (let i = 0; i < vertices; i += step) {
    const batch = [];
    for (let j = i; j < Math.min(i + step, vertices); j++) {
      batch.push(
        e.upsertV('person', `p${String(j).padStart(6, '0')}`, { age: j % 97, name: `名前 ${j}`, tags: ['a', String(j)], ok: j % 2 === 0, none: null }),
      );
    }
    await store.applyBatch(batch, [{ topic: 'graph.data', partition: 0, nextOffset: i + batch.length }]);
  }
  for (let i = 0; i < edges; i += step) {
    const batch = [];
    for (let j = i; j < Math.min(i + step, edges); j++) {
      const a = `p${String(j % Math.max(vertices, 1)).padStart(6, '0')}`;
      const b = `p${String((j * 7 + 1) % Math.max(vertices, 1)).padStart(6, '0')}`;
      batch.push(e.upsertE('knows', ['person', a], ['person', `${b}-${Math.floor(j / Math.max(vertices, 1))}`], { since: 2000 + (j % 25) }));
    }
    await store.applyBatch(batch, [{ topic: 'graph.data', partition: 1, nextOffset: i + batch.length }]);
  }
  await store.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 3 });
}

/** Every row of a store, in primary-key order, through its snapshot. */
export async function storeRows(store: Store): Promise<{ vertices: VertexRow[]; edges: EdgeRow[] }> {
  const out = { vertices: [] as VertexRow[], edges: [] as EdgeRow[] };
  await store.exportSnapshot({
    header: async () => undefined,
    vertices: async (rows) => void out.vertices.push(...rows),
    edges: async (rows) => void out.edges.push(...rows),
  });
  return out;
}

/** Every row of a backup, in the order of its parts. */
export async function backupRows(repo: BackupRepository, id: string): Promise<{ vertices: VertexRow[]; edges: EdgeRow[] }> {
  const out = { vertices: [] as VertexRow[], edges: [] as EdgeRow[] };
  for await (const b of readBackup(repo, id)) {
    if (b.kind === 'vertices') out.vertices.push(...b.rows);
    else out.edges.push(...b.rows);
  }
  return out;
}

/**
 * Restores a backup into an empty PGlite store the way a user's data would come back: the
 * catalog rows as they are, the vertices and edges as UPSERT events, the positions and the
 * cluster state. (The restore command is the next issue; this proves the backup holds it all.)
 */
export async function restoreInto(repo: BackupRepository, id: string, target: TestStore): Promise<void> {
  const manifest = await readManifest(repo, id);
  for (const c of manifest.catalog) {
    await target.pglite.query(`INSERT INTO "${target.schema}".catalog (kind, name, body) VALUES ($1, $2, $3::text::jsonb)`, [
      c.kind,
      c.name,
      JSON.stringify(c.body),
    ]);
  }
  const e = new Events();
  for await (const b of readBackup(repo, id, { batchRows: 3000 })) {
    if (b.kind === 'vertices')
      await target.applyBatch(
        b.rows.map((r) => e.upsertV(r.type, r.id, r.attributes)),
        [],
      );
    else
      await target.applyBatch(
        b.rows.map((r) => e.upsertE(r.type, [r.from.type, r.from.id], [r.to.type, r.to.id], r.attributes)),
        [],
      );
  }
  await target.applyBatch([], manifest.positions);
  const s = manifest.clusterState!;
  await target.setClusterState({ role: s.role, state: s.state, epoch: s.epoch } as never);
}

/** The CrrError a promise rejects with (the test fails when it resolves, or rejects with something else). */
export async function rejection(p: Promise<unknown>): Promise<CrrError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CrrError);
  return err as CrrError;
}

/** Reads an async iterable to its end, dropping what it yields. */
export async function drain(it: AsyncIterable<unknown>): Promise<void> {
  for await (const _ of it);
}
