import type { Admin, Kafka } from 'kafkajs';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ensureClusterState, publishClusterState } from '../cluster/state.js';
import { replaySource, type ReplaySource } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import { describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { fence } from '../store/fence.js';
import { openStore } from '../store/open.js';
import { PostgresStore } from '../store/postgres.js';
import type { ClusterStateInput, Store } from '../store/store.js';
import { ReplayMetrics } from './metrics.js';
import { ReplayTask, type ReplayOutcome } from './replay-task.js';
import { newReplayStatus, type ReplayStatus } from './status.js';
import { restartBackoff } from '../util/backoff.js';

/**
 * Supervises replay of one cluster for the life of the process (inside `crr run` and
 * `crr replay`):
 * 1. opens and migrates the cluster's store, records its initial state when fresh (the config's
 *    role: a primary `ACTIVE`, a replica `REPLICATING`, epoch 0) and publishes the state to
 *    `crr-cluster-state.internal` on the cluster's Kafka;
 * 2. on a replica whose store is PostgreSQL with `appRole` set, applies the write fence
 *    (src/store/fence.ts): applications can only read; replay keeps writing;
 * 3. runs ReplayTask after ReplayTask; a failure restarts it with capped exponential backoff
 *    (`replay.restartBackoffInitialMs` doubling to `restartBackoffMaxMs`). A run that halts (a
 *    dead letter under policy `halt`) or finds the cluster OUTDATED is not restarted: the
 *    service stays up, reporting why on /status and in metrics.
 *
 * @throws from {@link start}: CrrError CRR_CONFIG_INVALID (no store for the cluster),
 *   CRR_STORE / CRR_STORE_LOCKED when the store cannot be opened
 */
export class ReplayService {
  readonly source: ReplaySource;
  readonly status: ReplayStatus;
  readonly metrics: ReplayMetrics;
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly kafka: Kafka;
  private admin: Admin | undefined;
  private store: Store | undefined;
  private loop: Promise<void> | undefined;
  private caughtUpWaiters: Array<() => void> = [];
  /** Aborts the current run only (a sync break found by the mirror). */
  private runAbort: AbortController | undefined;
  /** How the last run ended, once it ended without a failure. */
  outcome: ReplayOutcome | undefined;
  /** Set when replay gave up on an error that is not retried. */
  failed: Error | undefined;

  constructor(
    private readonly config: Config,
    readonly alias: string,
    registry: Registry,
    logger: Logger,
  ) {
    this.source = replaySource(config, alias);
    this.status = newReplayStatus(alias, this.source.configuredRole, [this.source.dataTopic, this.source.metadataTopic]);
    this.metrics = new ReplayMetrics(registry);
    this.log = logger.child({ component: 'replay', cluster: alias });
    this.kafka = createKafka(alias, this.source.cluster, 'replay', this.log, config.log.level);
  }

  /** Opens the store, initialises its state, fences a replica, and starts replaying in the background. */
  async start(): Promise<void> {
    const store = openStore(this.source.store);
    this.store = store;
    await store.migrate();
    const state = await ensureClusterState(store, this.source.configuredRole);
    this.status.role = state.role;
    this.status.clusterState = state;
    this.metrics.setState(this.alias, state.state, state.epoch);
    const cfg = this.source.store;
    if (state.role === 'replica' && store instanceof PostgresStore && cfg.appRole) {
      const replayRole = cfg.replayRole ?? `${cfg.schema}_replay`;
      await fence(store.pool, { schema: cfg.schema, appRole: cfg.appRole, replayRole });
      this.log.info({ appRole: cfg.appRole, replayRole }, 'write fence on: applications can only read the store');
    }
    this.loop = this.supervise(state);
  }

  /** Resolves the next time replay lag is measured at 0 on every partition. */
  caughtUp(): Promise<void> {
    return new Promise((resolve) => this.caughtUpWaiters.push(resolve));
  }

  /** Resolves when the supervision loop ends (stopped, halted, outdated or failed). */
  async done(): Promise<void> {
    await this.loop;
  }

  /** Stops replay (the store transaction in flight completes or rolls back) and closes the store. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
    await this.store?.close().catch(() => undefined);
    this.store = undefined;
  }

  /**
   * Records a sync break found outside replay (by the mirror into this replica): the cluster
   * becomes OUTDATED with the reason, replay stops, and the state is published. Idempotent: a
   * cluster already OUTDATED keeps its first reason. Ignored on a primary.
   * @param kind the `reason` label of `crr_sync_breaks_total` (`retention-gap`, `topic-recreated`)
   */
  async syncBreak(kind: string, reason: string): Promise<void> {
    const store = this.store;
    if (!store || !this.source.upstream) return;
    const current = await store.clusterState();
    if (!current || current.role !== 'replica' || current.state !== 'REPLICATING') return;
    const state: ClusterStateInput = { role: 'replica', state: 'OUTDATED', epoch: current.epoch, reason };
    await store.setClusterState(state);
    this.metrics.syncBreaks.inc({ cluster: this.alias, reason: kind });
    this.metrics.setState(this.alias, 'OUTDATED', current.epoch);
    this.metrics.halted.set({ cluster: this.alias }, 1);
    this.status.clusterState = state;
    this.status.state = 'outdated';
    this.status.haltReason = reason;
    this.log.error({ reason }, `cluster ${this.alias} is OUTDATED: ${reason}`);
    this.runAbort?.abort();
    await this.publish(state).catch((err) => this.log.warn({ err: describeError(err) }, 'could not publish the cluster state'));
  }

  private async publish(state: ClusterStateInput): Promise<void> {
    if (!this.admin) return;
    await publishClusterState(this.kafka, this.admin, this.alias, state);
  }

  private async supervise(initial: ClusterStateInput): Promise<void> {
    const signal = this.abort.signal;
    const { restartBackoffInitialMs, restartBackoffMaxMs } = this.config.replay;
    let published = false;
    try {
      this.outcome = await pRetry(
        async () => {
          if (!this.admin) {
            const admin = this.kafka.admin();
            await admin.connect();
            this.admin = admin;
          }
          if (!published) {
            await this.publish(initial);
            published = true;
          }
          const task = new ReplayTask({
            source: this.source,
            replay: this.config.replay,
            kafka: this.kafka,
            admin: this.admin,
            store: this.store!,
            metrics: this.metrics,
            status: this.status,
            log: this.log,
            onStateChange: (s) => this.publish(s),
          });
          task.onCaughtUp = () => {
            for (const w of this.caughtUpWaiters.splice(0)) w();
          };
          this.runAbort = new AbortController();
          const outcome = await task.run(AbortSignal.any([signal, this.runAbort.signal]));
          return outcome === 'stopped' && !signal.aborted && this.status.state === 'outdated' ? 'outdated' : outcome;
        },
        {
          ...restartBackoff(restartBackoffInitialMs, restartBackoffMaxMs, signal),
          onFailedAttempt: ({ error, attemptNumber }) => {
            if (signal.aborted) return;
            this.status.restarts += 1;
            this.status.lastError = describeError(error);
            this.status.state = 'backoff';
            this.metrics.restarts.inc({ cluster: this.alias });
            this.log.error({ err: error, attempt: attemptNumber }, `replay failed; restarting after backoff: ${describeError(error)}`);
          },
          shouldRetry: ({ error }) => !signal.aborted && !(error instanceof TypeError || error instanceof RangeError),
        },
      );
      if (this.outcome === 'stopped') this.status.state = 'stopped';
    } catch (err) {
      if (!signal.aborted) {
        this.failed = err as Error;
        this.status.state = 'stopped';
        this.status.lastError = describeError(err);
        this.log.fatal({ err }, 'replay stopped on an error that is not retried');
      }
    } finally {
      await this.admin?.disconnect().catch(() => undefined);
      this.admin = undefined;
    }
  }
}
