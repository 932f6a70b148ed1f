import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { createReplicationPolicy, type ReplicationPolicy } from '../replication/policy.js';
import { offsetSyncsTopicName } from '../replication/internal-topics.js';
import type { FlowConfig } from '../config/flow.js';
import { TopicFilter } from '../replication/topic-filter.js';
import { checkpointsTopicName } from '../replication/internal-topics.js';
import { readCheckpoints } from './checkpoint.js';
import { GroupFilter } from './group-filter.js';
import { readOffsetSyncs, type OffsetSyncStore } from './offset-sync-store.js';

/** One consumer group partition: its committed source offset and where it translates to. */
export interface GroupOffsetRow {
  group: string;
  /** Source topic. */
  topic: string;
  /** Remote topic on the target. */
  remoteTopic: string;
  partition: number;
  /** The group's committed offset on the source (next record to read). */
  upstreamOffset: number;
  /** Translated offset on the remote topic; set when `status` is `translated`. */
  downstreamOffset?: number;
  /** `translated`, or why not: `unknown` (no offset sync for the partition), `too-old` (all syncs above the offset). See OffsetSyncStore. */
  status: 'translated' | 'unknown' | 'too-old';
  /** The metadata string committed with the source offset ('' when none). */
  metadata: string;
  /** When the committed offset was read (from the source, or by the checkpoint task), ms since the epoch. */
  readAtMs: number;
}

/** Finds a flow `source->target` of the config. @throws CrrError CRR_CONFIG_INVALID when there is none */
export function findFlow(config: Config, flowId: string): FlowConfig {
  const flow = config.mirror.flows.find((f) => `${f.source}->${f.target}` === flowId);
  if (!flow)
    throw new CrrError(
      'CRR_CONFIG_INVALID',
      `no flow ${flowId} in mirror.flows; configured: ${config.mirror.flows.map((f) => `${f.source}->${f.target}`).join(', ') || '(none)'}`,
    );
  return flow;
}

/** The replication policy and topic filter of a flow, as the mirror builds them. */
export function flowTopics(config: Config, flow: FlowConfig): { policy: ReplicationPolicy; mirrors: (sourceTopic: string) => boolean } {
  const policy = createReplicationPolicy(flow.replicationPolicy, Object.keys(config.clusters));
  const filter = new TopicFilter(flow.topics, policy, flow.target);
  return { policy, mirrors: (t) => (flow.emitHeartbeats && t === flow.heartbeatsTopic) || filter.shouldMirror(t) };
}

/**
 * Reads the committed offsets of the source cluster's consumer groups on the topics a flow
 * mirrors, and translates each with the flow's offset syncs (MM2's
 * `MirrorCheckpointTask.checkpointsForGroup`, without its filters: every row is returned with its
 * status).
 *
 * @param opts.groups exact group ids to read; default every group listed on the source that is
 *   a consumer group (protocol type `consumer`, or none for groups that only commit) and passes
 *   the flow's `groups` filter
 * @returns rows sorted by group, topic, partition; groups without a committed offset on a
 *   mirrored topic give none
 * @throws KafkaJS errors when the source cannot be reached
 */
export async function translateSourceGroups(
  sourceAdmin: Admin,
  config: Config,
  flow: FlowConfig,
  store: OffsetSyncStore,
  opts: { groups?: string[] } = {},
): Promise<GroupOffsetRow[]> {
  const { policy, mirrors } = flowTopics(config, flow);
  let groups = opts.groups;
  if (!groups) {
    const filter = new GroupFilter(flow.groups);
    groups = (await sourceAdmin.listGroups()).groups
      .filter((g) => (g.protocolType === 'consumer' || g.protocolType === '') && filter.shouldCheckpoint(g.groupId))
      .map((g) => g.groupId);
  }
  const rows: GroupOffsetRow[] = [];
  for (const group of [...new Set(groups)].sort()) {
    const readAtMs = Date.now();
    const offsets = await sourceAdmin.fetchOffsets({ groupId: group });
    for (const { topic, partitions } of offsets) {
      if (!mirrors(topic)) continue;
      const remoteTopic = policy.formatRemoteTopic(flow.source, topic);
      for (const p of partitions) {
        const upstreamOffset = Number(p.offset);
        if (!Number.isSafeInteger(upstreamOffset) || upstreamOffset < 0) continue;
        const t = store.translateDownstream(topic, p.partition, upstreamOffset);
        rows.push({
          group,
          topic,
          remoteTopic,
          partition: p.partition,
          upstreamOffset,
          ...(t.status === 'translated' ? { downstreamOffset: t.downstreamOffset } : {}),
          status: t.status,
          metadata: p.metadata ?? '',
          readAtMs,
        });
      }
    }
  }
  return rows.sort((a, b) => a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic) || a.partition - b.partition);
}

/** What {@link translateFlow} found, and where from. */
export interface FlowTranslation {
  flow: string;
  /** `source`: the source groups' committed offsets, translated now; `checkpoints`: the source was unreachable, the last checkpoints on the target. */
  from: 'source' | 'checkpoints';
  /** Why the source was not used (`from: 'checkpoints'`). */
  sourceError?: string;
  /** Whether the offset syncs (or checkpoints) were read to their end. */
  complete: boolean;
  rows: GroupOffsetRow[];
}

/**
 * Translates the consumer groups of a flow, read-only: reads the flow's offset syncs from the
 * target, then the source groups' committed offsets ({@link translateSourceGroups}); when the
 * source cannot be reached (KafkaJS's retries exhausted, about 8 s plus the connection timeout),
 * the last checkpoints from `<source>.checkpoints.internal` on the target instead (each
 * `translated`: only translated offsets are checkpointed).
 *
 * @param flowId `source->target`
 * @param opts.groups exact group ids (default: the flow's `groups` filter)
 * @param opts.timeoutMs how long to wait for the end of an internal topic, ms; default 30000
 * @throws CrrError CRR_CONFIG_INVALID (unknown flow), CRR_OFFSET_SYNC_CORRUPT, CRR_CHECKPOINT_CORRUPT;
 *   KafkaJS errors when the target cannot be reached
 */
export async function translateFlow(config: Config, flowId: string, opts: { log: Logger; groups?: string[]; timeoutMs?: number }): Promise<FlowTranslation> {
  const flow = findFlow(config, flowId);
  const level = config.log.level;
  const target = createKafka(flow.target, config.clusters[flow.target]!, 'checkpoints-target', opts.log, level);
  const source = createKafka(flow.source, config.clusters[flow.source]!, 'checkpoints-source', opts.log, level);
  return withAdmin(target, async (targetAdmin) => {
    const { store, complete } = await readOffsetSyncs(target, targetAdmin, offsetSyncsTopicName(flow.source), flowId, opts.timeoutMs);
    try {
      const rows = await withAdmin(source, (sourceAdmin) => translateSourceGroups(sourceAdmin, config, flow, store, { groups: opts.groups }));
      return { flow: flowId, from: 'source', complete, rows };
    } catch (err) {
      if (err instanceof CrrError) throw err;
      opts.log.warn({ err: describeError(err), cluster: flow.source }, 'source cluster unreachable; reading the last checkpoints from the target');
      const read = await readCheckpoints(target, targetAdmin, checkpointsTopicName(flow.source), opts.timeoutMs);
      const { policy } = flowTopics(config, flow);
      const filter = new GroupFilter(flow.groups);
      const wanted = (g: string): boolean => (opts.groups ? opts.groups.includes(g) : filter.shouldCheckpoint(g));
      const rows: GroupOffsetRow[] = [...read.checkpoints.values()]
        .filter((c) => wanted(c.group))
        .map((c) => ({
          group: c.group,
          topic: policy.upstreamTopic(c.topic) ?? c.topic,
          remoteTopic: c.topic,
          partition: c.partition,
          upstreamOffset: c.upstreamOffset,
          downstreamOffset: c.downstreamOffset,
          status: 'translated' as const,
          metadata: c.metadata,
          readAtMs: c.checkpointedAtMs,
        }))
        .sort((a, b) => a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic) || a.partition - b.partition);
      return { flow: flowId, from: 'checkpoints', sourceError: describeError(err), complete: read.complete, rows };
    }
  });
}

/** Connects an admin of `kafka`, runs `fn`, disconnects. */
export async function withAdmin<T>(kafka: Kafka, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
