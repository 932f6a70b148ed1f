import kafkajs from 'kafkajs';
import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { obeysPublishedFence, type ClusterStateInput } from '../cluster/cluster-state.js';
import { readPublishedClusterState } from '../cluster/state.js';
import { configuredRole, effectiveRole } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka, explainKafkaTlsError } from '../kafka/client.js';
import { type AclRole, desiredAclsFor } from './fence.js';
import { type AclBinding, type AclOperation, type AclPlan, type AclPrincipals, OPERATIONS, planAcls, RESOURCE_TYPES } from './plan.js';

// KafkaJS is CommonJS: its runtime enums come from the default export (see src/kafka/kafkajs.ts)
const { AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs;

const RESOURCE_CODE: Record<string, number> = {
  TOPIC: AclResourceTypes.TOPIC,
  GROUP: AclResourceTypes.GROUP,
  TRANSACTIONAL_ID: AclResourceTypes.TRANSACTIONAL_ID,
  CLUSTER: AclResourceTypes.CLUSTER,
};
const PATTERN_CODE: Record<string, number> = { LITERAL: ResourcePatternTypes.LITERAL, PREFIXED: ResourcePatternTypes.PREFIXED };
const PERMISSION_CODE: Record<string, number> = { ALLOW: AclPermissionTypes.ALLOW, DENY: AclPermissionTypes.DENY };
const OPERATION_CODE = Object.fromEntries(OPERATIONS.map((o) => [o, (AclOperationTypes as unknown as Record<string, number>)[o]!])) as Record<
  AclOperation,
  number
>;
const nameOf = (codes: Record<string, number>, code: number): string | undefined => Object.entries(codes).find(([, c]) => c === code)?.[0];

/** A binding in KafkaJS's numeric form (createAcls / deleteAcls filters). */
function toKafkaJs(b: AclBinding) {
  return {
    resourceType: RESOURCE_CODE[b.resourceType]!,
    resourceName: b.resourceName,
    resourcePatternType: PATTERN_CODE[b.patternType]!,
    principal: b.principal,
    host: b.host,
    operation: OPERATION_CODE[b.operation],
    permissionType: PERMISSION_CODE[b.permission]!,
  } as Parameters<Admin['createAcls']>[0]['acl'][number];
}

/**
 * Every ACL binding of a cluster (DescribeAcls with an all-matching filter), in crr's names.
 * Bindings of resource types crr does not manage (DELEGATION_TOKEN, USER) are left out.
 */
export async function describeAllAcls(admin: Admin): Promise<AclBinding[]> {
  const res = await admin.describeAcls({
    resourceType: AclResourceTypes.ANY,
    resourcePatternType: ResourcePatternTypes.ANY,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY,
  });
  const out: AclBinding[] = [];
  for (const r of res.resources) {
    const resourceType = nameOf(RESOURCE_CODE, r.resourceType);
    const patternType = nameOf(PATTERN_CODE, r.resourcePatternType);
    if (!resourceType || !patternType || !(RESOURCE_TYPES as readonly string[]).includes(resourceType)) continue;
    for (const a of r.acls) {
      const operation = nameOf(OPERATION_CODE, a.operation) as AclOperation | undefined;
      const permission = nameOf(PERMISSION_CODE, a.permissionType) as 'ALLOW' | 'DENY' | undefined;
      if (!operation || !permission) continue;
      out.push({ resourceType, patternType, resourceName: r.resourceName, principal: a.principal, host: a.host, operation, permission } as AclBinding);
    }
  }
  return out;
}

/** The SASL user name of a cluster's config (PLAIN or SCRAM); undefined without SASL or with OAUTHBEARER (the principal is in the token). */
function saslUser(cluster: Config['clusters'][string]): string | undefined {
  return cluster.sasl && 'username' in cluster.sasl ? cluster.sasl.username : undefined;
}

/**
 * crr's principal and the applications' for a cluster: `principal` when given, else
 * `User:<clusters.<alias>.sasl.username>`; the applications from `clusters.<alias>.applicationPrincipals`.
 * @throws CrrError CRR_CONFIG_INVALID when neither gives crr's principal (no SASL user configured)
 */
export function principalsOf(config: Config, alias: string, principal?: string): AclPrincipals {
  const cluster = config.clusters[alias];
  if (!cluster) throw new CrrError('CRR_CONFIG_INVALID', `unknown cluster alias "${alias}"; known: ${Object.keys(config.clusters).join(', ')}`);
  const user = saslUser(cluster);
  const crr = principal ?? (user ? `User:${user}` : undefined);
  if (!crr) {
    throw new CrrError(
      'CRR_CONFIG_INVALID',
      `clusters.${alias}.sasl: crr's principal on ${alias} is its SASL user; configure one (PLAIN or SCRAM), or pass --principal User:NAME (OAUTHBEARER: the token's principal)`,
      {
        context: { path: `clusters.${alias}.sasl` },
      },
    );
  }
  return { crr, applications: cluster.applicationPrincipals };
}

/**
 * The role a cluster's ACLs are planned for, and where it came from: the role recorded in its
 * store (src/cluster/topology.ts effectiveRole), else the one published on its Kafka
 * (`crr-cluster-state.internal`), else the configured one. A primary is planned as
 * `fenced-primary` when it is FENCED in its store, or when a FENCED state is published on its
 * Kafka at an epoch at or above its store's (src/cluster/cluster-state.ts
 * obeysPublishedFence: a promotion fenced it while its daemon was not running, and a
 * `crr acls apply` must not give its applications their WRITE back).
 */
export async function roleForAcls(
  config: Config,
  alias: string,
  kafka: Kafka,
  admin: Admin,
): Promise<{ role: AclRole; from: 'store' | 'published' | 'config' }> {
  let read: Promise<ClusterStateInput | undefined> | undefined;
  const published = (): Promise<ClusterStateInput | undefined> => {
    read ??= readPublishedClusterState(kafka, admin, alias, 10_000);
    return read;
  };
  const fencedPrimary = async (recorded: ClusterStateInput | undefined): Promise<boolean> =>
    recorded?.state === 'FENCED' || obeysPublishedFence(recorded, await published().catch(() => undefined));
  if (config.clusters[alias]?.store) {
    const r = await effectiveRole(config, alias, async () => (await published())?.role);
    const from = r.recorded ? ('store' as const) : r.storeUnreachable ? ('published' as const) : ('config' as const);
    return { role: r.role === 'primary' && (await fencedPrimary(r.state)) ? 'fenced-primary' : r.role, from };
  }
  const p = await published().catch(() => undefined);
  if (!p) return { role: configuredRole(config, alias), from: 'config' };
  return { role: p.role === 'primary' && (await fencedPrimary(undefined)) ? 'fenced-primary' : p.role, from: 'published' };
}

/**
 * Turns KafkaJS's authentication and authorization failures into CrrError CRR_KAFKA_AUTH naming
 * the cluster, its bootstrap servers and the principal, and a broker certificate that failed
 * verification or a client certificate the broker refused into one naming the cluster and the TLS
 * problem (src/kafka/client.ts `explainKafkaTlsError`); other errors pass through.
 */
export function explainKafkaAuthError(err: unknown, alias: string, config: Config, principal: string): unknown {
  const e = err as { name?: string; type?: string; message?: string };
  const cluster = config.clusters[alias];
  const where = `cluster ${alias} (${cluster?.bootstrapServers.join(',') ?? '?'})`;
  const tls = explainKafkaTlsError(err, alias, cluster?.bootstrapServers ?? [], undefined, cluster?.ssl);
  if (tls !== err) return tls;
  if (e?.name === 'KafkaJSSASLAuthenticationError') {
    return new CrrError('CRR_KAFKA_AUTH', `${where} refused the credentials of ${principal} (check clusters.${alias}.sasl)`, { cause: err });
  }
  if (e?.type === 'SECURITY_DISABLED') {
    return new CrrError(
      'CRR_KAFKA_AUTH',
      `${where} has no authorizer (SECURITY_DISABLED): its brokers need authorizer.class.name (StandardAuthorizer under KRaft) and allow.everyone.if.no.acl.found=false before ACLs can fence anything`,
      { cause: err },
    );
  }
  if (typeof e?.type === 'string' && e.type.endsWith('_AUTHORIZATION_FAILED')) {
    return new CrrError(
      'CRR_KAFKA_AUTH',
      `${where}: ${principal} is not allowed (${e.type}): reading and changing ACLs needs DESCRIBE and ALTER on the CLUSTER resource (a super user such as User:crr-admin)`,
      {
        cause: err,
      },
    );
  }
  return err;
}

/** What {@link planClusterAcls} and {@link applyAclPlan} report. */
export interface AclRun {
  plan: AclPlan;
  /** The role planned for: `plan.role`, or `fenced-primary` (planned from a primary's ACLs, src/acls/fence.ts). */
  role: AclRole;
  /** Where the role came from (`--role`, the store, the published state or the config). */
  roleFrom: 'option' | 'store' | 'published' | 'config';
  /** Set by --execute: how many bindings were created and deleted. */
  applied?: { added: number; removed: number };
}

/**
 * Connects to cluster `alias` with its configured credentials, reads its ACLs and plans them for
 * its role (src/acls/plan.ts, src/acls/fence.ts); with `execute`, creates the missing bindings and deletes the ones
 * to remove (each deletion filter matches exactly one binding: no pattern wildcards).
 * The connection is closed before returning.
 * @param opts.role plan for this role instead of the cluster's current one (see {@link roleForAcls})
 * @param opts.principal crr's principal (default `User:<sasl.username>`)
 * @param opts.quick connect as `crr status` does: at most 3 s to connect, one retry
 * @param opts.only keep only the additions and removals it matches (a partial apply, e.g. crr's
 *   own grants on a new primary's change topics before its applications get theirs)
 * @throws CrrError CRR_KAFKA_AUTH (credentials refused, or the principal may not read or change
 *   ACLs), CRR_CONFIG_INVALID (see {@link principalsOf}, desiredAcls); KafkaJS errors otherwise
 */
export async function runAcls(
  config: Config,
  alias: string,
  logger: Logger,
  opts: { role?: AclRole; principal?: string; execute?: boolean; quick?: boolean; only?: (b: AclBinding) => boolean },
): Promise<AclRun> {
  const cluster = config.clusters[alias];
  if (!cluster) throw new CrrError('CRR_CONFIG_INVALID', `unknown cluster alias "${alias}"; known: ${Object.keys(config.clusters).join(', ')}`);
  const principals = principalsOf(config, alias, opts.principal);
  const user = saslUser(cluster);
  const connectedAs = user ? `User:${user}` : cluster.sasl ? 'the OAUTHBEARER token' : 'an unauthenticated client';
  const kafka = opts.quick
    ? createKafka(alias, { ...cluster, connectionTimeoutMs: Math.min(cluster.connectionTimeoutMs, 3000) }, 'acls-status', logger, 'fatal')
    : createKafka(alias, cluster, 'acls', logger);
  const admin = kafka.admin(opts.quick ? { retry: { retries: 1 } } : undefined);
  try {
    await admin.connect();
    const existing = await describeAllAcls(admin);
    const resolved = opts.role ? { role: opts.role, from: 'option' as const } : await roleForAcls(config, alias, kafka, admin);
    const full = planAcls(desiredAclsFor(config, alias, resolved.role, principals), existing);
    const only = opts.only;
    const plan = only ? { ...full, add: full.add.filter(only), remove: full.remove.filter(only) } : full;
    const run: AclRun = { plan, role: resolved.role, roleFrom: resolved.from };
    if (opts.execute) {
      if (plan.add.length > 0) await admin.createAcls({ acl: plan.add.map(toKafkaJs) });
      if (plan.remove.length > 0) {
        const res = await admin.deleteAcls({ filters: plan.remove.map(toKafkaJs) });
        const failed = res.filterResponses.find((f) => f.errorCode !== 0);
        if (failed) throw new CrrError('CRR_KAFKA', `cluster ${alias}: deleting ACLs failed: ${failed.errorMessage ?? `error code ${failed.errorCode}`}`);
      }
      run.applied = { added: plan.add.length, removed: plan.remove.length };
    }
    return run;
  } catch (err) {
    throw explainKafkaAuthError(err, alias, config, connectedAs);
  } finally {
    await admin.disconnect().catch((e: unknown) => logger.debug({ err: describeError(e) }, 'admin disconnect failed'));
  }
}

/**
 * Whether the Kafka ACL fence is in place on a cluster, as `crr status` shows it:
 * - `in-place`: the plan for its role is empty;
 * - `to-change`: `add` bindings to add and `remove` to remove (`crr acls apply --cluster X --execute`);
 * - `no-authorizer`: its brokers have no authorizer (SECURITY_DISABLED), so no ACL fences anything;
 * - `cannot-check`: the ACLs could not be read (`reason`: not authorized to DESCRIBE ACLs, the
 *   cluster unreachable, a config problem).
 */
export interface AclStatus {
  cluster: string;
  /** The role the ACLs were planned for (`fenced-primary`: a primary published FENCED). */
  role: AclRole;
  state: 'in-place' | 'to-change' | 'no-authorizer' | 'cannot-check';
  add?: number;
  remove?: number;
  reason?: string;
}

/**
 * The {@link AclStatus} of cluster `alias` in `role`, from {@link runAcls} (plan only) with the
 * cluster's credentials and `crr status`'s short timeouts. Never throws: a failure is a
 * `no-authorizer` or `cannot-check` answer.
 * @returns undefined when the config does not name crr's principal on the cluster (no SASL
 *   PLAIN/SCRAM user): nothing to check against
 */
export async function aclStatus(config: Config, alias: string, role: AclRole, logger: Logger): Promise<AclStatus | undefined> {
  if (!namesCrrPrincipal(config, alias)) return undefined;
  try {
    const { plan } = await runAcls(config, alias, logger, { role, quick: true });
    if (plan.add.length === 0 && plan.remove.length === 0) return { cluster: alias, role, state: 'in-place' };
    return { cluster: alias, role, state: 'to-change', add: plan.add.length, remove: plan.remove.length };
  } catch (err) {
    return { cluster: alias, role, ...aclFailure(err) };
  }
}

/** Whether the config names crr's principal on cluster `alias` (a SASL PLAIN or SCRAM user), so its ACLs can be planned. */
export function namesCrrPrincipal(config: Config, alias: string): boolean {
  const cluster = config.clusters[alias];
  return cluster !== undefined && saslUser(cluster) !== undefined;
}

/** What a failure of {@link runAcls} means for {@link aclStatus}. */
export function aclFailure(err: unknown): { state: 'no-authorizer' | 'cannot-check'; reason?: string } {
  const type = (e: unknown): string | undefined => (e as { type?: string } | undefined)?.type;
  const broker = type(err) ?? type((err as { cause?: unknown })?.cause);
  if (broker === 'SECURITY_DISABLED') return { state: 'no-authorizer' };
  if (broker?.endsWith('_AUTHORIZATION_FAILED')) return { state: 'cannot-check', reason: `not authorized to DESCRIBE ACLs (${broker})` };
  return { state: 'cannot-check', reason: describeError(err) };
}

/** One line of an {@link AclStatus}: `acls: in place`, `acls: 3 to add, 1 to remove (run ...)`, ... */
export function formatAclStatus(s: AclStatus): string {
  switch (s.state) {
    case 'in-place':
      return 'acls: in place';
    case 'to-change':
      return `acls: ${s.add} to add, ${s.remove} to remove (run crr acls apply --cluster ${s.cluster} --execute)`;
    case 'no-authorizer':
      return 'acls: no authorizer';
    default:
      return `acls: cannot check (${s.reason})`;
  }
}
