import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CrrError } from '../errors.js';
import type { BackupKeys } from './keys.js';
import { checkKey, type BackupRepository, type RepositoryObject } from './repository.js';

/** Mode of the files a repository writes: owner read/write only (a backup holds the whole store). */
export const FILE_MODE = 0o600;
/** Mode of the folders a repository creates: owner only. */
export const DIR_MODE = 0o700;

/** Marks a local file being written; such files are never listed. */
const TMP_MARK = '.crr-tmp-';

/**
 * A {@link BackupRepository} in a directory: the object `a/b` is the file `<dir>/a/b`. Writes go
 * to a temporary file in the same directory (`<name>.crr-tmp-<hex>`), flushed to disk
 * (fsync) and renamed into place, so a crash never leaves a partial object under its key. The
 * directory is created when missing. Empty folders left by {@link delete} are removed.
 *
 * At rest, a backup is as secret as the store it copies: files are written {@link FILE_MODE}
 * (0600) and the folders crr creates (the repository's own included) {@link DIR_MODE} (0700);
 * the process's umask can only narrow them. Folders that exist already keep their mode.
 */
export class LocalRepository implements BackupRepository {
  readonly dir: string;
  readonly description: string;

  /**
   * @param dir the repository's directory (relative paths resolve against the working directory)
   * @param keys the keys of its backups (see BackupRepository.keys); default none
   */
  constructor(
    dir: string,
    readonly keys?: BackupKeys,
  ) {
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
      await mkdir(dirname(path), { recursive: true, mode: DIR_MODE });
    } catch (err) {
      source.destroy();
      throw this.fail('put', key, err);
    }
    let sourceError: unknown;
    source.once('error', (err) => (sourceError ??= err));
    try {
      // flush: fsync before close, so the rename below never exposes unwritten data after a crash
      await pipeline(source, createWriteStream(tmp, { flush: true, mode: FILE_MODE }));
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
