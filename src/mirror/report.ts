import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import { createKafka, explainKafkaTlsError } from '../kafka/client.js';
import { positionsTopicName } from '../replication/internal-topics.js';
import { readPositions } from '../kafka/positions-topic.js';
import { tpKey } from '../replication/topic-partition.js';
import { createReplicationPolicy } from '../replication/policy.js';
import type { FlowConfig } from '../config/flow.js';
import { TopicFilter } from '../replication/topic-filter.js';
import { TopicSync } from './topic-sync.js';

/** One partition of a remote topic, as `crr status` reports it. */
export interface PartitionReport {
  topic: string;
  remoteTopic: string;
  partition: number;
  /** Source log end offset (high watermark). */
  sourceLogEndOffset: number;
  /** Next source offset the mirror will copy (committed on the target). */
  mirroredPosition: number;
  /** sourceLogEndOffset − mirroredPosition. */
  lagRecords: number;
  /** Replication latency of the last record mirrored to this partition, seconds; null if none yet. */
  latencySeconds: number | null;
}

/** A flow's report: healthy, lagging (above `maxReplicationLagRecords`) or unreachable. */
export interface FlowReport {
  flow: string;
  health: 'ok' | 'lagging' | 'unreachable';
  error?: string;
  maxReplicationLagRecords: number;
  totalLagRecords: number;
  /** Seconds since the newest mirrored heartbeat was emitted; null without heartbeats. */
  heartbeatAgeSeconds: number | null;
  /** Whether the positions topic was read to its end (false: a transaction stayed open). */
  positionsComplete: boolean;
  partitions: PartitionReport[];
}

/**
 * Builds a flow's report from the clusters alone (no running mirror needed): source log ends
 * from the source cluster, committed positions from the positions topic on the target.
 * Read-only: creates no topic and fences no one.
 *
 * @param timeoutMs bound on reading the positions topic, ms
 */
export async function reportFlow(config: Config, flow: FlowConfig, logger: Logger, timeoutMs = 15_000): Promise<FlowReport> {
  const id = `${flow.source}->${flow.target}`;
  const base: FlowReport = {
    flow: id,
    health: 'ok',
    maxReplicationLagRecords: flow.maxReplicationLagRecords,
    totalLagRecords: 0,
    heartbeatAgeSeconds: null,
    positionsComplete: true,
    partitions: [],
  };
  const quick = (alias: string) => {
    const c = config.clusters[alias]!;
    return createKafka(alias, { ...c, connectionTimeoutMs: Math.min(c.connectionTimeoutMs, 3000) }, `status-${randomUUID().slice(0, 8)}`, logger, 'fatal');
  };
  const source = quick(flow.source);
  const target = quick(flow.target);
  const sourceAdmin = source.admin({ retry: { retries: 1 } });
  const targetAdmin = target.admin({ retry: { retries: 1 } });
  try {
    for (const [alias, admin] of [
      [flow.source, sourceAdmin],
      [flow.target, targetAdmin],
    ] as const) {
      try {
        await admin.connect();
        await admin.listTopics();
      } catch (err) {
        const bootstrap = config.clusters[alias]!.bootstrapServers;
        const tls = explainKafkaTlsError(err, alias, bootstrap, undefined, config.clusters[alias]!.ssl); // a certificate problem, named as such
        return {
          ...base,
          health: 'unreachable',
          error: tls !== err ? describeError(tls) : `cluster ${alias} (${bootstrap.join(',')}) is unreachable: ${describeError(err)}`,
        };
      }
    }
    const policy = createReplicationPolicy(flow.replicationPolicy, Object.keys(config.clusters));
    const sync = new TopicSync(
      sourceAdmin,
      targetAdmin,
      policy,
      new TopicFilter(flow.topics, policy, flow.target),
      {
        sourceAlias: flow.source,
        syncConfigs: false,
        configExcludes: [],
        replicationFactor: -1,
        heartbeatsTopic: flow.emitHeartbeats ? flow.heartbeatsTopic : undefined,
      },
      logger,
    );
    const topics = await sync.discover();
    const positionsTopic = positionsTopicName(flow.source);
    const hasPositions = (await targetAdmin.listTopics()).includes(positionsTopic);
    const { positions, complete } = hasPositions
      ? await readPositions(target, targetAdmin, positionsTopic, id, timeoutMs)
      : { positions: new Map(), complete: true };
    const partitions: PartitionReport[] = [];
    let newestHeartbeat: number | undefined;
    for (const t of topics) {
      for (const o of await sourceAdmin.fetchTopicOffsets(t.topic)) {
        const pos = positions.get(tpKey(t.topic, o.partition));
        const mirroredPosition = pos?.offset ?? 0;
        const lagRecords = Math.max(0, Number(o.high) - Math.max(mirroredPosition, Number(o.low)));
        partitions.push({
          topic: t.topic,
          remoteTopic: t.remoteTopic,
          partition: o.partition,
          sourceLogEndOffset: Number(o.high),
          mirroredPosition,
          lagRecords,
          latencySeconds: pos && pos.timestampMs > 0 ? Math.max(0, pos.committedAtMs - pos.timestampMs) / 1000 : null,
        });
        if (flow.emitHeartbeats && t.topic === flow.heartbeatsTopic && pos && pos.timestampMs > 0)
          newestHeartbeat = Math.max(newestHeartbeat ?? 0, pos.timestampMs);
      }
    }
    const maxLag = Math.max(0, ...partitions.map((p) => p.lagRecords));
    return {
      ...base,
      health: maxLag > flow.maxReplicationLagRecords ? 'lagging' : 'ok',
      totalLagRecords: partitions.reduce((n, p) => n + p.lagRecords, 0),
      heartbeatAgeSeconds: newestHeartbeat === undefined ? null : Math.max(0, (Date.now() - newestHeartbeat) / 1000),
      positionsComplete: complete,
      partitions,
    };
  } catch (err) {
    return { ...base, health: 'unreachable', error: describeError(err) };
  } finally {
    await sourceAdmin.disconnect().catch(() => undefined);
    await targetAdmin.disconnect().catch(() => undefined);
  }
}
