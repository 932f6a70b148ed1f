import type { Admin, Kafka } from 'kafkajs';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { HeartbeatEmitter } from './heartbeat.js';
import type { MirrorMetrics } from './metrics.js';
import { MirrorTask, type TaskOutcome } from './mirror-task.js';
import { createReplicationPolicy } from '../replication/policy.js';
import { type FlowConfig, mirrorSideCluster } from '../config/flow.js';
import { newFlowStatus, type FlowStatus } from './status.js';
import { TopicFilter } from '../replication/topic-filter.js';
import { TopicSync } from './topic-sync.js';
import { supervision } from '../util/backoff.js';
import { CheckpointTask } from '../checkpoint/checkpoint-task.js';

/**
 * Supervises the mirror of one flow `source->target` for the life of the process (its clients log
 * in with the flow's `sourceAuth` / `targetAuth` where set, else the clusters'): emits
 * heartbeats to the source, writes checkpoints while it is the active mirror (CheckpointTask),
 * and runs MirrorTask after MirrorTask. A failed run (a cluster
 * unreachable, a broker restart, the producer fenced) is followed by a new one after a capped
 * exponential backoff (`restartBackoffInitialMs` doubling to `restartBackoffMaxMs`, with
 * jitter); the backoff starts over once a run has stayed up longer than the maximum.
 * A programming error (TypeError, RangeError) is not retried: the flow stops as `failed`.
 */
export class MirrorFlow {
  readonly id: string;
  readonly status: FlowStatus;
  private readonly abort = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly source: Kafka;
  private readonly target: Kafka;
  private sourceAdmin: Admin | undefined;
  private targetAdmin: Admin | undefined;
  private heartbeats: HeartbeatEmitter | undefined;
  /** Checkpoints of the flow (`emitCheckpoints`), written while this process is the active mirror. */
  private readonly checkpoints: CheckpointTask | undefined;
  /** Set when the flow gave up (a non-retriable error). */
  failed: Error | undefined;

  constructor(
    private readonly config: Config,
    private readonly flow: FlowConfig,
    private readonly metrics: MirrorMetrics,
    logger: Logger,
  ) {
    this.id = `${flow.source}->${flow.target}`;
    this.status = newFlowStatus(this.id);
    this.log = logger.child({ component: 'mirror', flow: this.id });
    const level = config.log.level;
    // the flow's sourceAuth / targetAuth, when set, replace the clusters' credentials for the mirror's clients
    const source = mirrorSideCluster(config, flow, 'source');
    const target = mirrorSideCluster(config, flow, 'target');
    this.source = createKafka(flow.source, source.cluster, 'mirror-source', this.log, level, source.paths);
    this.target = createKafka(flow.target, target.cluster, 'mirror-target', this.log, level, target.paths);
    if (flow.emitCheckpoints) {
      this.checkpoints = new CheckpointTask({
        config,
        flow,
        flowId: this.id,
        source: this.source,
        target: this.target,
        metrics: metrics.checkpoint,
        log: this.log.child({ part: 'checkpoint' }),
        isActive: () => this.status.state === 'active',
      });
    }
  }

  /** Starts the supervision loop in the background. */
  start(): void {
    if (!this.loop) this.checkpoints?.start();
    this.loop ??= this.supervise();
  }

  /** Stops the current run (finishing or aborting its transaction) and closes every client. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async supervise(): Promise<void> {
    const signal = this.abort.signal;
    const { restartBackoffInitialMs, restartBackoffMaxMs } = this.config.mirror;
    while (!signal.aborted) {
      try {
        const outcome = await pRetry(
          () => this.runOnce(signal),
          supervision(restartBackoffInitialMs, restartBackoffMaxMs, signal, (error, attempt) => {
            this.status.restarts += 1;
            this.status.lastError = describeError(error);
            this.status.state = 'backoff';
            this.metrics.restarts.inc({ flow: this.id, reason: 'failure' });
            this.log.error({ err: error, attempt }, `mirror task failed; restarting after backoff: ${describeError(error)}`);
          }),
        );
        if (outcome === 'stopped') break;
      } catch (err) {
        if (signal.aborted) break;
        this.failed = err as Error;
        this.status.state = 'stopped';
        this.status.lastError = describeError(err);
        this.log.fatal({ err }, 'mirror flow stopped on an error that is not retried');
        break;
      }
    }
    await this.heartbeats?.stop();
    await this.checkpoints?.stop();
    await this.sourceAdmin?.disconnect().catch(() => undefined);
    await this.targetAdmin?.disconnect().catch(() => undefined);
  }

  /** One task run. A run that failed after staying up for a while restarts with a fresh backoff. */
  private async runOnce(signal: AbortSignal): Promise<TaskOutcome> {
    const flow = this.flow;
    this.status.state = 'starting';
    try {
      if (!this.sourceAdmin) {
        const admin = this.source.admin();
        await admin.connect();
        this.sourceAdmin = admin;
      }
      if (!this.targetAdmin) {
        const admin = this.target.admin();
        await admin.connect();
        this.targetAdmin = admin;
      }
      this.metrics.clusterUp.set({ cluster: flow.source }, 1);
      this.metrics.clusterUp.set({ cluster: flow.target }, 1);
    } catch (err) {
      this.metrics.clusterUp.set({ cluster: this.sourceAdmin ? flow.target : flow.source }, 0);
      throw err;
    }
    if (flow.emitHeartbeats && !this.heartbeats) {
      const hb = new HeartbeatEmitter(
        this.source,
        this.sourceAdmin,
        { topic: flow.heartbeatsTopic, sourceAlias: flow.source, targetAlias: flow.target, intervalMs: flow.heartbeatIntervalMs },
        this.log.child({ part: 'heartbeat' }),
      );
      await hb.start();
      this.heartbeats = hb;
    }
    const policy = createReplicationPolicy(flow.replicationPolicy, Object.keys(this.config.clusters));
    const filter = new TopicFilter(flow.topics, policy, flow.target);
    const topicSync = new TopicSync(
      this.sourceAdmin,
      this.targetAdmin,
      policy,
      filter,
      {
        sourceAlias: flow.source,
        syncConfigs: flow.syncTopicConfigs,
        configExcludes: flow.topicConfigExcludes,
        replicationFactor: flow.remoteTopicReplicationFactor,
        heartbeatsTopic: flow.emitHeartbeats ? flow.heartbeatsTopic : undefined,
      },
      this.log.child({ part: 'topic-sync' }),
    );
    const task = new MirrorTask({
      flow,
      flowId: this.id,
      source: this.source,
      target: this.target,
      sourceAdmin: this.sourceAdmin,
      targetAdmin: this.targetAdmin,
      topicSync,
      metrics: this.metrics,
      status: this.status,
      log: this.log,
      lagPollIntervalMs: this.config.mirror.lagPollIntervalMs,
      shutdownTimeoutMs: this.config.mirror.shutdownTimeoutMs,
    });
    const startedAt = Date.now();
    try {
      const outcome = await task.run(signal);
      if (outcome === 'restart') this.status.restarts += 1;
      return outcome;
    } catch (err) {
      if (signal.aborted) return 'stopped';
      if (Date.now() - startedAt > this.config.mirror.restartBackoffMaxMs) {
        this.status.restarts += 1;
        this.status.lastError = describeError(err);
        this.metrics.restarts.inc({ flow: this.id, reason: 'failure' });
        this.log.error({ err }, `mirror task failed after running a while; restarting: ${describeError(err)}`);
        await new Promise((r) => setTimeout(r, this.config.mirror.restartBackoffInitialMs));
        return 'restart';
      }
      throw err;
    }
  }
}
