import { z } from 'zod';
import { type KafkaAuthPaths, type KafkaClusterConfig, KafkaSslSchema, SaslSchema } from '../kafka/schema.js';
import { RegexSchema as regex } from './regex.js';

/**
 * MirrorMaker 2's default group excludes (`groups.exclude` in MirrorCheckpointConfig /
 * DefaultGroupFilter): console consumers' throwaway groups, Connect's groups, internal groups.
 */
export const DEFAULT_GROUP_EXCLUDES = ['console-consumer-.*', 'connect-.*', '__.*'] as const;

/** Which source consumer groups are checkpointed: a group passes if it matches an include and no exclude (full match). */
export const GroupFilterSchema = z.strictObject({
  /** Default `['.*']` (MM2's `groups`). */
  include: z.array(regex).default(['.*']),
  /** Default MM2's `groups.exclude`: `console-consumer-.*`, `connect-.*`, `__.*`. */
  exclude: z.array(regex).default([...DEFAULT_GROUP_EXCLUDES]),
});

/**
 * The checkpoint fields of a flow (`mirror.flows[]`), spread into the mirror's FlowSchema:
 * checkpoints run wherever the mirror of the flow runs (MM2's MirrorCheckpointConnector).
 */
export const CHECKPOINT_FLOW_FIELDS = {
  /** Write checkpoints to `<source>.checkpoints.internal` on the target. Default true (MM2's `emit.checkpoints.enabled`). */
  emitCheckpoints: z.boolean().default(true),
  /** Interval between checkpoints, ms. Default 60000 (MM2's `emit.checkpoints.interval.seconds` = 60). */
  checkpointIntervalMs: z.number().int().min(100).default(60_000),
  /** Source consumer groups to checkpoint. */
  groups: GroupFilterSchema.prefault({}),
  /**
   * Commit the translated offsets into the target cluster's group of the same name, when that
   * group has no active member, never moving its offset backwards. Default false (MM2's
   * `sync.group.offsets.enabled`).
   */
  syncGroupOffsets: z.boolean().default(false),
  /** Interval between group offset syncs, ms. Default 60000 (MM2's `sync.group.offsets.interval.seconds` = 60). */
  syncGroupOffsetsIntervalMs: z.number().int().min(100).default(60_000),
};

/** Validated group filter. */
export type GroupFilterConfig = z.infer<typeof GroupFilterSchema>;

/**
 * MirrorMaker 2's default topic excludes (`topics.exclude` in MirrorSourceConfig):
 * internal topics of Kafka and of Connect/MM2, and replica topics.
 */
export const DEFAULT_TOPIC_EXCLUDES = ['.*[\\-\\.]internal', '.*\\.replica', '__.*'] as const;

/**
 * Topic configs never copied to a remote topic: MM2's DefaultConfigPropertyFilter exclusions
 * (`config.properties.exclude`). They are properties of a cluster's placement and timestamps,
 * not of the data.
 */
export const DEFAULT_CONFIG_EXCLUDES = [
  'follower\\.replication\\.throttled\\.replicas',
  'leader\\.replication\\.throttled\\.replicas',
  'message\\.timestamp\\.difference\\.max\\.ms',
  'message\\.timestamp\\.before\\.max\\.ms',
  'message\\.timestamp\\.after\\.max\\.ms',
  'message\\.timestamp\\.type',
  'unclean\\.leader\\.election\\.enable',
  'min\\.insync\\.replicas',
] as const;

/** Which source topics a flow mirrors: a topic passes if it matches an include and no exclude (full match). */
export const TopicFilterSchema = z.strictObject({
  include: z.array(regex).default(['.*']),
  exclude: z.array(regex).default([...DEFAULT_TOPIC_EXCLUDES]),
});

/** How source topics are named on the target (MM2's ReplicationPolicy). */
export const ReplicationPolicySchema = z.strictObject({
  /** `prefix` (default): `<sourceAlias><separator><topic>`; `identity`: same name. */
  type: z.enum(['prefix', 'identity']).default('prefix'),
  /** Separator of the `prefix` policy. Default `.` (MM2's `replication.policy.separator`). */
  separator: z.string().min(1).default('.'),
});

/**
 * The credentials of one side of a mirror flow (`sourceAuth`, `targetAuth`): the cluster's
 * `sasl` and `ssl` fields (same schema), each replacing the cluster's for the mirror's
 * connections on that side only. A field left out keeps the cluster's. MirrorMaker 2's
 * `<alias>.consumer.*`, `<alias>.producer.*`, `<alias>.admin.*` overrides, for the principal
 * rather than the tuning: the source side may log in as a principal that may only read (MM2 /
 * Cluster Linking's link principal), the target side as another than crr's other processes.
 * SASL without TLS is refused as for a cluster, unless the cluster sets `allowInsecureSasl`
 * (src/config/schema.ts).
 */
export const MirrorAuthSchema = z.strictObject({
  /** SASL of the mirror's clients on this side (see the cluster's `sasl`). Absent: the cluster's. */
  sasl: SaslSchema.optional(),
  /** TLS of the mirror's clients on this side (see the cluster's `ssl`). Absent: the cluster's. */
  ssl: KafkaSslSchema.optional(),
});

/** One replication flow `source->target`. */
export const FlowSchema = z.strictObject({
  /** Alias of the source cluster (a key of `clusters`). */
  source: z.string().min(1),
  /** Alias of the target cluster (a key of `clusters`). */
  target: z.string().min(1),
  /** Default true. A disabled flow is validated but not run. */
  enabled: z.boolean().default(true),
  /**
   * Credentials of the mirror's clients on the source (its consumer, admin, the heartbeat
   * producer and the checkpoints' reads), instead of `clusters.<source>`'s. `crr acls` grants
   * the source-side ACLs of the flow to `User:<sourceAuth.sasl.username>`. Default: the cluster's.
   */
  sourceAuth: MirrorAuthSchema.optional(),
  /**
   * Credentials of the mirror's clients on the target (its transactional producer, admin, the
   * checkpoints' writes), instead of `clusters.<target>`'s. Default: the cluster's.
   */
  targetAuth: MirrorAuthSchema.optional(),
  topics: TopicFilterSchema.prefault({}),
  replicationPolicy: ReplicationPolicySchema.prefault({}),
  /** How often source topics and partition counts are listed to find new ones, ms. Default 10000 (MM2: 600 s). */
  topicRefreshIntervalMs: z.number().int().min(100).default(10_000),
  /** Copy non-default topic configs of source topics to their remote topics. Default true. */
  syncTopicConfigs: z.boolean().default(true),
  /** Topic configs never copied (regexes, full match). Default: MM2's exclusions. */
  topicConfigExcludes: z.array(regex).default([...DEFAULT_CONFIG_EXCLUDES]),
  /** Replication factor of remote topics created on the target; -1 = the target broker's default. */
  remoteTopicReplicationFactor: z.number().int().min(-1).default(-1),
  /** Compression of record batches written to the target. Default `none` (like Kafka's producer). */
  targetCompression: z.enum(['none', 'gzip', 'snappy', 'lz4', 'zstd']).default('none'),
  /** Wait this long for more records before committing a transaction, ms. Default 50. */
  transactionLingerMs: z.number().int().min(0).default(50),
  /** Commit a transaction once it holds this many bytes of record values and keys. Default 8 MiB. */
  transactionMaxBytes: z
    .number()
    .int()
    .min(1024)
    .default(8 * 1024 * 1024),
  /** Broker-side timeout of one target transaction, ms (`transaction.timeout.ms`). Default 30000. */
  transactionTimeoutMs: z.number().int().min(1000).default(30_000),
  /** Records fetched but not yet committed, bytes, before fetching pauses. Default 32 MiB. */
  maxBufferedBytes: z
    .number()
    .int()
    .min(64 * 1024)
    .default(32 * 1024 * 1024),
  /** Largest fetch from one source partition, bytes. Default 2 MiB. */
  fetchMaxBytesPerPartition: z
    .number()
    .int()
    .min(1024)
    .default(2 * 1024 * 1024),
  /**
   * Session timeout of the source consumer group, ms: how long a standby waits before taking
   * over from an instance that died without leaving. Default 30000 (the broker accepts 6000 to
   * 300000 by default).
   */
  consumerSessionTimeoutMs: z.number().int().min(1000).default(30_000),
  /** Emit heartbeats to the source cluster's heartbeats topic. Default true. */
  emitHeartbeats: z.boolean().default(true),
  /** Interval between heartbeats, ms. Default 1000 (MM2's `emit.heartbeats.interval.seconds` = 1). */
  heartbeatIntervalMs: z.number().int().min(10).default(1000),
  /** Name of the heartbeats topic on the source (mirrored like any topic). Default `heartbeats`. */
  heartbeatsTopic: z.string().min(1).default('heartbeats'),
  /** `crr status` exits 1 when any partition's replication lag is above this many records. Default 10000. */
  maxReplicationLagRecords: z.number().int().min(0).default(10_000),
  /**
   * Write offset syncs (upstream offset, downstream offset) to `crr-offset-syncs.<source>.internal`
   * on the target, in the mirror's target transaction. Checkpoints need them. Default true
   * (MM2's `emit.offset-syncs.enabled`).
   */
  emitOffsetSyncs: z.boolean().default(true),
  /**
   * An offset sync is written at least every this many downstream offsets of a partition, so a
   * consumer group moved to the target re-reads fewer than this many records. Default 100
   * (MM2's `offset.lag.max`).
   */
  offsetLagMax: z.number().int().min(1).default(100),
  ...CHECKPOINT_FLOW_FIELDS,
});

/** The `mirror` section: the flows and what all of them share. */
export const MirrorSchema = z.strictObject({
  /** The replication flows. Default none (a region that only replays its own change log). */
  flows: z.array(FlowSchema).default([]),
  /** On SIGTERM/SIGINT, time to finish or abort the open transaction and close clients, ms. Default 30000. */
  shutdownTimeoutMs: z.number().int().min(100).default(30_000),
  /** First delay before a failed mirror task is restarted, ms; doubles up to the maximum. Default 500. */
  restartBackoffInitialMs: z.number().int().min(10).default(500),
  /** Largest delay between restarts of a failed mirror task, ms. Default 30000. */
  restartBackoffMaxMs: z.number().int().min(10).default(30_000),
  /** How often source log-end offsets are read to compute replication lag, ms. Default 2000. */
  lagPollIntervalMs: z.number().int().min(100).default(2000),
});

export type FlowConfig = z.infer<typeof FlowSchema>;
/** A flow's `sourceAuth` or `targetAuth`. */
export type MirrorAuthConfig = z.infer<typeof MirrorAuthSchema>;

/**
 * The cluster config the mirror of `flow` connects to one side with: the cluster's, with the
 * flow's `sourceAuth` / `targetAuth` fields in place of its `sasl` / `ssl`, and the config paths
 * those fields came from. Only the mirror (src/mirror/mirror-flow.ts) uses it; every other
 * client of crr (replay, `crr write`, `crr status`, `crr acls`) keeps the cluster's.
 *
 * @param config the validated config (its `clusters` and `mirror.flows`; `flow` must be one of them)
 * @param flow the flow
 * @param side `source` (`sourceAuth`) or `target` (`targetAuth`)
 * @returns the side's alias, its cluster config with the override applied, and the paths
 * @throws Error when the side's alias is not a configured cluster (the config schema refuses that first)
 */
export function mirrorSideCluster<C extends KafkaClusterConfig>(
  config: { clusters: Record<string, C>; mirror: { flows: readonly FlowConfig[] } },
  flow: FlowConfig,
  side: 'source' | 'target',
): { alias: string; cluster: C; paths: KafkaAuthPaths } {
  const alias = flow[side];
  const cluster = config.clusters[alias];
  if (!cluster) throw new Error(`mirror flow ${flow.source}->${flow.target}: unknown cluster alias "${alias}"`);
  const auth = side === 'source' ? flow.sourceAuth : flow.targetAuth;
  const i = config.mirror.flows.indexOf(flow);
  const override = `mirror.flows[${i < 0 ? '?' : i}].${side}Auth`;
  const paths: KafkaAuthPaths = {
    ssl: auth?.ssl !== undefined ? `${override}.ssl` : `clusters.${alias}.ssl`,
    sasl: auth?.sasl !== undefined ? `${override}.sasl` : `clusters.${alias}.sasl`,
  };
  return {
    alias,
    cluster: { ...cluster, ...(auth?.ssl !== undefined ? { ssl: auth.ssl } : {}), ...(auth?.sasl !== undefined ? { sasl: auth.sasl } : {}) },
    paths,
  };
}
export type MirrorConfig = z.infer<typeof MirrorSchema>;
