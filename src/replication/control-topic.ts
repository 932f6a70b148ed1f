import { z } from 'zod';

/**
 * crr's control topic, on each cluster's own Kafka: requests from the other region's daemon to
 * this cluster's daemon, and its answers (docs/architecture.md, "Backups requested through
 * Kafka"). Today one conversation: a replica's daemon asks the primary's `crr run` for a fresh
 * backup of the primary's store (so that the DR region never needs the primary's database
 * credentials, issue 12 item 3, as Cluster Linking never needs the source's disks).
 *
 * One partition (one total order: answers follow their request), `cleanup.policy=delete`,
 * 7 days of retention; key = the request id (a `backup-release` is keyed by the replica);
 * value = JSON {@link ControlRecord}. The `.internal` suffix keeps it out of every mirror
 * flow's default topic filter (MM2's `.*[-.]internal`).
 *
 * Who may write it is an ACL matter (src/acls/plan.ts): the primary's own crr principal, and
 * the principal the DR region's daemon uses on the primary (WRITE + READ + DESCRIBE).
 */
export const CONTROL_TOPIC = 'crr-control.internal';

/** Retention of the control topic, ms: 7 days (requests expire long before). */
export const CONTROL_TOPIC_RETENTION_MS = 7 * 24 * 3600 * 1000;

const alias = z.string().regex(/^[A-Za-z0-9_-]+$/);
const ms = z.number().int().nonnegative();

/**
 * A replica's daemon asks the primary `cluster`'s daemon for a fresh backup of its store into
 * its backup repository, pinned for `replica`. A daemon that reads it after `expiresAtMs` does
 * nothing (the requester has given up on it and asked again).
 */
export const BackupRequestSchema = z.strictObject({
  kind: z.literal('backup-request'),
  requestId: z.string().min(1).max(100),
  cluster: alias,
  replica: alias,
  /** Who asks (`crr run --cluster dr pid 12 on host`), for the primary's log. */
  requester: z.string().max(500),
  /** The sync break being cured, for the primary's log and the backup's pin. */
  reason: z.string().max(2000),
  requestedAtMs: ms,
  expiresAtMs: ms,
});

/** The primary's daemon took the request: it is taking the backup (`by` names the daemon). */
export const BackupAcceptedSchema = z.strictObject({ kind: z.literal('backup-accepted'), requestId: z.string(), by: z.string().max(500), atMs: ms });

/** The backup of an accepted request goes on: records written so far (sent every few seconds; the requester's liveness check). */
export const BackupProgressSchema = z.strictObject({ kind: z.literal('backup-progress'), requestId: z.string(), records: ms, atMs: ms });

/** The backup is complete, in the repository and pinned for the replica. */
export const BackupDoneSchema = z.strictObject({
  kind: z.literal('backup-done'),
  requestId: z.string(),
  backupId: z.string(),
  epoch: ms,
  records: ms,
  bytes: ms,
  atMs: ms,
});

/** The backup failed; `retriable` says whether asking again may succeed. */
export const BackupFailedSchema = z.strictObject({
  kind: z.literal('backup-failed'),
  requestId: z.string(),
  error: z.string().max(4000),
  retriable: z.boolean(),
  atMs: ms,
});

/** The replica's reseed is done: the primary's daemon removes the replica's pins (src/backup/pin.ts unpinAll). */
export const BackupReleaseSchema = z.strictObject({ kind: z.literal('backup-release'), cluster: alias, replica: alias, backupId: z.string(), atMs: ms });

/** Any record of {@link CONTROL_TOPIC}. */
export const ControlRecordSchema = z.discriminatedUnion('kind', [
  BackupRequestSchema,
  BackupAcceptedSchema,
  BackupProgressSchema,
  BackupDoneSchema,
  BackupFailedSchema,
  BackupReleaseSchema,
]);
export type ControlRecord = z.infer<typeof ControlRecordSchema>;
export type BackupRequest = z.infer<typeof BackupRequestSchema>;

/** A control record as a Kafka message: key = request id (the replica for a release), value = JSON. */
export function encodeControlRecord(r: ControlRecord): { key: string; value: string } {
  const key = r.kind === 'backup-release' ? r.replica : r.requestId;
  return { key, value: JSON.stringify(ControlRecordSchema.parse(r)) };
}

/**
 * Decodes a control record's value.
 * @returns the record, or `{ invalid }` naming what is wrong (never throws: a bad record on a
 *   shared control topic is logged and counted by its reader, not fatal)
 */
export function decodeControlRecord(value: Buffer | null): ControlRecord | { invalid: string } {
  if (!value) return { invalid: 'no value' };
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch (err) {
    return { invalid: `not JSON (${(err as Error).message.slice(0, 200)})` };
  }
  const parsed = ControlRecordSchema.safeParse(raw);
  if (!parsed.success) return { invalid: parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; ') };
  return parsed.data;
}
