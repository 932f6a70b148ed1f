import { CrrError } from '../errors.js';
import { backupFolder, keysOf, readManifest } from './catalog.js';
import { MANIFEST_NAME, type Manifest } from './manifest.js';
import { checkStoredPart, partKeyOf, readPart, type PartProblem } from './part.js';
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
  /**
   * The manifest's HMAC: `verified` (a manifest HMAC key is configured and the HMAC is valid under
   * it: a manifest failing that is a `manifest` problem), `not-checked` (the manifest has one, and
   * no key is configured to check it), `unsigned` (it has none, and no key is configured).
   */
  manifestHmac?: 'verified' | 'not-checked' | 'unsigned';
  /** False when the parts are encrypted and their key is not configured: only their stored bytes (SHA-256, size) were checked, reported as a `key` problem. */
  contentChecked?: boolean;
  problems: VerifyProblem[];
}

/**
 * Checks a backup completely, as a restore would read it: the manifest (format version,
 * schema, totals), then every part re-read from the repository (SHA-256 and size of the stored
 * bytes, gzip integrity, one JSON row per line, record count, uncompressed size), and no object
 * in the backup's folder that the manifest does not list. Every problem is reported, naming its
 * part (`missing`, `corrupt`, `count`, `unexpected`, or `manifest` for the manifest itself).
 *
 * Keys (`repo.keys`): an encrypted backup's parts are decrypted and their AES-256-GCM tags checked
 * with the configured `backup.encryption` key. Without it (or with a key of another id), only
 * the parts' stored bytes are checked (SHA-256 and size: the manifest's sums are over the stored
 * bytes), and a `key` problem says so: the backup is not reported OK. The manifest's HMAC is
 * checked when a manifest HMAC key is configured (see readManifest); {@link BackupVerification.manifestHmac}
 * says whether it was.
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
  result.manifestHmac = repo.keys?.manifestHmac ? 'verified' : manifest.hmac ? 'not-checked' : 'unsigned';
  let key: Buffer | undefined;
  result.contentChecked = true;
  try {
    key = partKeyOf(manifest, repo.keys);
  } catch (err) {
    if (!(err instanceof CrrError && err.code === 'CRR_BACKUP_INVALID')) throw err;
    result.contentChecked = false;
    result.problems.push({
      part: MANIFEST_NAME,
      problem: 'key',
      message: `${err.message}; only the parts' stored bytes (SHA-256, size) were checked, not their content`,
    });
  }
  for (const [index, part] of manifest.parts.entries()) {
    try {
      if (!result.contentChecked) await checkStoredPart(repo, id, part);
      else for await (const rows of readPart(repo, id, part, 10_000, key === undefined ? undefined : { key, index })) result.records += rows.length;
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
