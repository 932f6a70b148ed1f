import type { Config } from '../config/schema.js';
import { CrrError } from '../errors.js';
import { createReplicationPolicy } from '../mirror/replication-policy.js';
import type { FlowConfig } from '../mirror/schema.js';
import type { ClusterConfig, Role } from './schema.js';
import type { StoreConfig } from '../store/schema.js';

/**
 * Where one cluster's change log is read from for replay, and by whom:
 * - on a primary, its own topics (`graph.data`, `graph.metadata`);
 * - on a replica, the remote topics the mirror writes (`primary.graph.data`, ...), whose records
 *   carry the upstream offset in a header; positions are then kept in upstream terms.
 */
export interface ReplaySource {
  alias: string;
  /** The role from the config (the recorded role in the cluster state wins once there is one). */
  configuredRole: Role;
  cluster: ClusterConfig;
  store: StoreConfig;
  /** Topic read for the data operations (many partitions). */
  dataTopic: string;
  /** Topic read for the metadata operations and markers (one partition). */
  metadataTopic: string;
  /** Replica only: the flow into this cluster and the name of each read topic on the source. */
  upstream?: { flow: FlowConfig; alias: string; topicOf: Record<string, string> };
}

/**
 * The role a cluster starts in: its `role` field, else `replica` when an enabled mirror flow
 * targets it, else `primary` (src/cluster/schema.ts).
 */
export function configuredRole(config: Config, alias: string): Role {
  const cluster = config.clusters[alias];
  if (cluster?.role) return cluster.role;
  return config.mirror.flows.some((f) => f.enabled && f.target === alias) ? 'replica' : 'primary';
}

/**
 * Resolves what replay reads for a cluster of the config.
 * @throws CrrError CRR_CONFIG_INVALID when the alias is unknown or the cluster has no `store`
 */
export function replaySource(config: Config, alias: string): ReplaySource {
  const cluster = config.clusters[alias];
  if (!cluster) throw new CrrError('CRR_CONFIG_INVALID', `unknown cluster alias "${alias}"; known: ${Object.keys(config.clusters).join(', ')}`);
  if (!cluster.store) throw new CrrError('CRR_CONFIG_INVALID', `clusters.${alias}.store: required to replay cluster ${alias} (e.g. { type: pglite, dataDir: ./data/${alias} })`);
  const role = configuredRole(config, alias);
  if (role === 'primary') {
    return { alias, configuredRole: role, cluster, store: cluster.store, dataTopic: cluster.changeTopics.data, metadataTopic: cluster.changeTopics.metadata };
  }
  // the config schema guarantees exactly one enabled flow into a replica
  const flow = config.mirror.flows.find((f) => f.enabled && f.target === alias)!;
  const source = config.clusters[flow.source]!;
  const policy = createReplicationPolicy(flow.replicationPolicy, Object.keys(config.clusters));
  const dataTopic = policy.formatRemoteTopic(flow.source, source.changeTopics.data);
  const metadataTopic = policy.formatRemoteTopic(flow.source, source.changeTopics.metadata);
  return {
    alias,
    configuredRole: role,
    cluster,
    store: cluster.store,
    dataTopic,
    metadataTopic,
    upstream: { flow, alias: flow.source, topicOf: { [dataTopic]: source.changeTopics.data, [metadataTopic]: source.changeTopics.metadata } },
  };
}
