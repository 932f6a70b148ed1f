import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createReplicationPolicy } from '../replication/policy.js';
import type { FlowConfig } from '../config/flow.js';
import type { ClusterState } from './cluster-state.js';
import type { ClusterConfig, Role } from './schema.js';
import { openStore } from '../store/open.js';
import type { StoreConfig } from '../store/schema.js';

/**
 * Where one cluster's change log is read from for replay, and by whom:
 * - on a primary, its own topics (`graph.data`, `graph.metadata`);
 * - on a replica, the remote topics the mirror writes (`primary.graph.data`, ...), whose records
 *   carry the upstream offset in a header; positions are then kept in upstream terms.
 */
export interface ReplaySource {
  alias: string;
  /** The role replay runs in: the configured one, or the one recorded in the store (see effectiveRole). */
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
 * The role a cluster runs in: the one recorded in its store's cluster state when there is one
 * (a promotion records `primary` on the old replica, a reseed `replica`), else the configured
 * role. Opens the store briefly (a PGlite store takes and releases its lock).
 * @param published reads the role published on the cluster's Kafka; when given, a store that
 *   cannot be reached (CRR_STORE, retriable) gives that role, else the configured one, and
 *   `storeUnreachable` says why (the daemon starts; replay waits for the store)
 * @returns the role, and whether it differs from the config's (the config should be updated);
 *   `state`, the recorded cluster state, when there is one
 * @throws CrrError CRR_STORE when the store cannot be read (and `published` is not given);
 *   CRR_STORE_LOCKED for a PGlite store in use
 */
export async function effectiveRole(
  config: Config,
  alias: string,
  published?: () => Promise<Role | undefined>,
): Promise<{ role: Role; recorded: boolean; differs: boolean; storeUnreachable?: string; state?: ClusterState }> {
  const configured = configuredRole(config, alias);
  const storeConfig = config.clusters[alias]?.store;
  if (!storeConfig) return { role: configured, recorded: false, differs: false };
  const store = openStore(storeConfig);
  try {
    await store.migrate();
    const state = await store.clusterState();
    if (!state) return { role: configured, recorded: false, differs: false };
    return { role: state.role, recorded: true, differs: state.role !== configured, state };
  } catch (err) {
    // a store that cannot be reached must not stop the daemon (the mirror of a replica goes on):
    // the role published on the cluster's Kafka, else the configured one, until the store answers
    if (!(err instanceof CrrError && err.code === 'CRR_STORE' && err.retriable) || !published) throw err;
    const role = (await published().catch(() => undefined)) ?? configured;
    return { role, recorded: false, differs: role !== configured, storeUnreachable: describeError(err) };
  } finally {
    await store.close().catch(() => undefined);
  }
}

/**
 * Resolves what replay reads for a cluster of the config.
 * @param role the role to run in (see {@link effectiveRole}); default the configured role. A
 *   replica needs exactly one enabled flow into it.
 * @throws CrrError CRR_CONFIG_INVALID when the alias is unknown, the cluster has no `store`, or
 *   it runs as a replica and no enabled flow targets it
 */
export function replaySource(config: Config, alias: string, role: Role = configuredRole(config, alias)): ReplaySource {
  const cluster = config.clusters[alias];
  if (!cluster) throw new CrrError('CRR_CONFIG_INVALID', `unknown cluster alias "${alias}"; known: ${Object.keys(config.clusters).join(', ')}`);
  if (!cluster.store)
    throw new CrrError('CRR_CONFIG_INVALID', `clusters.${alias}.store: required to replay cluster ${alias} (e.g. { type: pglite, dataDir: ./data/${alias} })`);
  if (role === 'primary') {
    return { alias, configuredRole: role, cluster, store: cluster.store, dataTopic: cluster.changeTopics.data, metadataTopic: cluster.changeTopics.metadata };
  }
  // the config schema guarantees exactly one enabled flow into a configured replica
  const flow = config.mirror.flows.find((f) => f.enabled && f.target === alias);
  if (!flow) {
    throw new CrrError(
      'CRR_CONFIG_INVALID',
      `cluster ${alias} is a replica (recorded in its store), but no enabled flow in mirror.flows targets it: enable the flow into ${alias}, or promote it (crr promote)`,
      {
        context: { path: 'mirror.flows' },
      },
    );
  }
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
