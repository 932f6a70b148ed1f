import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { PostgresStore } from '../../../src/store/postgres.js';
import { Runbook } from '../../support/runbook.js';
import { http, PG_URL, runCrr, testPair, uniq, useCrrProcesses, waitFor, type CrrProcess, type TestPair } from '../../support/helpers.js';
import { dropBucket, freshBucket, s3Client, S3_ENDPOINT, S3_REGION } from '../../support/s3-helpers.js';

// docs/runbooks/unplanned-failover.md, then docs/runbooks/failback.md on the same pair: the
// primary is lost with writes the mirror had not copied; the DR side is promoted with --force;
// the old primary, back, is fenced, then reseeded from the new primary and replicates from it.

const start = useCrrProcesses();
const s3 = s3Client();
let bucket = '';
afterAll(async () => {
  if (bucket) await dropBucket(s3, bucket).catch(() => undefined);
});

const upserts = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'Account', id: `a${from + i}` }, attributes: { balance: from + i } }));

async function write(config: string, cluster: string, events: object[]): Promise<{ code: number | null; stderr: string }> {
  const file = join(tmpdir(), 'crr-tests', `unplanned-${uniq()}.ndjson`);
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
  return runCrr(['write', '--config', config, '--cluster', cluster, '--file', file]);
}

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

async function accounts(schema: string): Promise<number> {
  const store = new PostgresStore({ connectionString: PG_URL, schema });
  try {
    return (await store.counts()).vertices.Account ?? 0;
  } finally {
    await store.close();
  }
}

async function stop(p: CrrProcess): Promise<void> {
  p.child.kill('SIGTERM');
  expect((await p.exited).code, p.log().slice(-2000)).toBe(0);
}

describe('runbooks: unplanned failover, then failback', () => {
  let p: TestPair;
  let primaryDaemon: CrrProcess;

  it('unplanned-failover.md: the primary is lost with unmirrored writes; --force promotes with what arrived, prints the RPO; the old primary is fenced when it is back', async () => {
    p = testPair({ dataPartitions: 3 });
    const schema = { op: 'CREATE_VERTEX_TYPE', name: 'Account', primaryIdType: 'STRING', attributes: [{ name: 'balance', type: 'INT' }] };
    expect((await write(p.configPath, p.source, [schema, ...upserts(0, 400)])).code).toBe(0);
    primaryDaemon = start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    const dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor(
      'the DR side to catch up',
      async () => (await replay(p.httpPort).catch(() => undefined))?.eventsApplied >= 401 && (await replay(p.httpPort)).lagRecords === 0,
      90_000,
      300,
    );

    // the DR daemon goes first (the mirror stops), the primary takes 100 more writes, then its region is lost
    await stop(dr);
    expect((await write(p.configPath, p.source, upserts(10_000, 100))).code).toBe(0);
    const lost = join(tmpdir(), 'crr-tests', `lost-${uniq()}.yaml`);
    const cfg = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    cfg.clusters[p.source].bootstrapServers = ['127.0.0.1:1'];
    cfg.clusters[p.source].connectionTimeoutMs = 1000;
    cfg.clusters[p.source].store.connectionString = 'postgres://postgres@127.0.0.1:1/postgres';
    writeFileSync(lost, stringify(cfg));

    const rb = new Runbook('unplanned-failover', { 'crr.yaml': lost, primary: p.source, dr: p.target }, start);
    expect((await rb.run('crr status --config crr.yaml', 2)).stdout).toMatch(/unreachable/);
    const plan = await rb.run('crr promote --config crr.yaml --cluster dr --force');
    expect(plan.stdout).toMatch(/RPO: unknown number of records/);
    expect(plan.stdout).toMatch(/last change event mirrored: \d{4}-/);
    const promoted = await rb.run('crr promote --config crr.yaml --cluster dr --force --execute');
    expect(promoted.stdout).toMatch(/promoted .* to primary \(force\)/);
    expect(promoted.stdout).toMatch(/NOT fenced \(unreachable\)/);
    rb.start('crr run --config crr.yaml --cluster dr');
    expect((await write(lost, p.target, upserts(20_000, 50))).code).toBe(0);
    await waitFor(
      'the new primary to apply its own writes',
      async () => {
        const s = await replay(p.httpPort).catch(() => undefined);
        return s?.role === 'primary' && s.lagRecords === 0 && s.eventsApplied >= 50;
      },
      60_000,
      300,
    );
    expect(await accounts(p.drSchema)).toBe(400 + 50); // the 100 unmirrored writes are the loss

    // the old primary is back: it still takes writes until it is fenced
    expect((await write(p.configPath, p.source, upserts(30_000, 5))).code).toBe(0);
    rb.names['crr.yaml'] = p.configPath;
    const again = await rb.run('crr promote --config crr.yaml --cluster dr --execute');
    expect(again.stdout).toMatch(/was promoted already/);
    expect(again.stdout).toMatch(/FENCED \(store-and-kafka\)/);
    rb.done();
    const refused = await write(p.configPath, p.source, upserts(40_000, 1));
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/fenced primary/);
  }, 300_000);

  it('failback.md: the old primary is reseeded from the new primary, replicates from it under the dr. prefix, and ends equal', async () => {
    expect(p, 'runs after the unplanned failover').toBeDefined();
    bucket = await freshBucket(s3, 'failback');
    const cfg = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    const old = cfg.mirror.flows[0];
    cfg.mirror.flows = [
      { ...old, enabled: false },
      { ...old, source: p.target, target: p.source, heartbeatsTopic: `${p.prefix}-heartbeats-back` },
    ];
    cfg.clusters[p.target].role = 'primary';
    cfg.clusters[p.source].role = 'replica';
    cfg.clusters[p.target].backup = {
      repository: { type: 's3', bucket, endpoint: S3_ENDPOINT, region: S3_REGION, forcePathStyle: true, accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' },
    };
    const back = join(tmpdir(), 'crr-tests', `failback-${uniq()}.yaml`);
    cfg.http.port = p.primaryHttpPort;
    writeFileSync(back, stringify(cfg));
    // step 2 (stop the old primary's daemon): useCrrProcesses stopped every daemon after the previous test;
    // the new primary's daemon runs all along in the runbook, so it is started again here
    expect(primaryDaemon.child.exitCode !== null || primaryDaemon.child.signalCode !== null).toBe(true);
    start(['run', '--config', p.configPath, '--cluster', p.target]);

    const rb = new Runbook('failback', { 'crr.yaml': back, primary: p.source, dr: p.target }, start);
    expect((await rb.run('crr reseed --config crr.yaml --cluster primary')).stdout).toMatch(/run again with --execute/);
    expect((await rb.run('crr reseed --config crr.yaml --cluster primary --execute')).stdout).toMatch(/reseeded .* from backup/);
    rb.start('crr run --config crr.yaml --cluster primary');
    expect((await write(p.configPath, p.target, upserts(50_000, 30))).code).toBe(0);
    await waitFor(
      'the old primary to replicate from the new one',
      async () => {
        const s = await replay(p.primaryHttpPort).catch(() => undefined);
        return s?.role === 'replica' && s.lagRecords === 0 && s.eventsApplied >= 30;
      },
      90_000,
      300,
    );
    expect((await rb.run('crr verify --config crr.yaml --primary dr --replica primary')).stdout).toMatch(/EQUAL|equal/);
    rb.done();
    expect(await accounts(p.primarySchema)).toBe(400 + 50 + 30); // its own lost writes are gone, the new primary's are there
    const s = await replay(p.primaryHttpPort);
    expect(s.topics).toContain(`${p.target}.${p.dataTopic}`);
    expect((await write(back, p.source, upserts(60_000, 1))).code, 'the old primary is a read-only replica now').toBe(4);
  }, 300_000);
});
