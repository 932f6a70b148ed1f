import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PostgresStore } from '../../../src/store/postgres.js';
import { Runbook } from '../../support/runbook.js';
import { DR, http, PG_URL, readTopic, ROOT, runCrr, testPair, uniq, useCrrProcesses, waitFor, type CrrProcess, type TestPair } from '../../support/helpers.js';

// docs/runbooks/upgrade.md, step by step: the DR daemon is stopped and started again (the
// "new release" is the same build here), then the primary's, with writes while each is down.
// Across both restarts nothing is lost or applied twice: the remote topic holds every event
// exactly once, the restarted daemons apply exactly what they missed, and verify is EQUAL.

const start = useCrrProcesses();

const upserts = (from: number, n: number, balance = (i: number) => i): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'Account', id: `a${from + i}` }, attributes: { balance: balance(from + i) } }));
const deletes = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'DELETE_VERTEX', vertex: { type: 'Account', id: `a${from + i}` } }));

async function write(p: TestPair, events: object[]): Promise<void> {
  mkdirSync(join(tmpdir(), 'crr-tests'), { recursive: true });
  const file = join(tmpdir(), 'crr-tests', `upgrade-${uniq()}.ndjson`);
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
  const r = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
  expect(r.code, r.stderr).toBe(0);
}

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

/** Waits until the daemon on `port` has applied at least `n` events (since it started) and has replay lag 0. */
const caughtUp = (what: string, port: number, n: number): Promise<unknown> =>
  waitFor(
    what,
    async () => {
      const s = await replay(port).catch(() => undefined);
      return s && s.eventsApplied >= n && s.lagRecords === 0;
    },
    60_000,
    300,
  );

/** Sum of every sample of a counter in a /metrics text. */
const metricSum = (text: string, name: string): number =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

async function stop(d: CrrProcess): Promise<void> {
  d.child.kill('SIGTERM');
  expect((await d.exited).code, d.log().slice(-2000)).toBe(0);
}

describe('runbook: rolling upgrade', () => {
  it('upgrade.md: DR daemon then primary daemon restarted with writes while each is down; nothing lost or applied twice; verify EQUAL', async () => {
    const t0 = Date.now();
    const phase = (what: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`);
    const p = testPair({ dataPartitions: 3 });
    const rb = new Runbook('upgrade', { 'crr.yaml': p.configPath, primary: p.source, dr: p.target }, start);
    const schema = { op: 'CREATE_VERTEX_TYPE', name: 'Account', primaryIdType: 'STRING', attributes: [{ name: 'balance', type: 'INT' }] };
    await write(p, [schema, ...upserts(0, 300)]);
    const primaryArgs = ['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)];
    let primary = start(primaryArgs);
    let dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await caughtUp('the DR side to catch up', p.httpPort, 301);
    await caughtUp('the primary to catch up', p.primaryHttpPort, 301);

    phase('1. version and status');
    const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect((await rb.run('crr version')).stdout.trim()).toBe(`crr ${version}`);
    await rb.run('crr status --config crr.yaml');
    phase('2. the "new" release');
    expect((await rb.run('crr version')).stdout.trim()).toBe(`crr ${version}`);

    phase('3. stop the DR daemon; writes go on');
    await stop(dr);
    // while it is down: 400 new accounts, 100 updates, 50 deletes
    const whileDrDown = [...upserts(1000, 400), ...upserts(0, 100, (i) => -i), ...deletes(200, 50)];
    await write(p, whileDrDown);

    phase('4. start it again');
    dr = rb.start('crr run --config crr.yaml --cluster dr');
    await caughtUp('the restarted DR daemon to apply what it missed', p.httpPort, whileDrDown.length);

    phase('5. status, verify');
    await rb.run('crr status --config crr.yaml');
    expect((await rb.run('crr verify --config crr.yaml')).stdout).toMatch(/EQUAL/);
    // applied exactly once: the restarted DR daemon applied what was written while it was down, no more
    const drMetrics = (await http(p.httpPort, '/metrics')).body;
    expect(metricSum(drMetrics, 'crr_replay_events_total')).toBe(whileDrDown.length);
    expect((await replay(p.httpPort)).eventsApplied).toBe(whileDrDown.length);
    // mirrored exactly once: every data event is on the remote topic once
    const dataEvents = 300 + whileDrDown.length;
    const remote = await readTopic(DR, `${p.source}.${p.dataTopic}`, dataEvents, 30_000);
    const ids = remote.map((r) => (JSON.parse(r.value!) as { id: string }).id);
    expect(ids.length).toBe(dataEvents);
    expect(new Set(ids).size).toBe(dataEvents);

    phase('6. the primary daemon; writes go on while it is down');
    await stop(primary);
    const whilePrimaryDown = upserts(2000, 200);
    await write(p, whilePrimaryDown);
    primary = rb.start('crr run --config crr.yaml --cluster primary', ['--http-port', String(p.primaryHttpPort)]);
    await caughtUp('the restarted primary daemon to apply what it missed', p.primaryHttpPort, whilePrimaryDown.length);
    await caughtUp('the DR side to apply them too', p.httpPort, whileDrDown.length + whilePrimaryDown.length);
    await rb.run('crr status --config crr.yaml');
    expect((await rb.run('crr verify --config crr.yaml')).stdout).toMatch(/EQUAL/);
    rb.done();
    expect(metricSum((await http(p.primaryHttpPort, '/metrics')).body, 'crr_replay_events_total')).toBe(whilePrimaryDown.length);
    expect(metricSum((await http(p.httpPort, '/metrics')).body, 'crr_replay_events_total')).toBe(whileDrDown.length + whilePrimaryDown.length);

    // 300 + 400 + 200 accounts, 50 deleted, 100 updated: the same on both sides
    const stores = [p.primarySchema, p.drSchema].map((schema) => new PostgresStore({ connectionString: PG_URL, schema }));
    try {
      for (const s of stores) {
        expect((await s.counts()).vertices.Account).toBe(850);
        const { rows } = await s.pool.query(
          `SELECT (attributes->>'balance')::int AS b FROM "${s === stores[0] ? p.primarySchema : p.drSchema}".vertices WHERE type = 'Account' AND id = 'a7'`,
        );
        expect(rows[0].b).toBe(-7);
      }
      expect(await stores[1]!.digest()).toBe(await stores[0]!.digest());
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
    phase('done');
  }, 120_000);
});
