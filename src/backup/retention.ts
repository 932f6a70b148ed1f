import { CrrError } from '../errors.js';
import { backupFolder, listBackups, type BackupSummary } from './catalog.js';
import { MANIFEST_NAME, parseBackupId } from './manifest.js';
import { describePin, isPinKey, readPins } from './pin.js';
import type { BackupRepository } from './repository.js';
import type { RetentionPolicy } from './schema.js';

// Deleting backups: one by hand (crr backup delete), or by the retention policy (crr backup prune).

/** What {@link deleteBackup} removed. */
export interface DeletedBackup {
  id: string;
  objects: number;
  bytes: number;
}

/**
 * Deletes a backup, complete or not: its manifest FIRST (so it is never listed as complete,
 * nor restored, while half deleted), then its other objects, then its pins (src/backup/pin.ts).
 * A pinned backup (a reseed or restore uses it) is refused unless `force`. A folder that holds
 * only pins (the backup was deleted by hand) is deleted with `force`, else not found.
 * @param options.force delete it even when pinned (its pins go with it)
 * @throws CrrError CRR_BACKUP_NOT_FOUND when the repository has no object of that backup
 * @throws CrrError CRR_BACKUP_PINNED (nothing deleted) when it is pinned and not `force`; the
 *   message names each pin's cluster, purpose, holder and time
 * @throws CrrError CRR_REPOSITORY when the repository fails (the backup may be left incomplete: delete it again)
 */
export async function deleteBackup(repo: BackupRepository, id: string, options: { force?: boolean } = {}): Promise<DeletedBackup> {
  if (parseBackupId(id) === undefined)
    throw new CrrError('CRR_BACKUP_NOT_FOUND', `"${id}" is not a backup id (expected YYYYMMDDTHHMMSSZ-<cluster>-<4 hex>)`, { context: { backupId: id } });
  const objects: Array<{ key: string; bytes: number }> = [];
  const pinKeys: string[] = [];
  for await (const o of repo.list(backupFolder(id))) {
    if (isPinKey(o.key)) pinKeys.push(o.key);
    else objects.push(o);
  }
  if (objects.length === 0 && !(options.force && pinKeys.length > 0))
    throw new CrrError('CRR_BACKUP_NOT_FOUND', `no backup ${id} in ${repo.description}`, { context: { backupId: id } });
  if (pinKeys.length > 0 && !options.force) {
    const pins = await readPins(repo, id);
    throw new CrrError(
      'CRR_BACKUP_PINNED',
      `backup ${id} is pinned by ${pins.map(describePin).join(', ')}: a reseed or restore uses it; nothing was deleted (--force deletes it anyway)`,
      { context: { backupId: id, pinnedBy: pins.map((p) => p.cluster) } },
    );
  }
  const manifestKey = `${id}/${MANIFEST_NAME}`;
  if (objects.some((o) => o.key === manifestKey)) await repo.delete([manifestKey]);
  await repo.delete(objects.filter((o) => o.key !== manifestKey).map((o) => o.key));
  if (pinKeys.length > 0) await repo.delete(pinKeys);
  return { id, objects: objects.length, bytes: objects.reduce((n, o) => n + o.bytes, 0) };
}

/**
 * An incomplete backup is deleted by retention only when no object of it was written for this
 * long (so a backup being written now is never deleted under it): 1 hour, ms.
 */
export const INCOMPLETE_GRACE_MS = 60 * 60 * 1000;

/** One backup {@link planRetention} deletes, and why. */
export interface RetentionDeletion {
  backup: BackupSummary;
  reason: string;
}

/**
 * Decides which backups retention deletes (a pure function: {@link applyRetention} acts on it).
 * - A complete backup is kept when it is among the newest `keepLast` complete backups AND no
 *   older than `maxAgeMs` (each rule applies when given); the newest complete backup is always
 *   kept, whatever its age.
 * - An incomplete backup (no manifest) is deleted when a complete backup newer than it exists
 *   and nothing was written to it for {@link INCOMPLETE_GRACE_MS}: a failed backup's leftovers.
 * - An invalid backup (unreadable manifest) is never deleted here: look at it, then
 *   `crr backup delete`.
 * - A pinned backup (`pins` not empty: a reseed or restore uses it, src/backup/pin.ts) is never
 *   deleted: it is in `pinned` with the reason the rules above would delete it. Pinned backups
 *   still count as backups for `keepLast` (a pin never makes retention delete another backup).
 * @param backups as {@link listBackups} returns them (one cluster's)
 * @param nowMs the current time, ms since the Unix epoch
 * @returns the deletions and the pinned backups spared, each oldest first
 */
export function retentionPlan(
  backups: readonly BackupSummary[],
  policy: RetentionPolicy,
  nowMs: number,
): { deleted: RetentionDeletion[]; pinned: RetentionDeletion[] } {
  const complete = backups.filter((b) => b.status === 'complete').sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : -1)); // newest first
  const newest = complete[0];
  const out: RetentionDeletion[] = [];
  complete.forEach((b, i) => {
    if (b === newest) return;
    const reasons: string[] = [];
    if (policy.keepLast !== undefined && i >= policy.keepLast) reasons.push(`not among the newest ${policy.keepLast} complete backups`);
    if (policy.maxAgeMs !== undefined && nowMs - b.createdAtMs > policy.maxAgeMs)
      reasons.push(`older than maxAgeMs ${policy.maxAgeMs} (${Math.floor((nowMs - b.createdAtMs) / 1000)} s old)`);
    if (reasons.length > 0) out.push({ backup: b, reason: reasons.join('; ') });
  });
  for (const b of backups) {
    if (b.status !== 'incomplete' || newest === undefined) continue;
    if (b.createdAtMs < newest.createdAtMs && nowMs - b.lastModifiedMs > INCOMPLETE_GRACE_MS) {
      out.push({
        backup: b,
        reason: `incomplete (no manifest), older than the complete backup ${newest.id}, untouched for ${Math.floor((nowMs - b.lastModifiedMs) / 1000)} s`,
      });
    }
  }
  const sorted = out.sort((a, b) => a.backup.createdAtMs - b.backup.createdAtMs || (a.backup.id < b.backup.id ? -1 : 1));
  return { deleted: sorted.filter((d) => d.backup.pins.length === 0), pinned: sorted.filter((d) => d.backup.pins.length > 0) };
}

/** The deletions of {@link retentionPlan} (pinned backups left out). */
export function planRetention(backups: readonly BackupSummary[], policy: RetentionPolicy, nowMs: number): RetentionDeletion[] {
  return retentionPlan(backups, policy, nowMs).deleted;
}

/**
 * Applies the retention policy to one cluster's backups: lists them, plans
 * ({@link retentionPlan}) and, with `execute`, deletes ({@link deleteBackup}) oldest first. A
 * backup pinned between the listing and its deletion is kept (deleteBackup reads its pins
 * again just before deleting) and moves to `pinned`.
 * @param options.execute false (default): only plan, delete nothing
 * @returns the planned (or done) deletions, the backups retention would delete but pins keep,
 *   and what is kept (pinned ones included)
 * @throws CrrError CRR_REPOSITORY when the repository fails (deletions done before stay done)
 */
export async function applyRetention(
  repo: BackupRepository,
  policy: RetentionPolicy,
  options: { cluster: string; nowMs?: number; execute?: boolean },
): Promise<{ deleted: RetentionDeletion[]; pinned: RetentionDeletion[]; kept: BackupSummary[]; executed: boolean }> {
  const backups = await listBackups(repo, { cluster: options.cluster });
  const plan = retentionPlan(backups, policy, options.nowMs ?? Date.now());
  const deleted: RetentionDeletion[] = [];
  const pinned = [...plan.pinned];
  for (const d of plan.deleted) {
    if (!options.execute) {
      deleted.push(d);
      continue;
    }
    try {
      await deleteBackup(repo, d.backup.id);
      deleted.push(d);
    } catch (err) {
      if (err instanceof CrrError && err.code === 'CRR_BACKUP_PINNED') pinned.push({ ...d, backup: { ...d.backup, pins: await readPins(repo, d.backup.id) } });
      else if (err instanceof CrrError && err.code === 'CRR_BACKUP_NOT_FOUND')
        deleted.push(d); // gone meanwhile: fine
      else throw err;
    }
  }
  const gone = new Set(deleted.map((d) => d.backup.id));
  return { deleted, pinned, kept: backups.filter((b) => !gone.has(b.id)), executed: options.execute === true };
}
