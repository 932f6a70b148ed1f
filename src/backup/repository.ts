import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CrrError } from '../errors.js';
import type { RepositoryConfig } from './schema.js';

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
 * Where backups live (DESIGN.md, "Backups"): a flat store of objects named by `/`-separated
 * keys, relative to the repository's root. Two implementations: {@link LocalRepository} (a
 * directory) and S3Repository (src/backup/s3-repository.ts: a bucket and prefix).
 *
 * Every failure is a CrrError `CRR_REPOSITORY` naming the repository and the key (retriable
 * unless the repository refused the request, e.g. access denied).
 */
export interface BackupRepository {
  /** Where it is, for messages: `/var/backups/crr` or `s3://bucket/prefix`. */
  readonly description: string;
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

/** Checks a key: relative, `/`-separated, no empty, `.` or `..` segment. */
export function checkKey(key: string): string {
  if (key.length === 0 || key.split('/').some((s) => s === '' || s === '.' || s === '..') || key.includes('\\') || key.includes('\0')) {
    throw new RangeError(`not a valid repository key: ${JSON.stringify(key)}`);
  }
  return key;
}

/** Marks a local file being written; such files are never listed. */
const TMP_MARK = '.crr-tmp-';

/**
 * A {@link BackupRepository} in a directory: the object `a/b` is the file `<dir>/a/b`. Writes go
 * to a temporary file in the same directory (`<name>.crr-tmp-<hex>`), flushed to disk
 * (fsync) and renamed into place, so a crash never leaves a partial object under its key. The
 * directory is created when missing. Empty folders left by {@link delete} are removed.
 */
export class LocalRepository implements BackupRepository {
  readonly dir: string;
  readonly description: string;

  /** @param dir the repository's directory (relative paths resolve against the working directory) */
  constructor(dir: string) {
    this.dir = resolve(dir);
    this.description = this.dir;
  }

  private path(key: string): string {
    return join(this.dir, ...checkKey(key).split('/'));
  }

  private fail(op: string, key: string, cause: unknown): CrrError {
    const code = (cause as NodeJS.ErrnoException)?.code;
    // permissions, a file where a folder should be, a full or read-only disk: retrying does not help
    const retriable = !['EACCES', 'EPERM', 'ENOTDIR', 'EISDIR', 'EROFS', 'ENOSPC', 'EEXIST'].includes(code ?? '');
    return new CrrError('CRR_REPOSITORY', `repository ${this.description}: ${op} ${key} failed: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
      retriable,
      context: { repository: this.description, key },
    });
  }

  async put(key: string, body: Readable | Buffer | string): Promise<void> {
    const path = this.path(key);
    const tmp = `${path}${TMP_MARK}${randomBytes(4).toString('hex')}`;
    const source = typeof body === 'string' || Buffer.isBuffer(body) ? Readable.from([Buffer.from(body)]) : body;
    try {
      await mkdir(dirname(path), { recursive: true });
    } catch (err) {
      source.destroy();
      throw this.fail('put', key, err);
    }
    let sourceError: unknown;
    source.once('error', (err) => (sourceError ??= err));
    try {
      // flush: fsync before close, so the rename below never exposes unwritten data after a crash
      await pipeline(source, createWriteStream(tmp, { flush: true }));
      await rename(tmp, path);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      if (sourceError !== undefined) throw sourceError; // the producer's own failure, not the disk's
      throw this.fail('put', key, err);
    }
    await this.syncDir(dirname(path)).catch((err: unknown) => {
      throw this.fail('put (fsync of the folder)', key, err);
    });
  }

  /** fsync of a folder, so a rename in it survives a crash. */
  private async syncDir(dir: string): Promise<void> {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  async get(key: string): Promise<Readable | undefined> {
    const path = this.path(key);
    try {
      const handle = await open(path, 'r');
      return handle.createReadStream(); // closes the file at its end or when destroyed
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw this.fail('get', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<RepositoryObject> {
    // walk the deepest folder the prefix names, in sorted order, filtering by the prefix
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    if (base !== '') checkKey(base);
    const keys: string[] = [];
    await this.walk(base, keys, prefix);
    // S3's order: by UTF-8 bytes (a plain string sort orders by UTF-16 code units)
    keys.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const key of keys) {
      let st;
      try {
        st = await stat(this.path(key));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // deleted meanwhile
        throw this.fail('list', key, err);
      }
      yield { key, bytes: st.size, lastModified: st.mtime };
    }
  }

  private async walk(rel: string, out: string[], prefix: string): Promise<void> {
    let entries;
    try {
      entries = await readdir(rel === '' ? this.dir : this.path(rel), { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw this.fail('list', rel || '(root)', err);
    }
    for (const e of entries) {
      const key = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.walk(key, out, prefix);
      } else if (e.isFile() && !e.name.includes(TMP_MARK) && key.startsWith(prefix)) {
        out.push(key);
      }
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    const dirs = new Set<string>();
    for (const key of keys) {
      const path = this.path(key);
      try {
        await unlink(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw this.fail('delete', key, err);
      }
      dirs.add(dirname(path));
    }
    // remove folders left empty, deepest first, never the repository's own folder
    for (const d of [...dirs].sort((a, b) => b.length - a.length)) {
      for (let cur = d; cur.startsWith(this.dir + sep); cur = dirname(cur)) {
        try {
          await rmdir(cur);
        } catch {
          break; // not empty (or gone): stop climbing
        }
      }
    }
  }

  /** Nothing to release. */
  close(): void {}
}

/**
 * Opens the repository a config names.
 * @throws CrrError CRR_REPOSITORY when the S3 client cannot be made
 */
export async function openRepository(config: RepositoryConfig): Promise<BackupRepository> {
  if (config.type === 'local') return new LocalRepository(config.path);
  // loaded only when used: the AWS SDK is large
  const { S3Repository } = await import('./s3-repository.js');
  return new S3Repository({
    bucket: config.bucket,
    prefix: config.prefix,
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    ...(config.accessKeyId !== undefined && config.secretAccessKey !== undefined ? { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } } : {}),
  });
}
