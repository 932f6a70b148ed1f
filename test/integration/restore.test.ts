import { readFileSync, writeFileSync } from 'node:fs';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { restoreBackup } from '../../src/backup/restore.js';
import { S3Repository } from '../../src/backup/s3-repository.js';
import { createBackup } from '../../src/backup/write.js';
import { readPublishedClusterState } from '../../src/cluster/state.js';
import { CrrError } from '../../src/errors.js';
import { fence } from '../../src/store/fence.js';
import { PostgresStore } from '../../src/store/postgres.js';
import type { Store } from '../../src/store/store.js';
import { admin as kafkaAdmin, client as kafkaClient, DR, PG_URL, runCrr, testPair, uniq, waitFor } from '../support/helpers.js';
import { dropBucket, freshBucket, s3Client, S3_CREDENTIALS, S3_ENDPOINT, S3_REGION } from '../support/s3-helpers.js';
import { Events } from '../support/store-events.js';

// Restores of PostgreSQL stores from backups in the real S3 API server (S3Proxy) started by
// test/support/global-setup.ts, through the library and through `crr restore` (runs dist/: npm run build).

const schemas: string[] = [];
const roles: string[] = [];
let s3: S3Client;
let bucket: string;

beforeAll(async () => {
  s3 = s3Client();
  bucket = await freshBucket(s3, 'restore');
});

afterAll(async () => {
  if (s3) {
    await dropBucket(s3, bucket).catch(() => undefined);
    s3.destroy();
  }
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  for (const s of schemas) {
    // staging or old schemas a failed test may have left
    const { rows } = await pool.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1)`, [`${s}_`]);
    for (const r of rows) await pool.query(`DROP SCHEMA IF EXISTS "${r.nspname}" CASCADE`);
  }
  for (const r of roles) {
    await pool.query(`DROP OWNED BY "${r}"`).catch(() => undefined);
    await pool.query(`DROP ROLE IF EXISTS "${r}"`).catch(() => undefined);
  }
  await pool.end();
});

/** A migrated PostgreSQL store in a fresh schema (dropped after the file). */
async function pgStore(schema = `crr_t_${uniq()}_r`): Promise<PostgresStore> {
  schemas.push(schema);
  const store = new PostgresStore({ connectionString: PG_URL, schema });
  await store.migrate();
  return store;
}

/** Schemas whose name starts with `prefix`. */
async function schemasLike(store: PostgresStore, prefix: string): Promise<string[]> {
  const { rows } = await store.pool.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE starts_with(nspname, $1) ORDER BY nspname`, [prefix]);
  return rows.map((r) => r.nspname);
}

/** A primary's store: `n` vertices, `n/2` edges, a catalog, positions of its own topics, epoch 5. */
async function fillPrimary(store: Store, n: number, topics = { data: 'graph.data', metadata: 'graph.metadata' }): Promise<void> {
  const e = new Events();
  await store.applyBatch(
    [
      e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'person', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }),
      e.ev({ op: 'CREATE_EDGE_TYPE', name: 'knows', fromType: 'person', toType: 'person', directed: true, attributes: [] }),
      e.ev({ op: 'CREATE_USER', name: 'ops', roles: ['admin'] }),
    ],
    [{ topic: topics.metadata, partition: 0, nextOffset: 3 }],
  );
  for (let i = 0; i < n; i += 5000) {
    const k = Math.min(5000, n - i);
    await store.applyBatch(
      Array.from({ length: k }, (_, j) => e.upsertV('person', `p${String(i + j).padStart(7, '0')}`, { n: i + j, s: 'x'.repeat(40) })),
      [{ topic: topics.data, partition: (i / 5000) % 3, nextOffset: i + k }],
    );
  }
  const edges = Array.from({ length: Math.floor(n / 2) }, (_, j) =>
    e.upsertE('knows', ['person', `p${String(j).padStart(7, '0')}`], ['person', `p${String((j * 7) % n).padStart(7, '0')}`], {}),
  );
  for (let i = 0; i < edges.length; i += 5000) await store.applyBatch(edges.slice(i, i + 5000), []);
  await store.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 5 });
}

/** A replica's own older content: other rows, upstream and downstream positions, OUTDATED. */
async function fillReplica(store: Store, topics = { data: 'graph.data', remoteData: 'primary.graph.data' }): Promise<void> {
  const e = new Events();
  await store.applyBatch(
    [e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'city', primaryIdType: 'STRING', attributes: [] }), e.upsertV('city', 'oslo', {}), e.upsertV('city', 'lima', {})],
    [
      { topic: topics.remoteData, partition: 0, nextOffset: 77 },
      { topic: topics.data, partition: 0, nextOffset: 70 },
    ],
  );
  await store.setClusterState({ role: 'replica', state: 'OUTDATED', epoch: 4, reason: 'epoch 5 seen' });
}

function repository(prefix: string): S3Repository {
  return new S3Repository({ bucket, prefix, endpoint: S3_ENDPOINT, region: S3_REGION, forcePathStyle: true, credentials: S3_CREDENTIALS });
}

async function rejection(p: Promise<unknown>): Promise<CrrError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CrrError);
  return err as CrrError;
}

describe(`restore of PostgreSQL stores from S3 (${S3_ENDPOINT})`, () => {
  it('replaces the live state atomically: a second connection reads the old state until the swap, the new one after', async () => {
    const a = await pgStore();
    const b = await pgStore();
    const reader = new PostgresStore({ connectionString: PG_URL, schema: b.schema, poolMax: 1 });
    const repo = repository(`lib-${uniq()}`);
    try {
      await fillPrimary(a, 12_000);
      await fillReplica(b);
      const manifest = await createBackup(a, repo, { cluster: 'primary', partSizeBytes: 256 * 1024 });
      expect(manifest.parts.length).toBeGreaterThan(2);
      const oldDigest = await reader.digest();
      const phases: string[] = [];
      const { result } = await restoreBackup(b, repo, manifest.id, {
        batchRows: 2000,
        clusterState: (m) => ({ role: 'replica', state: 'REPLICATING', epoch: m.epoch }),
        onProgress: (p) => {
          if (phases.at(-1) !== p.phase) phases.push(p.phase);
        },
      });
      expect(phases).toEqual(['load', 'verify', 'swap', 'done']);
      expect(result).toMatchObject({ schema: b.schema, swapped: true, vertices: 12_000, edges: 6000, catalog: 3 });
      expect(await reader.digest()).toBe(await a.digest());
      expect(await b.positions()).toEqual(manifest.positions);
      expect(await b.clusterState()).toMatchObject({ role: 'replica', state: 'REPLICATING', epoch: 5 });
      expect(await schemasLike(b, b.schema)).toEqual([b.schema]);
      expect(oldDigest).not.toBe(await a.digest());

      // reads during a restore, through the second connection: while loading, and right before the swap
      await fillReplica(b, { data: 'graph.data', remoteData: 'primary.graph.data' }); // some writes on top of the restored state
      const liveBefore = await reader.digest();
      const during: string[] = [];
      await b.restore(
        manifest,
        (async function* () {
          const { readBackup } = await import('../../src/backup/catalog.js');
          for await (const batch of readBackup(repo, manifest.id, { batchRows: 3000 })) {
            during.push(await reader.digest());
            yield batch;
          }
        })(),
        { beforeSwap: async () => void during.push(await reader.digest()) },
      );
      expect(during.length).toBeGreaterThan(3);
      expect(new Set(during)).toEqual(new Set([liveBefore]));
      expect(await reader.digest()).toBe(await a.digest());
    } finally {
      repo.close();
      await reader.close();
      await a.close();
      await b.close();
    }
  });

  it('a reader transaction open across the swap keeps the old state; the swap commits once it ends, and new reads see the restored state', async () => {
    const a = await pgStore();
    const b = await pgStore();
    const repo = repository(`tx-${uniq()}`);
    const conn = new pg.Client({ connectionString: PG_URL });
    await conn.connect();
    try {
      await fillPrimary(a, 3000);
      await fillReplica(b);
      const manifest = await createBackup(a, repo, { cluster: 'primary' });
      const count = async (): Promise<number> => Number((await conn.query(`SELECT count(*) AS n FROM "${b.schema}".vertices`)).rows[0].n);
      await conn.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
      expect(await count()).toBe(2);
      let swapping!: () => void;
      const atSwap = new Promise<void>((r) => (swapping = r));
      let finished = false;
      const restoring = restoreBackup(b, repo, manifest.id, { onProgress: (p) => p.phase === 'swap' && swapping() }).then((r) => {
        finished = true;
        return r;
      });
      await atSwap;
      // the swap waits for the reader: a session of the database is blocked by the reader's locks
      const readerPid = (await conn.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      const watcher = new pg.Client({ connectionString: PG_URL });
      await watcher.connect();
      try {
        await waitFor(
          "the swap to wait for the reader's lock",
          async () => (await watcher.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [readerPid])).rows[0].n > 0,
          30_000,
          50,
        );
      } finally {
        await watcher.end();
      }
      // and the reader still sees the old state
      expect(finished).toBe(false);
      expect(await count()).toBe(2);
      await conn.query('COMMIT');
      const { result } = await restoring;
      expect(result.swapped).toBe(true);
      expect(await count()).toBe(3000);
      expect(await b.digest()).toBe(await a.digest());

      // a reader that never ends: the swap gives up after its attempts, nothing changed, no schema left
      await fillReplica(b);
      const liveNow = await b.digest();
      await conn.query('BEGIN');
      expect(await count()).toBe(3002);
      const err = await rejection(restoreBackup(b, repo, manifest.id, { swapLockTimeoutMs: 200, swapAttempts: 2 }));
      expect(err).toMatchObject({ code: 'CRR_STORE', retriable: true });
      expect(err.message).toContain('waited 2 times 200 ms for readers');
      await conn.query('COMMIT');
      expect(await b.digest()).toBe(liveNow);
      expect(await schemasLike(b, b.schema)).toEqual([b.schema]);
    } finally {
      await conn.end();
      repo.close();
      await a.close();
      await b.close();
    }
  });

  it('a corrupted part and a missing part in S3 are refused naming the part; the live state and its digest are unchanged, no staging schema left', async () => {
    const a = await pgStore();
    const b = await pgStore();
    const prefix = `bad-${uniq()}`;
    const repo = repository(prefix);
    try {
      await fillPrimary(a, 6000);
      await fillReplica(b);
      const manifest = await createBackup(a, repo, { cluster: 'primary', partSizeBytes: 128 * 1024 });
      const before = { digest: await b.digest(), positions: await b.positions(), state: await b.clusterState() };
      const key = (name: string): string => `${prefix}/${manifest.id}/${name}`;
      const lastPart = manifest.parts.at(-1)!;
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key(lastPart.name) }));
      const bytes = Buffer.from(await res.Body!.transformToByteArray());
      bytes[Math.floor(bytes.length / 2)]! ^= 0x04;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key(lastPart.name), Body: bytes }));
      let err = await rejection(restoreBackup(b, repo, manifest.id));
      expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', part: lastPart.name, problem: 'corrupt' });
      expect(await b.digest()).toBe(before.digest);
      expect(await b.positions()).toEqual(before.positions);
      expect(await b.clusterState()).toEqual(before.state);
      expect(await schemasLike(b, b.schema)).toEqual([b.schema]);

      const second = manifest.parts[1]!;
      await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key(second.name) }));
      err = await rejection(restoreBackup(b, repo, manifest.id));
      expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', part: second.name, problem: 'missing' });
      expect(await b.digest()).toBe(before.digest);
      expect(await schemasLike(b, b.schema)).toEqual([b.schema]);
    } finally {
      repo.close();
      await a.close();
      await b.close();
    }
  });

  it('crr restore end to end into a fenced replica: the plan, the restore, --as, errors; the app role reads and cannot write the new live schema', async () => {
    const pair = testPair();
    schemas.push(pair.primarySchema, pair.drSchema);
    roles.push(pair.appRole, pair.replayRole);
    const config = parseYaml(readFileSync(pair.configPath, 'utf8')) as Record<string, any>;
    const prefix = `cli-${pair.id}`;
    config.clusters[pair.source].backup = { repository: { type: 's3', bucket, prefix, endpoint: S3_ENDPOINT, region: S3_REGION, forcePathStyle: true } };
    config.clusters.nostore = { bootstrapServers: [DR] };
    writeFileSync(pair.configPath, stringify(config));
    const env = { AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey };
    const crr = (...args: string[]) => runCrr(['restore', '--config', pair.configPath, ...args], env);

    const primary = new PostgresStore({ connectionString: PG_URL, schema: pair.primarySchema });
    const dr = new PostgresStore({ connectionString: PG_URL, schema: pair.drSchema });
    const app = new pg.Pool({ connectionString: PG_URL.replace('postgres@', `${pair.appRole}@`), max: 1 });
    try {
      await primary.migrate();
      await fillPrimary(primary, 3000, { data: pair.dataTopic, metadata: pair.metadataTopic });
      await dr.migrate();
      await fillReplica(dr, { data: pair.dataTopic, remoteData: pair.remote(pair.dataTopic) });
      await fence(dr.pool, { schema: pair.drSchema, appRole: pair.appRole, replayRole: pair.replayRole });
      const before = await dr.digest();

      const created = await runCrr(['backup', 'create', '--config', pair.configPath, '--cluster', pair.source, '--json'], env);
      expect(created.code, created.stderr).toBe(0);
      const id = (JSON.parse(created.stdout) as { id: string }).id;

      // the plan: nothing changes
      const plan = await crr('--cluster', pair.target, '--backup', id);
      expect(plan.code, plan.stderr).toBe(0);
      expect(plan.stdout).toContain(`would restore backup ${id}`);
      expect(plan.stdout).toMatch(/epoch 5; 4500 records \(3000 vertices, 1500 edges\), 3 catalog entries, 2 parts/);
      expect(plan.stdout).toContain(`target: schema ${pair.drSchema} of the postgres store; its live state will be REPLACED`);
      const planJson = JSON.parse((await crr('--cluster', pair.target, '--backup', id, '--json')).stdout);
      expect(planJson).toMatchObject({
        executed: false,
        backup: id,
        from: pair.source,
        epoch: 5,
        records: 4500,
        schema: pair.drSchema,
        replacesLiveState: true,
      });
      expect(await dr.digest()).toBe(before);

      // errors: unknown backup 2, unknown cluster 2, no store 78, bad --as 2
      const unknown = await crr('--cluster', pair.target, '--backup', '20200101T000000Z-nope-abcd', '--execute');
      expect(unknown.code).toBe(2);
      expect(unknown.stderr).toContain('no backup 20200101T000000Z-nope-abcd');
      expect((await crr('--cluster', 'nope', '--backup', id)).code).toBe(2);
      const nostore = await crr('--cluster', 'nostore', '--from', pair.source, '--backup', id, '--execute');
      expect(nostore.code).toBe(78);
      expect(nostore.stderr).toContain('clusters.nostore.store');
      expect((await crr('--cluster', pair.target, '--backup', id, '--as', 'Bad-Name', '--execute')).code).toBe(2);

      // the restore
      const done = await crr('--cluster', pair.target, '--backup', id, '--execute', '--json');
      expect(done.code, done.stderr).toBe(0);
      const summary = JSON.parse(done.stdout);
      expect(summary).toMatchObject({
        backup: id,
        schema: pair.drSchema,
        swapped: true,
        epoch: 5,
        totals: { vertices: 3000, edges: 1500, catalog: 3 },
        clusterState: { role: 'replica', state: 'REPLICATING', epoch: 5 },
        fenced: true,
        published: true,
      });
      expect(await dr.digest()).toBe(await primary.digest());
      expect(await dr.positions()).toEqual(await primary.positions()); // upstream positions only: no downstream rows
      expect(await dr.clusterState()).toMatchObject({ role: 'replica', state: 'REPLICATING', epoch: 5 });
      expect(await schemasLike(dr, pair.drSchema)).toEqual([pair.drSchema]);

      // the write fence holds on the new live schema
      const { rows } = await app.query(`SELECT count(*)::int AS n FROM "${pair.drSchema}".live_vertices`);
      expect(rows[0].n).toBe(3000);
      const write = await app.query(`INSERT INTO "${pair.drSchema}".vertices (type, id, attributes) VALUES ('person', 'x', '{}')`).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(write).toMatchObject({ code: '42501' });

      // published to the replica's Kafka
      const k = await kafkaClient(DR);
      const adm = await kafkaAdmin(DR);
      try {
        expect(await readPublishedClusterState(k, adm, pair.target)).toMatchObject({ role: 'replica', state: 'REPLICATING', epoch: 5 });
      } finally {
        await adm.disconnect();
      }

      // --as: beside the live state; a second time, refused
      const as = `${pair.drSchema}_copy`;
      schemas.push(as);
      const beside = await crr('--cluster', pair.target, '--backup', id, '--as', as, '--execute');
      expect(beside.code, beside.stderr).toBe(0);
      expect(beside.stdout).toContain(`restored backup ${id} as schema ${as}, beside the live state`);
      const copy = new PostgresStore({ connectionString: PG_URL, schema: as });
      expect(await copy.digest()).toBe(await primary.digest());
      await copy.close();
      const again = await crr('--cluster', pair.target, '--backup', id, '--as', as, '--execute');
      expect(again.code).toBe(2);
      expect(again.stderr).toContain(`as schema ${as}: it exists already`);

      // a corrupted part: exit 1 naming it, the live state unchanged
      await fillReplica(dr, { data: pair.dataTopic, remoteData: pair.remote(pair.dataTopic) });
      const liveNow = await dr.digest();
      const partKey = `${prefix}/${id}/vertices-00001.ndjson.gz`;
      const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: partKey }));
      const bytes = Buffer.from(await res.Body!.transformToByteArray());
      bytes[bytes.length - 6]! ^= 0x01;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: partKey, Body: bytes }));
      const bad = await crr('--cluster', pair.target, '--backup', id, '--execute');
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain('vertices-00001.ndjson.gz');
      expect(bad.stderr).toContain('the live state is unchanged');
      expect(await dr.digest()).toBe(liveNow);
      expect(await schemasLike(dr, pair.drSchema)).toEqual([pair.drSchema, as]);
    } finally {
      await app.end();
      await primary.close();
      await dr.close();
    }
  });
});
