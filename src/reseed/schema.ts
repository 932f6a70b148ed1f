import { z } from 'zod';

/**
 * How a replica's reseed gets its fresh backup of the primary (issue 12, item 3: least privilege
 * between regions).
 *
 * - `primary-daemon`: the replica's daemon asks the primary's `crr run` through the primary's
 *   Kafka (a request on `crr-control.internal`, src/replication/control-topic.ts); the primary's
 *   daemon takes the backup into its repository and answers with its id; the replica restores it
 *   with read access to the repository alone. The DR region needs neither the primary's database
 *   credentials nor write access to its repository.
 * - `primary-store`: the replica's daemon opens the primary's store itself
 *   (`clusters.<primary>.store`) and writes the backup into the repository (one config for both
 *   regions, as in the demo).
 * - `auto` (default): `primary-store` when this config has `clusters.<primary>.store`, else
 *   `primary-daemon`.
 */
export const BACKUP_SOURCES = ['auto', 'primary-daemon', 'primary-store'] as const;
export type BackupSource = (typeof BACKUP_SOURCES)[number];

/**
 * Timing of a backup request (`backupSource: primary-daemon`).
 *
 * - `acceptTimeoutMs`: a request not accepted by the primary's daemon within this expires (a
 *   daemon that reads it later does nothing) and the replica asks again, saying in `/status`
 *   that it waits for the primary. Default 30000.
 * - `progressTimeoutMs`: an accepted request whose daemon sends no progress for this long (it
 *   died mid-backup) is given up and asked again. Default 120000. The daemon reports every 5 s.
 */
export const BackupRequestSettingsSchema = z.strictObject({
  acceptTimeoutMs: z.number().int().min(1000).default(30_000),
  progressTimeoutMs: z.number().int().min(10_000).default(120_000),
});

/**
 * The `reseed` section: what a replica does when it becomes OUTDATED (a sync-breaking event).
 *
 * - `mode`: `auto` (default): the replica's daemon (`crr run`) takes a fresh backup of the
 *   primary's store, restores it and resumes replay, by itself; `manual`: it stays OUTDATED
 *   until an operator runs `crr reseed --execute`.
 * - `retryBackoffInitialMs` / `retryBackoffMaxMs`: a failed reseed is retried after the initial
 *   delay, doubling up to the maximum. Defaults 2000 and 60000.
 * - `backupSource`: who takes the backup, see {@link BACKUP_SOURCES}. Default `auto`.
 * - `backupRequest`: timing of a backup request, see {@link BackupRequestSettingsSchema}.
 * - `serveBackupRequests`: whether a primary's `crr run` (or `crr replay`) answers the backup
 *   requests of its replicas (needs `clusters.<primary>.backup`). Default true.
 */
export const ReseedSchema = z.strictObject({
  mode: z.enum(['auto', 'manual']).default('auto'),
  retryBackoffInitialMs: z.number().int().min(10).default(2000),
  retryBackoffMaxMs: z.number().int().min(10).default(60_000),
  backupSource: z.enum(BACKUP_SOURCES).default('auto'),
  backupRequest: BackupRequestSettingsSchema.prefault({}),
  serveBackupRequests: z.boolean().default(true),
});
export type ReseedConfig = z.infer<typeof ReseedSchema>;
