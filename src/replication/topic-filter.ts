import type { ReplicationPolicy } from './policy.js';

/**
 * Decides which source topics a flow mirrors (MM2's DefaultTopicFilter plus its cycle rule).
 * A topic is mirrored when it fully matches one include regex, matches no exclude regex, and is
 * not a remote topic of the flow's target (a topic is never mirrored back to where it came from).
 */
export class TopicFilter {
  private readonly include: RegExp[];
  private readonly exclude: RegExp[];

  /**
   * @param config `include` and `exclude` regexes (full match, like Java's `Pattern.matches`)
   * @param policy the flow's replication policy, to recognise remote topics
   * @param targetAlias the flow's target cluster alias
   */
  constructor(
    config: { include: readonly string[]; exclude: readonly string[] },
    private readonly policy: ReplicationPolicy,
    private readonly targetAlias: string,
  ) {
    this.include = config.include.map((r) => new RegExp(`^(?:${r})$`));
    this.exclude = config.exclude.map((r) => new RegExp(`^(?:${r})$`));
  }

  /** Whether `topic` of the source cluster is mirrored. */
  shouldMirror(topic: string): boolean {
    if (!this.include.some((r) => r.test(topic))) return false;
    if (this.exclude.some((r) => r.test(topic))) return false;
    return !this.isCycle(topic);
  }

  /**
   * Whether mirroring `topic` would send it back to the cluster it came from: the topic is a
   * remote topic whose source is the target, at any depth (`dr.primary.orders` for target `dr`).
   */
  isCycle(topic: string): boolean {
    let current: string | undefined = topic;
    while (current !== undefined) {
      const source = this.policy.topicSource(current);
      if (source === undefined) return false;
      if (source === this.targetAlias) return true;
      current = this.policy.upstreamTopic(current);
    }
    return false;
  }
}
