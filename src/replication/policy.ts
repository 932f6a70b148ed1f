/**
 * Replication policies: how a source topic is named on the target cluster, and the inverse.
 * The interface follows MirrorMaker 2's `ReplicationPolicy` (apache/kafka
 * connect/mirror-client/.../ReplicationPolicy.java): `formatRemoteTopic`, `topicSource`,
 * `upstreamTopic`.
 */

export interface ReplicationPolicy {
  /** `prefix` or `identity`. */
  readonly type: 'prefix' | 'identity';
  /** Name of `topic` of cluster `sourceAlias` on the target. */
  formatRemoteTopic(sourceAlias: string, topic: string): string;
  /**
   * Alias of the cluster a remote topic came from, or `undefined` when the topic is not a
   * remote topic (it was written locally). Under `identity` a topic name never tells its
   * source, so this is always `undefined` and cycles are stopped by the header `crr.origin.alias` (headers.ts).
   */
  topicSource(topic: string): string | undefined;
  /** The topic's name on its source cluster (`primary.orders` → `orders`), or `undefined` if not remote. */
  upstreamTopic(topic: string): string | undefined;
  /** Whether the topic is a remote topic (a copy of another cluster's topic). */
  isRemoteTopic(topic: string): boolean;
}

/**
 * MM2's DefaultReplicationPolicy: `<sourceAlias><separator><topic>`. Unlike MM2, a topic counts
 * as remote only when its prefix is a cluster alias this config knows, so local topics whose
 * names contain the separator (`orders.v2`) are not mistaken for remote ones.
 */
export class PrefixReplicationPolicy implements ReplicationPolicy {
  readonly type = 'prefix' as const;
  /**
   * @param knownAliases every cluster alias of the config
   * @param separator default `.` (MM2's `replication.policy.separator`)
   */
  constructor(
    private readonly knownAliases: ReadonlySet<string>,
    readonly separator = '.',
  ) {}

  formatRemoteTopic(sourceAlias: string, topic: string): string {
    return `${sourceAlias}${this.separator}${topic}`;
  }

  topicSource(topic: string): string | undefined {
    const i = topic.indexOf(this.separator);
    if (i <= 0) return undefined;
    const alias = topic.slice(0, i);
    return this.knownAliases.has(alias) ? alias : undefined;
  }

  upstreamTopic(topic: string): string | undefined {
    const source = this.topicSource(topic);
    return source === undefined ? undefined : topic.slice(source.length + this.separator.length);
  }

  isRemoteTopic(topic: string): boolean {
    return this.topicSource(topic) !== undefined;
  }
}

/**
 * MM2's IdentityReplicationPolicy: the remote topic keeps the source's name. Records mirrored
 * under it carry the header `crr.origin.alias` (headers.ts); the mirror drops a record whose origin is the
 * flow's target, so an active/active pair does not loop.
 */
export class IdentityReplicationPolicy implements ReplicationPolicy {
  readonly type = 'identity' as const;
  formatRemoteTopic(_sourceAlias: string, topic: string): string {
    return topic;
  }
  topicSource(_topic: string): string | undefined {
    return undefined;
  }
  upstreamTopic(_topic: string): string | undefined {
    return undefined;
  }
  isRemoteTopic(_topic: string): boolean {
    return false;
  }
}

/** Builds the policy a flow's config names. */
export function createReplicationPolicy(config: { type: 'prefix' | 'identity'; separator: string }, knownAliases: Iterable<string>): ReplicationPolicy {
  return config.type === 'identity' ? new IdentityReplicationPolicy() : new PrefixReplicationPolicy(new Set(knownAliases), config.separator);
}
