import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { positionsTopicName } from '../replication/internal-topics.js';
import type { Position } from '../replication/positions.js';
import { readPositions } from '../kafka/positions-topic.js';
import type { FlowReport } from '../mirror/report.js';
import type { FlowConfig } from '../config/flow.js';

// What a promotion reads of the two clusters before it acts: the recovery point (RPO) from the
// mirror's positions, and whether a daemon of the replica still runs (src/failover/promote.ts).

/** One mirrored source partition as the DR side last recorded it (the mirror's positions topic, on the DR cluster). */
export interface MirroredPartition {
  topic: string;
  partition: number;
  /** Next upstream offset the mirror would copy: everything below it has arrived. */
  nextUpstreamOffset: number;
  /** Source timestamp of the last record mirrored, ms since the epoch; null if none. */
  lastRecordTimestampMs: number | null;
  /** Source log end offset, when the primary could be reached. */
  sourceLogEndOffset?: number;
}

/**
 * The recovery point of a promotion: what the DR side has of the primary's log.
 * - `records`: records on the primary not mirrored (source log end − mirrored position, summed
 *   over every mirrored partition but the heartbeats'); `null` when the primary cannot be reached
 *   (then nothing tells how much is missing, only since when: `lastChangeMirroredAtMs`).
 * - `lastChangeMirroredAtMs`: source timestamp of the newest change event mirrored (change
 *   topics only): anything the primary wrote after it may be missing.
 * - `lastHeartbeatAtMs`: emission time of the newest mirrored heartbeat (MM2's heartbeats): the
 *   last moment the DR side is known to have been in contact with the primary.
 */
export interface RecoveryPoint {
  records: number | null;
  lastChangeMirroredAtMs: number | null;
  lastHeartbeatAtMs: number | null;
  partitions: MirroredPartition[];
}

/** The recovery point from the mirror's positions on the DR cluster (and the primary's log ends when `replication` has them). */
export async function recoveryPoint(config: Config, flow: FlowConfig, replication: FlowReport, log: Logger): Promise<RecoveryPoint> {
  const flowId = `${flow.source}->${flow.target}`;
  const primary = config.clusters[flow.source]!;
  const changeTopics = new Set([primary.changeTopics.data, primary.changeTopics.metadata]);
  const target = config.clusters[flow.target]!;
  const kafka = createKafka(flow.target, target, `promote-${randomUUID().slice(0, 8)}`, log, 'fatal');
  const admin = kafka.admin();
  let positions = new Map<string, Position>();
  try {
    await admin.connect();
    const topic = positionsTopicName(flow.source);
    if ((await admin.listTopics()).includes(topic)) positions = (await readPositions(kafka, admin, topic, flowId, 15_000)).positions;
  } catch (err) {
    log.warn({ err: describeError(err) }, `could not read the mirror's positions on ${flow.target}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const ends = new Map(replication.partitions.map((p) => [`${p.topic}:${p.partition}`, p.sourceLogEndOffset]));
  const partitions: MirroredPartition[] = [...positions.entries()]
    .map(([key, pos]) => {
      const i = key.lastIndexOf(':');
      const topic = key.slice(0, i);
      const partition = Number(key.slice(i + 1));
      const end = ends.get(key);
      return {
        topic,
        partition,
        nextUpstreamOffset: pos.offset,
        lastRecordTimestampMs: pos.timestampMs > 0 ? pos.timestampMs : null,
        ...(end !== undefined ? { sourceLogEndOffset: end } : {}),
      };
    })
    .sort((a, b) => (a.topic === b.topic ? a.partition - b.partition : a.topic < b.topic ? -1 : 1));
  const newest = (keep: (p: MirroredPartition) => boolean): number | null => {
    const ts = partitions.filter(keep).map((p) => p.lastRecordTimestampMs ?? 0);
    const max = Math.max(0, ...ts);
    return max > 0 ? max : null;
  };
  const heartbeats = flow.emitHeartbeats ? flow.heartbeatsTopic : undefined;
  return {
    records: replication.health === 'unreachable' ? null : replication.partitions.filter((p) => p.topic !== heartbeats).reduce((n, p) => n + p.lagRecords, 0),
    lastChangeMirroredAtMs: newest((p) => changeTopics.has(p.topic)),
    lastHeartbeatAtMs: heartbeats ? newest((p) => p.topic === heartbeats) : null,
    partitions,
  };
}

/** Active members of the mirror's group on the primary (when reachable) and of the replica's replay group. */
export async function runningDaemons(config: Config, flow: FlowConfig, alias: string, primaryReachable: boolean, log: Logger): Promise<string[]> {
  const found: string[] = [];
  const check = async (clusterAlias: string, group: string, what: string): Promise<void> => {
    const c = config.clusters[clusterAlias]!;
    const kafka = createKafka(
      clusterAlias,
      { ...c, connectionTimeoutMs: Math.min(c.connectionTimeoutMs, 3000) },
      `promote-${randomUUID().slice(0, 8)}`,
      log,
      'fatal',
    );
    const admin = kafka.admin({ retry: { retries: 1 } });
    try {
      await admin.connect();
      const { groups } = await admin.describeGroups([group]);
      const members = groups[0]?.members ?? [];
      if (members.length > 0)
        found.push(`${what} is running (group ${group} on ${clusterAlias}: ${members.map((m) => `${m.clientId}@${m.clientHost}`).join(', ')})`);
    } catch (err) {
      log.warn({ err: describeError(err), group }, `could not describe group ${group} on ${clusterAlias}`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };
  if (primaryReachable) await check(flow.source, `crr-mirror-${flow.source}-${flow.target}`, `the mirror of ${flow.source}->${flow.target}`);
  await check(alias, `crr-replay-${alias}`, `replay of ${alias}`);
  return found;
}
