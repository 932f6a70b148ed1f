import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import type { CheckpointMetrics } from './metrics.js';
import { offsetSyncsTopicName } from '../replication/internal-topics.js';
import type { FlowConfig } from '../config/flow.js';
import { checkpointKey, encodeCheckpoint, ensureCheckpointsTopic, readCheckpoints, type Checkpoint } from './checkpoint.js';
import { checkpointsTopicName } from '../replication/internal-topics.js';
import { commitToTargetGroups } from './group-offset-sync.js';
import { readOffsetSyncs } from './offset-sync-store.js';
import { translateSourceGroups } from './translate.js';

/** What a checkpoint task runs with; the Kafka clients are the flow's, owned by the caller. */
export interface CheckpointTaskDeps {
  config: Config;
  flow: FlowConfig;
  /** `source->target`. */
  flowId: string;
  source: Kafka;
  target: Kafka;
  metrics: CheckpointMetrics;
  log: Logger;
  /** Whether this process is the active mirror of the flow; a standby writes no checkpoint. */
  isActive: () => boolean;
}

/**
 * The checkpoints of one flow (MM2's MirrorCheckpointTask), run beside its mirror: every
 * `checkpointIntervalMs` (default 60000) while this process is the flow's active mirror, it
 * 1. reads the flow's offset syncs from the target to their end (and translates nothing when it
 *    cannot: MM2's rule before the first read to the end);
 * 2. reads the committed offsets of the source consumer groups passing `groups` on the mirrored
 *    topics, and translates them (OffsetSyncStore.translateDownstream);
 * 3. writes a checkpoint to `<source>.checkpoints.internal` on the target for each translated
 *    group partition that is new or moved (MM2's `checkpointIsMoreRecent`: an upstream rewind,
 *    or a downstream offset further on; never a downstream rewind for the same upstream offset),
 *    and observes `crr_checkpoint_latency_seconds`;
 * 4. with `syncGroupOffsets`, every `syncGroupOffsetsIntervalMs`, commits the latest checkpoints
 *    into the target groups without active members (commitToTargetGroups).
 * A failed run is logged and retried at the next interval; it never stops the mirror.
 */
export class CheckpointTask {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private sourceAdmin: Admin | undefined;
  private targetAdmin: Admin | undefined;
  private producer: Producer | undefined;
  /** The latest checkpoint written per group partition (seeded from the checkpoints topic). */
  private last: Map<string, Checkpoint> | undefined;
  private lastGroupSyncMs = 0;
  private readonly topic: string;

  constructor(private readonly d: CheckpointTaskDeps) {
    this.topic = checkpointsTopicName(d.flow.source);
  }

  /** Schedules the runs. */
  start(): void {
    this.schedule();
  }

  /** Stops scheduling, waits for a run in progress and closes the task's clients. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.closeClients();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.runOnce().finally(() => this.schedule());
    }, this.d.flow.checkpointIntervalMs);
  }

  private async closeClients(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    await this.sourceAdmin?.disconnect().catch(() => undefined);
    await this.targetAdmin?.disconnect().catch(() => undefined);
    this.producer = this.sourceAdmin = this.targetAdmin = undefined;
  }

  /** One checkpoint run; errors are logged, and the clients reopened at the next run. */
  async runOnce(): Promise<void> {
    if (this.stopped || !this.d.isActive()) return;
    try {
      await this.checkpoint();
    } catch (err) {
      this.d.log.warn({ err: describeError(err) }, 'checkpoint run failed; will try again at the next interval');
      await this.closeClients();
    }
  }

  private async checkpoint(): Promise<void> {
    const { flow, flowId, log, metrics } = this.d;
    if (!this.targetAdmin) {
      const a = this.d.target.admin();
      await a.connect();
      this.targetAdmin = a;
    }
    if (!this.sourceAdmin) {
      const a = this.d.source.admin();
      await a.connect();
      this.sourceAdmin = a;
    }
    if (!this.producer) {
      const p = this.d.target.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await p.connect();
      this.producer = p;
    }
    if (!this.last) {
      await ensureCheckpointsTopic(this.targetAdmin, this.topic, flow.remoteTopicReplicationFactor);
      const read = await readCheckpoints(this.d.target, this.targetAdmin, this.topic);
      if (!read.complete) throw new Error(`could not read ${this.topic} to its end`);
      this.last = read.checkpoints;
    }
    const { store, complete } = await readOffsetSyncs(this.d.target, this.targetAdmin, offsetSyncsTopicName(flow.source), flowId);
    if (!complete) {
      log.warn('offset syncs not read to their end; no checkpoint this time');
      return;
    }
    const rows = await translateSourceGroups(this.sourceAdmin, this.d.config, flow, store);
    for (const status of ['translated', 'unknown', 'too-old'] as const)
      metrics.partitions.set({ flow: flowId, status }, rows.filter((r) => r.status === status).length);

    const fresh: Checkpoint[] = [];
    for (const r of rows) {
      if (r.status !== 'translated' || r.downstreamOffset === undefined) continue;
      const c: Checkpoint = {
        group: r.group,
        topic: r.remoteTopic,
        partition: r.partition,
        upstreamOffset: r.upstreamOffset,
        downstreamOffset: r.downstreamOffset,
        metadata: r.metadata,
        checkpointedAtMs: r.readAtMs,
      };
      const prev = this.last.get(checkpointKey(c.group, c.topic, c.partition));
      if (!prev || c.upstreamOffset < prev.upstreamOffset || c.downstreamOffset > prev.downstreamOffset) fresh.push(c);
    }
    if (fresh.length > 0) {
      await this.producer.send({ topic: this.topic, acks: -1, messages: fresh.map(encodeCheckpoint) });
      const writtenAt = Date.now();
      const readAt = new Map(fresh.map((c) => [c.group, c.checkpointedAtMs]));
      for (const ms of readAt.values()) metrics.latency.observe({ flow: flowId }, Math.max(0, writtenAt - ms) / 1000);
      for (const c of fresh) this.last.set(checkpointKey(c.group, c.topic, c.partition), c);
      log.debug({ checkpoints: fresh.length, groups: readAt.size }, 'checkpoints written');
    }

    if (flow.syncGroupOffsets && Date.now() - this.lastGroupSyncMs >= flow.syncGroupOffsetsIntervalMs) {
      this.lastGroupSyncMs = Date.now();
      const groups = new Set(rows.map((r) => r.group));
      const latest = [...this.last.values()].filter((c) => groups.has(c.group));
      if (latest.length > 0) await commitToTargetGroups(this.targetAdmin, latest, log);
    }
  }
}
