import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import { createKafka, explainKafkaTlsError } from '../kafka/client.js';
import { readPublishedClusterState, type PublishedClusterState } from './state.js';

/** A cluster's published state as `crr status` reports it. */
export interface ClusterReport {
  cluster: string;
  /** The published state; absent when crr never ran on the cluster (or it is unreachable: see `error`). */
  state?: PublishedClusterState;
  error?: string;
}

/**
 * Reads the state crr published for each cluster that has a store (role, state, epoch and the
 * reason of the last change) from `crr-cluster-state.internal` on that cluster's Kafka.
 * Read-only; clusters are read in parallel, each bounded by `timeoutMs`.
 */
export async function reportClusters(config: Config, logger: Logger, timeoutMs = 15_000): Promise<ClusterReport[]> {
  const aliases = Object.entries(config.clusters)
    .filter(([, c]) => c.store)
    .map(([alias]) => alias);
  return Promise.all(
    aliases.map(async (alias): Promise<ClusterReport> => {
      const c = config.clusters[alias]!;
      const kafka = createKafka(
        alias,
        { ...c, connectionTimeoutMs: Math.min(c.connectionTimeoutMs, 3000) },
        `status-${randomUUID().slice(0, 8)}`,
        logger,
        'fatal',
      );
      const admin = kafka.admin({ retry: { retries: 1 } });
      try {
        await admin.connect();
        const state = await readPublishedClusterState(kafka, admin, alias, timeoutMs);
        return state ? { cluster: alias, state } : { cluster: alias };
      } catch (err) {
        return { cluster: alias, error: describeError(explainKafkaTlsError(err, alias, c.bootstrapServers, undefined, c.ssl)) };
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }),
  );
}
