import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { readFileSync } from 'node:fs';
import { Runbook } from '../../support/runbook.js';
import { http, runCrr, testPair, uniq, useCrrProcesses, waitFor } from '../../support/helpers.js';
import { dropBucket, freshBucket, s3Client, S3_ENDPOINT, S3_REGION } from '../../support/s3-helpers.js';

// docs/runbooks/manual-reseed.md, step by step: a CLEAR_GRAPH_STORE on the primary makes the
// replica OUTDATED; in reseed mode manual it waits until the operator reseeds it.

const start = useCrrProcesses();
const s3 = s3Client();
let bucket = '';
afterAll(async () => {
  if (bucket) await dropBucket(s3, bucket).catch(() => undefined);
});

const upserts = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${(from + i) % 700}` }, attributes: { n: from + i } }));

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

describe('runbook: manual reseed', () => {
  it('manual-reseed.md: the replica waits OUTDATED until crr reseed --execute, then resumes and ends equal', async () => {
    const p = testPair({ dataPartitions: 3 });
    bucket = await freshBucket(s3, 'manual');
    const config = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    config.clusters[p.source].backup = {
      repository: { type: 's3', bucket, endpoint: S3_ENDPOINT, region: S3_REGION, forcePathStyle: true, accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' },
    };
    config.reseed = { mode: 'manual' };
    writeFileSync(p.configPath, stringify(config));
    const write = async (events: object[]): Promise<void> => {
      const file = join(tmpdir(), 'crr-tests', `manual-${uniq()}.ndjson`);
      writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
      const r = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
      expect(r.code, r.stderr).toBe(0);
    };
    const caughtUp = (epoch: number): Promise<unknown> =>
      waitFor(
        `both stores caught up at epoch ${epoch}`,
        async () => {
          const [a, b] = await Promise.all([replay(p.primaryHttpPort).catch(() => undefined), replay(p.httpPort).catch(() => undefined)]);
          return (
            a?.lagRecords === 0 && b?.state === 'active' && b.lagRecords === 0 && b.clusterState?.state === 'REPLICATING' && b.clusterState.epoch === epoch
          );
        },
        120_000,
        300,
      );

    await write([{ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }, ...upserts(0, 300)]);
    start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await caughtUp(0);
    expect((await runCrr(['admin', 'clear-graph-store', '--config', p.configPath, '--cluster', p.source, '--execute'])).code).toBe(0);
    await write(upserts(1000, 100));
    await waitFor('the replica to wait OUTDATED', async () => (await replay(p.httpPort)).state === 'outdated', 60_000, 300);

    const rb = new Runbook('manual-reseed', { 'crr.yaml': p.configPath, primary: p.source, dr: p.target }, start);
    expect((await rb.run('crr status --config crr.yaml', 1)).stdout).toMatch(/OUTDATED.*CLEAR_GRAPH_STORE/);
    expect((await rb.run('crr reseed --config crr.yaml --cluster dr')).stdout).toMatch(/run again with --execute/);
    expect((await replay(p.httpPort)).state).toBe('outdated');
    expect((await rb.run('crr reseed --config crr.yaml --cluster dr --execute')).stdout).toMatch(/reseeded .* from backup .* epoch 1/);
    await caughtUp(1);
    // the primary cannot take a backup now: reseed from an existing one (the one just taken)
    const listed = await rb.run('crr backup list --config crr.yaml --cluster primary');
    const existing = listed.stdout.match(new RegExp(`\\d{8}T\\d{6}Z-${p.source}-[0-9a-f]{4}`))?.[0];
    expect(existing, listed.stdout).toBeDefined();
    rb.names['20261202T104722Z-primary-ca92'] = existing!;
    expect((await rb.run('crr reseed --config crr.yaml --cluster dr --from-backup 20261202T104722Z-primary-ca92 --execute')).stdout).toContain(
      `from backup ${existing}`,
    );
    await write(upserts(2000, 50));
    await caughtUp(1);
    expect((await rb.run('crr verify --config crr.yaml')).stdout).toMatch(/City\s+\d+\s+\d+/);
    rb.done();
    const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: bucket }))).Contents ?? []).map((o) => o.Key!);
    expect(
      keys.some((k) => k.endsWith('manifest.json')),
      'the backup went to S3',
    ).toBe(true);
  }, 240_000);
});
