import kafkajs from 'kafkajs';
import { afterAll, describe, expect, it } from 'vitest';
import { runCrr, uniq, useMirrorProcesses, waitFor } from '../support/helpers.js';
import { useSecuredClusters, writeTestConfig, fastMirror } from '../support/secured.js';

/**
 * mTLS against the brokers' own listener (issue 12, item 1): each secured cluster of
 * `CRR_KAFKA_SECURED=1 scripts/kafka.sh` has an SSL listener with `ssl.client.auth=required` on
 * its SASL_SSL port + 2, whose principal is the client certificate's CN
 * (`ssl.principal.mapping.rules`: CN=crr-mtls -> User:crr-mtls), under StandardAuthorizer with
 * allow.everyone.if.no.acl.found=false. crr's config names only `ssl: {caFile, certFile,
 * keyFile}` there, no SASL. The super user crr-admin (SASL listener) grants User:crr-mtls the
 * plan's ACLs with `crr acls apply`; nothing else lets it read or write. They are deleted at the
 * end: its ALL on the shared `crr-cluster-state.internal` would otherwise be a stray WRITE for
 * the next file's plans.
 */

const secured = useSecuredClusters();
const mirror = useMirrorProcesses();

afterAll(async () => {
  const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;
  for (const bootstrap of [secured.primary, secured.dr]) {
    if (!bootstrap) continue;
    const admin = secured.kafkaAs(bootstrap, 'crr-admin').admin();
    await admin.connect();
    await admin.deleteAcls({
      filters: [
        {
          resourceType: AclResourceTypes.ANY,
          resourcePatternType: ResourcePatternTypes.ANY,
          principal: 'User:crr-mtls',
          host: '*',
          operation: AclOperationTypes.ANY,
          permissionType: AclPermissionTypes.ANY,
        },
      ],
    });
    await admin.disconnect();
  }
});

/** A config of both secured clusters under fresh aliases `p<id>` / `d<id>`, with a flow p -> d of the topics `t<id>.*`. */
function config(id: string, name: string, cluster: (bootstrap: string, mtls: boolean) => Record<string, unknown>, flow = true): string {
  const changeTopics = { data: `t${id}.data`, metadata: `t${id}.metadata`, dataPartitions: 2 };
  return writeTestConfig(`mtls-${id}-${name}`, {
    clusters: {
      [`p${id}`]: { ...cluster(secured.primary, false), ...cluster(secured.mtlsPrimary, true), changeTopics },
      [`d${id}`]: { ...cluster(secured.dr, false), ...cluster(secured.mtlsDr, true), changeTopics },
    },
    ...(flow ? { mirror: fastMirror(id) } : {}),
    http: { host: '127.0.0.1', port: 0 },
    log: { level: 'info' },
  });
}

/** Picks the mTLS listener's config with the client certificate `cert`. */
const mtlsWith =
  (cert: 'crr-mtls' | 'other-ca' | 'none') =>
  (bootstrap: string, mtls: boolean): Record<string, unknown> =>
    mtls ? secured.mtlsCluster(bootstrap, cert) : {};

describe('crr on the brokers’ mTLS listener (principal from the client certificate)', () => {
  it('User:crr-mtls, given the plan’s ACLs by crr-admin, mirrors between the two mTLS listeners: the records arrive', async () => {
    const id = uniq();
    const [p, d] = [`p${id}`, `d${id}`];
    const adminConfig = config(id, 'admin', (b, mtls) => (mtls ? {} : secured.cluster(b, 'crr-admin')));
    const crrConfig = config(id, 'crr', mtlsWith('crr-mtls'));
    for (const c of [p, d]) {
      const r = await runCrr(['acls', 'apply', '--config', adminConfig, '--cluster', c, '--principal', 'User:crr-mtls', '--execute']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`crr's principal User:crr-mtls`);
    }

    // the application (crr-admin here) writes the primary's change topic over SASL_SSL
    const admin = secured.kafkaAs(secured.primary, 'crr-admin').admin();
    await admin.connect();
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic: `t${id}.data`, numPartitions: 2 }] });
    await admin.disconnect();
    const producer = secured.kafkaAs(secured.primary, 'crr-admin').producer();
    await producer.connect();
    const values = Array.from({ length: 5 }, (_, i) => `v${i}`);
    await producer.send({ topic: `t${id}.data`, acks: -1, messages: values.map((value, i) => ({ key: `k${i}`, value })) });
    await producer.disconnect();

    // crr, only a client certificate (CN=crr-mtls) and the test CA, copies it to dr's remote topic
    const run = mirror(crrConfig);
    const consumer = secured.kafkaAs(secured.dr, 'crr-admin').consumer({ groupId: `t${id}-check`, readUncommitted: false });
    const seen: string[] = [];
    await consumer.connect();
    try {
      const dadmin = secured.kafkaAs(secured.dr, 'crr-admin').admin();
      await dadmin.connect();
      await waitFor(
        `the mirror (User:crr-mtls) to create ${p}.t${id}.data (log: ${run.logPath})`,
        async () => (await dadmin.listTopics()).includes(`${p}.t${id}.data`),
        20_000,
        250,
      );
      await dadmin.disconnect();
      await consumer.subscribe({ topic: `${p}.t${id}.data`, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void seen.push(String(message.value)) });
      await waitFor(`the 5 records on ${p}.t${id}.data (seen ${seen.length}; log: ${run.logPath})`, () => seen.length >= 5, 20_000, 250);
    } finally {
      await consumer.disconnect();
    }
    expect(seen.sort()).toEqual(values);
    // nothing the mirror does (topic and config sync, transactions, offset syncs, heartbeats,
    // checkpoints) was refused to the certificate's principal
    expect(run.log()).not.toMatch(/authorization failed|AUTHORIZATION_FAILED/i);
    run.child.kill('SIGKILL');
  }, 40_000);

  it('no client certificate: refused by the listener, a clear error naming the cluster and the missing certFile, at once (no retry storm)', async () => {
    const id = uniq();
    const cfg = config(id, 'no-cert', mtlsWith('none'));
    const t0 = Date.now();
    const r = await runCrr(['acls', 'plan', '--config', cfg, '--cluster', `d${id}`, '--principal', 'User:crr-mtls']);
    const ms = Date.now() - t0;
    console.log(`no client certificate: exit ${r.code} after ${ms} ms: ${r.stderr.trim()}`);
    expect(r.code).toBe(70);
    expect(r.stderr).toContain(
      `cluster d${id} (${secured.mtlsDr}): the broker refused the TLS connection (ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: bad certificate (SSL alert 42)): its listener requires a client certificate (mTLS) and clusters.d${id}.ssl.certFile is not set`,
    );
    // KafkaJS alone retries a connection error 5 times over about 8 s
    expect(ms).toBeLessThan(5_000);
    const st = await runCrr(['status', '--config', cfg]);
    expect(st.code).toBe(2);
    expect(st.stdout).toContain(`cluster p${id} (${secured.mtlsPrimary}): the broker refused the TLS connection`);
  });

  it('a client certificate signed by another CA: refused by the listener, a clear error naming the cluster and certFile, at once', async () => {
    const id = uniq();
    const cfg = config(id, 'other-ca', mtlsWith('other-ca'));
    const t0 = Date.now();
    const r = await runCrr(['acls', 'plan', '--config', cfg, '--cluster', `d${id}`, '--principal', 'User:crr-mtls']);
    const ms = Date.now() - t0;
    console.log(`client certificate of another CA: exit ${r.code} after ${ms} ms: ${r.stderr.trim()}`);
    expect(r.code).toBe(70);
    expect(r.stderr).toContain(
      `cluster d${id} (${secured.mtlsDr}): the broker refused crr's TLS client certificate (ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: certificate unknown (SSL alert 46)); check that clusters.d${id}.ssl.certFile is signed by a CA the brokers trust`,
    );
    expect(ms).toBeLessThan(5_000);
  });
});
