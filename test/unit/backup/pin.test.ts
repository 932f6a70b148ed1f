import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keysOf, listBackups, readManifest } from '../../../src/backup/catalog.js';
import { LocalRepository } from '../../../src/backup/local-repository.js';
import { parseManifest } from '../../../src/backup/manifest.js';
import { parsePinKey, pinBackup, pinKey, readPins, unpinAll, unpinBackup } from '../../../src/backup/pin.js';
import type { BackupRepository } from '../../../src/backup/repository.js';
import { applyRetention, deleteBackup, retentionPlan } from '../../../src/backup/retention.js';
import { verifyBackup } from '../../../src/backup/verify.js';
import { createBackup } from '../../../src/backup/write.js';
import { reseeded } from '../../../src/cluster/cluster-state.js';
import { fill, useStores, useTempDirs, rejection } from './fixtures.js';

// Pins (src/backup/pin.ts): a backup a reseed or restore uses, kept by prune and delete.

const tempDir = useTempDirs();
const openStore = useStores();
const DAY = 24 * 60 * 60 * 1000;
const T0 = Date.parse('2026-11-01T00:00:00Z');

/** A repository of three backups of `primary`, on days 0, 1 and 2. */
async function threeBackups(): Promise<{ repo: LocalRepository; dir: string; ids: string[] }> {
  const store = await openStore();
  await fill(store, 20, 10);
  const dir = tempDir();
  const repo = new LocalRepository(dir);
  const ids: string[] = [];
  for (const day of [0, 1, 2]) ids.push((await createBackup(store, repo, { cluster: 'primary', now: () => new Date(T0 + day * DAY) })).id);
  return { repo, dir, ids };
}

const reseedPin = { cluster: 'dr', purpose: 'reseed' as const, holder: 'crr run --cluster dr pid 1 on host' };

describe('pins', () => {
  it('a pin is an object of the backup folder that is not part of its data: list, verify and the manifest ignore it', async () => {
    const { repo, ids } = await threeBackups();
    const before = (await listBackups(repo)).find((b) => b.id === ids[0])!;
    const pin = await pinBackup(repo, ids[0]!, reseedPin, new Date(T0 + 5 * DAY));
    expect(pin).toEqual({ ...reseedPin, backupId: ids[0], pinnedAt: '2026-11-06T00:00:00Z' });
    expect(parsePinKey(pinKey(ids[0]!, 'dr'))).toEqual({ backupId: ids[0], cluster: 'dr' });
    expect(parsePinKey(`${ids[0]}/manifest.json`)).toBeUndefined();
    const after = (await listBackups(repo)).find((b) => b.id === ids[0])!;
    expect({ objects: after.objects, bytes: after.bytes, lastModifiedMs: after.lastModifiedMs }).toEqual({
      objects: before.objects,
      bytes: before.bytes,
      lastModifiedMs: before.lastModifiedMs,
    });
    expect(after.pins).toMatchObject([{ cluster: 'dr', pin }]);
    expect((await verifyBackup(repo, ids[0]!)).ok).toBe(true);
    expect(await keysOf(repo, ids[0]!)).not.toContain(pinKey(ids[0]!, 'dr'));
    // pinning again refreshes the one pin of that cluster
    await pinBackup(repo, ids[0]!, { ...reseedPin, holder: 'again' });
    expect((await readPins(repo, ids[0]!)).map((p) => p.pin?.holder)).toEqual(['again']);
    await unpinBackup(repo, ids[0]!, 'dr');
    expect(await readPins(repo, ids[0]!)).toEqual([]);
    // what is not a backup id is not found, as readManifest says (crr restore --backup foo: exit 2)
    expect((await rejection(pinBackup(repo, 'foo', reseedPin))).code).toBe('CRR_BACKUP_NOT_FOUND');
  });

  it('an unreadable pin still pins: the backup is kept, the problem named', async () => {
    const { repo, dir, ids } = await threeBackups();
    await pinBackup(repo, ids[0]!, reseedPin);
    writeFileSync(join(dir, pinKey(ids[0]!, 'dr')), '{"cluster": 7');
    const [found] = await readPins(repo, ids[0]!);
    expect(found).toMatchObject({ cluster: 'dr', problem: expect.stringMatching(/JSON/) });
    expect(found!.pin).toBeUndefined();
    expect((await rejection(deleteBackup(repo, ids[0]!))).code).toBe('CRR_BACKUP_PINNED');
  });

  it('retention keeps a pinned backup it would delete, and says why it would; a pin never makes it delete another', async () => {
    const { repo, ids } = await threeBackups();
    await pinBackup(repo, ids[0]!, reseedPin);
    const plan = retentionPlan(await listBackups(repo), { keepLast: 1 }, T0 + 3 * DAY);
    expect(plan.deleted.map((d) => d.backup.id)).toEqual([ids[1]]);
    expect(plan.pinned.map((d) => [d.backup.id, d.reason])).toEqual([[ids[0], 'not among the newest 1 complete backups']]);
    const done = await applyRetention(repo, { keepLast: 1 }, { cluster: 'primary', nowMs: T0 + 3 * DAY, execute: true });
    expect(done.deleted.map((d) => d.backup.id)).toEqual([ids[1]]);
    expect(done.pinned.map((d) => d.backup.id)).toEqual([ids[0]]);
    expect((await listBackups(repo)).map((b) => b.id)).toEqual([ids[0], ids[2]]);
    await readManifest(repo, ids[0]!); // whole
  });

  it('a backup pinned after prune listed it is still kept: the pins are read again just before each deletion', async () => {
    const { repo, ids } = await threeBackups();
    // a repository where a reseed pins ids[0] right after prune's listing
    let listed = false;
    const racing: BackupRepository = {
      description: repo.description,
      put: (k, b) => repo.put(k, b),
      get: (k) => repo.get(k),
      delete: (k) => repo.delete(k),
      close: () => repo.close(),
      async *list(prefix) {
        yield* repo.list(prefix);
        if (prefix === '' && !listed) {
          listed = true;
          await pinBackup(repo, ids[0]!, reseedPin);
        }
      },
    };
    const done = await applyRetention(racing, { keepLast: 1 }, { cluster: 'primary', nowMs: T0 + 3 * DAY, execute: true });
    expect(done.deleted.map((d) => d.backup.id)).toEqual([ids[1]]);
    expect(done.pinned.map((d) => [d.backup.id, d.backup.pins.map((p) => p.cluster)])).toEqual([[ids[0], ['dr']]]);
    expect((await listBackups(repo)).map((b) => b.id)).toEqual([ids[0], ids[2]]);
  });

  it('delete refuses a pinned backup, naming the pin, and deletes nothing; with force it deletes it and its pins', async () => {
    const { repo, ids } = await threeBackups();
    await pinBackup(repo, ids[0]!, reseedPin);
    const err = await rejection(deleteBackup(repo, ids[0]!));
    expect(err.code).toBe('CRR_BACKUP_PINNED');
    expect(err.retriable).toBe(false);
    expect(err.message).toMatch(new RegExp(`backup ${ids[0]} is pinned by dr \\(reseed, crr run --cluster dr pid 1 on host, since 20`));
    await readManifest(repo, ids[0]!);
    const gone = await deleteBackup(repo, ids[0]!, { force: true });
    expect(gone.objects).toBeGreaterThan(1);
    expect((await rejection(readManifest(repo, ids[0]!))).code).toBe('CRR_BACKUP_NOT_FOUND');
    expect([...(await listAll(repo))].filter((k) => k.startsWith(ids[0]!))).toEqual([]);
  });

  it('a folder that holds only a pin (its backup deleted by hand) is no backup: not listed, not found; unpinAll clears a cluster’s pins', async () => {
    const { repo, ids } = await threeBackups();
    await deleteBackup(repo, ids[0]!);
    await pinBackup(repo, ids[0]!, reseedPin);
    await pinBackup(repo, ids[1]!, reseedPin);
    await pinBackup(repo, ids[1]!, { ...reseedPin, cluster: 'east' });
    expect((await listBackups(repo)).map((b) => b.id)).toEqual([ids[1], ids[2]]);
    expect((await rejection(readManifest(repo, ids[0]!))).code).toBe('CRR_BACKUP_NOT_FOUND');
    expect((await unpinAll(repo, 'dr')).sort()).toEqual([ids[0], ids[1]].sort());
    expect((await listBackups(repo)).map((b) => [b.id, b.pins.map((p) => p.cluster)])).toEqual([
      [ids[1], ['east']],
      [ids[2], []],
    ]);
    expect([...(await listAll(repo))].filter((k) => k.startsWith(ids[0]!))).toEqual([]);
  });
});

describe('a backup of a store whose cluster state names a backup', () => {
  it('leaves backupId out of the manifest (format version 1 has no such field), which stays valid', async () => {
    const store = await openStore();
    await fill(store, 5, 2);
    await store.setClusterState(reseeded(3, 'reseeded from backup X', '20261101T000000Z-primary-00aa'));
    expect(await store.clusterState()).toMatchObject({ backupId: '20261101T000000Z-primary-00aa' });
    const repo = new LocalRepository(tempDir());
    const manifest = await createBackup(store, repo, { cluster: 'dr' });
    expect(manifest.clusterState).toMatchObject({ role: 'replica', state: 'REPLICATING', epoch: 3 });
    expect(manifest.clusterState).not.toHaveProperty('backupId');
    expect(parseManifest(JSON.stringify(manifest), manifest.id)).toEqual(manifest);
  });
});

async function listAll(repo: BackupRepository): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const o of repo.list('')) keys.add(o.key);
  return keys;
}
