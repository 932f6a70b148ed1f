/**
 * The errors crr raises. One closed list of codes; each code says whether the operation that
 * failed may be retried as it is (after a backoff). Errors default to *not* retriable, and
 * programming errors (TypeError, RangeError) are never retried (the rule KafkaJS's retrier
 * follows, `src/retry/index.js`).
 *
 * Context such as the topic, partition or config path is kept in properties so that pino's
 * `err` serializer logs it next to the message.
 */

import { redactText } from './config/secrets.js';

/** Every error code crr raises, with its meaning and whether it is retriable. Documented in docs/errors.md. */
export const ERROR_CODES = {
  CRR_CONFIG_INVALID: { retriable: false, doc: 'The configuration file or an environment override is invalid; the message names the path.' },
  CRR_CONFIG_NOT_FOUND: { retriable: false, doc: 'The configuration file could not be read.' },
  CRR_KAFKA: { retriable: true, doc: 'A Kafka request failed with an error the broker marked retriable.' },
  CRR_KAFKA_AUTH: {
    retriable: false,
    doc: "A Kafka cluster refused crr's credentials (SASL authentication failed), crr's principal lacks an ACL the operation needs (`*_AUTHORIZATION_FAILED`), or the brokers' TLS certificate failed verification (a CA file of another CA, a name the certificate does not carry); the message names the cluster, its bootstrap servers and the principal or the certificate problem. Not retried: fix `clusters.<alias>.sasl`, `clusters.<alias>.ssl` (or a flow's `sourceAuth` / `targetAuth`) or the ACLs.",
  },
  CRR_PRODUCER_FENCED: { retriable: false, doc: 'Another mirror instance for the same flow took over the transactional id; this instance stops mirroring.' },
  CRR_RECORD_TOO_LARGE: {
    retriable: false,
    doc: "A record cannot be written to its remote topic: its size in a record batch exceeds the remote topic's `max.message.bytes`, even alone. The mirror flow stops (alert CrrNoActiveMirror) naming the record and the limit; raise the remote topic's `max.message.bytes` (topic config sync raises it to the source topic's when `syncTopicConfigs` is on) and restart the flow.",
  },
  CRR_TOPIC_SYNC: { retriable: true, doc: 'A remote topic could not be created, grown or configured on the target cluster.' },
  CRR_POSITION_CORRUPT: { retriable: false, doc: 'A record in the positions topic could not be decoded.' },
  CRR_OFFSET_SYNC_CORRUPT: {
    retriable: false,
    doc: 'A record in the offset-syncs topic (`crr-offset-syncs.<source>.internal`) could not be decoded; offsets are not translated from a topic that cannot be read.',
  },
  CRR_CHECKPOINT_CORRUPT: { retriable: false, doc: 'A record in the checkpoints topic (`<source>.checkpoints.internal`) could not be decoded.' },
  CRR_EVENT_INVALID: {
    retriable: false,
    doc: 'A change event is not JSON or not a valid event of the change-event protocol (docs/protocol.md); the message names the field path and what was expected.',
  },
  CRR_STORE_APPLY: {
    retriable: false,
    doc: 'A batch of change events cannot be applied to the store (a sync-breaking marker, an event that contradicts the store, such as altering an unknown type, or one the database refuses with a data error: SQLSTATE class 22, 23 or 54, given as `sqlState`); nothing of the batch is applied. Replay finds the event by applying the batch event by event and dead-letters it as `unapplicable` (header `crr.dlq.sqlstate`).',
  },
  CRR_REPLAY_FENCED: {
    retriable: true,
    doc: 'A replay batch was refused because another replay activation took over the store (Store.activateReplay: a standby after this process stalled past its session timeout), or a restore replaced the store: nothing of the batch was applied. The run ends and restarts; it goes on only if it is assigned the partitions again.',
  },
  CRR_REPLAY_RELOAD: {
    retriable: true,
    doc: "A replay run ended to reload the store's epoch and positions: the epoch rose with positions set back (`crr admin reset` recreated the change topics), or a change topic ends below the store's position, or a fetch out of range moved the consumer below it. The next run starts from the store's positions; nothing was skipped. Repeated without end, it means a change topic was deleted or recreated outside `crr admin reset`: its events below the store's position are not replayed until an operator decides (`crr admin reset`, or a restore).",
  },
  CRR_STORE_LOCKED: {
    retriable: false,
    doc: "A PGlite store's data directory is in use by another live process on this host (or by another open store of this process), named with its pid in `<dataDir>/crr.lock`; a PGlite database belongs to one process. Stop that process, or use a PostgreSQL store to share the data.",
  },
  CRR_STORE: { retriable: true, doc: 'The store (PostgreSQL or PGlite) failed a statement or could not be reached; the transaction was rolled back.' },
  CRR_STATE_TRANSITION: {
    retriable: false,
    doc: 'A cluster state change that the state machine does not allow (src/cluster/cluster-state.ts: e.g. a primary becoming OUTDATED, or an epoch moving back); nothing was recorded. The message names the cluster, both states and the reason.',
  },
  CRR_STATE_CORRUPT: { retriable: false, doc: 'The cluster state published in `crr-cluster-state.internal` could not be decoded.' },
  CRR_WRITE_REFUSED: {
    retriable: false,
    doc: 'The writer refused to append change events, or a `crr admin` sync-breaking operation refused to act: the cluster is a replica (read-only: only replay writes there) or a fenced primary (or, for `crr admin`, its state changed since the operation was planned); nothing was written.',
  },
  CRR_NOT_CAUGHT_UP: {
    retriable: false,
    doc: "A `crr admin` sync-breaking operation was refused because the primary's own replay has not applied its change topics to their end: once the epoch rises, those events of the old epoch would be refused as stale (or, for a reset, lost with the topics). Let `crr run` catch up, or pass `--force`.",
  },
  CRR_BACKUP_INVALID: {
    retriable: false,
    doc: 'A backup cannot be used as it is: its manifest is missing (an incomplete backup), unreadable, of an unknown format version, or without a valid HMAC under the configured manifest HMAC key; or a part is missing, corrupt (SHA-256, gzip, AES-256-GCM tag, a line too long) or holds another number of records than the manifest says; or it is encrypted with a key id that is not configured (problem `key`). The message names the backup and the part, or the key id.',
  },
  CRR_BACKUP_NOT_FOUND: {
    retriable: false,
    doc: "No backup with the given id exists in the cluster's backup repository (`crr backup list --all` shows every id there).",
  },
  CRR_BACKUP_PINNED: {
    retriable: false,
    doc: 'A backup was not deleted because it is pinned: a reseed or a restore of the named cluster uses it (`<id>/pins/<cluster>.json` in the repository). `crr backup prune` keeps it; `crr backup delete` refuses it unless `--force`.',
  },
  CRR_RESTORE_REFUSED: {
    retriable: false,
    doc: 'A restore was refused before anything changed: the schema it was asked to restore into beside the live state (`crr restore --as NAME`) exists already.',
  },
  CRR_RESEED_IN_PROGRESS: {
    retriable: true,
    doc: "A reseed of this replica is running elsewhere (another `crr reseed --execute`, or a `crr run` of the replica in reseed mode `auto`): one reseed at a time per replica holds the store's `reseed` lease. The message names the holder; the lease ends when its holder finishes or dies.",
  },
  CRR_BACKUP_REQUEST_FAILED: {
    retriable: true,
    doc: "The primary's daemon answered a replica's backup request (crr-control.internal) with a failure, which the message quotes; the reseed asks again after its backoff.",
  },
  CRR_PROMOTE_REFUSED: {
    retriable: false,
    doc: '`crr promote` refused before changing anything, or stopped with the replica left `PROMOTING`: a `crr run` of the replica is still running (stop it first), the primary cannot be reached for a graceful promotion (use `--force`), the replica is OUTDATED or RESEEDING (reseed it, or `--force`), or replay stopped before the end of its topics. The message names the cause.',
  },
  CRR_PROMOTE_TIMEOUT: {
    retriable: true,
    doc: 'A graceful `crr promote` did not drain the flow (replication lag 0) or replay to the end within `--timeout-ms`; the replica stays `PROMOTING` and the old primary stays fenced. Run `crr promote --execute` again (it resumes), or with `--force`.',
  },
  CRR_REPOSITORY: {
    retriable: true,
    doc: "The backup repository (S3 or a local directory) failed a request after the S3 client's own retries, or refused it (access denied, no such bucket, a feature the server does not implement such as server-side encryption, HTTP 501: not retriable); the message names the repository, the key and the cause.",
  },
} as const satisfies Record<string, { retriable: boolean; doc: string }>;

/** A code from {@link ERROR_CODES}. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * Base class of every error crr throws on purpose.
 *
 * @param code one of {@link ERROR_CODES}; decides `retriable` unless overridden
 * @param message what went wrong, naming the thing (path, topic, cluster alias) that was wrong
 * @param options.cause the underlying error, kept as `cause`
 * @param options.context extra properties (topic, partition, path ...) copied onto the error
 * @param options.retriable overrides the code's default
 */
export class CrrError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  [key: string]: unknown;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; context?: Record<string, unknown>; retriable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CrrError';
    this.code = code;
    this.retriable = options.retriable ?? ERROR_CODES[code].retriable;
    if (options.context) Object.assign(this, options.context);
  }
}

/**
 * Whether an error may be retried after a backoff: a retriable CrrError, or a KafkaJS error
 * whose `retriable` flag is set (connection losses, leader changes, coordinator moves).
 * Programming errors are never retriable.
 */
export function isRetriable(err: unknown): boolean {
  if (err instanceof TypeError || err instanceof RangeError || err instanceof SyntaxError) return false;
  if (err instanceof CrrError) return err.retriable;
  if (err && typeof err === 'object' && 'retriable' in err) return Boolean((err as { retriable: unknown }).retriable);
  return false;
}

/**
 * The message of any thrown value, with the messages of its causes appended (`a: b: c`),
 * secrets censored (src/config/secrets.ts: a connection string's password, a registered secret
 * value), so that it can be printed or logged as it is.
 */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && cur !== null && depth < 5; depth++) {
    const msg = cur instanceof Error ? cur.message : String(cur);
    if (!parts.includes(msg)) parts.push(msg);
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return redactText(parts.join(': '));
}
