import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LocalRepository } from '../../../src/backup/local-repository.js';
import { useTempDirs } from './fixtures.js';

const tempDir = useTempDirs();

async function text(s: Readable | undefined): Promise<string | undefined> {
  if (s === undefined) return undefined;
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function keys(repo: LocalRepository, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of repo.list(prefix)) out.push(o.key);
  return out;
}

describe('local repository', () => {
  it('puts from a stream, a buffer or a string; gets them back; a missing key is undefined', async () => {
    const repo = new LocalRepository(join(tempDir(), 'not', 'yet'));
    await repo.put('a/b/one', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
    await repo.put('a/two', Buffer.from('2'));
    await repo.put('three', 'drei');
    await repo.put('three', 'tres'); // replaced
    expect(await text(await repo.get('a/b/one'))).toBe('hello world');
    expect(await text(await repo.get('three'))).toBe('tres');
    expect(await repo.get('a/nothing')).toBeUndefined();
    expect(await repo.get('three/below-a-file')).toBeUndefined();
  });

  it('lists by key prefix in S3 order, with sizes, never temporary files', async () => {
    const dir = tempDir();
    const repo = new LocalRepository(dir);
    for (const k of ['x/2', 'x/10', 'x/1/a', 'xy/1', 'y', 'x/é']) await repo.put(k, k);
    writeFileSync(join(dir, 'x', '3.crr-tmp-0000'), 'half written');
    expect(await keys(repo, '')).toEqual(['x/1/a', 'x/10', 'x/2', 'x/é', 'xy/1', 'y']);
    expect(await keys(repo, 'x/')).toEqual(['x/1/a', 'x/10', 'x/2', 'x/é']);
    expect(await keys(repo, 'x/1')).toEqual(['x/1/a', 'x/10']);
    expect(await keys(repo, 'x')).toEqual(['x/1/a', 'x/10', 'x/2', 'x/é', 'xy/1']);
    expect(await keys(repo, 'nothing/')).toEqual([]);
    const listed = [];
    for await (const o of repo.list('x/é')) listed.push(o);
    expect(listed[0]).toMatchObject({ key: 'x/é', bytes: Buffer.byteLength('x/é') });
  });

  it('a failing source writes nothing and rethrows its own error', async () => {
    const dir = tempDir();
    const repo = new LocalRepository(dir);
    const failing = new Readable({ read() {} });
    failing.push('partial');
    setTimeout(() => failing.destroy(new Error('producer broke')), 10);
    await expect(repo.put('k/obj', failing)).rejects.toThrow('producer broke');
    expect(await repo.get('k/obj')).toBeUndefined();
    expect(readdirSync(join(dir, 'k'))).toEqual([]); // no temporary file left
  });

  it('deletes objects, ignores missing ones, and removes folders left empty', async () => {
    const dir = tempDir();
    const repo = new LocalRepository(dir);
    await repo.put('b1/p1', '1');
    await repo.put('b1/sub/p2', '2');
    await repo.put('b2/p1', '3');
    await repo.delete(['b1/p1', 'b1/sub/p2', 'b1/never']);
    expect(existsSync(join(dir, 'b1'))).toBe(false);
    expect(await keys(repo, '')).toEqual(['b2/p1']);
    expect(existsSync(dir)).toBe(true);
  });

  it('refuses keys that could leave the repository', async () => {
    const repo = new LocalRepository(tempDir());
    for (const bad of ['../x', 'a/../../x', '/abs', 'a//b', '', 'a/./b']) {
      await expect(repo.put(bad, 'x'), bad).rejects.toThrow(RangeError);
    }
  });
});

describe('local repository at rest (issue 12 item 7)', () => {
  it('writes files 0600 and the folders it creates 0700, whatever the umask, for a stream, a buffer or a string', async () => {
    const { statSync } = await import('node:fs');
    const root = join(tempDir(), 'repo', 'nested');
    const repo = new LocalRepository(root);
    const previous = process.umask(0o022); // the usual umask: files 0644 and folders 0755 unless crr says otherwise
    try {
      await repo.put('id-1/manifest.json', '{}');
      await repo.put('id-1/parts/vertices-00001.ndjson.gz', Readable.from([Buffer.from('x')]));
      await repo.put('id-2/manifest.json', Buffer.from('{}'));
    } finally {
      process.umask(previous);
    }
    const mode = (p: string): string => (statSync(p).mode & 0o777).toString(8);
    for (const f of ['id-1/manifest.json', 'id-1/parts/vertices-00001.ndjson.gz', 'id-2/manifest.json']) expect(mode(join(root, f)), f).toBe('600');
    for (const d of ['', 'id-1', 'id-1/parts', 'id-2']) expect(mode(join(root, d)), d || '(root)').toBe('700');
    expect(mode(join(root, '..')), 'a parent folder it created').toBe('700');
  });
});
