import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeEvent, parseEvent } from '../../../src/protocol/codec.js';
import { PostgresStore } from '../../../src/store/postgres.js';
import { Runbook } from '../../support/runbook.js';
import { client, DR, http, metricValue, PG_URL, runCrr, testPair, uniq, useCrrProcesses, waitFor, type TestPair } from '../../support/helpers.js';

// docs/runbooks/planned-failover.md, step by step, under a live write load: a graceful promotion
// fences the old primary and drains the flow, so every write the old primary accepted is on the
// new primary (RPO 0).

const start = useCrrProcesses();

const upserts = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'Account', id: `a${from + i}` }, attributes: { balance: from + i } }));

async function write(p: TestPair, cluster: string, events: object[]): Promise<{ code: number | null; stderr: string }> {
  const file = join(tmpdir(), 'crr-tests', `promote-${uniq()}.ndjson`);
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
  const r = await runCrr(['write', '--config', p.configPath, '--cluster', cluster, '--file', file]);
  return { code: r.code, stderr: r.stderr };
}

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

describe('runbook: planned failover', () => {
  it('planned-failover.md under a live write load: RPO 0, the new primary takes writes, the old one refuses them, late old-epoch events are refused', async () => {
    const t0 = Date.now();
    const phase = (what: string): void => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)} s] ${what}`);
    const p = testPair({ dataPartitions: 3 });
    const rb = new Runbook('planned-failover', { 'crr.yaml': p.configPath, primary: p.source, dr: p.target }, start);
    const schema = { op: 'CREATE_VERTEX_TYPE', name: 'Account', primaryIdType: 'STRING', attributes: [{ name: 'balance', type: 'INT' }] };
    expect((await write(p, p.source, [schema, ...upserts(0, 500)])).code).toBe(0);
    start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    const dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor(
      'the DR side to catch up',
      async () => (await replay(p.httpPort).catch(() => undefined))?.lagRecords === 0 && (await replay(p.httpPort)).eventsApplied >= 501,
      90_000,
      300,
    );

    // the live load: batches of 300 upserts to the old primary until it refuses one
    const accepted: number[] = [];
    let refusedAt: number | undefined;
    let refusal = '';
    const load = (async () => {
      for (let b = 1; b < 200 && refusedAt === undefined; b++) {
        const r = await write(p, p.source, upserts(b * 1000, 300));
        if (r.code === 0) accepted.push(b);
        else if (r.code === 4) {
          refusedAt = Date.now();
          refusal = r.stderr;
        } else throw new Error(`crr write exited ${r.code}: ${r.stderr}`);
      }
    })();
    await waitFor('some batches written under load', () => accepted.length >= 2, 60_000, 100);

    phase('1. status;');
    // 1. status; a running daemon blocks the promotion, and the plan says so
    await rb.run('crr status --config crr.yaml');
    const blocked = await runCrr(['promote', '--config', p.configPath, '--cluster', p.target]);
    expect(blocked.code, blocked.stdout + blocked.stderr).toBe(3);
    expect(blocked.stdout).toMatch(/BLOCKED: .*replay of .* is running/);
    phase('2. stop the DR daemon;');
    // 2. stop the DR daemon; 3. the plan
    dr.child.kill('SIGTERM');
    expect((await dr.exited).code).toBe(0);
    expect((await rb.run('crr promote --config crr.yaml --cluster dr')).stdout).toMatch(/RPO: \d+ records .* not mirrored/);
    phase('4. promote');
    // 4. promote
    const promoteStarted = Date.now();
    const promoted = await rb.run('crr promote --config crr.yaml --cluster dr --execute');
    expect(promoted.stdout).toMatch(/promoted .* to primary \(graceful\)/);
    const summary = JSON.parse((await runCrr(['promote', '--config', p.configPath, '--cluster', p.target, '--execute', '--json'])).stdout);
    expect(summary).toMatchObject({ cluster: p.target, mode: 'graceful', fromEpoch: 0, toEpoch: 1, oldPrimaryFenced: 'store-and-kafka' });
    expect(summary.rpo.records).toBe(0);
    await load;
    expect(refusedAt, 'the old primary refused a write after the fence').toBeDefined();
    expect(refusal).toMatch(/fenced primary/);

    phase('RPO 0: once');
    // RPO 0: once the old primary's own replay has applied what it accepted, both stores are equal
    await waitFor('the old primary to apply what it accepted', async () => (await replay(p.primaryHttpPort))?.lagRecords === 0, 60_000, 300);
    const oldStore = new PostgresStore({ connectionString: PG_URL, schema: p.primarySchema });
    const newStore = new PostgresStore({ connectionString: PG_URL, schema: p.drSchema });
    try {
      expect((await newStore.counts()).vertices.Account).toBe(500 + accepted.length * 300);
      expect(await newStore.digest()).toBe(await oldStore.digest());
      expect(await newStore.clusterState()).toMatchObject({ role: 'primary', state: 'ACTIVE', epoch: 1 });
      expect(await oldStore.clusterState()).toMatchObject({ role: 'primary', state: 'FENCED' });
    } finally {
      await Promise.all([oldStore.close(), newStore.close()]);
    }

    phase('5. the promoted');
    // 5. the promoted cluster runs as primary (its recorded role), with the config unchanged, and takes writes
    rb.start('crr run --config crr.yaml --cluster dr');
    rb.done();
    const writeStarted = Date.now();
    const w = await write(p, p.target, upserts(900_000, 10));
    expect(w.code, w.stderr).toBe(0);
    console.log(
      `promotion under load: ${accepted.length} batches of 300 accepted by the old primary; crr promote ${summary.rtoSeconds.toFixed(1)} s in its own terms, ` +
        `${((refusedAt! - promoteStarted) / 1000).toFixed(1)} s from its start to the first refused write; a write to the new primary took ${((Date.now() - writeStarted) / 1000).toFixed(1)} s; RPO ${summary.rpo.records} records`,
    );
    await waitFor(
      'the new primary to apply its own writes',
      async () => {
        const s = await replay(p.httpPort).catch(() => undefined);
        return s?.role === 'primary' && s.lagRecords === 0 && s.eventsApplied >= 10;
      },
      60_000,
      300,
    );
    expect((await write(p, p.source, upserts(950_000, 1))).code, 'the old primary still refuses').toBe(4);

    phase('split brain');
    // split brain: a late event of the old epoch (an old writer) on the new primary's topic is counted and never applied
    const kafka = await client(DR);
    const producer = kafka.producer();
    await producer.connect();
    const late = parseEvent({
      v: 1,
      id: randomUUID(),
      ts: Date.now(),
      epoch: 0,
      origin: p.source,
      op: 'UPSERT_VERTEX',
      vertex: { type: 'Account', id: 'late-1' },
      attributes: { balance: -1 },
    });
    await producer.send({ topic: p.dataTopic, acks: -1, messages: [{ key: 'Account:late-1', value: encodeEvent(late) }] });
    await producer.disconnect();
    await waitFor(
      'the late event to be refused as stale-epoch',
      async () => metricValue((await http(p.httpPort, '/metrics')).body, 'crr_replay_events_skipped_total', 'reason="stale-epoch"') === 1,
      30_000,
      300,
    );
    const metrics = (await http(p.httpPort, '/metrics')).body;
    expect(metricValue(metrics, 'crr_promotions_total', 'mode="graceful"')).toBe(1);
    expect(metricValue(metrics, 'crr_cluster_epoch')).toBe(1);
    const check = new PostgresStore({ connectionString: PG_URL, schema: p.drSchema });
    try {
      const { rows } = await check.pool.query(`SELECT 1 FROM "${p.drSchema}".vertices WHERE type = 'Account' AND id = 'late-1'`);
      expect(rows).toHaveLength(0);
    } finally {
      await check.close();
    }

    phase('idempotent');
    // idempotent: promoting again only re-applies the last steps (the summary above came from such a second run)
    expect(summary.alreadyPromoted).toBe(true);
  }, 300_000);
});
