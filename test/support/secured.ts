import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs, { type Admin, type Kafka as KafkaClient, type SASLOptions } from 'kafkajs';
import { beforeAll } from 'vitest';
import { stringify } from 'yaml';
import { Kafka, logLevel } from '../../src/kafka/kafkajs.js';
import { KAFKA_SH } from './helpers.js';

/**
 * The secured clusters of `CRR_KAFKA_SECURED=1 scripts/kafka.sh` (SASL_SSL, SCRAM-SHA-512,
 * StandardAuthorizer with allow.everyone.if.no.acl.found=false, super user crr-admin; users
 * crr, crr-src, crr-dr, app), on CRR_SECURED_PRIMARY_PORT / CRR_SECURED_DR_PORT (default
 * 19492 / 29492), and an mTLS listener (SSL, a client certificate of the test CA required, the
 * principal its CN: User:crr-mtls) on each port + 2. A test file calls {@link useSecuredClusters}: they are started before its
 * tests when not running, and left running for the next file; the global setup's teardown
 * (test/support/global-setup.ts) stops them if this test run started them.
 */
export interface SecuredClusters {
  /** `127.0.0.1:PORT` of each cluster. */
  primary: string;
  dr: string;
  /** `127.0.0.1:PORT` of each cluster's mTLS listener (`kafka.sh env` CRR_KAFKA_MTLS_PRIMARY / CRR_KAFKA_MTLS_DR). */
  mtlsPrimary: string;
  mtlsDr: string;
  /** The `export K=V` lines of `kafka.sh env` (CRR_KAFKA_CA_FILE, CRR_KAFKA_OTHER_CA_FILE, the users' passwords). */
  env: Record<string, string>;
  /** A SCRAM user's password. */
  password(user: string): string;
  /** A KafkaJS client of `bootstrap` logged in as `user`, trusting the test CA. */
  kafkaAs(bootstrap: string, user: string): KafkaClient;
  /** The crr config of a cluster of these: TLS with the test CA, SCRAM-SHA-512 as `user`. */
  cluster(bootstrap: string, user: string, extra?: Record<string, unknown>): Record<string, unknown>;
  /**
   * The crr config of a cluster's mTLS listener, without SASL: TLS with the test CA and the client
   * certificate `cert`: `crr-mtls` (CN=crr-mtls, signed by the test CA; the default), `other-ca`
   * (CN=crr-mtls, signed by the other CA) or `none`.
   */
  mtlsCluster(bootstrap: string, cert?: 'crr-mtls' | 'other-ca' | 'none', extra?: Record<string, unknown>): Record<string, unknown>;
}

const SECURED = { ...process.env, CRR_KAFKA_SECURED: '1' };

/** Runs `scripts/kafka.sh ARGS` in secured mode, returning its stdout. */
export const securedSh = (...args: string[]): string =>
  execFileSync('bash', [KAFKA_SH, ...args], { env: SECURED, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

/** Starts the secured clusters before the file's tests (when not running) and returns their addresses and users, filled in then. */
export function useSecuredClusters(): SecuredClusters {
  const s: SecuredClusters = {
    primary: '',
    dr: '',
    mtlsPrimary: '',
    mtlsDr: '',
    env: {},
    password: (user) => s.env[`CRR_KAFKA_USER_${user.toUpperCase().replace(/-/g, '_')}_PASSWORD`]!,
    kafkaAs: (bootstrap, user) =>
      new Kafka({
        clientId: `crr-test-${user}`,
        brokers: [bootstrap],
        ssl: { ca: [readFileSync(s.env.CRR_KAFKA_CA_FILE!, 'utf8')] },
        sasl: { mechanism: 'scram-sha-512', username: user, password: s.password(user) } as SASLOptions,
        logLevel: logLevel.NOTHING,
        retry: { retries: 2, initialRetryTime: 200 },
      }),
    cluster: (bootstrap, user, extra = {}) => ({
      bootstrapServers: [bootstrap],
      ssl: { caFile: s.env.CRR_KAFKA_CA_FILE },
      sasl: { mechanism: 'scram-sha-512', username: user, password: s.password(user) },
      connectionTimeoutMs: 5000,
      ...extra,
    }),
    mtlsCluster: (bootstrap, cert = 'crr-mtls', extra = {}) => ({
      bootstrapServers: [bootstrap],
      ssl: {
        caFile: s.env.CRR_KAFKA_CA_FILE,
        ...(cert === 'crr-mtls' ? { certFile: s.env.CRR_KAFKA_MTLS_CERT_FILE, keyFile: s.env.CRR_KAFKA_MTLS_KEY_FILE } : {}),
        ...(cert === 'other-ca' ? { certFile: s.env.CRR_KAFKA_MTLS_OTHER_CA_CERT_FILE, keyFile: s.env.CRR_KAFKA_MTLS_OTHER_CA_KEY_FILE } : {}),
      },
      connectionTimeoutMs: 5000,
      ...extra,
    }),
  };
  beforeAll(() => {
    securedSh('up');
    for (const m of securedSh('env').matchAll(/^export ([A-Z0-9_]+)=(.*)$/gm)) s.env[m[1]!] = m[2]!;
    const status = securedSh('status');
    s.primary = `127.0.0.1:${status.match(/primary\s+running\s+127\.0\.0\.1:(\d+)/)![1]}`;
    s.dr = `127.0.0.1:${status.match(/dr\s+running\s+127\.0\.0\.1:(\d+)/)![1]}`;
    s.mtlsPrimary = s.env.CRR_KAFKA_MTLS_PRIMARY!;
    s.mtlsDr = s.env.CRR_KAFKA_MTLS_DR!;
  }, 150_000);
  return s;
}

/** Writes a config object as YAML under the tests' temporary folder; returns its path. */
export function writeTestConfig(name: string, config: Record<string, unknown>): string {
  const dir = join(tmpdir(), 'crr-tests');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${name}.yaml`);
  writeFileSync(path, stringify(config));
  return path;
}

/**
 * Remembers the ACL bindings of both secured clusters (read as the super user crr-admin) and
 * returns a function that deletes every binding added since: a test that applies crr's ACLs
 * leaves the clusters as it found them, so that the next file's plans are not changed by them.
 */
export async function rememberAcls(s: SecuredClusters): Promise<() => Promise<void>> {
  const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;
  const any = {
    resourceType: AclResourceTypes.ANY,
    resourcePatternType: ResourcePatternTypes.ANY,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY,
  } as Parameters<Admin['describeAcls']>[0];
  type Binding = {
    resourceType: number;
    resourceName: string;
    resourcePatternType: number;
    principal: string;
    host: string;
    operation: number;
    permissionType: number;
  };
  const bindings = async (admin: Admin): Promise<Map<string, Binding>> => {
    const out = new Map<string, Binding>();
    for (const r of (await admin.describeAcls(any)).resources) {
      for (const a of r.acls) {
        const b = { resourceType: r.resourceType, resourceName: r.resourceName, resourcePatternType: r.resourcePatternType, ...a } as Binding;
        out.set(JSON.stringify(b), b);
      }
    }
    return out;
  };
  const admins = [s.primary, s.dr].map((b) => s.kafkaAs(b, 'crr-admin').admin());
  const before: Array<Map<string, Binding>> = [];
  for (const admin of admins) {
    await admin.connect();
    before.push(await bindings(admin));
  }
  return async () => {
    try {
      for (const [i, admin] of admins.entries()) {
        const added = [...(await bindings(admin)).entries()].filter(([k]) => !before[i]!.has(k)).map(([, b]) => b);
        if (added.length > 0) await admin.deleteAcls({ filters: added as unknown as Parameters<Admin['deleteAcls']>[0]['filters'] });
      }
    } finally {
      for (const admin of admins) await admin.disconnect().catch(() => undefined);
    }
  };
}

/**
 * The `mirror` section of a test config with one fast flow `p<id>` -> `d<id>` over the topics
 * `t<id>.*` (heartbeats `t<id>-heartbeats`): 1 s topic refresh and checkpoints, 20 ms transaction
 * linger, fast restarts; `flow` is merged into the flow (e.g. `sourceAuth`).
 */
export function fastMirror(id: string, flow: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    flows: [
      {
        source: `p${id}`,
        target: `d${id}`,
        topics: { include: [`t${id}\\..*`] },
        heartbeatsTopic: `t${id}-heartbeats`,
        topicRefreshIntervalMs: 1000,
        transactionLingerMs: 20,
        checkpointIntervalMs: 1000,
        ...flow,
      },
    ],
    shutdownTimeoutMs: 5000,
    restartBackoffInitialMs: 200,
    restartBackoffMaxMs: 2000,
    lagPollIntervalMs: 500,
  };
}
