import { readFileSync, writeFileSync } from 'node:fs';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type CrrProcess, http, metricValue, runCrr, useCrrProcesses, waitFor } from '../support/helpers.js';
import { type ReseedPair, useReseedPairs, writeEvents } from '../support/reseed-pair.js';
import { s3Client } from '../support/s3-helpers.js';

/**
 * Least privilege between regions (issue 12, item 3): the DR region's daemon runs with a config
 * that has no credentials for the primary's database. Its reseed asks the primary's own `crr run`
 * for the backup through the primary's Kafka (`crr-control.internal`), waits while that daemon is
 * down (saying why in /status and in `crr_reseed_waiting_for_primary`), then restores the backup
 * the primary's daemon took, reading the repository only. `crr reseed --from-backup ID` restores an
 * existing backup by hand.
 */

const start = useCrrProcesses();
const makePair = useReseedPairs();
const s3 = s3Client();

const upserts = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${(from + i) % 500}` }, attributes: { n: from + i } }));

/** Writes a copy of the pair's config as one region sees it: `drop` is the alias whose store it must not know. */
function regionConfig(p: ReseedPair, drop: string, suffix: string, patch: (c: Record<string, any>) => void = () => undefined): string {
  const config = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
  delete config.clusters[drop].store;
  patch(config);
  const path = p.configPath.replace(/\.yaml$/, `.${suffix}.yaml`);
  writeFileSync(path, stringify(config));
  return path;
}

const replayStatus = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

/**
 * The scenario of both tests: each region's config (the DR one patched by `drPatch`), `events`
 * upserts written, both daemons started and caught up; then the primary's daemon stopped and a
 * DROP ALL run on the primary. @returns the primary daemon's arguments (to start it again) and the DR config
 */
async function dropAllWhilePrimaryDown(
  p: ReseedPair,
  events: number,
  drPatch?: (c: Record<string, any>) => void,
): Promise<{ primaryArgs: string[]; drConfig: string }> {
  const primaryConfig = regionConfig(p, p.target, 'primary');
  const drConfig = regionConfig(p, p.source, 'dr', drPatch);
  await writeEvents(p, [{ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }, ...upserts(0, events)]);
  const primaryArgs = ['run', '--config', primaryConfig, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)];
  const primaryDaemon = start(primaryArgs);
  start(['run', '--config', drConfig, '--cluster', p.target]);
  await bothCaughtUpAndServing(p, primaryDaemon);
  primaryDaemon.child.kill('SIGTERM');
  await primaryDaemon.exited;
  const dropped = await runCrr(['admin', 'drop-all', '--config', p.configPath, '--cluster', p.source, '--reason', 'test', '--execute']);
  expect(dropped.code, dropped.stdout + dropped.stderr).toBe(0);
  return { primaryArgs, drConfig };
}

/** Waits until both stores have caught up and the primary's daemon serves backup requests (its log in the error otherwise). */
async function bothCaughtUpAndServing(p: ReseedPair, primaryDaemon: CrrProcess): Promise<void> {
  await waitFor(
    'both stores caught up, the primary daemon serving backup requests',
    async () => {
      const primaryStatus = JSON.parse((await http(p.primaryHttpPort, '/status')).body);
      const dr = await replayStatus(p.httpPort);
      return primaryStatus.backupRequests?.state === 'serving' && primaryStatus.replay.lagRecords === 0 && dr?.state === 'active' && dr.lagRecords === 0;
    },
    120_000,
    300,
  ).catch((err) => {
    throw new Error(`${(err as Error).message}\nprimary daemon log:\n${primaryDaemon.log().slice(-3000)}`);
  });
}

async function pins(bucket: string): Promise<string[]> {
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket }));
  return (out.Contents ?? []).map((o) => o.Key!).filter((k) => k.includes('/pins/'));
}

describe('reseed through the primary daemon (backupSource primary-daemon)', () => {
  it('the DR daemon, without the primary store, waits for the primary daemon, says why, then reseeds from the backup it took; --from-backup restores by hand', async () => {
    const p = await makePair({ mode: 'auto' });
    // the DR region: a short accept timeout so that waiting is seen quickly
    const { primaryArgs, drConfig } = await dropAllWhilePrimaryDown(p, 800, (c) => {
      c.reseed.backupRequest = { acceptTimeoutMs: 2000 };
    });
    await writeEvents(p, [
      { op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] },
      ...upserts(1000, 300),
    ]);
    const waiting = await waitFor(
      'the DR reseed to say it waits for the primary daemon',
      async () => {
        const s = await replayStatus(p.httpPort);
        return s?.state === 'reseeding' && typeof s.reseed?.waitingFor === 'string' ? (s.reseed.waitingFor as string) : undefined;
      },
      90_000,
      300,
    );
    expect(waiting).toMatch(new RegExp(`${p.source}'s daemon has not answered the backup request .* within 2000 ms`));
    expect(metricValue((await http(p.httpPort, '/metrics')).body, 'crr_reseed_waiting_for_primary')).toBe(1);

    // the primary region's daemon comes back: it serves the request, the replica ends equal
    start(primaryArgs);
    const done = await waitFor(
      'the replica reseeded and caught up at epoch 1',
      async () => {
        const s = await replayStatus(p.httpPort);
        return s?.state === 'active' && s.lagRecords === 0 && s.clusterState?.state === 'REPLICATING' && s.clusterState.epoch === 1 ? s : undefined;
      },
      120_000,
      300,
    );
    expect(done.lastReseed.backupId).toMatch(new RegExp(`-${p.source}-`));
    expect(metricValue((await http(p.httpPort, '/metrics')).body, 'crr_reseed_waiting_for_primary')).toBe(0);
    const served = metricValue((await http(p.primaryHttpPort, '/metrics')).body, 'crr_backup_requests_total', 'result="served"');
    expect(served).toBe(1);
    // the DR daemon told the primary's daemon it is done: no pin is left on the backup
    await waitFor('the reseed pins to be released', async () => (await pins(p.bucket)).length === 0, 30_000, 300);
    const verified = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '120000']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);

    // by hand, from an existing backup: the DR config still needs no primary store
    const fromBackup = await runCrr(['reseed', '--config', drConfig, '--cluster', p.target, '--from-backup', done.lastReseed.backupId, '--execute']);
    expect(fromBackup.code, fromBackup.stdout + fromBackup.stderr).toBe(0);
    expect(fromBackup.stdout).toContain(`from backup ${done.lastReseed.backupId}`);
    const missing = await runCrr(['reseed', '--config', drConfig, '--cluster', p.target, '--from-backup', `20200101T000000Z-${p.source}-abcd`, '--execute']);
    expect(missing.code, missing.stdout + missing.stderr).toBe(65);
    expect(missing.stderr).toContain('20200101T000000Z');
    // the daemon replays on from the restored backup's positions: still equal after more writes
    await writeEvents(p, upserts(5000, 100));
    await waitFor(
      'the replica caught up after the manual reseed',
      async () => {
        const s = await replayStatus(p.httpPort);
        return s?.state === 'active' && s.lagRecords === 0 && s.clusterState?.state === 'REPLICATING';
      },
      120_000,
      300,
    );
    const again = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '120000']);
    expect(again.code, again.stdout + again.stderr).toBe(0);
  }, 300_000);

  it("a primary daemon that cannot take the backup (a PGlite store) answers so: the DR daemon shows the primary's reason and keeps asking, its replay does not end", async () => {
    const p = await makePair({ mode: 'auto', primaryStore: 'pglite' });
    // a PGlite store is one process's database: the sync-breaking operation runs while the daemon is stopped
    const { primaryArgs } = await dropAllWhilePrimaryDown(p, 100);
    start(primaryArgs);
    await waitFor(
      "the primary daemon's refusal, in the DR daemon's /status, twice (it keeps asking)",
      async () => {
        const metrics = (await http(p.primaryHttpPort, '/metrics').catch(() => ({ body: '' }))).body;
        const s = await replayStatus(p.httpPort);
        return (
          (metricValue(metrics, 'crr_backup_requests_total', 'result="failed"') ?? 0) >= 2 && s?.state === 'reseeding' && /pglite/i.test(s.lastError ?? '')
        );
      },
      120_000,
      300,
    );
    const s = await replayStatus(p.httpPort);
    expect(s.lastError).toMatch(new RegExp(`${p.source}'s daemon could not take the backup .*one process's database`));
  }, 300_000);
});
