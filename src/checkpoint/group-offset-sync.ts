import type { Admin } from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { findFlow, translateFlow, withAdmin, type GroupOffsetRow } from './translate.js';

/** What became of one translated offset when committed into the target group. */
export type GroupSyncResult = 'committed' | 'skipped-active-members' | 'skipped-target-ahead';

/** Target group states in which offsets may be committed from outside (MM2: EMPTY, or DEAD for a group that never existed). */
const IDLE_STATES = new Set(['Empty', 'Dead']);

/**
 * Commits translated offsets into the target cluster's consumer groups of the same names
 * (MM2's `MirrorCheckpointTask.syncGroupOffset`), by MM2's rules:
 * - only into a group with no active member (state `Empty`, or `Dead`: it never existed);
 *   a group in any other state is left alone;
 * - never backwards: a partition whose target group offset is already at or past the
 *   translated offset is left alone.
 * Commits go through KafkaJS's `admin.setOffsets` (one per group and remote topic), which briefly
 * joins the group as a paused consumer; a consumer of the group that joins at that moment
 * makes that commit fail, reported per row as `skipped-active-members`.
 *
 * @param rows translated offsets: `group`, remote `topic`, `partition`, `downstreamOffset`
 * @returns the result per row, in the order given
 */
export async function commitToTargetGroups(
  targetAdmin: Admin,
  rows: Array<{ group: string; topic: string; partition: number; downstreamOffset: number }>,
  log: Logger,
): Promise<GroupSyncResult[]> {
  const results: GroupSyncResult[] = rows.map(() => 'skipped-target-ahead');
  const byGroup = new Map<string, number[]>();
  for (const [i, r] of rows.entries()) byGroup.set(r.group, [...(byGroup.get(r.group) ?? []), i]);
  for (const [group, indexes] of byGroup) {
    const { groups } = await targetAdmin.describeGroups([group]);
    const state = groups[0]?.state ?? 'Dead';
    if (!IDLE_STATES.has(state)) {
      log.info({ group, state, members: groups[0]?.members.length }, 'target group has active members; its offsets are not synced');
      for (const i of indexes) results[i] = 'skipped-active-members';
      continue;
    }
    const topics = [...new Set(indexes.map((i) => rows[i]!.topic))];
    const current = new Map<string, number>();
    for (const t of await targetAdmin.fetchOffsets({ groupId: group, topics })) {
      for (const p of t.partitions) current.set(`${t.topic}:${p.partition}`, Number(p.offset));
    }
    for (const topic of topics) {
      const toCommit = indexes.filter((i) => rows[i]!.topic === topic && rows[i]!.downstreamOffset > (current.get(`${topic}:${rows[i]!.partition}`) ?? -1));
      if (toCommit.length === 0) continue;
      try {
        await targetAdmin.setOffsets({
          groupId: group,
          topic,
          partitions: toCommit.map((i) => ({ partition: rows[i]!.partition, offset: String(rows[i]!.downstreamOffset) })),
        });
        for (const i of toCommit) results[i] = 'committed';
        log.info({ group, topic, partitions: toCommit.length }, 'synced translated offsets into the target group');
      } catch (err) {
        log.warn({ group, topic, err: describeError(err) }, 'could not commit into the target group (a consumer joined it?)');
        for (const i of toCommit) results[i] = 'skipped-active-members';
      }
    }
  }
  return results;
}

/** One row of {@link syncGroupOffsetsOnce}. */
export interface GroupOffsetSyncRow {
  group: string;
  /** Remote topic on the target. */
  topic: string;
  partition: number;
  upstreamOffset: number;
  downstreamOffset?: number;
  /**
   * `committed` into the target group; `skipped-active-members` (the target group has a
   * member); `skipped-target-ahead` (the target group is already at or past the translated
   * offset: never moved backwards); `unknown` / `too-old`: not translated (see
   * OffsetSyncStore). `translated` is not returned here (every translated row is tried); it is
   * in the union for callers that print rows of `crr checkpoints` and of this alike.
   */
  status: 'translated' | 'unknown' | 'too-old' | 'skipped-active-members' | 'skipped-target-ahead' | 'committed';
}

/**
 * For `crr promote`, after the mirror of the flow has stopped: translates the source consumer
 * groups' committed offsets with the flow's offset syncs and commits them into the target
 * cluster's groups of the same names that have no active member, never moving one backwards
 * (MM2's `sync.group.offsets.enabled`, done once).
 *
 * The committed offsets come from the source cluster when it answers; when it does not (the
 * primary is lost), from the last checkpoints in `<source>.checkpoints.internal` on the target,
 * which are at most `checkpointIntervalMs` old (a group resumes up to that much earlier: it
 * re-reads, it never skips).
 *
 * @param config validated config
 * @param flowId `source->target`, e.g. `primary->dr`
 * @param opts.log logger (KafkaJS's log is bridged into it)
 * @param opts.groups exact group ids; default every source group passing the flow's `groups` filter
 * @returns one row per group partition of a mirrored topic: remote `topic`, offsets, status
 *   (shape of the brief, plus `skipped-target-ahead`, which MM2 also skips silently)
 * @throws CrrError CRR_CONFIG_INVALID when the flow is not configured, CRR_OFFSET_SYNC_CORRUPT /
 *   CRR_CHECKPOINT_CORRUPT on an undecodable internal record; KafkaJS errors when the target is
 *   unreachable
 */
export async function syncGroupOffsetsOnce(config: Config, flowId: string, opts: { log: Logger; groups?: string[] }): Promise<GroupOffsetSyncRow[]> {
  const flow = findFlow(config, flowId);
  const { rows } = await translateFlow(config, flowId, opts);
  const translated = rows.filter((r): r is GroupOffsetRow & { downstreamOffset: number } => r.status === 'translated' && r.downstreamOffset !== undefined);
  const target = createKafka(flow.target, config.clusters[flow.target]!, 'group-offset-sync', opts.log, config.log.level);
  const results = await withAdmin(target, (admin) =>
    commitToTargetGroups(
      admin,
      translated.map((r) => ({ group: r.group, topic: r.remoteTopic, partition: r.partition, downstreamOffset: r.downstreamOffset })),
      opts.log,
    ),
  );
  const resultOf = new Map<GroupOffsetRow, GroupSyncResult>(translated.map((r, i) => [r, results[i]!]));
  return rows.map((r) => ({
    group: r.group,
    topic: r.remoteTopic,
    partition: r.partition,
    upstreamOffset: r.upstreamOffset,
    ...(r.downstreamOffset !== undefined ? { downstreamOffset: r.downstreamOffset } : {}),
    status: resultOf.get(r) ?? r.status,
  }));
}
