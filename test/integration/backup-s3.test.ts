import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { listBackups, readBackup } from '../../src/backup/catalog.js';
import { deleteBackup } from '../../src/backup/retention.js';
import { S3Repository } from '../../src/backup/s3-repository.js';
import { verifyBackup } from '../../src/backup/verify.js';
import { createBackup } from '../../src/backup/write.js';
import { CrrError } from '../../src/errors.js';
import { PostgresStore } from '../../src/store/postgres.js';
import type { EdgeRow, Store, VertexRow } from '../../src/store/store.js';
import { PG_URL, PRIMARY, runCrr, startCrr, uniq, waitFor } from '../support/helpers.js';
import { dropBucket, freshBucket, s3Client, S3_CREDENTIALS, S3_ENDPOINT, S3_REGION } from '../support/s3-helpers.js';
import { Events } from '../support/store-events.js';

// Backups of a PostgreSQL store into the real S3 API server started by test/support/global-setup.ts
// (scripts/s3.sh: S3Proxy), through the library and through `crr backup` (runs dist/: npm run build).

const MiB = 1024 * 1024;
const schemas: string[] = [];
let client: S3Client;
let bucket: string;

beforeAll(async () => {
  client = s3Client();
  bucket = await freshBucket(client, 'backup');
});

afterAll(async () => {
  if (client) {
    await dropBucket(client, bucket).catch(() => undefined);
    client.destroy();
  }
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  for (const s of schemas) await pool.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
  await pool.end();
});

/** A migrated PostgreSQL store in a fresh schema (dropped after the file). */
async function pgStore(): Promise<PostgresStore> {
  const schema = `crr_t_${uniq()}_b`;
  schemas.push(schema);
  const store = new PostgresStore({ connectionString: PG_URL, schema });
  await store.migrate();
  return store;
}

/**
 * `vertices` vertices carrying ~200 bytes of random (barely compressible) text each, so that a
 * part's gzip passes the 5 MiB multipart threshold; `edges` edges; a catalog; positions; epoch 4.
 */
async function fill(store: Store, vertices: number, edges: number): Promise<void> {
  const e = new Events();
  await store.applyBatch(
    [
      e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'doc', primaryIdType: 'STRING', attributes: [{ name: 'blob', type: 'STRING' }] }),
      e.ev({ op: 'CREATE_USER', name: 'ops', roles: ['admin'] }),
    ],
    [{ topic: 'graph.metadata', partition: 0, nextOffset: 2 }],
  );
  for (let i = 0; i < vertices; i += 5000) {
    const n = Math.min(5000, vertices - i);
    const batch = Array.from({ length: n }, (_, j) =>
      e.upsertV('doc', `d${String(i + j).padStart(7, '0')}`, { blob: randomBytes(150).toString('base64'), n: i + j }),
    );
    await store.applyBatch(batch, [{ topic: 'graph.data', partition: 0, nextOffset: i + n }]);
  }
  for (let i = 0; i < edges; i += 5000) {
    const n = Math.min(5000, edges - i);
    const batch = Array.from({ length: n }, (_, j) =>
      e.upsertE('links', ['doc', `d${String(i + j).padStart(7, '0')}`], ['doc', `d${String(((i + j) * 13) % Math.max(vertices, 1)).padStart(7, '0')}`], {
        w: (i + j) % 10,
      }),
    );
    await store.applyBatch(batch, [{ topic: 'graph.data', partition: 1, nextOffset: i + n }]);
  }
  await store.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 4 });
}

/** Every row of a store, in primary-key order. */
async function storeRows(store: Store): Promise<{ vertices: VertexRow[]; edges: EdgeRow[] }> {
  const out = { vertices: [] as VertexRow[], edges: [] as EdgeRow[] };
  await store.exportSnapshot({
    header: async () => undefined,
    vertices: async (r) => void out.vertices.push(...r),
    edges: async (r) => void out.edges.push(...r),
  });
  return out;
}

function repository(prefix: string): S3Repository {
  return new S3Repository({
    bucket,
    prefix,
    endpoint: S3_ENDPOINT,
    region: S3_REGION,
    forcePathStyle: true,
    credentials: S3_CREDENTIALS,
    uploadPartBytes: 5 * MiB,
  });
}

async function objectBytes(key: string): Promise<Buffer> {
  const res = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await res.Body!.transformToByteArray());
}

describe(`backups in S3 (${S3_ENDPOINT})`, () => {
  it('round trip of 50,000 rows with multipart uploads; list, verify, a corrupted and a missing part named, delete', async () => {
    const store = await pgStore();
    const prefix = `lib-${uniq()}`;
    const repo = repository(prefix);
    try {
      await fill(store, 42_000, 8_000);
      const manifest = await createBackup(store, repo, { cluster: 'primary', partSizeBytes: 9 * MiB });
      expect(manifest).toMatchObject({ cluster: 'primary', epoch: 4, positions: await store.positions() });
      expect(manifest.totals).toMatchObject({ vertices: 42_000, edges: 8_000, catalog: 2 });
      const vParts = manifest.parts.filter((p) => p.kind === 'vertices');
      expect(vParts.length).toBeGreaterThanOrEqual(2);
      // the first vertices part is above S3's 5 MiB part size: it went up as a multipart upload
      const big = vParts.find((p) => p.bytes > 5 * MiB);
      expect(big, 'a part larger than one upload part').toBeDefined();
      const key = (name: string): string => `${prefix}/${manifest.id}/${name}`;
      const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key(big!.name) }));
      expect(head.ETag).toMatch(/-\d+"$/); // S3's ETag of a multipart object: "<md5 of md5s>-<parts>"
      expect(head.ContentLength).toBe(big!.bytes);

      // the rows read back from S3 are the store's rows
      const back = { vertices: [] as VertexRow[], edges: [] as EdgeRow[] };
      for await (const b of readBackup(repo, manifest.id)) {
        if (b.kind === 'vertices') back.vertices.push(...b.rows);
        else back.edges.push(...b.rows);
      }
      expect(back).toEqual(await storeRows(store));

      expect((await listBackups(repo)).map((b) => [b.id, b.status])).toEqual([[manifest.id, 'complete']]);
      expect(await verifyBackup(repo, manifest.id)).toMatchObject({ ok: true, partsChecked: manifest.parts.length, records: 50_000, problems: [] });

      // one byte flipped in an edges part, one vertices part gone: both named
      const edgesPart = manifest.parts.find((p) => p.kind === 'edges')!;
      const bytes = await objectBytes(key(edgesPart.name));
      bytes[Math.floor(bytes.length / 3)]! ^= 0x10;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key(edgesPart.name), Body: bytes }));
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key(vParts[1]!.name) }));
      const check = await verifyBackup(repo, manifest.id);
      expect(check.ok).toBe(false);
      expect(check.problems.map((p) => [p.part, p.problem])).toEqual([
        [vParts[1]!.name, 'missing'],
        [edgesPart.name, 'corrupt'],
      ]);
      const err = await (async () => {
        for await (const _ of readBackup(repo, manifest.id));
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CrrError);
      expect((err as CrrError).message).toContain(`part ${vParts[1]!.name} is missing`);

      expect(await deleteBackup(repo, manifest.id)).toMatchObject({ id: manifest.id, objects: manifest.parts.length }); // the missing part is gone already
      expect(await listBackups(repo)).toEqual([]);
    } finally {
      repo.close();
      await store.close();
    }
  });

  it('refuses a bucket that does not exist, as a repository error naming it', async () => {
    const repo = new S3Repository({
      bucket: `${bucket}-nope`,
      prefix: 'crr',
      endpoint: S3_ENDPOINT,
      region: S3_REGION,
      forcePathStyle: true,
      credentials: S3_CREDENTIALS,
      maxAttempts: 1,
    });
    try {
      const err = await listBackups(repo).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(CrrError);
      expect(err).toMatchObject({ code: 'CRR_REPOSITORY', retriable: false });
      expect((err as CrrError).message).toContain(`s3://${bucket}-nope/crr`);
    } finally {
      repo.close();
    }
  });

  it('crr backup create / list / verify / delete / prune end to end, credentials from the standard AWS chain', async () => {
    const store = await pgStore();
    const e = new Events();
    await store.applyBatch(
      [e.ev({ op: 'CREATE_USER', name: 'u' }), ...Array.from({ length: 1500 }, (_, i) => e.upsertV('person', `p${i}`, { i }))],
      [{ topic: 'graph.data', partition: 0, nextOffset: 1501 }],
    );
    await store.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 1 });
    await store.close();
    const alias = `p${uniq()}`;
    const dir = join(tmpdir(), 'crr-tests');
    mkdirSync(dir, { recursive: true });
    const configPath = join(dir, `backup-${alias}.yaml`);
    writeFileSync(
      configPath,
      stringify({
        clusters: {
          [alias]: {
            bootstrapServers: [PRIMARY],
            store: { type: 'postgres', connectionString: PG_URL, schema: schemas.at(-1) },
            backup: {
              repository: { type: 's3', bucket, prefix: `cli/${alias}`, endpoint: S3_ENDPOINT, region: S3_REGION, forcePathStyle: true },
              retention: { keepLast: 1 },
            },
          },
          nobackup: { bootstrapServers: [PRIMARY] },
        },
      }),
    );
    // no keys in the file: the AWS SDK's standard chain finds them in the environment
    const env = { AWS_ACCESS_KEY_ID: S3_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: S3_CREDENTIALS.secretAccessKey };
    const crr = (...args: string[]) => runCrr(['backup', ...args, '--config', configPath, '--cluster', alias], env);

    const created = await crr('create', '--json');
    expect(created.code, created.stderr).toBe(0);
    const first = JSON.parse(created.stdout) as { id: string; epoch: number; totals: { vertices: number; catalog: number } };
    expect(first).toMatchObject({ epoch: 1, totals: { vertices: 1500, catalog: 1 } });
    const human = await crr('create');
    expect(human.code, human.stderr).toBe(0);
    const second = /^created backup (\S+)$/m.exec(human.stdout)![1]!;

    const list = await crr('list');
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(new RegExp(`${first.id}\\s+\\S+Z\\s+1\\s+1500\\s+[\\d.]+ KiB\\s+1\\s+complete`));
    expect(list.stdout).toContain(second);
    const listed = JSON.parse((await crr('list', '--json')).stdout) as Array<{ id: string; status: string; records: number }>;
    expect(listed.map((b) => [b.id, b.status, b.records])).toEqual([
      [first.id, 'complete', 1500],
      [second, 'complete', 1500],
    ]);

    const verified = await crr('verify', first.id);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/1 of 1 parts, 1500 records, .* read\nOK/);

    // corrupt the part: verify exits 1 and names it
    const partKey = `cli/${alias}/${first.id}/vertices-00001.ndjson.gz`;
    const bytes = await objectBytes(partKey);
    bytes[bytes.length - 5]! ^= 0x01;
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: partKey, Body: bytes }));
    const bad = await crr('verify', first.id);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/PROBLEMS:\n {2}- vertices-00001\.ndjson\.gz: corrupt: /);

    // delete: a plan without --execute, then the deletion
    const plan = await crr('delete', first.id);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(new RegExp(`^would delete backup ${first.id} \\(complete,`));
    expect(JSON.parse((await crr('list', '--json')).stdout)).toHaveLength(2);
    const deleted = await crr('delete', first.id, '--execute');
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout).toMatch(/^deleted backup /);
    expect((JSON.parse((await crr('list', '--json')).stdout) as Array<{ id: string }>).map((b) => b.id)).toEqual([second]);
    const again = await crr('delete', first.id, '--execute');
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`no backup ${first.id}`);

    // prune with keepLast 1: a third backup makes the second one go, only with --execute
    const third = JSON.parse((await crr('create', '--json')).stdout) as { id: string };
    const dry = await crr('prune');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(new RegExp(`would delete:[\\s\\S]*${second}\\s+complete\\s+.*not among the newest 1 complete backups`));
    const pruned = await crr('prune', '--execute', '--json');
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(JSON.parse(pruned.stdout)).toMatchObject({ executed: true, deleted: [{ id: second }], kept: [third.id] });

    // a cluster without backup config: exit 78 naming the path
    const none = await runCrr(['backup', 'list', '--config', configPath, '--cluster', 'nobackup'], env);
    expect(none.code).toBe(78);
    expect(none.stderr).toContain('clusters.nobackup.backup');
  });

  it('crr backup create stopped by SIGTERM mid-upload: aborts the multipart upload, removes what it wrote, exits 143', async () => {
    // ~25 MiB of gzip in one part: the part goes up as a multipart upload of 8 MiB parts, over a few seconds
    const store = await pgStore();
    await fill(store, 150_000, 0);
    await store.close();
    const alias = `t${uniq()}`;
    const prefix = `sigterm/${alias}`;
    const dir = join(tmpdir(), 'crr-tests');
    mkdirSync(dir, { recursive: true });
    const configPath = join(dir, `backup-${alias}.yaml`);
    const repository = {
      type: 's3',
      bucket,
      prefix,
      endpoint: S3_ENDPOINT,
      region: S3_REGION,
      forcePathStyle: true,
      accessKeyId: S3_CREDENTIALS.accessKeyId,
      secretAccessKey: S3_CREDENTIALS.secretAccessKey,
    };
    writeFileSync(
      configPath,
      stringify({
        clusters: {
          [alias]: { bootstrapServers: [PRIMARY], store: { type: 'postgres', connectionString: PG_URL, schema: schemas.at(-1) }, backup: { repository } },
        },
      }),
    );
    const uploads = async () => (await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }))).Uploads ?? [];
    const objects = async () => (await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/` }))).Contents ?? [];

    const p = startCrr(['backup', 'create', '--config', configPath, '--cluster', alias]);
    try {
      await waitFor('a multipart upload in progress', async () => (await uploads()).length > 0 || p.child.exitCode !== null, 120_000, 100);
      expect(p.child.exitCode, `the backup ended before the signal: ${p.log()}`).toBeNull();
      p.child.kill('SIGTERM');
      const exit = await p.exited;
      expect(exit, p.log()).toEqual({ code: 143, signal: null });
      expect(p.log()).toContain('crr backup create: interrupted by SIGTERM');
      // the abort happened: no multipart upload left (its parts would be billed and invisible), no object of the backup
      expect(await uploads()).toEqual([]);
      expect(await objects()).toEqual([]);
    } finally {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    }
  });
});
