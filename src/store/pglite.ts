import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, linkSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { CrrError } from '../errors.js';
import type { SqlClient, SqlDriver } from './sql-client.js';
import { SqlStore } from './sql-store.js';

/**
 * Options of an embedded PGlite store.
 * - `dataDir`: directory of the database (created if missing); absent = in memory, lost on close
 * - `schema`: PostgreSQL schema of crr's tables; default `crr`
 */
export interface PgliteStoreOptions {
  dataDir?: string;
  schema?: string;
}

/** Name of the lock file a {@link PgliteStore} keeps in its `dataDir` while it is open. */
export const PGLITE_LOCK_FILE = 'crr.lock';

/**
 * The {@link SqlStore} on PGlite: PostgreSQL compiled to WebAssembly, running in this process,
 * with one connection (so transactions are serialized by PGlite itself). There are no roles to
 * speak of, so no write fence: PGlite is the embedded default for a single process.
 *
 * A PGlite database belongs to ONE process: two processes (or two PGlite instances in one
 * process) opening the same directory corrupt it. So a store with a filesystem `dataDir` takes
 * the lock file `<dataDir>/crr.lock` (JSON `{pid, hostname, startedAt}`, created exclusively)
 * before PGlite opens the directory, and removes it on {@link close}. A lock naming a process
 * that is gone (dead pid on this host, a pid of this process that this process does not hold,
 * another host, or an unreadable file left by a crash) is stale and taken over. `memory://`,
 * `idb://` and the other non-filesystem PGlite data dirs take no lock.
 * Call `migrate()` before the first use.
 *
 * @throws CrrError CRR_STORE_LOCKED (from the constructor) when a live process on this host,
 *   this one included, holds the lock
 */
export class PgliteStore extends SqlStore {
  readonly pglite: PGlite;
  private lock: PgliteLock | undefined;

  constructor(options: PgliteStoreOptions = {}) {
    const lockDir = options.dataDir === undefined ? undefined : filesystemDir(options.dataDir);
    const lock = lockDir === undefined ? undefined : PgliteLock.acquire(lockDir);
    let db: PGlite;
    try {
      db = new PGlite(options.dataDir);
    } catch (err) {
      lock?.release();
      throw err;
    }
    super(pgliteDriver(db), options.schema ?? 'crr');
    this.pglite = db;
    this.lock = lock;
  }

  /** Closes the database, then releases the `crr.lock` of its `dataDir` (even if closing failed). */
  override async close(): Promise<void> {
    try {
      await super.close();
    } finally {
      this.lock?.release();
      this.lock = undefined;
    }
  }
}

/** The filesystem directory of a PGlite `dataDir` (PGlite's own parsing), or undefined when it is not on the filesystem. */
function filesystemDir(dataDir: string): string | undefined {
  if (dataDir.startsWith('file://')) return resolve(dataDir.slice('file://'.length));
  if (/^(memory|idb|opfs-ahp|memfs2opfs):\/\//.test(dataDir)) return undefined;
  return resolve(dataDir);
}

/** Content of `crr.lock`. */
interface LockInfo {
  pid: number;
  hostname: string;
  /** ISO-8601 time the lock was taken. */
  startedAt: string;
}

/** Lock files this process holds (absolute paths): tells "held by this process" from "a pid reused after a restart". */
const heldByThisProcess = new Set<string>();

/** The `crr.lock` of one PGlite data directory, held by this process. */
class PgliteLock {
  private released = false;

  private constructor(
    private readonly path: string,
    private readonly content: string,
  ) {}

  /**
   * Creates `<dir>/crr.lock` exclusively (creating `dir` if needed), taking over a stale one.
   * @throws CrrError CRR_STORE_LOCKED when a live process on this host holds it
   * @throws CrrError CRR_STORE when the directory or the file cannot be written
   */
  static acquire(dir: string): PgliteLock {
    const path = join(dir, PGLITE_LOCK_FILE);
    const content = `${JSON.stringify({ pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() } satisfies LockInfo)}\n`;
    try {
      mkdirSync(dir, { recursive: true });
    } catch (cause) {
      throw new CrrError('CRR_STORE', `store ${dir} (PGlite): cannot create the data directory: ${(cause as Error).message}`, {
        cause,
        retriable: false,
        context: { dataDir: dir },
      });
    }
    // A few rounds: another process may create or take over the lock between our steps.
    for (let attempt = 0; attempt < 5; attempt++) {
      if (tryCreate(path, content)) {
        heldByThisProcess.add(path);
        return new PgliteLock(path, content);
      }
      const existing = readLock(path);
      if (existing === 'missing') continue; // released meanwhile: create again
      if (existing !== 'unreadable' && isLive(existing, path)) {
        const owner = existing.pid === process.pid ? `this process (${existing.pid})` : `process ${existing.pid}`;
        throw new CrrError(
          'CRR_STORE_LOCKED',
          `store ${dir} (PGlite) is in use by ${owner} since ${existing.startedAt}; stop that process, or use a PostgreSQL store to share it ` +
            `(a PGlite database can be opened by one process only; if no such process runs, delete ${path})`,
          { context: { dataDir: dir, lockFile: path, pid: existing.pid, hostname: existing.hostname, startedAt: existing.startedAt } },
        );
      }
      takeOverStale(path, existing === 'unreadable' ? undefined : JSON.stringify(existing));
    }
    throw new CrrError('CRR_STORE_LOCKED', `store ${dir} (PGlite): could not take the lock ${path}; other processes keep creating it`, {
      context: { dataDir: dir, lockFile: path },
    });
  }

  /** Removes the lock file if it still holds this lock. Idempotent; never throws. */
  release(): void {
    if (this.released) return;
    this.released = true;
    heldByThisProcess.delete(this.path);
    try {
      if (readFileSync(this.path, 'utf8') === this.content) unlinkSync(this.path);
    } catch {
      // already gone (or taken over by another process after we were judged dead): nothing to release
    }
  }
}

/** Exclusive create with the content written and synced; false when the file exists. */
function tryCreate(path: string, content: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, 'wx');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new CrrError('CRR_STORE', `cannot create the PGlite lock file ${path}: ${(err as Error).message}`, {
      cause: err,
      retriable: false,
      context: { lockFile: path },
    });
  }
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

function readLock(path: string): LockInfo | 'missing' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable';
  }
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (Number.isSafeInteger(v.pid) && typeof v.hostname === 'string' && typeof v.startedAt === 'string') return v as LockInfo;
  } catch {
    // a crash between create and write leaves an empty or partial file
  }
  return 'unreadable';
}

/**
 * Whether the process a lock names still runs: on this host only (another host's pid cannot be
 * checked, and a container gets a new hostname when it is recreated). The pid of this process
 * counts only when this process holds the lock: after a restart in a container the new process
 * often has the old pid.
 */
function isLive(lock: LockInfo, path: string): boolean {
  if (lock.hostname !== hostname()) return false;
  if (lock.pid === process.pid) return heldByThisProcess.has(path);
  try {
    process.kill(lock.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

/**
 * Removes a stale lock file, unless another process replaced it since it was judged stale: the
 * file is moved aside atomically and put back if it is not the one that was read.
 */
function takeOverStale(path: string, staleContent: string | undefined): void {
  const aside = `${path}.stale-${process.pid}-${Date.now()}`;
  try {
    renameSync(path, aside);
  } catch {
    return; // gone meanwhile: the caller creates it again
  }
  const moved = readLock(aside);
  const isTheStaleOne =
    staleContent === undefined ? moved === 'unreadable' : moved !== 'missing' && moved !== 'unreadable' && JSON.stringify(moved) === staleContent;
  if (!isTheStaleOne) {
    try {
      linkSync(aside, path); // put a fresh lock back, unless yet another one was created meanwhile
    } catch {
      // the path exists again: the caller reads it on the next round
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // nothing to clean up
  }
}

function pgliteDriver(db: PGlite): SqlDriver {
  return {
    query: async <R>(text: string, params?: unknown[]) => ({ rows: (await db.query<R>(text, params)).rows }),
    transaction: <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> =>
      db.transaction(async (tx) => fn({ query: async <R>(text: string, params?: unknown[]) => ({ rows: (await tx.query<R>(text, params)).rows }) })),
    close: () => db.close(),
  };
}
