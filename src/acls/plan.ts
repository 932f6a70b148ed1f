import { CLUSTER_STATE_TOPIC } from '../cluster/state.js';
import type { Role } from '../cluster/schema.js';
import type { Config } from '../config/schema.js';
import type { FlowConfig } from '../config/flow.js';
import { CrrError } from '../errors.js';
import { checkpointsTopicName, offsetSyncsTopicName, positionsTopicName } from '../replication/internal-topics.js';
import { createReplicationPolicy } from '../replication/policy.js';

/**
 * The ACLs crr manages on a cluster, computed from the config and the cluster's role (issue 12,
 * item 2: the DR write fence enforced by Kafka itself). Pure: no I/O; src/acls/apply.ts reads and
 * changes a cluster's ACLs with the admin API.
 *
 * Names follow Kafka's (`kafka-acls`, org.apache.kafka.common.acl): resource types `TOPIC`,
 * `GROUP`, `TRANSACTIONAL_ID`, `CLUSTER` (name `kafka-cluster`); pattern types `LITERAL` and
 * `PREFIXED`; operations as in AclOperation; permission `ALLOW` or `DENY`. Host is always `*`.
 */

export const RESOURCE_TYPES = ['TOPIC', 'GROUP', 'TRANSACTIONAL_ID', 'CLUSTER'] as const;
export type AclResourceType = (typeof RESOURCE_TYPES)[number];
export const PATTERN_TYPES = ['LITERAL', 'PREFIXED'] as const;
export type AclPatternType = (typeof PATTERN_TYPES)[number];
export const OPERATIONS = [
  'ALL',
  'READ',
  'WRITE',
  'CREATE',
  'DELETE',
  'ALTER',
  'DESCRIBE',
  'CLUSTER_ACTION',
  'DESCRIBE_CONFIGS',
  'ALTER_CONFIGS',
  'IDEMPOTENT_WRITE',
] as const;
export type AclOperation = (typeof OPERATIONS)[number];
export type AclPermission = 'ALLOW' | 'DENY';

/** The name Kafka gives the one CLUSTER resource. */
export const CLUSTER_RESOURCE = 'kafka-cluster';

/** A resource pattern: what an ACL binding applies to (`LITERAL` name `*` = every resource of the type). */
export interface AclResource {
  resourceType: AclResourceType;
  resourceName: string;
  patternType: AclPatternType;
}

/** One ACL binding: a principal (`User:name`) allowed or denied one operation on a resource pattern, from any host. */
export interface AclBinding extends AclResource {
  principal: string;
  host: string;
  operation: AclOperation;
  permission: AclPermission;
}

/** Who the ACLs are for on one cluster. */
export interface AclPrincipals {
  /** crr's own principal on this cluster (`User:<sasl.username>` by default). */
  crr: string;
  /** `clusters.<alias>.applicationPrincipals`: the principals of the applications. */
  applications: readonly string[];
}

/** What crr wants on a cluster in a role. */
export interface DesiredAcls {
  cluster: string;
  role: Role;
  principals: AclPrincipals;
  /** Every binding crr wants present. */
  bindings: AclBinding[];
  /**
   * The resources only crr may write in this role (a replica's remote topics, crr's internal
   * topics and transactional ids): an ALLOW WRITE (or ALL) there for any other principal,
   * wildcards included, is removed (MM2's rule: ACL sync never creates an ALLOW WRITE on a replica).
   */
  fenced: AclResource[];
  /**
   * The resource patterns crr manages for this cluster in either role: a binding of crr's or an
   * application principal on one of these that is not in `bindings` is removed (this is how a
   * promotion removes the old role's ACLs).
   */
  managed: AclResource[];
}

/** The difference between what a cluster has and what crr wants. */
export interface AclPlan extends Omit<DesiredAcls, 'fenced' | 'managed'> {
  add: AclBinding[];
  remove: AclBinding[];
}

const topic = (resourceName: string, patternType: AclPatternType = 'LITERAL'): AclResource => ({ resourceType: 'TOPIC', resourceName, patternType });
const group = (resourceName: string, patternType: AclPatternType = 'LITERAL'): AclResource => ({ resourceType: 'GROUP', resourceName, patternType });
const txnId = (resourceName: string): AclResource => ({ resourceType: 'TRANSACTIONAL_ID', resourceName, patternType: 'LITERAL' });
const clusterResource: AclResource = { resourceType: 'CLUSTER', resourceName: CLUSTER_RESOURCE, patternType: 'LITERAL' };

/** Principal syntax Kafka accepts: `<type>:<name>`, e.g. `User:app`. */
export const PRINCIPAL = /^[A-Za-z]+:.+$/;

/**
 * The remote topics of a flow on its target, as ACL resource patterns: under the `prefix`
 * policy every remote topic of the source (PREFIXED `<source><separator>`); under `identity` a
 * remote topic's name does not tell its source, so the source's change topics and heartbeats
 * topic by name (LITERAL), the topics crr itself reads and writes.
 */
export function remoteTopicPatterns(config: Config, flow: FlowConfig): AclResource[] {
  const policy = createReplicationPolicy(flow.replicationPolicy, Object.keys(config.clusters));
  if (policy.type === 'prefix') return [topic(policy.formatRemoteTopic(flow.source, ''), 'PREFIXED')];
  const source = config.clusters[flow.source]!;
  const names = [source.changeTopics.data, source.changeTopics.metadata, ...(flow.emitHeartbeats ? [flow.heartbeatsTopic] : [])];
  return names.map((n) => topic(n));
}

/** crr's internal topics on the target of a flow (src/replication/internal-topics.ts). */
export function internalTopicPatterns(flow: FlowConfig): AclResource[] {
  return [positionsTopicName(flow.source), offsetSyncsTopicName(flow.source), checkpointsTopicName(flow.source)].map((n) => topic(n));
}

function bindings(resources: AclResource[], principal: string, operations: AclOperation[], permission: AclPermission = 'ALLOW'): AclBinding[] {
  return resources.flatMap((r) => operations.map((operation) => ({ ...r, principal, host: '*', operation, permission })));
}

/** The flow into `alias` a replica replays: the enabled one, else (planning a role it is not in yet) any. */
function flowInto(config: Config, alias: string, enabledOnly: boolean): FlowConfig | undefined {
  return config.mirror.flows.find((f) => f.target === alias && f.enabled) ?? (enabledOnly ? undefined : config.mirror.flows.find((f) => f.target === alias));
}

/**
 * The ACLs crr wants on cluster `alias` in `role`.
 *
 * Every role: crr's principal gets ALL on the cluster-state topic, on replay's dead-letter topic
 * (`replay.deadLetterTopic`), on groups prefixed `crr-`
 * (replay `crr-replay-<alias>`, readers `crr-reader-*`, the mirror's `crr-mirror-<s>-<t>`) and
 * DESCRIBE, DESCRIBE_CONFIGS (topic sync reads the brokers' defaults) and IDEMPOTENT_WRITE on the cluster; applications READ + DESCRIBE the cluster-state
 * topic (the writer reads it) with READ on groups prefixed `crr-reader-`. As the source of an
 * enabled flow: crr may READ, DESCRIBE and DESCRIBE_CONFIGS every topic (the mirror reads what its
 * topic filter selects, as MM2's source connector), DESCRIBE every group (checkpoints) and has
 * ALL on the heartbeats topic.
 *
 * - `primary`: crr ALL on the change topics (it creates and replays them); applications WRITE,
 *   READ and DESCRIBE them.
 * - `replica` (of flow S->alias): crr ALL on the remote topics and on crr's internal topics,
 *   WRITE + DESCRIBE on the transactional id `crr-mirror-S-alias`, and (with `syncGroupOffsets`)
 *   READ + DESCRIBE on every group; applications READ + DESCRIBE the remote topics and are
 *   DENIED WRITE there, which holds even against a wildcard ALLOW added later.
 *
 * @param principals crr's principal and the applications' (see {@link AclPrincipals})
 * @throws CrrError CRR_CONFIG_INVALID when `alias` is unknown, an application principal is crr's
 *   own or a wildcard (`User:*`: its DENY WRITE would stop crr too), or `role` is `replica` and no
 *   enabled flow targets it
 */
export function desiredAcls(config: Config, alias: string, role: Role, principals: AclPrincipals): DesiredAcls {
  const cluster = config.clusters[alias];
  if (!cluster) throw new CrrError('CRR_CONFIG_INVALID', `unknown cluster alias "${alias}"; known: ${Object.keys(config.clusters).join(', ')}`);
  const { crr, applications } = principals;
  // a DENY for an application principal would also stop crr if it matched crr's principal
  const clash = applications.find((a) => a === crr || a.endsWith(':*'));
  if (clash) {
    throw new CrrError(
      'CRR_CONFIG_INVALID',
      `clusters.${alias}.applicationPrincipals: "${clash}" ${clash === crr ? "is crr's own principal" : 'is a wildcard'}; list the applications' principals only (a replica denies them WRITE)`,
      { context: { path: `clusters.${alias}.applicationPrincipals` } },
    );
  }
  const out: AclBinding[] = [];
  const fenced: AclResource[] = [];
  const managed: AclResource[] = [];

  // every role
  const state = topic(CLUSTER_STATE_TOPIC);
  const deadLetters = topic(config.replay.deadLetterTopic); // replay creates it and writes what it cannot apply
  out.push(...bindings([state, deadLetters, group('crr-', 'PREFIXED')], crr, ['ALL']));
  out.push(...bindings([clusterResource], crr, ['DESCRIBE', 'DESCRIBE_CONFIGS', 'IDEMPOTENT_WRITE']));
  for (const app of applications) {
    out.push(...bindings([state], app, ['READ', 'DESCRIBE']));
    out.push(...bindings([group('crr-reader-', 'PREFIXED')], app, ['READ']));
  }
  managed.push(state, deadLetters, group('crr-', 'PREFIXED'), group('crr-reader-', 'PREFIXED'), clusterResource);
  fenced.push(state); // the writer trusts the published state: only crr writes it

  // source side of the enabled flows out of this cluster
  const outgoing = config.mirror.flows.filter((f) => f.enabled && f.source === alias);
  if (outgoing.length > 0) {
    out.push(...bindings([topic('*')], crr, ['READ', 'DESCRIBE', 'DESCRIBE_CONFIGS']));
    out.push(...bindings([group('*')], crr, ['DESCRIBE']));
  }
  for (const f of outgoing.filter((x) => x.emitHeartbeats)) out.push(...bindings([topic(f.heartbeatsTopic)], crr, ['ALL']));
  managed.push(topic('*'), group('*'));

  // primary: the change topics
  const change = [topic(cluster.changeTopics.data), topic(cluster.changeTopics.metadata)];
  managed.push(...change);
  if (role === 'primary') {
    out.push(...bindings(change, crr, ['ALL']));
    for (const app of applications) out.push(...bindings(change, app, ['WRITE', 'READ', 'DESCRIBE']));
  }

  // replica: the flow into it
  const incoming = flowInto(config, alias, role === 'replica');
  if (role === 'replica' && !incoming) {
    throw new CrrError(
      'CRR_CONFIG_INVALID',
      `cluster ${alias} is a replica, but no enabled flow in mirror.flows targets it: enable the flow into ${alias}, or promote it`,
      {
        context: { path: 'mirror.flows' },
      },
    );
  }
  if (incoming) {
    const remote = remoteTopicPatterns(config, incoming);
    const internal = internalTopicPatterns(incoming);
    const txn = txnId(`crr-mirror-${incoming.source}-${incoming.target}`);
    managed.push(...remote, ...internal, txn);
    if (role === 'replica') {
      out.push(...bindings([...remote, ...internal], crr, ['ALL']));
      out.push(...bindings([txn], crr, ['WRITE', 'DESCRIBE']));
      if (incoming.syncGroupOffsets) out.push(...bindings([group('*')], crr, ['READ', 'DESCRIBE']));
      for (const app of applications) {
        out.push(...bindings(remote, app, ['READ', 'DESCRIBE']));
        out.push(...bindings(remote, app, ['WRITE'], 'DENY'));
      }
      fenced.push(...remote, ...internal, txn);
    }
  }
  return { cluster: alias, role, principals, bindings: dedupe(out), fenced: dedupe(fenced), managed: dedupe(managed) };
}

/** A stable identity of a binding or resource, for comparing sets. */
export function aclKey(b: AclResource & Partial<AclBinding>): string {
  return [b.resourceType, b.patternType, b.resourceName, b.principal ?? '', b.host ?? '', b.operation ?? '', b.permission ?? ''].join('|');
}

function dedupe<T extends AclResource>(xs: T[]): T[] {
  const seen = new Map<string, T>();
  for (const x of xs) if (!seen.has(aclKey(x))) seen.set(aclKey(x), x);
  return [...seen.values()];
}

/**
 * Whether some resource name matches both patterns (same resource type): `LITERAL *` matches
 * every name; a PREFIXED pattern every name starting with it.
 */
export function patternsOverlap(a: AclResource, b: AclResource): boolean {
  if (a.resourceType !== b.resourceType) return false;
  const wild = (r: AclResource) => r.patternType === 'LITERAL' && r.resourceName === '*';
  if (wild(a) || wild(b)) return true;
  if (a.patternType === 'LITERAL' && b.patternType === 'LITERAL') return a.resourceName === b.resourceName;
  if (a.patternType === 'PREFIXED' && b.patternType === 'PREFIXED')
    return a.resourceName.startsWith(b.resourceName) || b.resourceName.startsWith(a.resourceName);
  const [lit, pre] = a.patternType === 'LITERAL' ? [a, b] : [b, a];
  return lit.resourceName.startsWith(pre.resourceName);
}

const sameResource = (a: AclResource, b: AclResource): boolean =>
  a.resourceType === b.resourceType && a.patternType === b.patternType && a.resourceName === b.resourceName;

/**
 * The plan: what to add and what to remove so that `existing` (every ACL binding of the cluster)
 * holds what `desired` wants. Removed are:
 * - on a fenced resource (replica), any ALLOW WRITE or ALL of a principal other than crr's,
 *   whatever pattern reaches it (a wildcard too);
 * - on a managed resource pattern, any binding of crr's or an application principal that is not
 *   wanted (e.g. the applications' WRITE on the change topics once the cluster is a replica).
 * Bindings of other principals on other resources are left alone. Adding a binding that exists
 * is never planned, so running apply twice changes nothing the second time.
 */
export function planAcls(desired: DesiredAcls, existing: readonly AclBinding[]): AclPlan {
  const have = new Set(existing.map(aclKey));
  const want = new Set(desired.bindings.map(aclKey));
  const add = desired.bindings.filter((b) => !have.has(aclKey(b)));
  const ours = new Set([desired.principals.crr, ...desired.principals.applications]);
  const remove = existing.filter((b) => {
    if (want.has(aclKey(b))) return false;
    const writes = b.permission === 'ALLOW' && (b.operation === 'WRITE' || b.operation === 'ALL');
    if (writes && b.principal !== desired.principals.crr && desired.fenced.some((f) => patternsOverlap(b, f))) return true;
    return ours.has(b.principal) && desired.managed.some((m) => sameResource(m, b));
  });
  const { fenced: _f, managed: _m, ...rest } = desired;
  return { ...rest, add, remove };
}

/** One line of a binding, as `kafka-acls --list` words it: `ALLOW User:app WRITE TOPIC LITERAL graph.data`. */
export function formatBinding(b: AclBinding): string {
  return `${b.permission} ${b.principal} ${b.operation} ${b.resourceType} ${b.patternType} ${b.resourceName}${b.host === '*' ? '' : ` from ${b.host}`}`;
}
