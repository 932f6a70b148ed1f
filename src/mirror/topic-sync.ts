import type { Admin } from 'kafkajs';
import { ConfigResourceTypes } from '../kafka/kafkajs.js';
import type { Logger } from 'pino';
import { CrrError } from '../errors.js';
import type { ReplicationPolicy } from '../replication/policy.js';
import type { TopicFilter } from '../replication/topic-filter.js';

/** A source topic a flow mirrors, with its remote topic and partition count. */
export interface MirroredTopic {
  topic: string;
  remoteTopic: string;
  partitions: number;
}

/** Kafka's DescribeConfigs `config_source` value for a topic's own dynamic config. */
const DYNAMIC_TOPIC_CONFIG = 1;

/** The topic config that caps a record batch (the broker-wide default is `message.max.bytes`). */
const MAX_MESSAGE_BYTES = 'max.message.bytes';

/**
 * Discovers the source topics a flow mirrors and keeps their remote topics in shape on the
 * target (MM2's MirrorSourceConnector `refreshTopicPartitions`, `createNewTopics`,
 * `syncTopicConfigs`):
 * - a remote topic is created with the source topic's partition count and its allowed configs;
 * - it is grown when the source grows (a partition count never shrinks on either side);
 * - non-default source topic configs are copied unless excluded (MM2's default exclusions).
 */
export class TopicSync {
  private readonly configExcludes: RegExp[];

  /**
   * @param opts.heartbeatsTopic always mirrored when set, whatever the filter says
   * @param opts.replicationFactor for created remote topics; -1 = the target broker's default
   */
  constructor(
    private readonly source: Admin,
    private readonly target: Admin,
    private readonly policy: ReplicationPolicy,
    private readonly filter: TopicFilter,
    private readonly opts: {
      sourceAlias: string;
      syncConfigs: boolean;
      configExcludes: readonly string[];
      replicationFactor: number;
      heartbeatsTopic?: string;
    },
    private readonly log: Logger,
  ) {
    this.configExcludes = opts.configExcludes.map((r) => new RegExp(`^(?:${r})$`));
  }

  /** Lists the source topics the flow mirrors, sorted by name. */
  async discover(): Promise<MirroredTopic[]> {
    const names = (await this.source.listTopics()).filter((t) => t === this.opts.heartbeatsTopic || this.filter.shouldMirror(t));
    if (names.length === 0) return [];
    const { topics } = await this.source.fetchTopicMetadata({ topics: names });
    return topics
      .map((t) => ({ topic: t.name, remoteTopic: this.policy.formatRemoteTopic(this.opts.sourceAlias, t.name), partitions: t.partitions.length }))
      .sort((a, b) => a.topic.localeCompare(b.topic));
  }

  /**
   * Discovers the mirrored topics and creates, grows and configures their remote topics.
   * @returns the mirrored topics, with the source partition counts
   * @throws CrrError CRR_TOPIC_SYNC (retriable) when the target refuses a change
   */
  async sync(): Promise<MirroredTopic[]> {
    const wanted = await this.discover();
    if (wanted.length === 0) return wanted;
    const existingRemote = new Set(await this.target.listTopics());
    const configs = this.opts.syncConfigs
      ? await this.topicConfigs(
          this.source,
          wanted.map((t) => t.topic),
        )
      : new Map<string, Map<string, string>>();
    if (this.opts.syncConfigs) await this.raiseMaxMessageBytes(wanted, configs);

    const toCreate = wanted.filter((t) => !existingRemote.has(t.remoteTopic));
    if (toCreate.length > 0) {
      try {
        await this.target.createTopics({
          waitForLeaders: true,
          topics: toCreate.map((t) => ({
            topic: t.remoteTopic,
            numPartitions: t.partitions,
            replicationFactor: this.opts.replicationFactor,
            configEntries: [...(configs.get(t.topic) ?? new Map())].map(([name, value]) => ({ name, value })),
          })),
        });
      } catch (err) {
        if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') {
          throw new CrrError('CRR_TOPIC_SYNC', `cannot create remote topics ${toCreate.map((t) => t.remoteTopic).join(', ')}: ${(err as Error).message}`, {
            cause: err,
          });
        }
      }
      for (const t of toCreate) this.log.info({ topic: t.topic, remoteTopic: t.remoteTopic, partitions: t.partitions }, 'created remote topic');
    }

    const present = wanted.filter((t) => existingRemote.has(t.remoteTopic));
    if (present.length > 0) {
      const { topics: remoteMeta } = await this.target.fetchTopicMetadata({ topics: present.map((t) => t.remoteTopic) });
      const remoteCounts = new Map(remoteMeta.map((t) => [t.name, t.partitions.length]));
      const grow = present.filter((t) => (remoteCounts.get(t.remoteTopic) ?? 0) < t.partitions);
      if (grow.length > 0) {
        try {
          await this.target.createPartitions({ validateOnly: false, topicPartitions: grow.map((t) => ({ topic: t.remoteTopic, count: t.partitions })) });
        } catch (err) {
          throw new CrrError('CRR_TOPIC_SYNC', `cannot grow remote topics ${grow.map((t) => t.remoteTopic).join(', ')}: ${(err as Error).message}`, {
            cause: err,
          });
        }
        for (const t of grow) this.log.info({ remoteTopic: t.remoteTopic, from: remoteCounts.get(t.remoteTopic), to: t.partitions }, 'grew remote topic');
      }
      for (const t of present) {
        const remote = remoteCounts.get(t.remoteTopic) ?? 0;
        if (remote > t.partitions)
          this.log.warn(
            { topic: t.topic, remoteTopic: t.remoteTopic, source: t.partitions, remote },
            'remote topic has more partitions than its source; records keep their partition',
          );
      }
      if (this.opts.syncConfigs) await this.syncConfigs(present, configs);
    }
    return wanted;
  }

  /**
   * Effective `max.message.bytes` of topics on one cluster (the topic's own value, else the
   * broker's `message.max.bytes`): the largest record batch the broker accepts for each.
   *
   * @param side `source` or `target`
   * @returns topic → bytes; a topic the cluster does not describe is left out
   */
  async maxMessageBytes(side: 'source' | 'target', topics: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (topics.length === 0) return out;
    const admin = side === 'source' ? this.source : this.target;
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name, configNames: [MAX_MESSAGE_BYTES] })),
    });
    for (const r of resources) {
      const v = Number(r.configEntries.find((e) => e.configName === MAX_MESSAGE_BYTES)?.configValue);
      if (Number.isSafeInteger(v) && v > 0) out.set(r.resourceName, v);
    }
    return out;
  }

  /**
   * A remote topic must accept every record batch its source accepts, or the mirror cannot copy
   * a large record (MM2 leaves this to the operator). Where a source topic's effective
   * `max.message.bytes` exceeds the target broker's `message.max.bytes`, the remote topic gets
   * the source's value as a topic config (added to `configs`, so creation and config sync both
   * set it and keep it).
   */
  private async raiseMaxMessageBytes(wanted: MirroredTopic[], configs: Map<string, Map<string, string>>): Promise<void> {
    const source = await this.maxMessageBytes(
      'source',
      wanted.map((t) => t.topic),
    );
    const targetDefault = await this.brokerMaxMessageBytes();
    if (targetDefault === undefined) return;
    for (const t of wanted) {
      const bytes = source.get(t.topic);
      if (bytes === undefined || bytes <= targetDefault) continue;
      const entries = configs.get(t.topic) ?? new Map<string, string>();
      if (!entries.has(MAX_MESSAGE_BYTES)) entries.set(MAX_MESSAGE_BYTES, String(bytes));
      configs.set(t.topic, entries);
    }
  }

  /** The target brokers' smallest `message.max.bytes` (the limit of a topic without its own). */
  private async brokerMaxMessageBytes(): Promise<number | undefined> {
    const { brokers } = await this.target.describeCluster();
    if (brokers.length === 0) return undefined;
    const { resources } = await this.target.describeConfigs({
      includeSynonyms: false,
      resources: brokers.map((b) => ({ type: ConfigResourceTypes.BROKER, name: String(b.nodeId), configNames: ['message.max.bytes'] })),
    });
    const values = resources
      .map((r) => Number(r.configEntries.find((e) => e.configName === 'message.max.bytes')?.configValue))
      .filter((v) => Number.isSafeInteger(v) && v > 0);
    return values.length > 0 ? Math.min(...values) : undefined;
  }

  /** Topic-level (non-default), not excluded configs of topics on one cluster: topic → name → value. */
  private async topicConfigs(admin: Admin, topics: string[]): Promise<Map<string, Map<string, string>>> {
    const out = new Map<string, Map<string, string>>();
    const { resources } = await admin.describeConfigs({
      includeSynonyms: false,
      resources: topics.map((name) => ({ type: ConfigResourceTypes.TOPIC, name })),
    });
    for (const r of resources) {
      const entries = new Map<string, string>();
      for (const e of r.configEntries) {
        const fromTopic =
          (e as { configSource?: number }).configSource === DYNAMIC_TOPIC_CONFIG ||
          (!e.isDefault && (e as { configSource?: number }).configSource === undefined);
        if (!fromTopic || e.isSensitive || e.configValue === null) continue;
        if (this.configExcludes.some((x) => x.test(e.configName))) continue;
        entries.set(e.configName, e.configValue);
      }
      out.set(r.resourceName, entries);
    }
    return out;
  }

  /** Copies source configs onto remote topics whose own non-default configs differ. */
  private async syncConfigs(topics: MirroredTopic[], sourceConfigs: Map<string, Map<string, string>>): Promise<void> {
    const remoteConfigs = await this.topicConfigs(
      this.target,
      topics.map((t) => t.remoteTopic),
    );
    for (const t of topics) {
      const want = sourceConfigs.get(t.topic) ?? new Map<string, string>();
      const have = remoteConfigs.get(t.remoteTopic) ?? new Map<string, string>();
      const same = want.size === have.size && [...want].every(([k, v]) => have.get(k) === v);
      if (same) continue;
      try {
        await this.target.alterConfigs({
          validateOnly: false,
          resources: [{ type: ConfigResourceTypes.TOPIC, name: t.remoteTopic, configEntries: [...want].map(([name, value]) => ({ name, value })) }],
        });
        this.log.info({ remoteTopic: t.remoteTopic, configs: Object.fromEntries(want) }, 'synced remote topic configs');
      } catch (err) {
        throw new CrrError('CRR_TOPIC_SYNC', `cannot sync configs of ${t.remoteTopic}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}
