import type { GroupFilterConfig } from '../config/flow.js';

/**
 * Decides which source consumer groups a flow checkpoints (MM2's DefaultGroupFilter): a group
 * passes when it fully matches one include regex and no exclude regex.
 */
export class GroupFilter {
  private readonly include: RegExp[];
  private readonly exclude: RegExp[];

  /** @param config `include` and `exclude` regexes (full match, like Java's `Pattern.matches`) */
  constructor(config: GroupFilterConfig) {
    this.include = config.include.map((r) => new RegExp(`^(?:${r})$`));
    this.exclude = config.exclude.map((r) => new RegExp(`^(?:${r})$`));
  }

  /** Whether the source group `group` is checkpointed. */
  shouldCheckpoint(group: string): boolean {
    return this.include.some((r) => r.test(group)) && !this.exclude.some((r) => r.test(group));
  }
}
