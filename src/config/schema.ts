import { z } from 'zod';
import { ClusterSchema } from '../cluster/schema.js';
import { MirrorSchema } from './flow.js';
import { HttpSchema } from '../http/schema.js';
import { LogSchema } from '../log/schema.js';
import { ReplaySchema } from '../replay/schema.js';
import { ReseedSchema } from '../reseed/schema.js';

/** A cluster alias: a short name used in topic prefixes, so no separator characters. */
const ALIAS = /^[A-Za-z0-9_-]+$/;

/**
 * The whole configuration file, composed from each part's schema. Strict at every level:
 * an unknown key is an error. Cross-field rules (aliases named by flows exist, no flow twice,
 * source differs from target, a replica has exactly one enabled flow into it, SASL only over
 * TLS unless `allowInsecureSasl`, for a cluster and for a flow's `sourceAuth` / `targetAuth`;
 * `manageAcls` only with a SASL user name) are checked here
 * so that every error names its path.
 */
export const ConfigSchema = z
  .strictObject({
    clusters: z.record(z.string().regex(ALIAS, 'cluster alias must match [A-Za-z0-9_-]+'), ClusterSchema),
    mirror: MirrorSchema.prefault({}),
    replay: ReplaySchema.prefault({}),
    reseed: ReseedSchema.prefault({}),
    http: HttpSchema.prefault({}),
    log: LogSchema.prefault({}),
  })
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.mirror.flows.forEach((flow, i) => {
      for (const end of ['source', 'target'] as const) {
        if (!(flow[end] in cfg.clusters)) {
          ctx.addIssue({
            code: 'custom',
            path: ['mirror', 'flows', i, end],
            message: `unknown cluster alias "${flow[end]}"; known: ${Object.keys(cfg.clusters).join(', ') || '(none)'}`,
          });
        }
      }
      if (flow.source === flow.target) {
        ctx.addIssue({ code: 'custom', path: ['mirror', 'flows', i, 'target'], message: 'target must differ from source' });
      }
      const id = `${flow.source}->${flow.target}`;
      if (seen.has(id)) {
        ctx.addIssue({ code: 'custom', path: ['mirror', 'flows', i], message: `flow ${id} is configured twice` });
      }
      seen.add(id);
      if (flow.replicationPolicy.type === 'prefix' && ALIAS.test(flow.replicationPolicy.separator)) {
        ctx.addIssue({
          code: 'custom',
          path: ['mirror', 'flows', i, 'replicationPolicy', 'separator'],
          message: 'separator must contain a character outside [A-Za-z0-9_-] (such as "."), so that a remote topic can be told from a local one',
        });
      }
    });
    const insecureSasl = (mechanism: string, allowWith: string): string => {
      const what =
        mechanism === 'plain'
          ? 'the password in clear'
          : mechanism === 'oauthbearer'
            ? 'the bearer token in clear'
            : 'a SCRAM exchange open to a man in the middle';
      return `SASL ${mechanism.toUpperCase()} without TLS sends ${what}: set ssl (true, or caFile/certFile/keyFile), or ${allowWith} to accept that`;
    };
    // a flow's sourceAuth / targetAuth: the same rule on the fields in effect for the mirror's clients
    cfg.mirror.flows.forEach((flow, i) => {
      for (const side of ['source', 'target'] as const) {
        const auth = side === 'source' ? flow.sourceAuth : flow.targetAuth;
        const cluster = cfg.clusters[flow[side]];
        if (!auth || !cluster || (auth.sasl === undefined && auth.ssl === undefined)) continue;
        const sasl = auth.sasl ?? cluster.sasl;
        const ssl = auth.ssl ?? cluster.ssl;
        if (sasl && ssl === false && !cluster.allowInsecureSasl) {
          ctx.addIssue({
            code: 'custom',
            path: ['mirror', 'flows', i, `${side}Auth`, auth.sasl ? 'sasl' : 'ssl'],
            message: insecureSasl(sasl.mechanism, `clusters.${flow[side]}.allowInsecureSasl: true`),
          });
        }
      }
    });
    for (const [alias, cluster] of Object.entries(cfg.clusters)) {
      if (cluster.sasl && cluster.ssl === false && !cluster.allowInsecureSasl) {
        ctx.addIssue({ code: 'custom', path: ['clusters', alias, 'sasl'], message: insecureSasl(cluster.sasl.mechanism, 'allowInsecureSasl: true') });
      }
      if (cluster.manageAcls && !(cluster.sasl && 'username' in cluster.sasl)) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', alias, 'manageAcls'],
          message: "crr promote plans the ACLs for crr's principal, its SASL user: configure sasl with a username (PLAIN or SCRAM), or set manageAcls: false",
        });
      }
      const into = cfg.mirror.flows.filter((f) => f.enabled && f.target === alias);
      const role = cluster.role ?? (into.length > 0 ? 'replica' : 'primary');
      if (role === 'replica' && into.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', alias, 'role'],
          message:
            into.length === 0
              ? 'a replica needs an enabled mirror flow whose target is this cluster'
              : `a replica is fed by exactly one enabled flow; found ${into.map((f) => `${f.source}->${f.target}`).join(', ')}`,
        });
      }
    }
  });

/** The validated configuration, with every default filled in. */
export type Config = z.infer<typeof ConfigSchema>;
