import { mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listBackups, type BackupSummary } from '../../../src/backup/catalog.js';
import { LocalRepository } from '../../../src/backup/local-repository.js';
import { newBackupId } from '../../../src/backup/manifest.js';
import { INCOMPLETE_GRACE_MS, applyRetention, planRetention } from '../../../src/backup/retention.js';
import { createBackup } from '../../../src/backup/write.js';
import type { Store } from '../../../src/store/store.js';
import { useTempDirs } from './fixtures.js';

const tempDir = useTempDirs();

/** A store of three vertices at epoch 2: retention needs backups, not a database (backup.test.ts covers the real one). */
const tinyStore = {
  exportSnapshot: async (sink) => {
    await sink.header({
      positions: [{ topic: 'graph.data', partition: 0, nextOffset: 3 }],
      clusterState: { role: 'primary', state: 'ACTIVE', epoch: 2, updatedAt: new Date(T0) },
      catalog: [],
    });
    await sink.vertices(['a', 'b', 'c'].map((id) => ({ type: 'person', id, attributes: {} })));
    return { vertices: 3, edges: 0 };
  },
} as Pick<Store, 'exportSnapshot'> as Store;

const DAY = 24 * 60 * 60 * 1000;
const T0 = Date.parse('2026-11-01T00:00:00Z');

/** A listed backup created `day` days after T0. */
function summary(day: number, status: BackupSummary['status'] = 'complete', lastModifiedMs = T0 + day * DAY): BackupSummary {
  const createdAtMs = T0 + day * DAY;
  return {
    id: newBackupId('primary', new Date(createdAtMs), '00aa'),
    cluster: 'primary',
    status,
    createdAtMs,
    objects: 3,
    bytes: 100,
    lastModifiedMs,
    pins: [],
  };
}

const ids = (xs: Array<{ backup: BackupSummary }>): number[] => xs.map((x) => (x.backup.createdAtMs - T0) / DAY);

describe('retention plan', () => {
  const week = [0, 1, 2, 3, 4, 5, 6].map((d) => summary(d));
  const now = T0 + 6 * DAY + 60_000;

  it('keepLast N keeps the newest N complete backups', () => {
    expect(ids(planRetention(week, { keepLast: 3 }, now))).toEqual([0, 1, 2, 3]);
    expect(planRetention(week, { keepLast: 3 }, now)[0]!.reason).toBe('not among the newest 3 complete backups');
    expect(planRetention(week, { keepLast: 7 }, now)).toEqual([]);
    expect(ids(planRetention([...week].reverse(), { keepLast: 1 }, now))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('maxAgeMs deletes older ones, but never the newest complete backup', () => {
    expect(ids(planRetention(week, { maxAgeMs: 2 * DAY + 120_000 }, now))).toEqual([0, 1, 2, 3]);
    // everything is old: the newest stays
    expect(ids(planRetention(week, { maxAgeMs: DAY }, T0 + 100 * DAY))).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it('both rules: a backup is kept only when both keep it', () => {
    expect(ids(planRetention(week, { keepLast: 5, maxAgeMs: 3 * DAY + 120_000 }, now))).toEqual([0, 1, 2]);
    expect(ids(planRetention(week, { keepLast: 2, maxAgeMs: 30 * DAY }, now))).toEqual([0, 1, 2, 3, 4]);
  });

  it('no rule deletes no complete backup', () => {
    expect(planRetention(week, {}, now + 1000 * DAY)).toEqual([]);
  });

  it('incomplete backups go once a newer complete one exists and they are untouched for the grace time; invalid ones never', () => {
    const crashed = summary(2.5, 'incomplete');
    const running = summary(6.5, 'incomplete', now);
    const fresh = summary(5.5, 'incomplete', now - INCOMPLETE_GRACE_MS + 1000);
    const broken = summary(1.5, 'invalid');
    const plan = planRetention([...week, crashed, running, fresh, broken], { keepLast: 100 }, now);
    expect(ids(plan)).toEqual([2.5]);
    expect(plan[0]!.reason).toMatch(/^incomplete \(no manifest\)/);
    // no complete backup at all: nothing incomplete is deleted either
    expect(planRetention([crashed], { keepLast: 1 }, now)).toEqual([]);
  });
});

describe('retention on a repository', () => {
  it('deletes exactly the planned backups, only with execute, only of its own cluster', async () => {
    const store = tinyStore;
    const dir = tempDir();
    const repo = new LocalRepository(dir);
    const made = [];
    for (const day of [0, 1, 2, 3]) made.push(await createBackup(store, repo, { cluster: 'primary', now: () => new Date(T0 + day * DAY) }));
    const other = await createBackup(store, repo, { cluster: 'east', now: () => new Date(T0) });
    // a crashed backup on day 1.5, untouched since then
    const crashed = newBackupId('primary', new Date(T0 + 1.5 * DAY), 'beef');
    mkdirSync(join(dir, crashed));
    writeFileSync(join(dir, crashed, 'vertices-00001.ndjson.gz'), 'partial');
    utimesSync(join(dir, crashed, 'vertices-00001.ndjson.gz'), new Date(T0 + 1.5 * DAY), new Date(T0 + 1.5 * DAY));
    const now = T0 + 3 * DAY + 1000;

    const dry = await applyRetention(repo, { keepLast: 2 }, { cluster: 'primary', nowMs: now });
    expect(dry.executed).toBe(false);
    expect(dry.deleted.map((d) => d.backup.id)).toEqual([made[0]!.id, made[1]!.id, crashed]);
    expect((await listBackups(repo)).length).toBe(6); // nothing deleted yet

    const done = await applyRetention(repo, { keepLast: 2 }, { cluster: 'primary', nowMs: now, execute: true });
    expect(done.deleted.map((d) => d.backup.id)).toEqual([made[0]!.id, made[1]!.id, crashed]);
    expect(done.kept.map((b) => b.id)).toEqual([made[2]!.id, made[3]!.id]);
    expect((await listBackups(repo)).map((b) => b.id)).toEqual([other.id, made[2]!.id, made[3]!.id]);

    // by age: day 2 is older than 1 day at day 3; day 3 is the newest and stays
    const byAge = await applyRetention(repo, { maxAgeMs: DAY }, { cluster: 'primary', nowMs: now, execute: true });
    expect(byAge.deleted.map((d) => d.backup.id)).toEqual([made[2]!.id]);
    expect((await listBackups(repo)).map((b) => b.id)).toEqual([other.id, made[3]!.id]);
  });
});
