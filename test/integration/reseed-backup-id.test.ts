import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeleteObjectsCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { reseeding } from '../../src/cluster/cluster-state.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { PG_URL, runCrr, uniq, useCrrProcesses, waitFor, type TestPair } from '../support/helpers.js';
import { type ReseedPair, useReseedPairs } from '../support/reseed-pair.js';
import { s3Client } from '../support/s3-helpers.js';

// issue 11 item 5: a resumed reseed finds its backup by a field of the cluster state (not by
// parsing the reason), the backup it uses is pinned against prune and delete, and a backup that
// vanished makes it take a fresh one.

const start = useCrrProcesses();
const makePair = useReseedPairs();
const s3 = s3Client();
const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
afterAll(async () => {
  await pool.end();
});

/** A pair (reseed mode manual) whose primary backs up to a fresh S3 bucket, 1 MiB parts, with `retention`. */
function reseedPair(retention: Record<string, number> = {}): Promise<ReseedPair> {
  return makePair({ mode: 'manual', dataPartitions: 1, bucketPrefix: 'reseedid', backup: { partSizeBytes: 1024 * 1024, retention } });
}

/** Bulk-loads `n` cities (ids from `from`) into the primary's store with `crr admin import` (raises its epoch). */
async function importCities(p: TestPair, from: number, n: number): Promise<void> {
  const file = join(tmpdir(), 'crr-tests', `reseedid-${uniq()}.ndjson`);
  const lines = [
    {
      op: 'CREATE_VERTEX_TYPE',
      name: 'City',
      primaryIdType: 'STRING',
      attributes: [
        { name: 'n', type: 'INT' },
        { name: 'name', type: 'STRING' },
      ],
    },
    ...Array.from({ length: n }, (_, i) => ({
      op: 'UPSERT_VERTEX',
      vertex: { type: 'City', id: `c${from + i}` },
      attributes: { n: from + i, name: `city ${from + i}` },
    })),
  ];
  writeFileSync(file, lines.map((e) => JSON.stringify(e)).join('\n'));
  const r = await runCrr(['admin', 'import', '--config', p.configPath, '--cluster', p.source, '--file', file, '--force', '--execute']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

/** The keys of the bucket under `prefix` (the repository's own prefix, `crr/`, included). */
const keys = async (p: { bucket: string }, prefix = ''): Promise<string[]> =>
  ((await s3.send(new ListObjectsV2Command({ Bucket: p.bucket, Prefix: prefix }))).Contents ?? []).map((o) => o.Key!);

/** The ids of the primary's complete backups, oldest first (`crr backup list --json`). */
async function backupIds(p: TestPair): Promise<string[]> {
  const r = await runCrr(['backup', 'list', '--config', p.configPath, '--cluster', p.source, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as Array<{ id: string }>).map((b) => b.id);
}

/** The replica's content equals the primary's (digest over every vertex, edge and catalog entry). */
async function expectEqualStores(p: TestPair): Promise<void> {
  const primary = new PostgresStore({ connectionString: PG_URL, schema: p.primarySchema });
  const replica = new PostgresStore({ connectionString: PG_URL, schema: p.drSchema });
  try {
    expect(await replica.counts()).toEqual(await primary.counts());
    expect(await replica.digest()).toBe(await primary.digest());
  } finally {
    await Promise.all([primary.close(), replica.close()]);
  }
}

const replicaState = async (p: TestPair): Promise<Record<string, unknown> | undefined> =>
  (await pool.query(`SELECT * FROM "${p.drSchema}".cluster_state`).catch(() => ({ rows: [] }))).rows[0];

const stagingSchemas = async (p: TestPair): Promise<string[]> =>
  (await pool.query<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE starts_with(nspname, $1)`, [`${p.drSchema}_restore_`])).rows.map((r) => r.n);

/** Starts `crr reseed --execute` and SIGKILLs it once its restore loads a staging schema: the replica is left RESEEDING with its backup. */
async function reseedKilledDuringRestore(p: TestPair): Promise<void> {
  const run = start(['reseed', '--config', p.configPath, '--cluster', p.target, '--execute']);
  await waitFor('the restore to load a staging schema', async () => (await stagingSchemas(p)).length > 0, 60_000, 20);
  run.child.kill('SIGKILL');
  await run.exited;
  expect((await replicaState(p))?.state).toBe('RESEEDING');
}

describe('reseed: the backup a reseed uses is recorded in the cluster state', () => {
  it('an operator reason that names another backup does not make a resumed reseed restore that backup', async () => {
    const p = await reseedPair();
    await importCities(p, 0, 100);
    const made = await runCrr(['backup', 'create', '--config', p.configPath, '--cluster', p.source, '--json']);
    expect(made.code, made.stderr).toBe(0);
    const older = (JSON.parse(made.stdout) as { id: string }).id;
    await importCities(p, 100, 200); // the primary moves on: `older` no longer holds its state

    // The state `crr run` records when a reseed it started is killed while taking its backup, after
    // an operator ran `crr admin drop-all --reason "restoring backup <older> as asked"`: the
    // daemon's reseed reason quotes the sync break, which quotes the operator's --reason.
    const replica = new PostgresStore({ connectionString: PG_URL, schema: p.drSchema });
    try {
      await replica.migrate();
      await replica.setClusterState(
        reseeding(0, `reseed (sync-breaking DROP_ALL at ${p.metadataTopic}[0]@7: restoring backup ${older} as asked): taking a backup of ${p.source}`),
      );
    } finally {
      await replica.close();
    }

    const done = await runCrr(['reseed', '--config', p.configPath, '--cluster', p.target, '--execute']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stdout, 'the reseed restored the backup named in the reason').not.toContain(older);
    expect(done.stdout).not.toMatch(/resumed/);
    await expectEqualStores(p);
    const fresh = /from backup (\S+) of/.exec(done.stdout)![1]!;
    expect(await replicaState(p)).toMatchObject({ state: 'REPLICATING', backup_id: fresh });
  }, 120_000);

  it('a resumed reseed whose backup was deleted by hand warns, naming it, and takes a fresh backup instead of failing', async () => {
    const p = await reseedPair();
    await importCities(p, 0, 40_000);
    await reseedKilledDuringRestore(p);
    const [lost] = await backupIds(p);
    expect(lost).toBeDefined();
    // deleted by hand, as `aws s3 rm --recursive s3://<bucket>/<id>/` would
    const objects = await keys(p, `crr/${lost}/`);
    expect(objects.length).toBeGreaterThan(1);
    await s3.send(new DeleteObjectsCommand({ Bucket: p.bucket, Delete: { Objects: objects.map((Key) => ({ Key })) } }));

    const done = await runCrr(['reseed', '--config', p.configPath, '--cluster', p.target, '--execute']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stderr).toContain(lost);
    expect(done.stderr).toMatch(/no longer usable|taking a fresh one/);
    const fresh = /from backup (\S+) of/.exec(done.stdout)![1]!;
    expect(fresh).not.toBe(lost);
    expect(done.stdout).not.toMatch(/resumed/);
    expect(await stagingSchemas(p)).toEqual([]);
    await expectEqualStores(p);
    expect(await replicaState(p)).toMatchObject({ state: 'REPLICATING', backup_id: fresh });
    expect(await backupIds(p)).toEqual([fresh]);
  }, 180_000);

  it('a resumed reseed whose backup has a corrupt part takes a fresh backup in the same run, naming the part', async () => {
    const p = await reseedPair();
    await importCities(p, 0, 40_000);
    await reseedKilledDuringRestore(p);
    const [damaged] = await backupIds(p);
    const part = (await keys(p, `crr/${damaged}/`)).find((k) => k.endsWith('vertices-00002.ndjson.gz'))!;
    expect(part).toBeDefined();
    await s3.send(new PutObjectCommand({ Bucket: p.bucket, Key: part, Body: Buffer.from('not gzip at all') }));

    const done = await runCrr(['reseed', '--config', p.configPath, '--cluster', p.target, '--execute']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stderr).toContain(damaged);
    expect(done.stderr).toContain('vertices-00002.ndjson.gz');
    const fresh = /from backup (\S+) of/.exec(done.stdout)![1]!;
    expect(fresh).not.toBe(damaged);
    expect(await stagingSchemas(p)).toEqual([]);
    await expectEqualStores(p);
    expect(await replicaState(p)).toMatchObject({ state: 'REPLICATING', backup_id: fresh });
    expect((await keys(p)).filter((k) => k.includes('/pins/'))).toEqual([]);
  }, 180_000);

  it('the backup a reseed uses is pinned: prune keeps it and delete refuses it until the reseed completes, which removes the pin', async () => {
    const p = await reseedPair({ keepLast: 1 });
    await importCities(p, 0, 40_000);
    await reseedKilledDuringRestore(p);
    const [inUse] = await backupIds(p);
    expect(await replicaState(p)).toMatchObject({ state: 'RESEEDING', backup_id: inUse });
    expect(await keys(p, `crr/${inUse}/pins/`)).toEqual([`crr/${inUse}/pins/${p.target}.json`]);
    const listed = await runCrr(['backup', 'list', '--config', p.configPath, '--cluster', p.source]);
    expect(listed.stdout).toMatch(new RegExp(`${inUse} .* complete\\s+${p.target}`));
    expect(listed.stdout).toContain(`${inUse}: pinned by ${p.target} (reseed, crr reseed pid`);

    // a newer backup: retention (keepLast 1) would now delete the one the reseed uses
    const made = await runCrr(['backup', 'create', '--config', p.configPath, '--cluster', p.source, '--json']);
    expect(made.code, made.stderr).toBe(0);
    const newer = (JSON.parse(made.stdout) as { id: string }).id;
    const pruned = await runCrr(['backup', 'prune', '--config', p.configPath, '--cluster', p.source, '--execute', '--json']);
    expect(pruned.code, pruned.stderr).toBe(0);
    const plan = JSON.parse(pruned.stdout) as { deleted: unknown[]; pinned: Array<{ id: string; reason: string; pins: Array<{ cluster: string }> }> };
    expect(plan.deleted).toEqual([]);
    expect(plan.pinned).toMatchObject([{ id: inUse, reason: 'not among the newest 1 complete backups', pins: [{ cluster: p.target, purpose: 'reseed' }] }]);
    const refused = await runCrr(['backup', 'delete', '--config', p.configPath, '--cluster', p.source, inUse!, '--execute']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(3);
    expect(refused.stderr).toMatch(new RegExp(`backup ${inUse} is pinned by ${p.target} \\(reseed`));
    expect(await backupIds(p)).toEqual([inUse, newer]);

    // the reseed resumes with it (its id from the state) and completes: the pin goes, and prune may delete it
    const done = await runCrr(['reseed', '--config', p.configPath, '--cluster', p.target, '--execute']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stdout).toContain(`from backup ${inUse} of ${p.source}: 40000 records`);
    expect(done.stdout).toMatch(/resumed with the backup of an earlier attempt/);
    expect(await keys(p, `crr/${inUse}/pins/`)).toEqual([]);
    expect(await replicaState(p)).toMatchObject({ state: 'REPLICATING', backup_id: inUse });
    await expectEqualStores(p);
    const prunedAfter = await runCrr(['backup', 'prune', '--config', p.configPath, '--cluster', p.source, '--execute']);
    expect(prunedAfter.code, prunedAfter.stderr).toBe(0);
    expect(prunedAfter.stdout).toContain(inUse);
    expect(await backupIds(p)).toEqual([newer]);
  }, 180_000);

  it('crr restore records the backup it restored and, once the live state is replaced, removes the stale pins of the cluster', async () => {
    const p = await reseedPair();
    await importCities(p, 0, 100);
    const ids: string[] = [];
    for (let i = 0; i < 2; i++) {
      const made = await runCrr(['backup', 'create', '--config', p.configPath, '--cluster', p.source, '--json']);
      expect(made.code, made.stderr).toBe(0);
      ids.push((JSON.parse(made.stdout) as { id: string }).id);
    }
    // the pin an abandoned reseed of the replica left on the older backup
    const stale = `crr/${ids[0]}/pins/${p.target}.json`;
    const body = { backupId: ids[0], cluster: p.target, purpose: 'reseed', holder: 'crr run --cluster dr pid 1 on gone', pinnedAt: '2026-01-01T00:00:00Z' };
    await s3.send(new PutObjectCommand({ Bucket: p.bucket, Key: stale, Body: JSON.stringify(body) }));
    expect((await runCrr(['backup', 'list', '--config', p.configPath, '--cluster', p.source])).stdout).toContain(`${ids[0]}: pinned by ${p.target} (reseed`);

    const restored = await runCrr(['restore', '--config', p.configPath, '--cluster', p.target, '--backup', ids[1]!, '--execute', '--json']);
    expect(restored.code, restored.stdout + restored.stderr).toBe(0);
    expect(JSON.parse(restored.stdout)).toMatchObject({ swapped: true, clusterState: { role: 'replica', state: 'REPLICATING', backupId: ids[1] } });
    expect(await replicaState(p)).toMatchObject({ state: 'REPLICATING', backup_id: ids[1] });
    expect((await keys(p)).filter((k) => k.includes('/pins/'))).toEqual([]);
    await expectEqualStores(p);
  }, 120_000);
});
