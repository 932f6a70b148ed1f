import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it, onTestFinished } from 'vitest';
import { PostgresStore } from '../../../src/store/postgres.js';
import { Runbook } from '../../support/runbook.js';
import { rememberAcls, useSecuredClusters, writeTestConfig } from '../../support/secured.js';
import { http, PG_URL, ROOT, testPair, uniq, useCrrProcesses, waitFor } from '../../support/helpers.js';

// docs/runbooks/first-setup.md, step by step, on a fresh pair (no topics, empty stores): both
// daemons, the runbook's own smoke.ndjson written to the primary and refused on dr, the DR store
// read-only to applications, then status and verify; then section 8's ACL commands on the
// secured pair (test/support/secured.ts), and its check: the application refused on the replica.

const start = useCrrProcesses();
const secured = useSecuredClusters();

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

describe('runbook: first setup', () => {
  it('first-setup.md on a fresh pair: both daemons, the smoke write replicates, dr refuses writes, status 0, verify EQUAL; section 8 on the secured pair: the ACLs applied, the application refused on the replica', async () => {
    const t0 = Date.now();
    const p = testPair({ dataPartitions: 3 });
    // the smoke events are the runbook's own ```ndjson block
    const doc = readFileSync(join(ROOT, 'docs', 'runbooks', 'first-setup.md'), 'utf8');
    const smoke = /```ndjson\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(smoke, 'first-setup.md has a ```ndjson block (smoke.ndjson)').toBeTruthy();
    const events = smoke!
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { op: string; vertex?: { type: string; id: string } });
    const smokeVertex = events.find((e) => e.op === 'UPSERT_VERTEX')!.vertex!;
    mkdirSync(join(tmpdir(), 'crr-tests'), { recursive: true });
    const smokeFile = join(tmpdir(), 'crr-tests', `smoke-${uniq()}.ndjson`);
    writeFileSync(smokeFile, smoke!);
    const rb = new Runbook('first-setup', { 'crr.yaml': p.configPath, primary: p.source, dr: p.target, 'smoke.ndjson': smokeFile }, start);

    // 2-3. the two daemons (on one host here: the primary's gets its own HTTP port)
    const primary = rb.start('crr run --config crr.yaml --cluster primary', ['--http-port', String(p.primaryHttpPort)]);
    const dr = rb.start('crr run --config crr.yaml --cluster dr');
    await waitFor('dr /readyz 200', async () => (await http(p.httpPort, '/readyz')).status === 200, 60_000, 300);
    await waitFor('primary /readyz 200', async () => (await http(p.primaryHttpPort, '/readyz')).status === 200, 60_000, 300);
    await waitFor('dr /healthz 200', async () => (await http(p.httpPort, '/healthz')).status === 200, 60_000, 300);
    expect((await replay(p.primaryHttpPort)).role).toBe('primary');
    expect((await replay(p.httpPort)).role).toBe('replica');

    // 4. the smoke write on the primary
    await rb.run('crr write --config crr.yaml --cluster primary --file smoke.ndjson');

    // 5. the same write to dr is refused
    const refused = await rb.run('crr write --config crr.yaml --cluster dr --file smoke.ndjson', 4);
    expect(refused.stderr).toMatch(/replica/);

    await waitFor(
      'both stores to apply the smoke events',
      async () => {
        const [a, b] = await Promise.all([replay(p.primaryHttpPort), replay(p.httpPort)]);
        return a.eventsApplied >= events.length && a.lagRecords === 0 && b.eventsApplied >= events.length && b.lagRecords === 0;
      },
      60_000,
      300,
    );
    // the DR store: the smoke vertex is there, readable by the application role, not writable by it
    const app = new pg.Client({ connectionString: PG_URL.replace('postgres@', `${p.appRole}@`) });
    await app.connect();
    try {
      const { rows } = await app.query(`SELECT id FROM ${p.drSchema}.vertices WHERE type = $1`, [smokeVertex.type]);
      expect(rows.map((r) => r.id)).toEqual([smokeVertex.id]);
      await expect(app.query(`DELETE FROM ${p.drSchema}.vertices`)).rejects.toMatchObject({ code: '42501' });
    } finally {
      await app.end();
    }

    // 6. status; 7. verify
    const status = await rb.run('crr status --config crr.yaml');
    expect(status.stdout).toContain(p.target);
    const verify = await rb.run('crr verify --config crr.yaml');
    expect(verify.stdout).toMatch(/EQUAL/);

    // 8. on the secured pair (SASL_SSL, StandardAuthorizer): the ACLs, applied by the admin principal
    const restoreAcls = await rememberAcls(secured);
    onTestFinished(restoreAcls);
    const id = uniq();
    const [P, D] = [`sp${id}`, `sd${id}`];
    const change = { data: `s${id}.data`, metadata: `s${id}.metadata`, dataPartitions: 1 };
    const cluster = (bootstrap: string, user: string) => secured.cluster(bootstrap, user, { applicationPrincipals: ['User:app'], changeTopics: change });
    const flows = [{ source: P, target: D, topics: { include: [`s${id}\\..*`] }, heartbeatsTopic: `s${id}-heartbeats` }];
    rb.names['crr-admin.yaml'] = writeTestConfig(`first-setup-admin-${id}`, {
      clusters: { [P]: cluster(secured.primary, 'crr-admin'), [D]: cluster(secured.dr, 'crr-admin') },
      mirror: { flows },
    });
    Object.assign(rb.names, { primary: P, dr: D });
    const plan = await rb.run('crr acls plan --config crr-admin.yaml --cluster dr --principal User:crr');
    expect(plan.stdout).toMatch(new RegExp(`cluster ${D}: replica`));
    expect(plan.stdout).toContain(`+ DENY User:app WRITE TOPIC PREFIXED ${P}.`);
    await rb.run('crr acls apply --config crr-admin.yaml --cluster dr --principal User:crr --execute');
    await rb.run('crr acls apply --config crr-admin.yaml --cluster primary --principal User:crr --execute');
    expect((await rb.run('crr acls plan --config crr-admin.yaml --cluster dr --principal User:crr')).stdout).toContain(
      'ACLs in place: nothing to add or remove',
    );
    rb.done();
    // the check the runbook names: the application may not write the replica's remote topic
    const admin = secured.kafkaAs(secured.dr, 'crr-admin').admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: `${P}.${change.data}`, numPartitions: 1 }] });
    await admin.disconnect();
    const appProducer = secured.kafkaAs(secured.dr, 'app').producer({ allowAutoTopicCreation: false, retry: { retries: 1 } });
    await appProducer.connect();
    const appWrite = await appProducer.send({ topic: `${P}.${change.data}`, messages: [{ value: 'x' }] }).then(
      () => 'ok',
      (err: { type?: string }) => err.type,
    );
    await appProducer.disconnect();
    expect(appWrite).toBe('TOPIC_AUTHORIZATION_FAILED');

    // what the runbook says the daemons recorded
    const drStore = new PostgresStore({ connectionString: PG_URL, schema: p.drSchema });
    const primaryStore = new PostgresStore({ connectionString: PG_URL, schema: p.primarySchema });
    try {
      expect(await drStore.clusterState()).toMatchObject({ role: 'replica', state: 'REPLICATING', epoch: 0 });
      expect(await primaryStore.clusterState()).toMatchObject({ role: 'primary', state: 'ACTIVE', epoch: 0 });
      expect((await drStore.counts()).vertices[smokeVertex.type]).toBe(1);
    } finally {
      await Promise.all([drStore.close(), primaryStore.close()]);
    }
    expect(primary.child.exitCode).toBeNull();
    expect(dr.child.exitCode).toBeNull();
    console.log(`first setup: daemons up, smoke write replicated and verified in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }, 120_000);
});
