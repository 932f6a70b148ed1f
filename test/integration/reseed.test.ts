import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { http, metricValue, runCrr, testPair, uniq, useCrrProcesses, waitFor, type TestPair } from '../helpers.js';
import { dropBucket, freshBucket, S3_ENDPOINT, S3_REGION, s3Client } from '../s3-helpers.js';

const start = useCrrProcesses();
const s3 = s3Client();
const buckets: string[] = [];
afterAll(async () => {
  for (const b of buckets) await dropBucket(s3, b).catch(() => undefined);
});

/** A pair whose primary backs up to a fresh S3 bucket, with reseed mode `mode`. */
async function reseedPair(mode: 'auto' | 'manual'): Promise<TestPair> {
  const p = testPair({ dataPartitions: 3 });
  const bucket = await freshBucket(s3, 'reseed');
  buckets.push(bucket);
  const config = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
  config.clusters[p.source].backup = {
    repository: { type: 's3', bucket, endpoint: S3_ENDPOINT, region: S3_REGION, forcePathStyle: true, accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' },
    partSizeBytes: 1024 * 1024,
  };
  config.reseed = { mode, retryBackoffInitialMs: 200, retryBackoffMaxMs: 2000 };
  writeFileSync(p.configPath, stringify(config));
  return p;
}

const upserts = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${(from + i) % 700}` }, attributes: { n: from + i } }));

async function write(p: TestPair, events: object[]): Promise<void> {
  const file = join(tmpdir(), 'crr-tests', `reseed-${uniq()}.ndjson`);
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
  const r = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
  expect(r.code, r.stderr).toBe(0);
}

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

async function caughtUp(p: TestPair, epoch: number): Promise<void> {
  await waitFor(`both stores caught up at epoch ${epoch}`, async () => {
    const [a, b] = await Promise.all([replay(p.primaryHttpPort).catch(() => undefined), replay(p.httpPort).catch(() => undefined)]);
    return a?.lagRecords === 0 && b?.state === 'active' && b.lagRecords === 0 && b.clusterState?.state === 'REPLICATING' && b.clusterState.epoch === epoch;
  }, 120_000, 300);
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
    await write(p, upserts(9000, 300));
    await caughtUp(p, 1);
    expect(await verifyEqual(p)).toMatch(/City\s+700\s+700/);

    const file = join(tmpdir(), 'crr-tests', `import-${uniq()}.ndjson`);
    writeFileSync(file, upserts(20_000, 2000).map((e) => JSON.stringify(e)).join('\n'));
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

  it('manual: the replica waits OUTDATED until crr reseed --execute, then resumes', async () => {
    const p = await reseedPair('manual');
    await write(p, upserts(0, 300));
    start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await caughtUp(p, 0);
    expect((await runCrr(['admin', 'clear-graph-store', '--config', p.configPath, '--cluster', p.source, '--execute'])).code).toBe(0);
    await write(p, upserts(1000, 100));
    await waitFor('the replica to wait OUTDATED', async () => (await replay(p.httpPort)).state === 'outdated', 60_000, 300);
    const plan = await runCrr(['reseed', '--config', p.configPath, '--cluster', p.target]);
    expect(plan.code).toBe(0);
    expect(plan.stdout).toMatch(/run again with --execute/);
    expect((await replay(p.httpPort)).state).toBe('outdated');
    const done = await runCrr(['reseed', '--config', p.configPath, '--cluster', p.target, '--execute']);
    expect(done.code, done.stdout + done.stderr).toBe(0);
    expect(done.stdout).toMatch(/reseeded .* from backup .* epoch 1/);
    await caughtUp(p, 1);
    await verifyEqual(p);
  }, 240_000);
});
