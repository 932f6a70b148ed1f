import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PostgresStore } from '../../src/store/postgres.js';
import { http, metricValue, PG_URL, runCrr, uniq, useCrrProcesses, waitFor, type TestPair } from '../support/helpers.js';
import { type ReseedPair, useReseedPairs, writeEvents } from '../support/reseed-pair.js';
import { s3Client } from '../support/s3-helpers.js';

const start = useCrrProcesses();
const makePair = useReseedPairs();
const s3 = s3Client();
const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
afterAll(async () => {
  await pool.end();
});

/** A pair whose primary backs up to a fresh S3 bucket, with reseed mode `mode`. */
function reseedPair(mode: 'auto' | 'manual', partSizeBytes = 1024 * 1024): Promise<ReseedPair> {
  return makePair({ mode, backup: { partSizeBytes } });
}

const upserts = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${(from + i) % 700}` }, attributes: { n: from + i } }));

const write = writeEvents;

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

async function caughtUp(p: TestPair, epoch: number): Promise<void> {
  await waitFor(
    `both stores caught up at epoch ${epoch}`,
    async () => {
      const [a, b] = await Promise.all([replay(p.primaryHttpPort).catch(() => undefined), replay(p.httpPort).catch(() => undefined)]);
      return a?.lagRecords === 0 && b?.state === 'active' && b.lagRecords === 0 && b.clusterState?.state === 'REPLICATING' && b.clusterState.epoch === epoch;
    },
    120_000,
    300,
  );
}

async function verifyEqual(p: TestPair): Promise<string> {
  const r = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '120000']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  return r.stdout;
}

describe('reseed: a sync-breaking event on the primary, cured from a fresh backup in S3', () => {
  it('auto: drop-all, then an import, each time the replica reseeds by itself and ends equal, losing and repeating nothing', async () => {
    const p = await reseedPair('auto');
    await write(p, [{ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }, ...upserts(0, 1500)]);
    start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await caughtUp(p, 0);

    const dropped = await runCrr(['admin', 'drop-all', '--config', p.configPath, '--cluster', p.source, '--reason', 'test', '--execute']);
    expect(dropped.code, dropped.stdout + dropped.stderr).toBe(0);
    // live writes while the replica reseeds: none may be lost or applied twice
    await write(p, [{ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }, ...upserts(5000, 800)]);
    await caughtUp(p, 1);
    const s = await replay(p.httpPort);
    expect(s.lastReseed).toMatchObject({ epoch: 1 });
    expect(s.clusterState.reason).toMatch(/reseeded from backup .*DROP_ALL/);
    // the published state names the backup of the last reseed (crr status reads it from the cluster's Kafka)
    await waitFor(
      'the published state to name the backup of the last reseed',
      async () => {
        const status = await runCrr(['status', '--config', p.configPath, '--json']);
        const published = (JSON.parse(status.stdout) as { clusters: Array<{ cluster: string; state?: { backupId?: string } }> }).clusters;
        const backupId = published.find((c) => c.cluster === p.target)?.state?.backupId;
        return backupId !== undefined && backupId === (await replay(p.httpPort)).lastReseed?.backupId;
      },
      60_000,
      500,
    );
    await write(p, upserts(9000, 300));
    await caughtUp(p, 1);
    expect(await verifyEqual(p)).toMatch(/City\s+700\s+700/);

    const file = join(tmpdir(), 'crr-tests', `import-${uniq()}.ndjson`);
    writeFileSync(
      file,
      upserts(20_000, 2000)
        .map((e) => JSON.stringify(e))
        .join('\n'),
    );
    const imported = await runCrr(['admin', 'import', '--config', p.configPath, '--cluster', p.source, '--file', file, '--execute']);
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    await write(p, upserts(30_000, 200));
    await caughtUp(p, 2);
    await verifyEqual(p);
    const metrics = (await http(p.httpPort, '/metrics')).body;
    expect(metricValue(metrics, 'crr_reseeds_total', 'reason="drop-all",result="succeeded"')).toBe(1);
    expect(metricValue(metrics, 'crr_reseeds_total', 'reason="import",result="succeeded"')).toBe(1);
    expect(metricValue(metrics, 'crr_sync_breaks_total', 'reason="drop-all"')).toBe(1);
    expect(metricValue(metrics, 'crr_cluster_epoch')).toBe(2);
  }, 300_000);

  it('a reseed SIGKILLed during the upload, then during the restore, completes on the next run; one reseed at a time', async () => {
    // 1 MiB parts (the smallest allowed): the upload is several PUTs, so the first kill lands mid-upload
    const p = await reseedPair('manual', 1024 * 1024);
    const file = join(tmpdir(), 'crr-tests', `import-${uniq()}.ndjson`);
    const cities = Array.from({ length: 60_000 }, (_, i) => ({
      op: 'UPSERT_VERTEX',
      vertex: { type: 'City', id: `c${i}` },
      attributes: { n: i, name: `city number ${i}` },
    }));
    writeFileSync(
      file,
      [
        {
          op: 'CREATE_VERTEX_TYPE',
          name: 'City',
          primaryIdType: 'STRING',
          attributes: [
            { name: 'n', type: 'INT' },
            { name: 'name', type: 'STRING' },
          ],
        },
        ...cities,
      ]
        .map((e) => JSON.stringify(e))
        .join('\n'),
    );
    const imported = await runCrr(['admin', 'import', '--config', p.configPath, '--cluster', p.source, '--file', file, '--force', '--execute']);
    expect(imported.code, imported.stdout + imported.stderr).toBe(0);
    const reseed = ['reseed', '--config', p.configPath, '--cluster', p.target, '--execute'];
    const replicaState = async (): Promise<{ state: string; reason: string; backup_id: string | null } | undefined> =>
      (
        await pool
          .query<{ state: string; reason: string; backup_id: string | null }>(`SELECT state, reason, backup_id FROM "${p.drSchema}".cluster_state`)
          .catch(() => ({ rows: [] }))
      ).rows[0];
    const stagingSchemas = async (): Promise<string[]> =>
      (await pool.query<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE starts_with(nspname, $1)`, [`${p.drSchema}_restore_`])).rows.map(
        (r) => r.n,
      );
    const keys = async (): Promise<string[]> => ((await s3.send(new ListObjectsV2Command({ Bucket: p.bucket }))).Contents ?? []).map((o) => o.Key!);

    // 1. killed while the parts upload: no manifest yet
    const first = start(reseed);
    await waitFor(
      'the backup upload to be under way',
      async () => {
        const k = await keys();
        return k.filter((x) => x.endsWith('.ndjson.gz')).length >= 2 && !k.some((x) => x.endsWith('manifest.json'));
      },
      60_000,
      20,
    );
    first.child.kill('SIGKILL');
    await first.exited;
    expect(
      (await keys()).some((x) => x.endsWith('manifest.json')),
      'the kill came after the upload',
    ).toBe(false);
    expect(await replicaState()).toMatchObject({ state: 'RESEEDING', reason: expect.stringMatching(/taking a backup/) });

    // 2. killed while the restore loads its staging schema
    const second = start(reseed);
    const backupId = await waitFor(
      'the restore to load a staging schema',
      async () => {
        const id = (await replicaState())?.backup_id;
        return id && (await stagingSchemas()).length > 0 ? id : undefined;
      },
      60_000,
      20,
    );
    second.child.kill('SIGKILL');
    await second.exited;
    expect(await stagingSchemas()).toHaveLength(1);
    expect((await replicaState())?.state).toBe('RESEEDING');

    // 3. one reseed at a time: while another session holds the replica's reseed lease, crr reseed is refused, naming it
    const holder = new pg.Client({ connectionString: PG_URL, application_name: 'runbook-operator' });
    await holder.connect();
    try {
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`crr.lease.${p.drSchema}.reseed`]);
      const busy = await runCrr(reseed);
      expect(busy.code, busy.stdout + busy.stderr).toBe(75);
      expect(busy.stderr).toMatch(/a reseed of .* is running already, by runbook-operator/);
      // a restore takes the same lease (its staging schema would otherwise look abandoned to a reseed)
      const restoring = await runCrr(['restore', '--config', p.configPath, '--cluster', p.target, '--backup', backupId, '--execute']);
      expect(restoring.code, restoring.stdout + restoring.stderr).toBe(75);
      expect(restoring.stderr).toMatch(/a reseed or restore of .* is running already, by runbook-operator/);
    } finally {
      await holder.end();
    }

    // 4. the next run resumes with the backup the killed run took, drops the abandoned staging schema, and ends equal
    const done = await runCrr(reseed);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stdout).toContain(`from backup ${backupId} of ${p.source}: 60000 records`);
    expect(done.stdout).toMatch(/resumed with the backup of an earlier attempt/);
    expect(await stagingSchemas()).toEqual([]);
    expect(await replicaState()).toMatchObject({
      state: 'REPLICATING',
      backup_id: backupId,
      reason: expect.stringContaining(`reseeded from backup ${backupId}`),
    });
    const primary = new PostgresStore({ connectionString: PG_URL, schema: p.primarySchema });
    const replica = new PostgresStore({ connectionString: PG_URL, schema: p.drSchema });
    try {
      expect((await replica.counts()).vertices).toEqual({ City: 60_000 });
      expect(await replica.digest()).toBe(await primary.digest());
    } finally {
      await Promise.all([primary.close(), replica.close()]);
    }
    // the killed upload left an incomplete backup: listed with --all, not as a backup to restore
    const listed = await runCrr(['backup', 'list', '--config', p.configPath, '--cluster', p.source, '--all', '--json']);
    expect(listed.code, listed.stderr).toBe(0);
    const backups = JSON.parse(listed.stdout) as Array<{ id: string; complete?: boolean; status?: string }>;
    expect(backups.length).toBe(2);
    expect(backups.some((b) => b.id === backupId)).toBe(true);
  }, 240_000);
});
