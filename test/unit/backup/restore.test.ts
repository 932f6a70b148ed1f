import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalRepository } from '../../../src/backup/local-repository.js';
import { restoredClusterState } from '../../../src/backup/restore-cluster.js';
import { restoreBackup } from '../../../src/backup/restore.js';
import { resolveRestoreTarget } from '../../../src/backup/targets.js';
import { createBackup } from '../../../src/backup/write.js';
import { ConfigSchema } from '../../../src/config/schema.js';
import { Events } from '../../support/store-events.js';
import { fill, useStores, useTempDirs, type TestStore, rejection } from './fixtures.js';

const tempDir = useTempDirs();
const openStore = useStores();

/** Schemas of the store's PGlite database whose name starts with `prefix`. */
async function schemasLike(store: TestStore, prefix: string): Promise<string[]> {
  const { rows } = await store.pglite.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname`, [prefix]);
  return rows.map((r) => r.nspname);
}

/** A store B with content of its own (other than A's), positions and a cluster state. */
async function otherContent(store: TestStore): Promise<void> {
  const e = new Events();
  await store.applyBatch(
    [
      e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'city', primaryIdType: 'STRING', attributes: [{ name: 'pop', type: 'INT' }] }),
      e.upsertV('city', 'paris', { pop: 2 }),
      e.upsertV('city', 'oslo', { pop: 1 }),
    ],
    [
      { topic: 'primary.graph.data', partition: 0, nextOffset: 99 },
      { topic: 'graph.data', partition: 0, nextOffset: 42 },
    ],
  );
  await store.setClusterState({ role: 'replica', state: 'OUTDATED', epoch: 2, reason: 'epoch 3 seen' });
}

describe('restore of a backup into a store', () => {
  it("round trip: replaces the live content with the backup, positions are the manifest's, cluster state as given, no schema left over", async () => {
    const a = await openStore();
    await fill(a, 1500, 1200);
    const repo = new LocalRepository(tempDir());
    const manifest = await createBackup(a, repo, { cluster: 'primary', partSizeBytes: 16 * 1024, batchRows: 500 });
    expect(manifest.parts.length).toBeGreaterThan(4);

    const b = await openStore();
    await otherContent(b);
    expect(await b.digest()).not.toBe(await a.digest());
    const phases = new Set<string>();
    let last = { vertices: 0, edges: 0, parts: 0 };
    const { result } = await restoreBackup(b, repo, manifest.id, {
      batchRows: 300,
      clusterState: (m) => ({ role: 'replica', state: 'REPLICATING', epoch: m.epoch }),
      onProgress: (p) => {
        phases.add(p.phase);
        last = p;
      },
    });
    expect(result).toMatchObject({ schema: b.schema, swapped: true, vertices: 1500, edges: 1200, catalog: 6, positions: manifest.positions.length });
    expect(result.stagingSchema).toMatch(new RegExp(`^${b.schema}_restore_${manifest.id.slice(-4)}[0-9a-f]{4}$`));
    expect([...phases]).toEqual(['load', 'verify', 'swap', 'done']);
    expect(last).toMatchObject({ vertices: 1500, edges: 1200, parts: manifest.parts.length });

    // the same store object keeps working on the restored state
    expect(await b.digest()).toBe(await a.digest());
    expect(await b.counts()).toEqual(await a.counts());
    // the manifest's positions and nothing else: no downstream rows left from before
    expect(await b.positions()).toEqual(manifest.positions);
    expect(await b.clusterState()).toMatchObject({ role: 'replica', state: 'REPLICATING', epoch: 3 });
    expect((await b.clusterState())?.reason).toBeUndefined();
    // the old schema and the staging schema are gone
    expect(await schemasLike(b, b.schema)).toEqual([b.schema]);
    // the live views work on the restored tables
    const { rows } = await b.pglite.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${b.schema}".live_vertices`);
    expect(rows[0]!.n).toBe(1500);
    // and it keeps taking writes
    const e = new Events();
    await b.applyBatch([e.upsertV('person', 'zz', { age: 1 })], [{ topic: 'primary.graph.data', partition: 0, nextOffset: 5 }]);
    expect((await b.counts()).vertices.person).toBe(1501);
  });

  it('restores into an empty store that was never migrated', async () => {
    const a = await openStore();
    await fill(a, 100, 50);
    const repo = new LocalRepository(tempDir());
    const manifest = await createBackup(a, repo, { cluster: 'primary' });
    const b = await openStore();
    await b.pglite.query(`DROP SCHEMA "${b.schema}" CASCADE`);
    const { result } = await restoreBackup(b, repo, manifest.id);
    expect(result.droppedSchema).toBeUndefined();
    expect(await b.digest()).toBe(await a.digest());
    expect(await b.clusterState()).toBeUndefined();
  });

  it('--as: restores beside the live state under a new schema, which must not exist', async () => {
    const a = await openStore();
    await fill(a, 300, 200);
    const repo = new LocalRepository(tempDir());
    const manifest = await createBackup(a, repo, { cluster: 'primary' });
    const b = await openStore();
    await otherContent(b);
    const before = await b.digest();
    const as = `${b.schema}_copy`;
    const { result } = await restoreBackup(b, repo, manifest.id, { as, clusterState: { role: 'primary', state: 'ACTIVE', epoch: 3 } });
    expect(result).toMatchObject({ schema: as, swapped: false, vertices: 300, edges: 200 });
    expect(await b.digest()).toBe(before);
    const { TestStore } = await import('./fixtures.js');
    const copy = new TestStore(b.pglite, as);
    expect(await copy.digest()).toBe(await a.digest());
    expect(await copy.positions()).toEqual(manifest.positions);
    expect(await copy.clusterState()).toMatchObject({ role: 'primary', state: 'ACTIVE', epoch: 3 });

    const err = await rejection(restoreBackup(b, repo, manifest.id, { as }));
    expect(err.code).toBe('CRR_RESTORE_REFUSED');
    expect(err.message).toContain(as);
    expect(await copy.digest()).toBe(await a.digest());
    expect((await rejection(restoreBackup(b, repo, manifest.id, { as: 'Not-An-Identifier' }))).code).toBe('CRR_CONFIG_INVALID');
    expect(await schemasLike(b, `${b.schema}_`)).toEqual([as]);
  });

  it('refuses a corrupted part, a missing part and an unknown format version, naming them; the live state is untouched, no staging schema left', async () => {
    const a = await openStore();
    await fill(a, 800, 600);
    const dir = tempDir();
    const repo = new LocalRepository(dir);
    const manifest = await createBackup(a, repo, { cluster: 'primary', partSizeBytes: 16 * 1024 });
    const b = await openStore();
    await otherContent(b);
    const before = { digest: await b.digest(), positions: await b.positions(), state: await b.clusterState() };
    const untouched = async (): Promise<void> => {
      expect(await b.digest()).toBe(before.digest);
      expect(await b.positions()).toEqual(before.positions);
      expect(await b.clusterState()).toEqual(before.state);
      expect(await schemasLike(b, b.schema)).toEqual([b.schema]);
    };

    // a byte flipped in the last edges part: its rows were loaded into staging before the checksum failed
    const edgesPart = manifest.parts.filter((p) => p.kind === 'edges').at(-1)!;
    const path = join(dir, manifest.id, edgesPart.name);
    const good = readFileSync(path);
    const bad = Buffer.from(good);
    bad[Math.floor(bad.length / 2)]! ^= 0x20;
    writeFileSync(path, bad);
    let err = await rejection(restoreBackup(b, repo, manifest.id, { clusterState: { role: 'replica', state: 'REPLICATING', epoch: 3 } }));
    expect(err.code).toBe('CRR_BACKUP_INVALID');
    expect(err).toMatchObject({ part: edgesPart.name, problem: 'corrupt' });
    expect(err.message).toContain(edgesPart.name);
    await untouched();
    writeFileSync(path, good);

    // a vertices part gone
    const vPart = manifest.parts.filter((p) => p.kind === 'vertices')[1]!;
    unlinkSync(join(dir, manifest.id, vPart.name));
    err = await rejection(restoreBackup(b, repo, manifest.id));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', part: vPart.name, problem: 'missing' });
    expect(err.message).toContain(`part ${vPart.name} is missing`);
    await untouched();

    // a manifest of format version 2
    const manifestPath = join(dir, manifest.id, 'manifest.json');
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, formatVersion: 2 }));
    err = await rejection(restoreBackup(b, repo, manifest.id));
    expect(err.code).toBe('CRR_BACKUP_INVALID');
    expect(err.message).toContain('format version 2');
    await untouched();

    // a manifest written by a newer store schema
    writeFileSync(manifestPath, JSON.stringify({ ...manifest, storeSchemaVersion: 99 }));
    err = await rejection(restoreBackup(b, repo, manifest.id));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', part: 'manifest.json' });
    expect(err.message).toContain('schema version 99');
    await untouched();

    // an unknown backup
    err = await rejection(restoreBackup(b, repo, '20200101T000000Z-primary-abcd'));
    expect(err.code).toBe('CRR_BACKUP_NOT_FOUND');
    await untouched();
  });

  it('checks record counts per part against the plan, and the rows in SQL, before swapping', async () => {
    const b = await openStore();
    await otherContent(b);
    const before = await b.digest();
    const plan = {
      id: '20261123T000000Z-primary-0001',
      storeSchemaVersion: 1,
      positions: [],
      catalog: [],
      parts: [
        { name: 'vertices-00001.ndjson.gz', kind: 'vertices' as const, records: 2 },
        { name: 'edges-00001.ndjson.gz', kind: 'edges' as const, records: 1 },
      ],
    };
    const v = (id: string) => ({ type: 'person', id, attributes: {} });
    async function* batches(parts: Array<{ part: string; kind: 'vertices'; rows: ReturnType<typeof v>[] }>) {
      yield* parts;
    }
    // too few rows in a part
    let err = await rejection(b.restore(plan, batches([{ part: 'vertices-00001.ndjson.gz', kind: 'vertices', rows: [v('a')] }])));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', part: 'vertices-00001.ndjson.gz', problem: 'count' });
    // a part never arrives
    err = await rejection(b.restore(plan, batches([{ part: 'vertices-00001.ndjson.gz', kind: 'vertices', rows: [v('a'), v('b')] }])));
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', part: 'edges-00001.ndjson.gz', problem: 'missing' });
    // a duplicate row: the primary key refuses it
    err = await rejection(
      b.restore({ ...plan, parts: [plan.parts[0]!] }, batches([{ part: 'vertices-00001.ndjson.gz', kind: 'vertices', rows: [v('a'), v('a')] }])),
    );
    expect(err.code).toBe('CRR_STORE');
    expect(await b.digest()).toBe(before);
    expect(await schemasLike(b, b.schema)).toEqual([b.schema]);
  });
});

describe('crr restore: what it restores from, and the cluster state it records', () => {
  const config = ConfigSchema.parse({
    clusters: {
      primary: {
        bootstrapServers: ['127.0.0.1:1'],
        store: { type: 'postgres', connectionString: 'postgres://x@h/db', schema: 'p' },
        backup: { repository: { type: 'local', path: '/tmp/b' } },
      },
      dr: { bootstrapServers: ['127.0.0.1:2'], store: { type: 'postgres', connectionString: 'postgres://x@h/db', schema: 'd', appRole: 'app' } },
      bare: { bootstrapServers: ['127.0.0.1:3'] },
    },
    mirror: { flows: [{ source: 'primary', target: 'dr' }] },
  });

  it('a replica restores the backups of the primary it mirrors; a primary its own', () => {
    expect(resolveRestoreTarget(config, 'dr', undefined, undefined)).toMatchObject({ from: 'primary', role: 'replica', store: { schema: 'd' } });
    expect(resolveRestoreTarget(config, 'primary', undefined, 'p_copy')).toMatchObject({ from: 'primary', role: 'primary' });
    const code = (f: () => unknown): number | undefined => {
      try {
        f();
      } catch (err) {
        return (err as { exitCode?: number }).exitCode;
      }
      return undefined;
    };
    expect(code(() => resolveRestoreTarget(config, 'nope', undefined, undefined))).toBe(2);
    expect(code(() => resolveRestoreTarget(config, 'dr', 'nope', undefined))).toBe(2);
    expect(code(() => resolveRestoreTarget(config, 'dr', 'dr', undefined))).toBe(78); // dr has no backup repository
    expect(code(() => resolveRestoreTarget(config, 'bare', 'primary', undefined))).toBe(78); // no store
    expect(code(() => resolveRestoreTarget(config, 'dr', undefined, 'Bad Name'))).toBe(2);
  });

  it("a replica becomes REPLICATING at the backup's epoch; a primary keeps its state at the higher epoch", () => {
    const m = { epoch: 5 } as Parameters<typeof restoredClusterState>[1];
    expect(restoredClusterState('replica', m, { role: 'replica', state: 'OUTDATED', epoch: 4, reason: 'x' })).toEqual({
      role: 'replica',
      state: 'REPLICATING',
      epoch: 5,
    });
    expect(restoredClusterState('primary', m, undefined)).toEqual({ role: 'primary', state: 'ACTIVE', epoch: 5 });
    expect(restoredClusterState('primary', m, { role: 'primary', state: 'FENCED', epoch: 7 })).toEqual({ role: 'primary', state: 'FENCED', epoch: 7 });
  });
});
