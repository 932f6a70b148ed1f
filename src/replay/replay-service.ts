import { hostname } from 'node:os';
import type { Admin, Kafka } from 'kafkajs';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ensureClusterState, publishClusterState, recordClusterState } from '../cluster/state.js';
import { fenced, reseeding, stateInput } from '../cluster/cluster-state.js';
import { replaySource, type ReplaySource } from '../cluster/topology.js';
import type { Role } from '../cluster/schema.js';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { fence } from '../store/fence.js';
import { openStore } from '../store/open.js';
import { PostgresStore } from '../store/postgres.js';
import type { ClusterStateInput } from '../cluster/cluster-state.js';
import type { Store } from '../store/store.js';
import { PublishedFenceWatch } from './fence-watch.js';
import { ReplayMetrics } from './metrics.js';
import { ReplayTask, type ReplayOutcome } from './replay-task.js';
import { canTakeFreshBackup, reseedReplica } from '../reseed/reseed.js';
import { newReplayStatus, type ReplayStatus } from './status.js';
import { supervision } from '../util/backoff.js';

/**
 * Supervises replay of one cluster for the life of the process (inside `crr run` and
 * `crr replay`):
 * 1. opens and migrates the cluster's store, records its initial state when fresh (the config's
 *    role: a primary `ACTIVE`, a replica `REPLICATING`, epoch 0) and publishes the state to
 *    `crr-cluster-state.internal` on the cluster's Kafka;
 * 2. on a replica, or a fenced primary, whose store is PostgreSQL with `appRole` set, applies the
 *    write fence (src/store/fence.ts): applications can only read; replay keeps writing;
 * 2b. on a primary: obeys a `FENCED` state that a promotion of its replica published on its
 *    Kafka (src/replay/fence-watch.ts), checked before it publishes its own state at start and
 *    every 2 s after: records FENCED in its store (same epoch), applies the write fence, and
 *    reports it (`/status` `replay.clusterState`, `replay.writeFence`, `crr_cluster_state`, an
 *    error log); replay goes on, so what the primary accepted before the fence is applied;
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
  /** A primary's watch of the FENCED state a promotion publishes on its Kafka (undefined on a replica). */
  private fenceWatch: PublishedFenceWatch | undefined;
  private fenceWatchLoop: Promise<void> | undefined;

  constructor(
    private readonly config: Config,
    readonly alias: string,
    registry: Registry,
    logger: Logger,
    role?: Role,
  ) {
    this.source = replaySource(config, alias, role);
    this.status = newReplayStatus(alias, this.source.configuredRole, [this.source.dataTopic, this.source.metadataTopic]);
    this.metrics = new ReplayMetrics(registry);
    this.log = logger.child({ component: 'replay', cluster: alias });
    this.kafka = createKafka(alias, this.source.cluster, 'replay', this.log, config.log.level);
    if (!this.source.upstream) {
      this.fenceWatch = new PublishedFenceWatch({
        alias,
        kafka: this.kafka,
        log: this.log,
        recorded: async () => {
          const s = await this.store?.clusterState();
          return s ? stateInput(s) : undefined;
        },
        obey: (published) => this.obeyFence(published),
      });
    }
  }

  /**
   * Starts replaying in the background: opens the store, initialises its state, fences a
   * replica, then replays. A store that cannot be reached (PostgreSQL down, a network cut) is
   * waited for with backoff (status `waiting-for-store`, `crr_store_up` 0) without stopping the
   * process, so the mirror of a replica goes on copying meanwhile; any other start-up error
   * (a config error, the store's recorded role differing from the one this process runs as)
   * ends replay (`failed`).
   */
  async start(): Promise<void> {
    this.metrics.storeUp.set({ cluster: this.alias }, 0);
    this.loop = this.openAndSupervise();
  }

  private async openAndSupervise(): Promise<void> {
    const signal = this.abort.signal;
    const { restartBackoffInitialMs, restartBackoffMaxMs } = this.config.replay;
    let state: ClusterStateInput;
    try {
      state = await pRetry(
        () => this.openStore(),
        supervision(restartBackoffInitialMs, restartBackoffMaxMs, signal, (error, attempt) => {
          this.metrics.storeUp.set({ cluster: this.alias }, 0);
          this.status.state = 'waiting-for-store';
          this.status.lastError = describeError(error);
          this.log.error({ err: error, attempt }, `the store cannot be reached; replay waits and retries: ${describeError(error)}`);
        }),
      );
    } catch (err) {
      if (!signal.aborted) {
        this.failed = err as Error;
        this.status.state = 'stopped';
        this.status.lastError = describeError(err);
        this.log.fatal({ err }, 'replay cannot start');
      }
      return;
    }
    if (signal.aborted) return;
    await this.supervise(state);
  }

  /** Opens the store, migrates it, initialises its state and fences a replica (one attempt). */
  private async openStore(): Promise<ClusterStateInput> {
    await this.store?.close().catch(() => undefined);
    const store = openStore(this.source.store);
    this.store = store;
    await store.migrate();
    const state = await ensureClusterState(store, this.source.configuredRole);
    const runningAs = this.source.upstream ? 'replica' : 'primary';
    if (state.role !== runningAs) {
      throw new CrrError(
        'CRR_CONFIG_INVALID',
        `cluster ${this.alias}'s store records it as a ${state.role}, but this process started as a ${runningAs} (its store was unreachable at start); restart crr run`,
      );
    }
    this.metrics.storeUp.set({ cluster: this.alias }, 1);
    this.status.role = state.role;
    this.status.clusterState = state;
    this.metrics.setState(this.alias, state.state, state.epoch);
    for (const p of await store.promotions()) this.metrics.promotions.inc({ cluster: this.alias, mode: p.mode });
    if (state.role === 'replica' || state.state === 'FENCED') await this.applyFence();
    return state;
  }

  /**
   * Obeys a FENCED state published on this primary's Kafka by a promotion of its replica:
   * records `primary FENCED` at the store's epoch (keeping it: events this primary accepted
   * before the fence are still applied), applies the store's write fence, reports it, and
   * publishes it again.
   * @throws CrrError CRR_STATE_TRANSITION when the store's state cannot become FENCED; the store's errors
   */
  private async obeyFence(published: ClusterStateInput): Promise<void> {
    const store = this.store;
    if (!store) throw new CrrError('CRR_STORE', `the store of ${this.alias} is not open`, { retriable: true });
    const current = await store.clusterState();
    const state = fenced(current?.epoch ?? published.epoch, published.reason ?? `fenced: published FENCED on ${this.alias}'s Kafka`);
    await recordClusterState(store, this.alias, state);
    this.status.clusterState = state;
    this.metrics.setState(this.alias, 'FENCED', state.epoch);
    this.log.error(
      { published, epoch: state.epoch },
      `${this.alias} is FENCED (${state.reason}): a promotion made another cluster the primary; its writers refuse, replay applies what was accepted before`,
    );
    await this.applyFence().catch((err) => this.log.error({ err: describeError(err) }, 'could not apply the write fence of the fenced primary'));
    // the newest published state may be a stale one published over the fence (see PublishedFenceWatch)
    await this.publish(state).catch((err) => this.log.warn({ err: describeError(err) }, 'could not publish the cluster state'));
  }

  /**
   * Applies the write fence of a replica's or a fenced primary's PostgreSQL store (when `appRole` is configured) and
   * reports it only as the catalogs show it: `/status` `writeFence`, `crr_write_fence_in_place`,
   * and an error log naming each problem (a superuser or owning application role, a write right
   * granted by hand). Replay goes on either way: the replica stays useful, and the alert says why
   * it is not protected.
   */
  private async applyFence(): Promise<void> {
    const cfg = this.source.store;
    const store = this.store;
    if (!(store instanceof PostgresStore) || !cfg.appRole) return;
    const replayRole = cfg.replayRole ?? `${cfg.schema}_replay`;
    const check = await fence(store.pool, { schema: cfg.schema, appRole: cfg.appRole, replayRole });
    this.status.writeFence = { appRole: cfg.appRole, ...check, checkedAt: new Date().toISOString() };
    this.metrics.writeFenceInPlace.set({ cluster: this.alias }, check.inPlace ? 1 : 0);
    if (check.inPlace) this.log.info({ appRole: cfg.appRole, replayRole }, 'write fence on: applications can only read the store');
    else this.log.error({ appRole: cfg.appRole, problems: check.problems }, `write fence NOT in place: ${check.problems.join('; ')}`);
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
    await this.fenceWatchLoop;
    await this.fenceWatch?.close();
    await this.store?.close().catch(() => undefined);
    this.store = undefined;
  }

  private async publish(state: ClusterStateInput): Promise<void> {
    if (!this.admin) return;
    await publishClusterState(this.kafka, this.admin, this.alias, state);
  }

  private async supervise(initial: ClusterStateInput): Promise<void> {
    const signal = this.abort.signal;
    try {
      this.outcome = await this.replayUntilOutcome(signal, initial);
      // auto reseed (docs/architecture.md, "Backups, restore and reseed"): cure an OUTDATED replica, then replay again
      // (manual mode: wait until an operator's `crr reseed --execute` records REPLICATING)
      while (this.outcome === 'outdated' && this.source.upstream && !signal.aborted) {
        if (this.config.reseed.mode === 'auto' && canTakeFreshBackup(this.config, this.source.upstream.alias)) await this.reseedWithRetries(signal);
        else await this.waitForManualReseed(signal);
        if (signal.aborted) break;
        this.outcome = await this.replayUntilOutcome(signal, undefined);
      }
      if (this.outcome === 'stopped' || signal.aborted) this.status.state = 'stopped';
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

  /** Runs replay tasks (restarting failed ones with backoff) until one stops, halts or finds the cluster OUTDATED. */
  private async replayUntilOutcome(signal: AbortSignal, toPublish: ClusterStateInput | undefined): Promise<ReplayOutcome> {
    const { restartBackoffInitialMs, restartBackoffMaxMs } = this.config.replay;
    let pending = toPublish;
    return pRetry(
      async () => {
        if (!this.admin) {
          const admin = this.kafka.admin();
          await admin.connect();
          this.admin = admin;
        }
        if (this.fenceWatch && !this.fenceWatchLoop) {
          // a primary restarted after a promotion fenced it: obey before publishing its own (older)
          // state, then publish the store's FENCED (a promotion that reached only the store is published so)
          if (await this.fenceWatch.check()) {
            const now = await this.store!.clusterState();
            pending = now ? stateInput(now) : undefined;
          }
          this.fenceWatchLoop = this.fenceWatch.run(signal);
        }
        if (pending) {
          await this.publish(pending);
          pending = undefined;
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
      supervision(restartBackoffInitialMs, restartBackoffMaxMs, signal, (error, attempt) => {
        this.status.restarts += 1;
        this.status.lastError = describeError(error);
        this.status.state = 'backoff';
        this.metrics.restarts.inc({ cluster: this.alias });
        this.log.error({ err: error, attempt }, `replay failed; restarting after backoff: ${describeError(error)}`);
      }),
    );
  }

  /** Polls the store every 2 s until its state is REPLICATING again (reseed mode `manual`). */
  private async waitForManualReseed(signal: AbortSignal): Promise<void> {
    const primary = this.source.upstream!.alias;
    this.log.warn(
      this.config.reseed.mode === 'manual'
        ? 'reseed mode is manual: waiting for `crr reseed --execute`'
        : `automatic reseed needs clusters.${primary}.backup (and clusters.${primary}.store with reseed.backupSource primary-store) in the config; waiting for \`crr reseed --execute\``,
    );
    while (!signal.aborted) {
      await new Promise((r) => setTimeout(r, 2000));
      const state = await this.store!.clusterState().catch(() => undefined);
      if (state?.state === 'REPLICATING') {
        this.status.clusterState = stateInput(state);
        this.status.haltReason = undefined;
        this.log.info({ reason: state.reason }, 'the replica was reseeded; replay resumes');
        return;
      }
    }
  }

  /** Reseeds the replica (src/reseed/reseed.ts), retrying with backoff until it succeeds or the service stops. */
  private async reseedWithRetries(signal: AbortSignal): Promise<void> {
    const { retryBackoffInitialMs, retryBackoffMaxMs } = this.config.reseed;
    const why = this.status.haltReason ?? this.status.clusterState?.reason ?? 'OUTDATED';
    const kind = this.status.syncBreak ?? 'unknown';
    const started = Date.now();
    this.status.state = 'reseeding';
    this.metrics.halted.set({ cluster: this.alias }, 0);
    const state = (s: 'RESEEDING', reason: string): void => {
      this.metrics.setState(this.alias, s, this.status.clusterState?.epoch ?? 0);
      void this.publish(reseeding(this.status.clusterState?.epoch ?? 0, reason)).catch(() => undefined);
    };
    state('RESEEDING', `reseed (${why})`);
    this.log.warn({ why }, 'reseeding the replica from a fresh backup of the primary');
    const result = await pRetry(
      () =>
        reseedReplica(this.config, this.source, this.store!, why, {
          log: this.log,
          signal,
          onlyIfOutdated: true,
          holder: `crr run --cluster ${this.alias} pid ${process.pid} on ${hostname()}`,
          onProgress: (p) => {
            this.status.reseed = {
              ...p,
              startedAt: new Date(started).toISOString(),
              percent: p.totalRecords ? Math.min(100, Math.round((100 * p.records) / p.totalRecords)) : undefined,
            };
            this.metrics.reseedWaitingForPrimary.set({ cluster: this.alias }, p.waitingFor ? 1 : 0);
          },
        }),
      supervision(retryBackoffInitialMs, retryBackoffMaxMs, signal, (error, attempt) => {
        this.status.lastError = describeError(error);
        if (error instanceof CrrError && error.code === 'CRR_RESEED_IN_PROGRESS') {
          this.log.warn({ attempt }, `waiting: ${describeError(error)}`);
          return; // not a failure: someone else is curing it
        }
        this.metrics.reseeds.inc({ cluster: this.alias, reason: kind, result: 'failed' });
        this.log.error({ err: error, attempt }, `reseed failed; retrying after backoff: ${describeError(error)}`);
      }),
    );
    this.metrics.reseedWaitingForPrimary.set({ cluster: this.alias }, 0);
    const seconds = (Date.now() - started) / 1000;
    if (result.skipped) {
      const now = await this.store!.clusterState();
      this.status.clusterState = now;
      this.status.haltReason = undefined;
      this.status.syncBreak = undefined;
      this.status.reseed = undefined;
      if (now) this.metrics.setState(this.alias, now.state, now.epoch);
      this.log.info({ state: now?.state, epoch: now?.epoch, reason: now?.reason }, 'the replica was reseeded by someone else meanwhile; replay resumes');
      return;
    }
    this.metrics.reseeds.inc({ cluster: this.alias, reason: kind, result: 'succeeded' });
    this.metrics.reseedDuration.observe({ cluster: this.alias }, seconds);
    this.metrics.backupBytes.inc({ cluster: this.alias }, result.resumed ? 0 : result.backupBytes);
    this.metrics.restoreBytes.inc({ cluster: this.alias }, result.backupBytes);
    const done = result.state;
    this.status.clusterState = done;
    this.status.haltReason = undefined;
    this.status.syncBreak = undefined;
    this.status.lastReseed = { backupId: result.backupId, epoch: result.epoch, records: result.records, seconds, finishedAt: new Date().toISOString() };
    await this.applyFence().catch((err) => this.log.error({ err: describeError(err) }, 'could not check the write fence after the reseed'));
    this.status.reseed = undefined;
    this.metrics.setState(this.alias, 'REPLICATING', result.epoch);
    await this.publish(done).catch((err) => this.log.warn({ err: describeError(err) }, 'could not publish the cluster state'));
    this.log.info({ backup: result.backupId, epoch: result.epoch, records: result.records, seconds }, `reseed done in ${seconds.toFixed(1)} s; replay resumes`);
  }
}
