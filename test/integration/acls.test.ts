import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs, { type Kafka as KafkaClient } from 'kafkajs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { encodeEvent, eventKey, parseEvent } from '../../src/protocol/codec.js';
import { CONTROL_TOPIC } from '../../src/replication/control-topic.js';
import { fastMirror, rememberAcls, useSecuredClusters } from '../support/secured.js';
import { PG_URL, PRIMARY, runCrr, uniq, useMirrorProcesses, waitFor } from '../support/helpers.js';

/**
 * The DR write fence enforced by Kafka itself (issue 12, item 2), on the secured clusters of
 * `CRR_KAFKA_SECURED=1 scripts/kafka.sh` (SASL_SSL, SCRAM-SHA-512, StandardAuthorizer with
 * allow.everyone.if.no.acl.found=false, super user crr-admin), started by
 * test/support/secured.ts beside the plain clusters of the global setup, on
 * CRR_SECURED_PRIMARY_PORT / CRR_SECURED_DR_PORT (default 19492 / 29492).
 *
 * Principals: User:crr-admin applies the ACLs (`crr acls apply --principal User:crr`), User:crr
 * runs the mirror's target side with no more than what the plan grants, User:crr-src its source
 * side (the flow's `sourceAuth`: a principal that only reads the source, MM2's and Cluster
 * Linking's), User:app is the application. The users come from kafka.sh's default
 * CRR_KAFKA_SCRAM_USERS, added to clusters formatted before them by `up`. With `manageAcls`, the
 * plan grants User:crr ALTER on the cluster, and `crr promote`, logged in as User:crr, flips the
 * ACLs of both clusters (issue 12, item 2).
 * crr trusts the test CA by `ssl.caFile` (verification on).
 */

const secured = useSecuredClusters();
let env: Record<string, string>;
let primary: string;
let dr: string;
// the ACLs the tests apply are removed after the file: the next file's plans start from what was there
let restoreAcls: (() => Promise<void>) | undefined;
beforeAll(async () => {
  ({ env, primary, dr } = secured);
  restoreAcls = await rememberAcls(secured);
});
afterAll(async () => {
  await restoreAcls?.();
});
const password = (user: string): string => secured.password(user);
const kafkaAs = (bootstrap: string, user: string): KafkaClient => secured.kafkaAs(bootstrap, user);

/** PostgreSQL schemas of the tests' stores, dropped after the file. */
const schemas: string[] = [];
afterAll(async () => {
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  try {
    for (const schema of schemas) await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  } finally {
    await db.end();
  }
});

/**
 * A config of both secured clusters under fresh aliases, crr logged in as `user`; with
 * `opts.sourceUser`, the flow's `sourceAuth` logs the mirror into the source as that user; with
 * `opts.caFile`, crr trusts that CA instead of the test CA; with `opts.manageAcls`, `manageAcls`
 * on both clusters; with `opts.drStore`, a PostgreSQL store for the DR cluster in that schema.
 */
function writeConfig(
  id: string,
  user: string,
  pass = password(user),
  opts: { sourceUser?: string; caFile?: string; manageAcls?: boolean; drStore?: string } = {},
): string {
  const sasl = { mechanism: 'scram-sha-512', username: user, password: pass };
  const cluster = (bootstrap: string) => ({
    bootstrapServers: [bootstrap],
    ssl: { caFile: opts.caFile ?? env.CRR_KAFKA_CA_FILE },
    sasl,
    connectionTimeoutMs: 5000,
    applicationPrincipals: ['User:app'],
    changeTopics: { data: `t${id}.data`, metadata: `t${id}.metadata`, dataPartitions: 2 },
    manageAcls: opts.manageAcls ?? false,
  });
  const config = {
    clusters: {
      [`p${id}`]: cluster(primary),
      [`d${id}`]: { ...cluster(dr), ...(opts.drStore ? { store: { type: 'postgres', connectionString: PG_URL, schema: opts.drStore } } : {}) },
    },
    mirror: fastMirror(
      id,
      opts.sourceUser ? { sourceAuth: { sasl: { mechanism: 'scram-sha-512', username: opts.sourceUser, password: password(opts.sourceUser) } } } : {},
    ),
    replay: { lagPollIntervalMs: 300, restartBackoffInitialMs: 200, restartBackoffMaxMs: 2000, consumerSessionTimeoutMs: 6000 },
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'info' },
  };
  const dir = join(tmpdir(), 'crr-tests');
  mkdirSync(dir, { recursive: true });
  const path = join(
    dir,
    `acls-${id}-${user}${opts.sourceUser ? `-${opts.sourceUser}` : ''}${opts.caFile ? '-ca' : ''}${opts.manageAcls ? '-managed' : ''}.yaml`,
  );
  writeFileSync(path, stringify(config));
  return path;
}

/** Sends one record (default key `k`, value `v`) as the client's principal; resolves to the broker's error type, or 'ok'. */
async function tryProduce(kafka: KafkaClient, topic: string, message: { key: string; value: string | Buffer } = { key: 'k', value: 'v' }): Promise<string> {
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 1 } });
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: [message] });
    return 'ok';
  } catch (err) {
    const e = err as { type?: string; cause?: { type?: string }; message: string };
    return e.type ?? e.cause?.type ?? e.message;
  } finally {
    await producer.disconnect();
  }
}

describe('crr acls on secured clusters', () => {
  const mirror = useMirrorProcesses();

  it('a wrong password: a clear error naming the cluster, at once (no retry storm)', async () => {
    const id = uniq();
    const config = writeConfig(id, 'crr-admin', 'not-the-password');
    const t0 = Date.now();
    const r = await runCrr(['acls', 'plan', '--config', config, '--cluster', `d${id}`]);
    const ms = Date.now() - t0;
    console.log(`wrong password: exit ${r.code} after ${ms} ms: ${r.stderr.trim()}`);
    expect(r.code).toBe(70);
    expect(r.stderr).toContain(`cluster d${id} (${dr}) refused the credentials of User:crr-admin`);
    expect(r.stderr).not.toContain('not-the-password');
    expect(ms).toBeLessThan(15_000);
  });

  it('a CA file of another CA: a clear error naming the cluster and the certificate problem, at the first attempt (no retry storm)', async () => {
    const id = uniq();
    // kafka.sh's other-ca.crt: a CA made by openssl beside the test CA, which signed nothing the brokers use
    const config = writeConfig(id, 'crr-admin', password('crr-admin'), { caFile: env.CRR_KAFKA_OTHER_CA_FILE });
    const t0 = Date.now();
    const r = await runCrr(['acls', 'plan', '--config', config, '--cluster', `d${id}`]);
    const ms = Date.now() - t0;
    console.log(`another CA: exit ${r.code} after ${ms} ms: ${r.stderr.trim()}`);
    expect(r.code).toBe(70);
    expect(r.stderr).toContain(`cluster d${id} (${dr}): the broker's TLS certificate failed verification (SELF_SIGNED_CERT_IN_CHAIN`);
    expect(r.stderr).toContain(`check that clusters.d${id}.ssl.caFile holds the CA that signed the brokers' certificates`);
    // KafkaJS alone retries a connection error 5 times over about 8 s
    expect(ms).toBeLessThan(5_000);
    const st = await runCrr(['status', '--config', config]);
    expect(st.code).toBe(2);
    expect(st.stdout).toContain(`cluster p${id} (${primary}): the broker's TLS certificate failed verification`);
  });

  it('a cluster without an authorizer (the plain clusters): says ACLs cannot fence it', async () => {
    const path = join(tmpdir(), 'crr-tests', `acls-plain-${uniq()}.yaml`);
    writeFileSync(path, stringify({ clusters: { plain: { bootstrapServers: [PRIMARY] } } }));
    const r = await runCrr(['acls', 'plan', '--config', path, '--cluster', 'plain', '--principal', 'User:crr']);
    expect(r.code).toBe(70);
    expect(r.stderr).toContain(`cluster plain (${PRIMARY}) has no authorizer (SECURITY_DISABLED)`);
  });

  it('on a replica after apply --execute: the application is refused WRITE on the remote topics, crr mirrors (reading the source as the read-only User:crr-src) and writes them; a second plan is empty; crr status shows the fence; planned as a primary, dr lets it write its own change topic', async () => {
    const id = uniq();
    const [p, d] = [`p${id}`, `d${id}`];
    const adminConfig = writeConfig(id, 'crr-admin', password('crr-admin'), { sourceUser: 'crr-src' });
    const crrConfig = writeConfig(id, 'crr', password('crr'), { sourceUser: 'crr-src' });
    const acls = (cluster: string, ...args: string[]) => runCrr(['acls', ...args, '--config', adminConfig, '--cluster', cluster, '--principal', 'User:crr']);

    // ACLs someone else added on the replica: two reach the remote topics, one does not
    const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;
    const remote = `${p}.t${id}.data`;
    const stray = (principal: string, operation: number, resourceName: string, resourcePatternType: number) => ({
      resourceType: AclResourceTypes.TOPIC,
      resourceName,
      resourcePatternType,
      principal,
      host: '*',
      operation,
      permissionType: AclPermissionTypes.ALLOW,
    });
    const drAdmin = kafkaAs(dr, 'crr-admin').admin();
    await drAdmin.connect();
    await drAdmin.createAcls({
      acl: [
        stray('User:app', AclOperationTypes.WRITE, remote, ResourcePatternTypes.LITERAL),
        stray('User:*', AclOperationTypes.ALL, `${p}.`, ResourcePatternTypes.PREFIXED),
        stray('User:app', AclOperationTypes.WRITE, `t${id}-unrelated`, ResourcePatternTypes.LITERAL),
        // crr may read dr's ACLs (crr status), one of the bindings the plan wants there
        {
          resourceType: AclResourceTypes.CLUSTER,
          resourceName: 'kafka-cluster',
          resourcePatternType: ResourcePatternTypes.LITERAL,
          principal: 'User:crr',
          host: '*',
          operation: AclOperationTypes.DESCRIBE,
          permissionType: AclPermissionTypes.ALLOW,
        },
      ],
    });
    await drAdmin.disconnect();

    // the plan alone changes nothing
    const plan = await waitFor(
      'a plan that sees the stray ACLs',
      async () => {
        const r = await acls(d, 'plan');
        return r.stdout.includes(`- ALLOW User:* ALL TOPIC PREFIXED ${p}.`) ? r : undefined;
      },
      20_000,
      500,
    );
    expect(plan.code, plan.stderr).toBe(0);
    expect(plan.stdout).toContain(`cluster ${d}: replica (role from config); crr's principal User:crr; applications User:app`);
    expect(plan.stdout).toContain(`+ DENY User:app WRITE TOPIC PREFIXED ${p}.`);
    expect(plan.stdout).toContain(`+ ALLOW User:crr WRITE TRANSACTIONAL_ID LITERAL crr-mirror-${p}-${d}`);
    expect(plan.stdout).not.toMatch(/\+ ALLOW User:app (WRITE|ALL) /);
    expect(plan.stdout).toContain(`- ALLOW User:app WRITE TOPIC LITERAL ${remote}`);
    expect(plan.stdout).not.toContain(`t${id}-unrelated`);
    expect((await acls(d, 'plan')).stdout).toBe(plan.stdout);
    // the source side's grants go to the flow's source principal; crr's principal keeps DESCRIBE and the control topic
    const primaryPlan = await acls(p, 'plan');
    expect(primaryPlan.stdout).toContain(
      `cluster ${p}: primary (role from config); crr's principal User:crr; applications User:app; mirror source principals User:crr-src`,
    );
    for (const line of [
      '+ ALLOW User:crr-src READ TOPIC LITERAL *',
      `+ ALLOW User:crr-src ALL TOPIC LITERAL t${id}-heartbeats`,
      `+ ALLOW User:crr-src READ GROUP LITERAL crr-mirror-${p}-${d}`,
      `+ ALLOW User:crr-src WRITE TOPIC LITERAL ${CONTROL_TOPIC}`,
      `+ ALLOW User:crr ALL TOPIC LITERAL ${CONTROL_TOPIC}`,
      '+ ALLOW User:crr DESCRIBE TOPIC LITERAL *',
    ])
      expect(primaryPlan.stdout).toContain(line);
    expect(primaryPlan.stdout).not.toContain('+ ALLOW User:crr READ TOPIC LITERAL *');

    // crr status, as crr: dr's fence is not in place; on the primary crr may not read the ACLs yet
    const before = await runCrr(['status', '--config', crrConfig]);
    const dAdd = plan.stdout.split('\n').filter((l) => l.startsWith('+ ')).length;
    expect(before.stdout).toContain(`cluster ${d} acls: ${dAdd} to add, 2 to remove (run crr acls apply --cluster ${d} --execute)`);
    expect(before.stdout).toContain(`cluster ${p} acls: cannot check (not authorized to DESCRIBE ACLs (CLUSTER_AUTHORIZATION_FAILED))`);
    const json = JSON.parse((await runCrr(['status', '--config', crrConfig, '--json'])).stdout) as { acls: Array<Record<string, unknown>> };
    expect(json.acls).toContainEqual({ cluster: d, role: 'replica', state: 'to-change', add: dAdd, remove: 2 });

    for (const c of [p, d]) {
      const r = await acls(c, 'apply', '--execute');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(c === d ? /applied: \d+ added, 2 removed/ : /applied: \d+ added, 0 removed/);
    }
    // idempotent: the plan is empty once the broker shows what was created
    for (const c of [p, d])
      await waitFor(`an empty plan for ${c}`, async () => (await acls(c, 'plan')).stdout.includes('nothing to add or remove'), 20_000, 500);
    const after = await runCrr(['status', '--config', crrConfig]);
    expect(after.stdout).toContain(`cluster ${p} acls: in place`);
    expect(after.stdout).toContain(`cluster ${d} acls: in place`);

    // the application writes the primary's change topic; the mirror, logged in as User:crr, copies it
    const admin = kafkaAs(primary, 'crr-admin').admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: `t${id}.data`, numPartitions: 2 }] });
    await admin.disconnect();
    expect(await tryProduce(kafkaAs(primary, 'app'), `t${id}.data`)).toBe('ok');
    const run = mirror(crrConfig);
    const appOnDr = kafkaAs(dr, 'app').admin();
    await appOnDr.connect();
    try {
      await waitFor(
        `the mirror (User:crr) to copy ${remote} (log: ${run.logPath})`,
        async () => (await appOnDr.fetchTopicOffsets(remote)).reduce((n, o) => n + Number(o.high), 0) >= 1,
        60_000,
        500,
      );
    } finally {
      await appOnDr.disconnect();
    }

    // the fence: the application is refused by the broker, crr's principal is not
    expect(await tryProduce(kafkaAs(dr, 'app'), remote)).toBe('TOPIC_AUTHORIZATION_FAILED');
    expect(await tryProduce(kafkaAs(dr, 'crr'), remote)).toBe('ok');
    // the mirror's source principal only reads the primary: it may not write a change topic there
    expect(await tryProduce(kafkaAs(primary, 'crr-src'), `t${id}.data`)).toBe('TOPIC_AUTHORIZATION_FAILED');
    // and the plan gave crr all it needs: nothing of the mirror (topic and config sync,
    // transactions, offset syncs, heartbeats, checkpoints every second) was refused
    expect(run.log()).not.toMatch(/authorization failed/i);
    run.child.kill('SIGKILL');

    // what a promotion will ask of dr: as a primary, the application's DENY goes, and it may
    // WRITE dr's own change topic (not the remote topics: no ALLOW WRITE there for anyone but crr)
    const flip = await acls(d, 'apply', '--role', 'primary', '--execute');
    expect(flip.code, flip.stderr).toBe(0);
    expect(flip.stdout).toContain(`- DENY User:app WRITE TOPIC PREFIXED ${p}.`);
    expect(flip.stdout).toContain(`+ ALLOW User:app WRITE TOPIC LITERAL t${id}.data`);
    const drAdmin2 = kafkaAs(dr, 'crr-admin').admin();
    await drAdmin2.connect();
    await drAdmin2.createTopics({ waitForLeaders: true, topics: [{ topic: `t${id}.data`, numPartitions: 1 }] });
    await drAdmin2.disconnect();
    await waitFor('the application may write dr as a primary', async () => (await tryProduce(kafkaAs(dr, 'app'), `t${id}.data`)) === 'ok', 20_000, 500);
    expect(await tryProduce(kafkaAs(dr, 'app'), remote)).toBe('TOPIC_AUTHORIZATION_FAILED');
  }, 150_000);

  it('crr promote flips the ACLs (manageAcls, crr logged in as User:crr): refused while crr may not change them (the old primary, FENCED, planned as a fenced primary), then the old primary refuses its application WRITE, the new primary takes it', async () => {
    const id = uniq();
    const drStore = `crr_t_${id}_acls_d`;
    schemas.push(drStore);
    // crr-admin puts the ACLs in place once; with manageAcls they give User:crr ALTER on each cluster
    const adminConfig = writeConfig(id, 'crr-admin', undefined, { manageAcls: true });
    const crrConfig = writeConfig(id, 'crr', undefined, { manageAcls: true, drStore });
    try {
      await promoteWithAclFlip(id, adminConfig, crrConfig);
    } finally {
      // User:crr's ALTER on the clusters outlives the test (its cluster-wide ACLs are shared by the tests): take it back
      const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;
      for (const bootstrap of [primary, dr]) {
        const a = kafkaAs(bootstrap, 'crr-admin').admin();
        await a.connect();
        await a.deleteAcls({
          filters: [
            {
              resourceType: AclResourceTypes.CLUSTER,
              resourceName: 'kafka-cluster',
              resourcePatternType: ResourcePatternTypes.LITERAL,
              principal: 'User:crr',
              host: '*',
              operation: AclOperationTypes.ALTER,
              permissionType: AclPermissionTypes.ALLOW,
            },
          ],
        });
        await a.disconnect();
      }
    }
  }, 120_000);
});

/** The body of the promotion test: ACLs applied by crr-admin, a graceful promotion by User:crr, the broker's fence checked. */
async function promoteWithAclFlip(id: string, adminConfig: string, crrConfig: string): Promise<void> {
  const [p, d] = [`p${id}`, `d${id}`];
  // first without manageAcls in crr-admin's config: User:crr may not change ACLs
  for (const c of [p, d]) {
    const r = await runCrr(['acls', 'apply', '--execute', '--config', writeConfig(id, 'crr-admin'), '--cluster', c, '--principal', 'User:crr']);
    expect(r.code, r.stderr).toBe(0);
  }
  const admin = kafkaAs(primary, 'crr-admin').admin();
  await admin.connect();
  await admin.createTopics({
    waitForLeaders: true,
    topics: [
      { topic: `t${id}.data`, numPartitions: 2 },
      { topic: `t${id}.metadata`, numPartitions: 1 },
    ],
  });
  await admin.disconnect();
  // the application writes a change event to the primary's change topic
  const event = parseEvent({
    v: 1,
    id: randomUUID(),
    ts: Date.now(),
    epoch: 0,
    origin: p,
    op: 'CREATE_VERTEX_TYPE',
    name: 'Account',
    primaryIdType: 'STRING',
    attributes: [],
  });
  const record = { key: eventKey(event), value: encodeEvent(event) };
  await waitFor(
    'the application may write the primary',
    async () => (await tryProduce(kafkaAs(primary, 'app'), `t${id}.metadata`, record)) === 'ok',
    20_000,
    500,
  );

  // a graceful promotion that cannot flip the old primary's ACLs is refused: its applications would keep writing
  const refused = await runCrr(['promote', '--config', crrConfig, '--cluster', d, '--execute']);
  console.log(
    `refused: ${refused.stderr
      .split('\n')
      .filter((l) => l.startsWith('crr promote'))
      .join('')}`,
  );
  expect(refused.code, refused.stderr).toBe(3);
  expect(refused.stderr).toContain(`could not fence the old primary ${p} in its Kafka ACLs`);
  // p is published FENCED now (step 2 went that far): crr acls plans it as a fenced primary, its applications' WRITE to go
  const fencedPlan = await runCrr(['acls', 'plan', '--config', adminConfig, '--cluster', p, '--principal', 'User:crr']);
  expect(fencedPlan.stdout, fencedPlan.stderr).toContain(`cluster ${p}: fenced primary (FENCED: its applications may not write) (role from published)`);
  expect(fencedPlan.stdout).toContain(`- ALLOW User:app WRITE TOPIC LITERAL t${id}.data`);
  // manageAcls: crr-admin grants User:crr ALTER, leaving the rest as it was (--role: the roles before the promotion)
  for (const [c, role] of [
    [p, 'primary'],
    [d, 'replica'],
  ]) {
    const r = await runCrr(['acls', 'apply', '--execute', '--config', adminConfig, '--cluster', c!, '--principal', 'User:crr', '--role', role!]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('+ ALLOW User:crr ALTER CLUSTER LITERAL kafka-cluster');
  }

  // run again, the promotion resumes, and flips the ACLs itself
  const t0 = Date.now();
  const promoted = await runCrr(['promote', '--config', crrConfig, '--cluster', d, '--execute', '--json']);
  console.log(`secured graceful promotion with the ACL flip: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  expect(promoted.code, promoted.stderr).toBe(0);
  const summary = JSON.parse(promoted.stdout);
  expect(summary).toMatchObject({ cluster: d, mode: 'graceful', oldPrimaryFenced: 'kafka', rpo: { records: 0 }, eventsReplayed: 1, warnings: [] });
  expect(summary.acls[p]).toMatchObject({ role: 'fenced-primary', result: 'applied', removed: 2 });
  expect(summary.acls[d]).toMatchObject({ role: 'primary', result: 'applied' });

  // the broker fences the old primary: its application is refused; the new primary takes its writes
  await waitFor(
    'the old primary to refuse its application',
    async () => (await tryProduce(kafkaAs(primary, 'app'), `t${id}.metadata`, record)) === 'TOPIC_AUTHORIZATION_FAILED',
    20_000,
    500,
  );
  expect(await tryProduce(kafkaAs(primary, 'app'), `t${id}.data`)).toBe('TOPIC_AUTHORIZATION_FAILED');
  await waitFor('the new primary to take its application writes', async () => (await tryProduce(kafkaAs(dr, 'app'), `t${id}.data`)) === 'ok', 20_000, 500);
  expect(await tryProduce(kafkaAs(dr, 'app'), `p${id}.t${id}.data`)).toBe('TOPIC_AUTHORIZATION_FAILED');

  // crr acls plans the old primary (FENCED in its published state) as a fenced primary: in place, nothing to give back
  const plan = await runCrr(['acls', 'plan', '--config', adminConfig, '--cluster', p, '--principal', 'User:crr']);
  expect(plan.code, plan.stderr).toBe(0);
  expect(plan.stdout).toContain(`cluster ${p}: fenced primary (FENCED: its applications may not write) (role from published)`);
  expect(plan.stdout).toContain('ACLs in place: nothing to add or remove');
}
