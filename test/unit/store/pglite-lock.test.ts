import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CrrError } from '../../../src/errors.js';
import { openStore } from '../../../src/store/open.js';
import { PGLITE_LOCK_FILE, PgliteStore } from '../../../src/store/pglite.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A fresh directory; `dataDir` is a not-yet-existing directory inside it (the store creates it). */
function dataDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'crr-pglite-lock-'));
  dirs.push(root);
  return join(root, 'data');
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((resolve) => child.on('exit', resolve));
  return child.pid!;
}

function refusal(fn: () => unknown): CrrError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CrrError);
    return err as CrrError;
  }
  throw new Error('expected the open to be refused');
}

const lockOf = (dir: string): { pid: number; hostname: string; startedAt: string } => JSON.parse(readFileSync(join(dir, PGLITE_LOCK_FILE), 'utf8'));

describe('PGlite store: one process per data directory', () => {
  it('refuses a second open of the same dataDir while the first is open, and close() releases it', async () => {
    const dir = dataDir();
    const first = openStore({ type: 'pglite', schema: 'crr', dataDir: dir });
    await first.migrate();
    expect(lockOf(dir)).toMatchObject({ pid: process.pid, hostname: hostname() });

    const err = refusal(() => new PgliteStore({ dataDir: dir }));
    expect(err.code).toBe('CRR_STORE_LOCKED');
    expect(err.retriable).toBe(false);
    expect(err.message).toContain(`store ${dir} (PGlite) is in use by this process (${process.pid}) since`);
    expect(err.message).toContain('use a PostgreSQL store to share it');
    // a file:// data dir names the same directory
    expect(refusal(() => new PgliteStore({ dataDir: `file://${dir}` })).code).toBe('CRR_STORE_LOCKED');

    await first.close();
    expect(existsSync(join(dir, PGLITE_LOCK_FILE))).toBe(false);

    // once released, the directory opens again, with its data
    const again = new PgliteStore({ dataDir: dir });
    try {
      await again.migrate();
      expect(await again.positions()).toEqual([]);
      expect(lockOf(dir).pid).toBe(process.pid);
    } finally {
      await again.close();
    }
    expect(existsSync(join(dir, PGLITE_LOCK_FILE))).toBe(false);
  });

  it('refuses a lock held by another live process on this host, naming its pid', async () => {
    const dir = dataDir();
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'], { stdio: 'ignore' });
    try {
      writeLock(dir, { pid: other.pid!, hostname: hostname(), startedAt: '2025-01-02T03:04:05.000Z' });
      const err = refusal(() => new PgliteStore({ dataDir: dir }));
      expect(err.code).toBe('CRR_STORE_LOCKED');
      expect(err.message).toContain(`in use by process ${other.pid} since 2025-01-02T03:04:05.000Z`);
      expect(lockOf(dir).pid).toBe(other.pid); // left alone
    } finally {
      other.kill('SIGKILL');
    }
  });

  it.each([
    ['a dead pid', async () => ({ pid: await deadPid(), hostname: hostname(), startedAt: '2025-01-02T03:04:05.000Z' })],
    [
      'this pid, not held by this process (a restarted container)',
      async () => ({ pid: process.pid, hostname: hostname(), startedAt: '2025-01-02T03:04:05.000Z' }),
    ],
    ['an unreadable file (a crash while writing it)', async () => 'garbage'],
  ])('takes over a stale lock: %s', async (_what, make) => {
    const dir = dataDir();
    writeLock(dir, await make());
    const store = new PgliteStore({ dataDir: dir });
    try {
      await store.migrate();
      expect(lockOf(dir).pid).toBe(process.pid);
    } finally {
      await store.close();
    }
    expect(existsSync(join(dir, PGLITE_LOCK_FILE))).toBe(false);
  });

  it('takes no lock for an in-memory store', async () => {
    const a = new PgliteStore();
    const b = new PgliteStore({ dataDir: 'memory://' });
    await Promise.all([a.migrate(), b.migrate()]);
    await Promise.all([a.close(), b.close()]);
  });
});

/** Writes a lock file (JSON of `lock`, or the text as it is) into a new `dir`. */
function writeLock(dir: string, lock: object | string): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, PGLITE_LOCK_FILE), typeof lock === 'string' ? lock : JSON.stringify(lock));
}
