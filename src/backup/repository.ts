import type { Readable } from 'node:stream';
import type { BackupKeys } from './keys.js';

/** One object of a repository, as listed. */
export interface RepositoryObject {
  /** Key relative to the repository's root, `/`-separated (e.g. `<id>/manifest.json`). */
  key: string;
  /** Size, bytes. */
  bytes: number;
  /** Last write time. */
  lastModified: Date;
}

/**
 * Where backups live (docs/architecture.md, "Backups, restore and reseed"): a flat store of objects named by `/`-separated
 * keys, relative to the repository's root. Two implementations: LocalRepository (src/backup/local-repository.ts: a
 * directory) and S3Repository (src/backup/s3-repository.ts: a bucket and prefix); openRepository
 * (src/backup/open-repository.ts) opens the one a config names.
 *
 * Every failure is a CrrError `CRR_REPOSITORY` naming the repository and the key (retriable
 * unless the repository refused the request, e.g. access denied).
 */
export interface BackupRepository {
  /** Where it is, for messages: `/var/backups/crr` or `s3://bucket/prefix`. */
  readonly description: string;
  /**
   * The keys of the backups in it (the cluster's `backup.encryption` and `backup.manifestHmac`,
   * src/backup/keys.ts), set by openRepository: createBackup encrypts and signs with them, and
   * readManifest, restore and verify decrypt and check with them. Absent: no key (backups are
   * written in the clear and unsigned).
   */
  readonly keys?: BackupKeys;
  /**
   * Writes an object from a stream of unknown size (or a buffer), replacing any object of that
   * key. Atomic: readers see the whole object or none (a local temporary file renamed into
   * place; an S3 multipart upload, completed at the end). The stream is consumed to its end;
   * if it errors, nothing is written and its error is rethrown.
   */
  put(key: string, body: Readable | Buffer | string): Promise<void>;
  /** A stream of an object's bytes, or `undefined` when there is no object of that key. */
  get(key: string): Promise<Readable | undefined>;
  /**
   * Every object whose key starts with `prefix` (`''` = all), in ascending key order (UTF-8
   * bytes, as S3 lists), fetched page by page as the iteration goes on.
   */
  list(prefix: string): AsyncIterable<RepositoryObject>;
  /** Deletes objects; keys that do not exist are ignored. */
  delete(keys: readonly string[]): Promise<void>;
  /** Releases connections (S3); the repository is not used afterwards. */
  close(): void;
}

/**
 * Checks a key: relative, `/`-separated, no empty, `.` or `..` segment (nor `\\` or NUL).
 * @returns the key
 * @throws RangeError when it is not a valid repository key
 */
export function checkKey(key: string): string {
  if (key.length === 0 || key.split('/').some((s) => s === '' || s === '.' || s === '..') || key.includes('\\') || key.includes('\0')) {
    throw new RangeError(`not a valid repository key: ${JSON.stringify(key)}`);
  }
  return key;
}
