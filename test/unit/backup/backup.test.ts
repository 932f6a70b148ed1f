import { readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { listBackups, readBackup, readManifest } from '../../../src/backup/catalog.js';
import { LocalRepository } from '../../../src/backup/local-repository.js';
import { MANIFEST_FORMAT_VERSION, parseBackupId } from '../../../src/backup/manifest.js';
import { deleteBackup } from '../../../src/backup/retention.js';
import { verifyBackup } from '../../../src/backup/verify.js';
import { createBackup } from '../../../src/backup/write.js';
import { CrrError } from '../../../src/errors.js';
import { Events } from '../../support/store-events.js';
import { backupRows, fill, restoreInto, storeRows, useStores, useTempDirs, rejection, drain } from './fixtures.js';

const tempDir = useTempDirs();
const openStore = useStores();

describe('backup of a store to a local repository', () => {
  it('round trip: the backup holds every row, the catalog, the positions and the epoch; restored, the digest is equal', async () => {
    const store = await openStore();
    await fill(store, 2000, 1500);
    const dir = tempDir();
    const repo = new LocalRepository(dir);
    const progress: number[] = [];
    const manifest = await createBackup(store, repo, { cluster: 'primary', batchRows: 700, onProgress: (p) => progress.push(p.vertices + p.edges) });

    expect(parseBackupId(manifest.id)?.cluster).toBe('primary');
    expect(manifest).toMatchObject({
      formatVersion: MANIFEST_FORMAT_VERSION,
      cluster: 'primary',
      epoch: 3,
      clusterState: { role: 'primary', state: 'ACTIVE', epoch: 3 },
    });
    expect(manifest.positions).toEqual(await store.positions());
    expect(manifest.totals).toMatchObject({ vertices: 2000, edges: 1500, catalog: 6, parts: 2 });
    expect(manifest.parts.map((p) => [p.name, p.kind, p.records])).toEqual([
      ['vertices-00001.ndjson.gz', 'vertices', 2000],
      ['edges-00001.ndjson.gz', 'edges', 1500],
    ]);
    expect(progress.at(-1)).toBe(3500);
    // the files are what the manifest says: sha256sum of the stored bytes, one JSON row per line
    const files = readdirSync(join(dir, manifest.id)).sort();
    expect(files).toEqual(['edges-00001.ndjson.gz', 'manifest.json', 'vertices-00001.ndjson.gz']);
    const first = gunzipSync(readFileSync(join(dir, manifest.id, 'vertices-00001.ndjson.gz')))
      .toString('utf8')
      .split('\n');
    expect(JSON.parse(first[0]!)).toEqual({ type: 'person', id: 'p000000', attributes: { age: 0, name: '名前 0', tags: ['a', '0'], ok: true, none: null } });
    expect(JSON.parse(readFileSync(join(dir, manifest.id, 'manifest.json'), 'utf8'))).toEqual(manifest);

    expect(await backupRows(repo, manifest.id)).toEqual(await storeRows(store));
    const restored = await openStore();
    await restoreInto(repo, manifest.id, restored);
    expect(await restored.digest()).toBe(await store.digest());
    expect(await restored.counts()).toEqual(await store.counts());
    expect(await restored.positions()).toEqual(await store.positions());

    const check = await verifyBackup(repo, manifest.id);
    expect(check).toMatchObject({ ok: true, partsChecked: 2, records: 3500, problems: [] });
  });

  it('splits parts at partSizeBytes of uncompressed NDJSON, per kind, and reads them back in order', async () => {
    const store = await openStore();
    await fill(store, 400, 300);
    const repo = new LocalRepository(tempDir());
    const partSizeBytes = 8 * 1024;
    const manifest = await createBackup(store, repo, { cluster: 'primary', partSizeBytes, batchRows: 64 });
    const vParts = manifest.parts.filter((p) => p.kind === 'vertices');
    const eParts = manifest.parts.filter((p) => p.kind === 'edges');
    expect(vParts.length).toBeGreaterThan(3);
    expect(eParts.length).toBeGreaterThan(2);
    expect(manifest.parts.map((p) => p.name)).toEqual([
      ...vParts.map((_, i) => `vertices-${String(i + 1).padStart(5, '0')}.ndjson.gz`),
      ...eParts.map((_, i) => `edges-${String(i + 1).padStart(5, '0')}.ndjson.gz`),
    ]);
    for (const parts of [vParts, eParts]) {
      // every part but the last reached the size (and passed it by less than one line); none is empty
      for (const p of parts.slice(0, -1)) {
        expect(p.uncompressedBytes).toBeGreaterThanOrEqual(partSizeBytes);
        expect(p.uncompressedBytes).toBeLessThan(partSizeBytes + 200);
      }
      expect(parts.at(-1)!.records).toBeGreaterThan(0);
    }
    expect(manifest.totals).toMatchObject({ vertices: 400, edges: 300, parts: manifest.parts.length });
    expect(await backupRows(repo, manifest.id)).toEqual(await storeRows(store));
    expect((await verifyBackup(repo, manifest.id)).ok).toBe(true);
  });

  it('backs up an empty store as a manifest without parts', async () => {
    const store = await openStore();
    const repo = new LocalRepository(tempDir());
    const manifest = await createBackup(store, repo, { cluster: 'dr' });
    expect(manifest).toMatchObject({ epoch: 0, clusterState: null, positions: [], catalog: [], parts: [] });
    expect(await verifyBackup(repo, manifest.id)).toMatchObject({ ok: true, partsChecked: 0 });
    expect(await backupRows(repo, manifest.id)).toEqual({ vertices: [], edges: [] });
  });

  it('is consistent with its positions while writes go on (PGlite: the snapshot runs alone)', async () => {
    const store = await openStore();
    await fill(store, 100, 0);
    const e = new Events();
    let n = 100;
    let writing = true;
    const writer = (async () => {
      while (writing) {
        const batch = Array.from({ length: 10 }, (_, i) => e.upsertV('person', `w${n + i}`));
        n += 10;
        await store.applyBatch(batch, [{ topic: 'graph.data', partition: 0, nextOffset: n }]);
        await new Promise((r) => setImmediate(r)); // PGlite answers in microtasks: let I/O run
      }
    })();
    const repo = new LocalRepository(tempDir());
    const manifests = [];
    for (let i = 0; i < 3; i++) manifests.push(await createBackup(store, repo, { cluster: 'primary', batchRows: 50 }));
    writing = false;
    await writer;
    for (const m of manifests) {
      const offset = m.positions.find((p) => p.topic === 'graph.data' && p.partition === 0)!.nextOffset;
      expect(m.totals.vertices).toBe(offset);
    }
  });
});

describe('refusing a damaged backup, naming the part', () => {
  async function backup(): Promise<{ repo: LocalRepository; dir: string; id: string; parts: string[] }> {
    const store = await openStore();
    await fill(store, 600, 400);
    const dir = tempDir();
    const repo = new LocalRepository(dir);
    const m = await createBackup(store, repo, { cluster: 'primary', partSizeBytes: 16 * 1024 });
    return { repo, dir, id: m.id, parts: m.parts.map((p) => p.name) };
  }

  it('a corrupted part (one byte flipped): verify reports it, and reading it throws naming it', async () => {
    const { repo, dir, id, parts } = await backup();
    const victim = parts[2]!;
    const path = join(dir, id, victim);
    const bytes = readFileSync(path);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    writeFileSync(path, bytes);

    const check = await verifyBackup(repo, id);
    expect(check.ok).toBe(false);
    expect(check.partsChecked).toBe(parts.length);
    expect(check.problems).toEqual([{ part: victim, problem: 'corrupt', message: expect.stringContaining(`part ${victim} is corrupt`) }]);
    const err = await rejection(drain(readBackup(repo, id)));
    expect(err.code).toBe('CRR_BACKUP_INVALID');
    expect(err.message).toContain(victim);
    expect(err.part).toBe(victim);
  });

  it('a corrupted gzip trailer is caught by the SHA-256 even where gzip alone would not (the mtime field)', async () => {
    const { repo, dir, id, parts } = await backup();
    const path = join(dir, id, parts[0]!);
    const bytes = readFileSync(path);
    bytes[4]! ^= 0xff; // gzip header MTIME: not covered by gzip's CRC
    writeFileSync(path, bytes);
    const check = await verifyBackup(repo, id);
    expect(check.problems).toEqual([{ part: parts[0], problem: 'corrupt', message: expect.stringMatching(/SHA-256 is [0-9a-f]{64}, the manifest says/) }]);
  });

  it('a missing part: verify reports it, and reading throws naming it', async () => {
    const { repo, dir, id, parts } = await backup();
    const victim = parts.at(-1)!;
    unlinkSync(join(dir, id, victim));
    const check = await verifyBackup(repo, id);
    expect(check.problems).toEqual([{ part: victim, problem: 'missing', message: expect.stringContaining(`part ${victim} is missing`) }]);
    const err = await rejection(drain(readBackup(repo, id)));
    expect(err.message).toContain(`part ${victim} is missing`);
  });

  it('a record count that differs from the manifest', async () => {
    const { repo, dir, id, parts } = await backup();
    const path = join(dir, id, 'manifest.json');
    const m = JSON.parse(readFileSync(path, 'utf8'));
    m.parts[1].records += 1;
    m.totals.vertices += 1;
    writeFileSync(path, JSON.stringify(m));
    const check = await verifyBackup(repo, id);
    expect(check.problems).toEqual([{ part: parts[1], problem: 'count', message: expect.stringMatching(/holds \d+ records, the manifest says \d+/) }]);
  });

  it('an object the manifest does not list', async () => {
    const { repo, dir, id } = await backup();
    writeFileSync(join(dir, id, 'vertices-09999.ndjson.gz'), 'x');
    expect((await verifyBackup(repo, id)).problems).toEqual([{ part: 'vertices-09999.ndjson.gz', problem: 'unexpected', message: expect.any(String) }]);
  });

  it('an unknown manifest format version, by name', async () => {
    const { repo, dir, id } = await backup();
    const path = join(dir, id, 'manifest.json');
    writeFileSync(path, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), formatVersion: 2 }));
    const err = await rejection(readManifest(repo, id));
    expect(err.code).toBe('CRR_BACKUP_INVALID');
    expect(err.message).toMatch(/format version 2, which this crr cannot read \(it reads format version 1\)/);
    const check = await verifyBackup(repo, id);
    expect(check).toMatchObject({ ok: false, partsChecked: 0, problems: [{ part: 'manifest.json', problem: 'manifest' }] });
    expect((await listBackups(repo))[0]).toMatchObject({ id, status: 'invalid', problem: expect.stringContaining('format version 2') });
  });

  it('a backup without its manifest is incomplete: listed as such, refused by name', async () => {
    const { repo, dir, id } = await backup();
    unlinkSync(join(dir, id, 'manifest.json'));
    expect(await listBackups(repo)).toEqual([expect.objectContaining({ id, status: 'incomplete', cluster: 'primary' })]);
    const err = await rejection(readManifest(repo, id));
    expect(err.code).toBe('CRR_BACKUP_INVALID');
    expect(err.message).toMatch(/is incomplete: it has \d+ objects but no manifest.json/);
  });
});

describe('list and delete', () => {
  it('lists complete backups oldest first, per cluster; delete removes every object; an unknown id is not found', async () => {
    const store = await openStore();
    await fill(store, 50, 20);
    const dir = tempDir();
    const repo = new LocalRepository(dir);
    const at = (iso: string) => () => new Date(iso);
    const b = await createBackup(store, repo, { cluster: 'primary', now: at('2026-11-02T10:00:00Z') });
    const a = await createBackup(store, repo, { cluster: 'primary', now: at('2026-11-01T10:00:00Z') });
    const other = await createBackup(store, repo, { cluster: 'east', now: at('2026-11-01T12:00:00Z') });
    writeFileSync(join(dir, 'README.txt'), 'not a backup');

    const all = await listBackups(repo);
    expect(all.map((x) => x.id)).toEqual([a.id, other.id, b.id]);
    const mine = await listBackups(repo, { cluster: 'primary' });
    expect(mine.map((x) => [x.id, x.status, x.createdAtMs])).toEqual([
      [a.id, 'complete', Date.parse('2026-11-01T10:00:00Z')],
      [b.id, 'complete', Date.parse('2026-11-02T10:00:00Z')],
    ]);
    expect(mine[0]!.objects).toBe(3);
    expect(mine[0]!.bytes).toBeGreaterThan(a.totals.bytes);

    expect(await deleteBackup(repo, a.id)).toMatchObject({ id: a.id, objects: 3 });
    expect((await listBackups(repo)).map((x) => x.id)).toEqual([other.id, b.id]);
    expect(readdirSync(dir).sort()).toEqual(['README.txt', b.id, other.id].sort());
    for (const id of [a.id, 'nonsense']) {
      const err = await rejection(deleteBackup(repo, id));
      expect(err.code).toBe('CRR_BACKUP_NOT_FOUND');
    }
    expect((await rejection(readManifest(repo, a.id))).code).toBe('CRR_BACKUP_NOT_FOUND');
  });

  it('a failed backup leaves nothing behind and rethrows the repository error', async () => {
    const store = await openStore();
    await fill(store, 500, 0);
    const repo = new LocalRepository(tempDir());
    const failing = Object.assign(Object.create(repo) as LocalRepository, {
      put: async (key: string, body: unknown) => {
        if (key.endsWith('vertices-00002.ndjson.gz')) {
          (body as NodeJS.ReadableStream).resume();
          throw new CrrError('CRR_REPOSITORY', `disk full writing ${key}`);
        }
        return repo.put(key, body as Buffer);
      },
    });
    const err = await rejection(createBackup(store, failing, { cluster: 'primary', partSizeBytes: 4096, batchRows: 50 }));
    expect(err.message).toMatch(/disk full writing .*vertices-00002/);
    expect(await listBackups(repo)).toEqual([]);
  });
});
