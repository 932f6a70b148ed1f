import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { tailTopic, type TopicTail } from '../kafka/tail.js';
import { CONTROL_TOPIC, type ControlRecord, decodeControlRecord, encodeControlRecord } from '../replication/control-topic.js';

/** The backup the primary's daemon took for a request. */
export interface RequestedBackup {
  backupId: string;
  epoch: number;
  records: number;
  /** Its size as stored, bytes. */
  bytes: number;
  requestId: string;
}

/** Options of {@link requestBackup}. */
export interface RequestBackupOptions {
  log: Logger;
  /** Who asks, for the primary's log (`crr run --cluster dr pid 12 on host`). */
  holder: string;
  signal?: AbortSignal;
  /** Called with records written so far once the primary's daemon reports progress. */
  onProgress?: (records: number) => void;
  /**
   * Called with why the reseed waits for the primary (its daemon does not answer, its Kafka
   * cannot be reached), and with `undefined` once it answers again: for `/status` and
   * `crr_reseed_waiting_for_primary`.
   */
  onWaiting?: (reason: string | undefined) => void;
  /** How often the state of the conversation is looked at, ms; default 250. */
  checkIntervalMs?: number;
}

/**
 * Asks the primary's daemon for a fresh backup of its store (reseed `backupSource:
 * primary-daemon`, issue 12 item 3) and waits for it: a `backup-request` on the primary's
 * `crr-control.internal` (src/replication/control-topic.ts), then its answers on the same topic.
 *
 * Waits as long as it takes, until `signal` aborts: a primary whose daemon is down, or whose
 * Kafka cannot be reached, is waited for (`onWaiting` says why; a request not accepted within
 * `reseed.backupRequest.acceptTimeoutMs` expires and is asked again under a new id, and so is an
 * accepted one whose daemon stops reporting progress for `progressTimeoutMs`). The DR side needs
 * WRITE, READ and DESCRIBE on the control topic of the primary, nothing else there (it never
 * creates the topic: a primary whose daemon never ran has none, which is waited for too).
 *
 * @param primaryAlias the primary (`clusters.<primaryAlias>`: its Kafka)
 * @param replica the replica to reseed (the backup is pinned for it)
 * @param why the sync break being cured, sent along for the primary's log
 * @returns the backup, complete in the primary's repository and pinned for `replica`
 * @throws CrrError CRR_BACKUP_REQUEST_FAILED (retriable, whatever the primary said: what failed
 *   there is mended there) when the primary's daemon answers that the backup failed; the
 *   signal's reason when aborted
 */
export async function requestBackup(config: Config, primaryAlias: string, replica: string, why: string, opts: RequestBackupOptions): Promise<RequestedBackup> {
  const { log } = opts;
  const settings = config.reseed.backupRequest;
  const cluster = config.clusters[primaryAlias]!;
  const kafka = createKafka(primaryAlias, { ...cluster, connectionTimeoutMs: Math.min(cluster.connectionTimeoutMs, 5000) }, 'backup-request', log, 'fatal');
  const answers = new Map<string, { record: ControlRecord; receivedMs: number }>();
  // every request of this call: a late answer to an earlier one is as good (the freshest wins)
  const mine: string[] = [];
  let admin: Admin | undefined;
  let producer: Producer | undefined;
  let tail: TopicTail | undefined;
  let waiting: string | undefined;
  let tailFailure: unknown;
  const wait = (reason: string | undefined): void => {
    if (reason === waiting) return;
    waiting = reason;
    if (reason) log.warn({ primary: primaryAlias }, `reseed waits for the primary: ${reason}`);
    else log.info({ primary: primaryAlias }, `the primary ${primaryAlias}'s daemon answers the backup request`);
    opts.onWaiting?.(reason);
  };
  const teardown = async (): Promise<void> => {
    await tail?.stop();
    await producer?.disconnect().catch(() => undefined);
    await admin?.disconnect().catch(() => undefined);
    tail = undefined;
    tailFailure = undefined;
    producer = undefined;
    admin = undefined;
  };
  const pause = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      opts.signal?.addEventListener('abort', done, { once: true });
    });
  const every = opts.checkIntervalMs ?? 250;
  try {
    for (;;) {
      opts.signal?.throwIfAborted();
      let requestId: string;
      try {
        if (!admin) {
          admin = kafka.admin({ retry: { retries: 1 } });
          await admin.connect();
        }
        if (!tail) {
          if (!(await admin.listTopics()).includes(CONTROL_TOPIC)) {
            wait(`${primaryAlias}'s Kafka has no ${CONTROL_TOPIC}: its daemon (crr run --cluster ${primaryAlias}) has not run with backup requests on`);
            await pause(Math.min(settings.acceptTimeoutMs, 5000));
            continue;
          }
          const end = (await admin.fetchTopicOffsets(CONTROL_TOPIC)).find((o) => o.partition === 0)?.offset ?? '0';
          tail = await tailTopic(kafka, CONTROL_TOPIC, 0, end, (m) => {
            const r = decodeControlRecord(m.value);
            if ('invalid' in r) {
              log.warn({ topic: CONTROL_TOPIC, offset: m.offset, problem: r.invalid }, `skipped an invalid record of ${CONTROL_TOPIC}`);
              return;
            }
            if (r.kind !== 'backup-request' && r.kind !== 'backup-release') answers.set(r.requestId, { record: r, receivedMs: Date.now() });
          });
          const current = tail;
          current.crashed.catch((err) => {
            if (tail === current) tailFailure = err;
          });
        }
        if (!producer) {
          producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 2 } });
          await producer.connect();
        }
        requestId = randomUUID();
        mine.push(requestId);
        const now = Date.now();
        await producer.send({
          topic: CONTROL_TOPIC,
          acks: -1,
          messages: [
            encodeControlRecord({
              kind: 'backup-request',
              requestId,
              cluster: primaryAlias,
              replica,
              requester: opts.holder,
              reason: why.slice(0, 2000),
              requestedAtMs: now,
              expiresAtMs: now + settings.acceptTimeoutMs,
            }),
          ],
        });
        log.info({ requestId, primary: primaryAlias }, `asked ${primaryAlias}'s daemon for a backup (request ${requestId})`);
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason;
        wait(`cannot reach ${primaryAlias}'s Kafka to ask for a backup: ${describeError(err)}`);
        await teardown();
        await pause(Math.min(settings.acceptTimeoutMs, 5000));
        continue;
      }

      // the answers to this request
      const sentMs = Date.now();
      for (;;) {
        opts.signal?.throwIfAborted();
        await pause(every);
        const a = answerTo(mine, answers);
        const r = a?.record;
        if (r?.kind === 'backup-done') {
          wait(undefined);
          log.info({ requestId: r.requestId, backup: r.backupId, records: r.records }, `${primaryAlias}'s daemon took backup ${r.backupId}`);
          return { backupId: r.backupId, epoch: r.epoch, records: r.records, bytes: r.bytes, requestId: r.requestId };
        }
        if (r?.kind === 'backup-failed') {
          wait(undefined);
          throw new CrrError('CRR_BACKUP_REQUEST_FAILED', `${primaryAlias}'s daemon could not take the backup of request ${r.requestId}: ${r.error}`, {
            // retried after the reseed's backoff even when the primary says it is not: what failed
            // there (its config, its store) is mended there, and this side must not give up on it
            retriable: true,
            context: { requestId: r.requestId, primary: primaryAlias, primaryRetriable: r.retriable },
          });
        }
        if (r?.kind === 'backup-progress') opts.onProgress?.(r.records);
        if (r) wait(undefined);
        if (tailFailure !== undefined) {
          wait(`lost the read of ${primaryAlias}'s ${CONTROL_TOPIC} (${describeError(tailFailure)}); asking again`);
          await teardown();
          break;
        }
        if (!r && Date.now() - sentMs > settings.acceptTimeoutMs) {
          wait(
            `${primaryAlias}'s daemon has not answered the backup request ${requestId} within ${settings.acceptTimeoutMs} ms: is crr run --cluster ${primaryAlias} running (with ${primaryAlias}'s backup configured)? asking again`,
          );
          break;
        }
        if (r && Date.now() - a!.receivedMs > settings.progressTimeoutMs) {
          wait(`${primaryAlias}'s daemon stopped reporting on the backup of request ${requestId} (nothing for ${settings.progressTimeoutMs} ms); asking again`);
          break;
        }
      }
    }
  } finally {
    await teardown();
  }
}

/**
 * Tells the primary's daemon that `replica`'s reseed is done with `backupId` (a `backup-release`
 * on its control topic): it removes the replica's pins in its repository. Best effort: a failure
 * is logged and left (the next completed reseed removes the pins; `crr backup delete --force`
 * removes them by hand).
 */
export async function releaseBackup(config: Config, primaryAlias: string, replica: string, backupId: string, log: Logger): Promise<void> {
  const cluster = config.clusters[primaryAlias]!;
  const kafka: Kafka = createKafka(
    primaryAlias,
    { ...cluster, connectionTimeoutMs: Math.min(cluster.connectionTimeoutMs, 5000) },
    'backup-request',
    log,
    'fatal',
  );
  const producer = kafka.producer({ allowAutoTopicCreation: false, retry: { retries: 2 } });
  try {
    await producer.connect();
    await producer.send({
      topic: CONTROL_TOPIC,
      acks: -1,
      messages: [encodeControlRecord({ kind: 'backup-release', cluster: primaryAlias, replica, backupId, atMs: Date.now() })],
    });
  } catch (err) {
    log.warn({ backup: backupId, err: describeError(err) }, `could not ask ${primaryAlias}'s daemon to unpin backup ${backupId}; the next reseed unpins it`);
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

/**
 * The answer that decides a request made several times (`ids`, oldest first): a `backup-done`
 * to any of them, else a `backup-failed` or the latest progress of the newest one answered.
 */
function answerTo(ids: readonly string[], answers: ReadonlyMap<string, { record: ControlRecord; receivedMs: number }>) {
  let latest: { record: ControlRecord; receivedMs: number } | undefined;
  for (const id of ids) {
    const a = answers.get(id);
    if (!a) continue;
    if (a.record.kind === 'backup-done') return a;
    latest = a;
  }
  return latest;
}
