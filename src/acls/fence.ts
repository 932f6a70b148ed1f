import { ROLES } from '../cluster/schema.js';
import type { Config } from '../config/schema.js';
import { type AclBinding, type AclPrincipals, type AclResource, CLUSTER_RESOURCE, type DesiredAcls, desiredAcls } from './plan.js';

/**
 * The roles ACLs are planned for: a cluster's role (src/cluster/schema.ts), and
 * `fenced-primary`, an old primary fenced by a promotion (state `FENCED`, recorded in its store
 * or published on its Kafka).
 */
export const ACL_ROLES = [...ROLES, 'fenced-primary'] as const;
export type AclRole = (typeof ACL_ROLES)[number];

const isWrite = (b: AclBinding): boolean => b.permission === 'ALLOW' && (b.operation === 'WRITE' || b.operation === 'ALL');

/**
 * The ACLs crr wants on cluster `alias` in an {@link AclRole}: src/acls/plan.ts desiredAcls,
 * and on top of it:
 *
 * - `fenced-primary`: the primary's ACLs without the applications' WRITE on its change topics;
 *   the applications are DENIED WRITE there instead (as on a replica's remote topics: it holds
 *   against a wildcard ALLOW added later), and any other principal's ALLOW WRITE (or ALL) that
 *   reaches them is removed. crr keeps ALL there: its replay reads them, its writer refuses a
 *   fenced primary by itself. A fenced old primary is planned from the primary's ACLs because it
 *   has no flow into it until a failback (planning it as a replica would be refused).
 * - `clusters.<alias>.manageAcls: true` (every role): crr's principal gets ALTER on the cluster
 *   (`kafka-cluster`), which Kafka requires to create and delete ACLs, so that `crr promote`
 *   can flip them with crr's own credentials. It lets that principal change any ACL of the
 *   cluster: grant it only where `crr promote` is trusted with that.
 *
 * The cluster's ACLs are first put in place by a principal that may already change them
 * (a super user: `crr acls apply --principal User:crr --execute` as `crr-admin`).
 *
 * @throws CrrError CRR_CONFIG_INVALID as desiredAcls does (`replica` without an enabled flow into `alias`)
 */
export function desiredAclsFor(config: Config, alias: string, role: AclRole, principals: AclPrincipals): DesiredAcls {
  const base = desiredAcls(config, alias, role === 'fenced-primary' ? 'primary' : role, principals);
  let bindings = base.bindings;
  const fenced = [...base.fenced];
  if (role === 'fenced-primary') {
    const { data, metadata } = config.clusters[alias]!.changeTopics;
    const change: AclResource[] = [data, metadata].map((resourceName) => ({ resourceType: 'TOPIC', resourceName, patternType: 'LITERAL' }));
    const onChange = (b: AclBinding): boolean =>
      b.resourceType === 'TOPIC' && b.patternType === 'LITERAL' && (b.resourceName === data || b.resourceName === metadata);
    bindings = bindings.filter((b) => !(onChange(b) && b.principal !== principals.crr && isWrite(b)));
    for (const app of principals.applications) {
      for (const r of change) bindings.push({ ...r, principal: app, host: '*', operation: 'WRITE', permission: 'DENY' });
    }
    fenced.push(...change);
  }
  if (config.clusters[alias]?.manageAcls) {
    bindings = [
      ...bindings,
      {
        resourceType: 'CLUSTER',
        resourceName: CLUSTER_RESOURCE,
        patternType: 'LITERAL',
        principal: principals.crr,
        host: '*',
        operation: 'ALTER',
        permission: 'ALLOW',
      },
    ];
  }
  return { ...base, bindings, fenced };
}
