import type { Logger } from 'pino';
import { principalsOf, runAcls } from '../acls/apply.js';
import type { AclRole } from '../acls/fence.js';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';

/**
 * What a promotion did to one cluster's Kafka ACLs:
 * - `applied`: planned for `role` and applied (`added`/`removed` bindings; 0/0 when in place);
 * - `not-managed`: `clusters.<alias>.manageAcls` is false: `crr acls apply --execute` is the operator's;
 * - `not-reached`: the old primary could not be reached (a forced promotion): apply them when it is back;
 * - `skipped`: nothing to flip (`reason`, e.g. the old primary is a replica since a failback);
 * - `failed`: the cluster refused or did not answer (`error`).
 */
export interface PromotionAcls {
  /** The role planned: `primary` for the new primary, `fenced-primary` for the old one. */
  role: AclRole;
  result: 'applied' | 'not-managed' | 'not-reached' | 'skipped' | 'failed';
  added?: number;
  removed?: number;
  error?: string;
  reason?: string;
}

/** How long connecting to a cluster may take while flipping its ACLs, ms (an old primary may be half gone). */
const CONNECT_TIMEOUT_MS = 3000;

/**
 * Flips the Kafka ACLs of cluster `alias` for its role after a promotion (src/acls/apply.ts
 * runAcls with `execute`, crr's configured credentials, which need ALTER on the cluster: see
 * src/acls/fence.ts), when `clusters.<alias>.manageAcls` is true. Never throws: a failure is
 * the result `failed` with the error, for the caller to refuse (a graceful promotion, the old
 * primary) or warn.
 * @param opts.reachable false: the cluster is known to be unreachable, nothing is tried (`not-reached`)
 */
export async function flipAcls(config: Config, alias: string, role: AclRole, opts: { log: Logger; reachable?: boolean }): Promise<PromotionAcls> {
  const cluster = config.clusters[alias];
  if (!cluster?.manageAcls) return { role, result: 'not-managed' };
  if (opts.reachable === false) return { role, result: 'not-reached' };
  const quick: Config = {
    ...config,
    clusters: { ...config.clusters, [alias]: { ...cluster, connectionTimeoutMs: Math.min(cluster.connectionTimeoutMs, CONNECT_TIMEOUT_MS) } },
  };
  try {
    const run = await runAcls(quick, alias, opts.log, { role, execute: true });
    return { role, result: 'applied', added: run.applied?.added ?? 0, removed: run.applied?.removed ?? 0 };
  } catch (err) {
    opts.log.warn({ err: describeError(err), cluster: alias, role }, `could not apply the ACLs of ${alias} as a ${role}`);
    return { role, result: 'failed', error: describeError(err) };
  }
}

/**
 * Before a promoted cluster records its own change topics' positions: crr's own grants on its
 * change topics as a primary's (ALL: it creates and replays them), added alone, when
 * `clusters.<alias>.manageAcls` is true. Nothing is removed and its applications get no WRITE
 * yet: the replica's ACLs (crr's on the remote topics and the checkpoints, which the group
 * offset sync still reads) stay until {@link flipAcls} sets the primary's at the end.
 * Never throws (see {@link flipAcls}).
 */
export async function prepareNewPrimaryAcls(config: Config, alias: string, log: Logger): Promise<PromotionAcls> {
  const cluster = config.clusters[alias];
  if (!cluster?.manageAcls) return { role: 'primary', result: 'not-managed' };
  try {
    const crr = principalsOf(config, alias).crr;
    const { data, metadata } = cluster.changeTopics;
    const run = await runAcls(config, alias, log, {
      role: 'primary',
      execute: true,
      only: (b) => b.principal === crr && b.resourceType === 'TOPIC' && b.patternType === 'LITERAL' && (b.resourceName === data || b.resourceName === metadata),
    });
    return { role: 'primary', result: 'applied', added: run.applied?.added ?? 0, removed: run.applied?.removed ?? 0 };
  } catch (err) {
    log.warn({ err: describeError(err), cluster: alias }, `could not grant crr the change topics of ${alias}`);
    return { role: 'primary', result: 'failed', error: describeError(err) };
  }
}

/** One line about a cluster's ACLs after a promotion, for the step log and the CLI summary. */
export function describeAcls(alias: string, a: PromotionAcls): string {
  const as = a.role === 'fenced-primary' ? 'a fenced primary (its applications may not write)' : 'the primary (its applications may write)';
  switch (a.result) {
    case 'applied':
      return `Kafka ACLs of ${alias} set for ${as}: ${a.added} added, ${a.removed} removed`;
    case 'not-managed':
      return `Kafka ACLs of ${alias} not changed (manageAcls: false)`;
    case 'not-reached':
      return `Kafka ACLs of ${alias} NOT flipped (unreachable): run crr acls apply --cluster ${alias} --execute when it is back`;
    case 'skipped':
      return `Kafka ACLs of ${alias} left as they are (${a.reason ?? 'nothing to flip'})`;
    case 'failed':
      return `Kafka ACLs of ${alias} NOT flipped (${a.error}): run crr acls apply --cluster ${alias} --execute`;
  }
}
