import { z } from 'zod';
import { RegexSchema as regex } from '../config/regex.js';

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
