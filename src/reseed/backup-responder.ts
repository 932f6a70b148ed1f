import { hostname } from 'node:os';
import type { Admin, Kafka, Producer } from 'kafkajs';
import pRetry from 'p-retry';
import type { Logger } from 'pino';
import { Counter, type Registry } from 'prom-client';
import { openRepository } from '../backup/open-repository.js';
import { pinBackup, unpinThrough } from '../backup/pin.js';
import type { BackupRepository } from '../backup/repository.js';
import { createBackup } from '../backup/write.js';
import type { Config } from '../config/schema.js';
import { describeError, isRetriable } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { tailTopic, type TopicTail } from '../kafka/tail.js';
import { ensureTopic } from '../kafka/topics.js';
import {
  type BackupRequest,
  CONTROL_TOPIC,
  type ControlRecord,
  decodeControlRecord,
  encodeControlRecord,
  CONTROL_TOPIC_RETENTION_MS,
} from '../replication/control-topic.js';
import { openStore } from '../store/open.js';
import { supervision } from '../util/backoff.js';

/** What a primary's backup responder reports on `/status` (`backupRequests`). */
export interface BackupResponderStatus {
  state: 'starting' | 'serving' | 'backoff' | 'stopped';
  served: number;
  failed: number;
  /** The backup being taken for a replica's request. */
  current?: { requestId: string; replica: string; records: number; startedAt: string };
  lastError?: string;
}

/** How long a backup waits for the primary's own replay to catch up first, ms. */
const CATCH_UP_WAIT_MS = 60_000;

/** How often an accepted request's progress is sent to the requester, ms. */
const PROGRESS_EVERY_MS = 5000;

/** Metrics of the backup responder; registered once per registry. */
function requestsCounter(registry: Registry): Counter<'cluster' | 'result'> {
  const existing = registry.getSingleMetric('crr_backup_requests_total');
  if (existing) return existing as Counter<'cluster' | 'result'>;
  return new Counter({
    name: 'crr_backup_requests_total',
    help: "Replicas' backup requests this primary's daemon read on crr-control.internal, by result: served, failed, expired (read after it expired), invalid (a record that is not a control record)",
    labelNames: ['cluster', 'result'],
    registers: [registry],
  });
}

/**
 * The primary side of a reseed requested through Kafka (reseed `backupSource: primary-daemon`,
 * issue 12 item 3): inside the primary's `crr run` (or `crr replay`), reads its own Kafka's
 * `crr-control.internal` (src/replication/control-topic.ts) and, for each `backup-request` for
 * this cluster not expired nor answered, takes a backup of its store into its backup repository
 * (`clusters.<alias>.backup`), pins it for the replica, and answers `backup-accepted`, then
 * `backup-progress` every 5 s, then `backup-done` with the id (or `backup-failed`). A
 * `backup-release` removes the replica's pins on that backup and older ones. One backup at a
 * time, in request order; a request that was made while a backup for the same replica was being
 * taken (it sits below the offset read when that backup started: the requester asked again
 * meanwhile) is answered with that backup, which started after it was asked.
 *
 * At start it reads the topic from its beginning (7 days of retention, few records) before
 * serving, so a request answered before a restart is not served twice; a request that arrived
 * while the daemon was down is served if it has not expired (the requester asks again otherwise).
 * Each backup waits (up to 60 s) for the primary's own replay to catch up (`caughtUp`), then
 * opens the store (PostgreSQL: a snapshot on its own connection while replay goes on); a PGlite store belongs to the one process replaying it, so a request is answered
 * `backup-failed` (not retriable) saying so.
 *
 * A Kafka failure restarts it with the replay's backoff (`replay.restartBackoffInitialMs` ..
 * `restartBackoffMaxMs`); a backup in progress then finishes and is answered when Kafka is back.
 */
export class BackupResponder {
  readonly status: BackupResponderStatus = { state: 'starting', served: 0, failed: 0 };
  private readonly abort = new AbortController();
  private readonly log: Logger;
  private readonly kafka: Kafka;
  private readonly requests: Counter<'cluster' | 'result'>;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly config: Config,
    readonly alias: string,
    registry: Registry,
    logger: Logger,
    private readonly caughtUp?: () => Promise<void>,
  ) {
    this.log = logger.child({ component: 'backup-responder', cluster: alias });
    this.kafka = createKafka(alias, config.clusters[alias]!, 'backup-responder', this.log, config.log.level);
    this.requests = requestsCounter(registry);
  }

  /** Whether a primary's daemon for `alias` answers backup requests under `config`: a store, a backup config, `reseed.serveBackupRequests`. */
  static wanted(config: Config, alias: string): boolean {
    const c = config.clusters[alias];
    return Boolean(config.reseed.serveBackupRequests && c?.store && c.backup);
  }

  /** Starts serving in the background. */
  start(): void {
    const { restartBackoffInitialMs, restartBackoffMaxMs } = this.config.replay;
    const signal = this.abort.signal;
    this.loop = pRetry(
      () => this.serve(signal),
      supervision(restartBackoffInitialMs, restartBackoffMaxMs, signal, (error, attempt) => {
        this.status.state = 'backoff';
        this.status.lastError = describeError(error);
        this.log.error({ err: error, attempt }, `backup requests: ${describeError(error)}; restarting after backoff`);
      }),
    ).then(
      () => undefined,
      (err) => {
        if (!signal.aborted) {
          this.status.lastError = describeError(err);
          this.log.error({ err }, 'backup requests are no longer served');
        }
      },
    );
    this.loop.finally(() => (this.status.state = 'stopped'));
  }

  /** Stops serving; a backup in progress is aborted (its objects removed). */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** One run: reads the control topic and serves requests until `signal` aborts or something fails. */
  private async serve(signal: AbortSignal): Promise<void> {
    const cluster = this.config.clusters[this.alias]!;
    const admin: Admin = this.kafka.admin();
    const producer: Producer = this.kafka.producer({ allowAutoTopicCreation: false });
    let tail: TopicTail | undefined;
    let repo: BackupRepository | undefined;
    try {
      await admin.connect();
      await ensureTopic(admin, CONTROL_TOPIC, 1, cluster.changeTopics.replicationFactor, [
        { name: 'cleanup.policy', value: 'delete' },
        { name: 'retention.ms', value: String(CONTROL_TOPIC_RETENTION_MS) },
      ]);
      await producer.connect();
      repo = await openRepository(cluster.backup!, `clusters.${this.alias}.backup`);
      const offsets = (await admin.fetchTopicOffsets(CONTROL_TOPIC)).find((o) => o.partition === 0)!;
      const catchUpEnd = Number(offsets.high);
      const answered = new Set<string>();
      const queue: Array<{ offset: number; r: Extract<ControlRecord, { kind: 'backup-request' | 'backup-release' }> }> = [];
      // per replica, the last backup served, and the offset read when it started: a request
      // below that offset was made before the backup started, which is fresh enough for it
      const lastServed = new Map<string, { startOffset: number; done: Extract<ControlRecord, { kind: 'backup-done' }> }>();
      let next = Number(offsets.low);
      let wake: (() => void) | undefined;
      tail = await tailTopic(this.kafka, CONTROL_TOPIC, 0, offsets.low, (m) => {
        next = Number(m.offset) + 1;
        const r = decodeControlRecord(m.value);
        if ('invalid' in r) {
          this.requests.inc({ cluster: this.alias, result: 'invalid' });
          this.log.warn({ topic: CONTROL_TOPIC, offset: m.offset, problem: r.invalid }, `skipped an invalid record of ${CONTROL_TOPIC}`);
        } else if (r.kind === 'backup-request' || r.kind === 'backup-release') {
          if (r.cluster === this.alias) queue.push({ offset: Number(m.offset), r });
        } else {
          answered.add(r.requestId);
        }
        wake?.();
      });
      let tailFailure: unknown;
      tail.crashed.catch((err: unknown) => {
        tailFailure = err ?? new Error('the read of the control topic crashed');
        wake?.();
      });
      this.status.state = 'serving';
      this.status.lastError = undefined;
      this.log.info({ topic: CONTROL_TOPIC }, `serving the backup requests of ${this.alias}'s replicas`);
      const send = async (r: ControlRecord): Promise<void> => {
        await producer.send({ topic: CONTROL_TOPIC, acks: -1, messages: [encodeControlRecord(r)] });
      };
      for (;;) {
        signal.throwIfAborted();
        await new Promise<void>((resolve) => {
          const done = (): void => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            wake = undefined;
            resolve();
          };
          const timer = setTimeout(done, 1000);
          wake = done;
          signal.addEventListener('abort', done, { once: true });
        });
        if (tailFailure !== undefined) throw tailFailure;
        // serve only once the records before the start are all read: what was answered is known
        if (next < catchUpEnd) continue;
        for (let q = queue.shift(); q; q = queue.shift()) {
          signal.throwIfAborted();
          const r = q.r;
          if (r.kind === 'backup-release') {
            await this.release(repo, r.replica, r.backupId);
            continue;
          }
          if (answered.has(r.requestId)) continue;
          answered.add(r.requestId);
          const last = lastServed.get(r.replica);
          if (last && q.offset < last.startOffset) {
            // asked again while the backup of an earlier request was being taken: that one answers it
            await send({ ...last.done, requestId: r.requestId, atMs: Date.now() });
            this.log.info(
              { requestId: r.requestId, replica: r.replica, backup: last.done.backupId },
              `answered ${r.replica}'s request with backup ${last.done.backupId}, taken since it asked`,
            );
          } else if (Date.now() > r.expiresAtMs) {
            this.requests.inc({ cluster: this.alias, result: 'expired' });
            this.log.info({ requestId: r.requestId, replica: r.replica }, `skipped the expired backup request ${r.requestId} of ${r.replica}`);
          } else {
            const startOffset = next;
            const done = await this.takeBackup(r, repo, send, signal);
            if (done) lastServed.set(r.replica, { startOffset, done });
          }
        }
      }
    } finally {
      await tail?.stop();
      await producer.disconnect().catch(() => undefined);
      await admin.disconnect().catch(() => undefined);
      repo?.close();
    }
  }

  /** Serves one request: accepted, progress every 5 s, then done or failed. */
  private async takeBackup(
    r: BackupRequest,
    repo: BackupRepository,
    send: (r: ControlRecord) => Promise<void>,
    signal: AbortSignal,
  ): Promise<Extract<ControlRecord, { kind: 'backup-done' }> | undefined> {
    const cluster = this.config.clusters[this.alias]!;
    const by = `crr pid ${process.pid} on ${hostname()}`;
    this.log.info({ requestId: r.requestId, replica: r.replica, requester: r.requester, reason: r.reason }, `taking a backup for ${r.replica}'s reseed`);
    await send({ kind: 'backup-accepted', requestId: r.requestId, by, atMs: Date.now() });
    this.status.current = { requestId: r.requestId, replica: r.replica, records: 0, startedAt: new Date().toISOString() };
    const progress = setInterval(() => {
      const records = this.status.current?.records ?? 0;
      send({ kind: 'backup-progress', requestId: r.requestId, records, atMs: Date.now() }).catch((err) =>
        this.log.warn({ err: describeError(err) }, 'could not send the progress of a backup'),
      );
    }, PROGRESS_EVERY_MS);
    try {
      if (cluster.store!.type !== 'postgres') {
        throw Object.assign(
          new Error(
            `${this.alias}'s store is ${cluster.store!.type}: one process's database, which only crr backup create can back up while this daemon is stopped`,
          ),
          { retriable: false },
        );
      }
      await this.waitForReplay(signal);
      const store = openStore(cluster.store!);
      let manifest: Awaited<ReturnType<typeof createBackup>>;
      try {
        manifest = await createBackup(store, repo, {
          cluster: this.alias,
          partSizeBytes: cluster.backup!.partSizeBytes,
          onProgress: (p) => {
            if (this.status.current) this.status.current.records = p.vertices + p.edges;
          },
          signal,
        });
      } finally {
        await store.close().catch(() => undefined);
      }
      await pinBackup(repo, manifest.id, { cluster: r.replica, purpose: 'reseed', holder: r.requester });
      clearInterval(progress);
      const records = manifest.totals.vertices + manifest.totals.edges;
      const done = {
        kind: 'backup-done' as const,
        requestId: r.requestId,
        backupId: manifest.id,
        epoch: manifest.epoch,
        records,
        bytes: manifest.totals.bytes,
        atMs: Date.now(),
      };
      await send(done);
      this.status.served += 1;
      this.requests.inc({ cluster: this.alias, result: 'served' });
      this.log.info({ requestId: r.requestId, replica: r.replica, backup: manifest.id, records }, `backup ${manifest.id} taken for ${r.replica} and pinned`);
      return done;
    } catch (err) {
      clearInterval(progress);
      if (signal.aborted) throw err;
      this.status.failed += 1;
      this.requests.inc({ cluster: this.alias, result: 'failed' });
      this.log.error({ err, requestId: r.requestId, replica: r.replica }, `the backup for ${r.replica}'s reseed failed: ${describeError(err)}`);
      await send({ kind: 'backup-failed', requestId: r.requestId, error: describeError(err).slice(0, 4000), retriable: isRetriable(err), atMs: Date.now() });
      return undefined;
    } finally {
      this.status.current = undefined;
    }
  }

  /**
   * Waits (at most {@link CATCH_UP_WAIT_MS}) until this primary's own replay has caught up, so
   * that the backup holds what the change log holds: a daemon that was down at a sync break
   * would otherwise back up a store from before its marker, and the replica, replaying from the
   * backup's positions, would meet the marker again and reseed twice.
   */
  private async waitForReplay(signal: AbortSignal): Promise<void> {
    if (!this.caughtUp) return;
    let timer: NodeJS.Timeout | undefined;
    const gaveUp = await Promise.race([
      this.caughtUp().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), CATCH_UP_WAIT_MS))),
    ]);
    clearTimeout(timer);
    signal.throwIfAborted();
    if (gaveUp) this.log.warn(`${this.alias}'s replay did not catch up within ${CATCH_UP_WAIT_MS} ms; backing up its store as it is`);
  }

  /** Removes `replica`'s pins on `backupId` and on older backups (a newer one may be in use by a reseed that started since). */
  private async release(repo: BackupRepository, replica: string, backupId: string): Promise<void> {
    try {
      const unpinned = await unpinThrough(repo, replica, backupId);
      this.log.info({ replica, backup: backupId, pins: unpinned.length }, `released ${replica}'s pins up to backup ${backupId}`);
    } catch (err) {
      this.log.warn({ err: describeError(err), replica, backup: backupId }, `could not remove ${replica}'s pins; the next release removes them`);
    }
  }
}
