import { CrrError } from '../errors.js';
import { backupFolder, keysOf, readManifest } from './catalog.js';
import { MANIFEST_NAME, type Manifest } from './manifest.js';
import { readPart, type PartProblem } from './part.js';
import type { BackupRepository } from './repository.js';

/** One problem {@link verifyBackup} found, naming the part (or `manifest.json`). */
export interface VerifyProblem {
  part: string;
  problem: PartProblem;
  message: string;
}

/** The result of {@link verifyBackup}. */
export interface BackupVerification {
  id: string;
  /** True when the manifest is valid and every part checked out. */
  ok: boolean;
  /** The manifest, when it could be read. */
  manifest?: Manifest;
  /** Parts read to their end (whatever the result). */
  partsChecked: number;
  /** Records read. */
  records: number;
  /** Stored bytes read. */
  bytes: number;
  problems: VerifyProblem[];
}

/**
 * Checks a backup completely, as a restore would read it: the manifest (format version,
 * schema, totals), then every part re-read from the repository (SHA-256 and size of the stored
 * bytes, gzip integrity, one JSON row per line, record count, uncompressed size), and no object
 * in the backup's folder that the manifest does not list. Every problem is reported, naming its
 * part (`missing`, `corrupt`, `count`, `unexpected`, or `manifest` for the manifest itself).
 *
 * @param options.onPart called after each part, with the parts done and the total
 * @throws CrrError CRR_BACKUP_NOT_FOUND when the repository has no object of that backup
 * @throws CrrError CRR_REPOSITORY when the repository fails (not a problem of the backup: try again)
 */
export async function verifyBackup(
  repo: BackupRepository,
  id: string,
  options: { onPart?: (done: number, total: number) => void } = {},
): Promise<BackupVerification> {
  const result: BackupVerification = { id, ok: false, partsChecked: 0, records: 0, bytes: 0, problems: [] };
  let manifest: Manifest;
  try {
    manifest = await readManifest(repo, id);
  } catch (err) {
    if (err instanceof CrrError && err.code === 'CRR_BACKUP_INVALID') {
      result.problems.push({ part: MANIFEST_NAME, problem: 'manifest', message: err.message });
      return result;
    }
    throw err;
  }
  result.manifest = manifest;
  for (const part of manifest.parts) {
    try {
      for await (const rows of readPart(repo, id, part, 10_000)) result.records += rows.length;
    } catch (err) {
      if (!(err instanceof CrrError && err.code === 'CRR_BACKUP_INVALID')) throw err;
      result.problems.push({ part: part.name, problem: err.problem as PartProblem, message: err.message });
    }
    result.partsChecked++;
    result.bytes += part.bytes;
    options.onPart?.(result.partsChecked, manifest.parts.length);
  }
  const listed = new Set([MANIFEST_NAME, ...manifest.parts.map((p) => p.name)]);
  for (const key of await keysOf(repo, id)) {
    const name = key.slice(backupFolder(id).length);
    if (!listed.has(name))
      result.problems.push({ part: name, problem: 'unexpected', message: `backup ${id}: ${name} is in the backup's folder but not in its manifest` });
  }
  result.ok = result.problems.length === 0;
  return result;
}
