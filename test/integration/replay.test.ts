import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  admin,
  DR,
  http,
  metricValue,
  PG_URL,
  PRIMARY,
  produce,
  readTopic,
  runCrr,
  uniq,
  useCrrProcesses,
  usePairs,
  waitFor,
  type TestPair,
} from '../support/helpers.js';
import { prng } from '../support/store-events.js';

const start = useCrrProcesses();
const pair = usePairs();

/**
 * A deterministic mix of writer inputs (no envelope): two vertex types, vertices, edges,
 * attribute updates, deletes, and metadata that does not touch data (users, queries).
 */
function workload(seed: number, count: number, withSchema = true): object[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const ids = Array.from({ length: 60 }, (_, i) => `n${i}`);
  const types = ['Person', 'City'];
  const out: object[] = withSchema
    ? types.map((name) => ({ op: 'CREATE_VERTEX_TYPE', name, primaryIdType: 'STRING', attributes: [{ name: 'score', type: 'INT' }] }))
    : [];
  for (let i = 0; i < count; i++) {
    const r = rnd();
    const v = { type: pick(types), id: pick(ids) };
    if (r < 0.45) out.push({ op: 'UPSERT_VERTEX', vertex: v, attributes: { score: Math.floor(rnd() * 1000), seq: i } });
    else if (r < 0.55) out.push({ op: 'DELETE_VERTEX', vertex: v });
    else if (r < 0.85) out.push({ op: 'UPSERT_EDGE', type: 'LINK', from: v, to: { type: pick(types), id: pick(ids) }, attributes: { w: i } });
    else if (r < 0.98) out.push({ op: 'DELETE_EDGE', type: 'LINK', from: v, to: { type: pick(types), id: pick(ids) } });
    else out.push({ op: 'CREATE_QUERY', name: `q${i}`, text: `SELECT s FROM Person:s LIMIT ${i}` });
  }
  return out;
}

function ndjson(events: object[]): string {
  const file = join(tmpdir(), 'crr-tests', `events-${uniq()}.ndjson`);
  writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
  return file;
}

async function write(p: TestPair, cluster: string, events: object[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCrr(['write', '--config', p.configPath, '--cluster', cluster, '--file', ndjson(events)]);
}

async function status(port: number): Promise<any> {
  return JSON.parse((await http(port, '/status')).body);
}

/** Waits until `crr verify` says EQUAL (the stream may still be arriving), and returns its output. */
async function verifyEqual(p: TestPair): Promise<string> {
  const r = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '120000']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
  expect(r.stdout).toMatch(/EQUAL/);
  return r.stdout;
}

describe('replay: primary writer -> primary store, and -> mirror -> replay -> DR store', () => {
  it('converges to equal stores; the replica is fenced for applications and refuses crr write', async () => {
    const p = pair({ primaryStore: 'pglite' });
    const first = await write(p, p.source, workload(1, 3000));
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/wrote 3002 events/);
    const primaryRun = start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    const drRun = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor(
      'both stores caught up',
      async () => {
        const [a, b] = await Promise.all([status(p.primaryHttpPort).catch(() => undefined), status(p.httpPort).catch(() => undefined)]);
        return a?.replay.lagRecords === 0 && b?.replay.lagRecords === 0 && b.replay.eventsApplied > 0;
      },
      90_000,
      500,
    );

    // PGlite is one process's database: verify cannot open it while the primary daemon runs
    const locked = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '1000']);
    expect(locked.code).not.toBe(0);
    expect(locked.stderr).toMatch(/in use by process/);

    // the write fence: the application role reads the replica but cannot change it
    const app = new pg.Client({ connectionString: PG_URL.replace('postgres@', `${p.appRole}@`) });
    await app.connect();
    try {
      const { rows } = await app.query(`SELECT count(*)::int AS n FROM ${p.drSchema}.vertices`);
      expect(rows[0].n).toBeGreaterThan(0);
      for (const sql of [
        `INSERT INTO ${p.drSchema}.vertices (type, id, attributes) VALUES ('Person', 'intruder', '{}')`,
        `UPDATE ${p.drSchema}.vertices SET attributes = '{}'`,
        `DELETE FROM ${p.drSchema}.vertices`,
        `CREATE TABLE ${p.drSchema}.intruder (x int)`,
        `TRUNCATE ${p.drSchema}.edges`,
      ]) {
        await expect(app.query(sql), sql).rejects.toMatchObject({ code: '42501' });
      }
    } finally {
      await app.end();
    }

    // crr write to the replica: refused with exit 4, and nothing reaches the replica's own topics
    const refused = await write(p, p.target, workload(2, 10, false));
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/is a replica/);
    const drAdmin = await admin(DR);
    try {
      const drTopics = await drAdmin.listTopics();
      expect(drTopics).not.toContain(p.dataTopic);
      expect(drTopics).not.toContain(p.metadataTopic);
    } finally {
      await drAdmin.disconnect();
    }

    // replay keeps applying while applications are fenced: a second load arrives on both sides
    const second = await write(p, p.source, workload(3, 1000, false));
    expect(second.code, second.stderr).toBe(0);
    await waitFor(
      'the second load replayed on both sides',
      async () => {
        const [a, b] = await Promise.all([status(p.primaryHttpPort), status(p.httpPort)]);
        return a.replay.lagRecords === 0 && b.replay.lagRecords === 0 && b.replay.eventsApplied >= 4002 - 50;
      },
      60_000,
      500,
    );
    const metrics = (await http(p.httpPort, '/metrics')).body;
    expect(metricValue(metrics, 'crr_replay_events_total', 'op="UPSERT_VERTEX"')).toBeGreaterThan(0);
    expect(metricValue(metrics, 'crr_cluster_state', 'state="REPLICATING"')).toBe(1);
    expect(metricValue(metrics, 'crr_cluster_epoch')).toBe(0);

    // stop the PGlite primary, then compare the stores at a common position
    primaryRun.child.kill('SIGTERM');
    expect((await primaryRun.exited).code).toBe(0);
    const out = await verifyEqual(p);
    expect(out).toMatch(/Person/);
    drRun.child.kill('SIGTERM');
    expect((await drRun.exited).code).toBe(0);
  }, 240_000);
});

describe('replay: exactly once through SIGKILL', () => {
  it('the replica daemon killed three times mid-stream: the stores end equal at the same positions', async () => {
    const p = pair({ replay: { maxBatchEvents: 50 } });
    // the load arrives in slices of 500 events, four before the first kill, four after each kill:
    // every kill lands mid-stream, with events still to come
    const events = workload(4, 8000);
    let kills = 0;
    const load = (async () => {
      for (let i = 0, slice = 0; i < events.length; i += 500, slice++) {
        const after = Math.min(3, Math.floor(slice / 4));
        await waitFor(`kill ${after} before slice ${slice} of the load`, () => kills >= after, 200_000, 100);
        const r = await write(p, p.source, events.slice(i, i + 500));
        expect(r.code, r.stderr).toBe(0);
      }
    })();
    const primaryRun = start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    for (let round = 0; round < 3; round++) {
      const dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
      // killed once this run has applied events (the count is this process's): one batch more in each round
      const atLeast = 50 * (round + 1);
      await waitFor(
        `the replica to apply ${atLeast} events in this run`,
        async () => (await status(p.httpPort).catch(() => undefined))?.replay.eventsApplied >= atLeast,
        90_000,
        100,
      );
      dr.child.kill('SIGKILL');
      await dr.exited;
      kills += 1;
    }
    await load;
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await verifyEqual(p);
    primaryRun.child.kill('SIGTERM');
    await primaryRun.exited;
  }, 240_000);
});

describe('replay: a stalled replay process cannot apply over its successor (issue 11 item 3)', () => {
  it('two replica daemons, the active one SIGSTOPped mid-stream past its session timeout, then SIGCONTed: positions never move back, the stores end equal', async () => {
    const p = pair({ replay: { maxBatchEvents: 50 } });
    const events = workload(11, 6000);
    const primaryRun = start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    const portB = p.primaryHttpPort + 1000;
    const a = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor('daemon A to replay', async () => (await status(p.httpPort).catch(() => undefined))?.replay.state === 'active', 60_000, 200);
    const b = start(['run', '--config', p.configPath, '--cluster', p.target, '--http-port', String(portB)]);
    await waitFor('daemon B to stand by', async () => (await status(portB).catch(() => undefined))?.replay.state === 'standby', 60_000, 200);

    // the replica's positions, sampled from the store all along: none may ever move back
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    const seen = new Map<string, number>();
    const regressions: string[] = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const { rows } = await db.query(`SELECT topic, partition, next_offset::text AS n FROM ${p.drSchema}.positions`).catch(() => ({ rows: [] as any[] }));
        for (const r of rows) {
          const k = `${r.topic}[${r.partition}]`;
          const n = Number(r.n);
          if (n < (seen.get(k) ?? 0)) regressions.push(`${k}: ${seen.get(k)} -> ${n}`);
          seen.set(k, Math.max(n, seen.get(k) ?? 0));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    try {
      const load = (async () => {
        for (let i = 0; i < events.length; i += 500) {
          const r = await write(p, p.source, events.slice(i, i + 500));
          expect(r.code, r.stderr).toBe(0);
        }
      })();
      await waitFor('A to apply 200 events', async () => (await status(p.httpPort).catch(() => undefined))?.replay.eventsApplied >= 200, 90_000, 50);
      a.child.kill('SIGSTOP');
      // B takes over once A's group session (6 s) expires; its activation fences A in the store
      await waitFor('B to replay', async () => (await status(portB).catch(() => undefined))?.replay.state === 'active', 60_000, 200);
      await waitFor('B to apply events', async () => (await status(portB).catch(() => undefined))?.replay.eventsApplied > 0, 60_000, 200);
      a.child.kill('SIGCONT');
      await load;
      await verifyEqual(p);
      expect(regressions).toEqual([]);
      // B's activation raised the store's replay fence past A's: whatever A had in flight when it resumed was refused
      const fence = await db.query(`SELECT generation::int AS g FROM ${p.drSchema}.replay_fence`);
      expect(fence.rows[0].g).toBeGreaterThanOrEqual(2);
    } finally {
      sampling = false;
      await sampler;
      await db.end();
      for (const c of [a, b, primaryRun]) c.child.kill('SIGCONT');
    }
  }, 300_000);
});

describe('replay: what it will not apply', () => {
  it('an event with an epoch above the store stops replay and makes the replica OUTDATED', async () => {
    const p = pair();
    expect((await write(p, p.source, workload(5, 200))).code).toBe(0);
    const dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor('the replica to catch up', async () => (await status(p.httpPort).catch(() => undefined))?.replay.lagRecords === 0, 60_000, 300);
    const ahead = {
      v: 1,
      id: 'ahead-1',
      ts: Date.now(),
      epoch: 7,
      origin: p.source,
      op: 'UPSERT_VERTEX',
      vertex: { type: 'Person', id: 'late' },
      attributes: {},
    };
    await produce(PRIMARY, p.dataTopic, [{ key: 'v:Person:late', value: JSON.stringify(ahead), partition: 0 }]);
    await waitFor('the replica to be OUTDATED', async () => (await status(p.httpPort)).replay.state === 'outdated', 60_000, 300);
    const s = await status(p.httpPort);
    expect(s.replay.clusterState).toMatchObject({ role: 'replica', state: 'OUTDATED', epoch: 0 });
    expect(s.replay.haltReason).toMatch(/epoch 7, above the store's epoch 0/);
    const metrics = (await http(p.httpPort, '/metrics')).body;
    expect(metricValue(metrics, 'crr_cluster_state', 'state="OUTDATED"')).toBe(1);
    expect(metricValue(metrics, 'crr_replay_halted')).toBe(1);
    // the event was not applied
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${p.drSchema}.vertices WHERE id = 'late'`);
    await db.end();
    expect(rows[0].n).toBe(0);
    // crr status shows the reason, read from the state crr published on the replica's Kafka
    const st = await runCrr(['status', '--config', p.configPath]);
    expect(st.code, st.stdout + st.stderr).toBe(1);
    expect(st.stdout).toMatch(new RegExp(`cluster ${p.target}: replica OUTDATED, epoch 0, since .*: event ahead-1 \\(UPSERT_VERTEX\\) at .* has epoch 7`));
    expect(st.stdout).toMatch(new RegExp(`cluster ${p.source}: no state published yet`));
    // a restart stays OUTDATED (the reseed cures it, not a restart)
    dr.child.kill('SIGKILL');
    await dr.exited;
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor(
      'the restarted replica to report OUTDATED',
      async () => (await status(p.httpPort).catch(() => undefined))?.replay.state === 'outdated',
      60_000,
      300,
    );
  }, 180_000);

  it('a sync-breaking marker on the primary makes the replica OUTDATED with its reason', async () => {
    const p = pair();
    expect((await write(p, p.source, workload(6, 100))).code).toBe(0);
    const marker = { v: 1, id: 'drop-1', ts: Date.now(), epoch: 0, origin: p.source, op: 'DROP_ALL', reason: 'operator dropped everything' };
    await produce(PRIMARY, p.metadataTopic, [{ key: 'marker', value: JSON.stringify(marker), partition: 0 }]);
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor('the replica to be OUTDATED', async () => (await status(p.httpPort).catch(() => undefined))?.replay.state === 'outdated', 60_000, 300);
    expect((await status(p.httpPort)).replay.haltReason).toMatch(/sync-breaking DROP_ALL at .*: operator dropped everything/);
  }, 120_000);

  it('a malformed event goes to the dead-letter topic with its reason; halt stops there, skip passes it', async () => {
    const p = pair();
    expect((await write(p, p.source, workload(7, 50))).code).toBe(0);
    await produce(PRIMARY, p.dataTopic, [
      {
        key: 'bad',
        value: JSON.stringify({
          v: 1,
          id: 'bad-1',
          ts: Date.now(),
          epoch: 0,
          origin: p.source,
          op: 'UPSERT_VERTEX',
          vertex: { type: 'Person' },
          attributes: {},
        }),
        partition: 1,
      },
    ]);
    expect((await write(p, p.source, [{ op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'after-bad' }, attributes: {} }])).code).toBe(0);

    const halted = await runCrr(['replay', '--config', p.configPath, '--cluster', p.source, '--exit-when-caught-up', '--http-port', '0']);
    expect(halted.code, halted.stderr).toBe(5);
    expect(halted.stderr).toMatch(/not a valid change event .*vertex\.id: missing.*replay stops here/);

    const dlq = (await readTopic(PRIMARY, 'crr-dead-letters.internal', 1, 30_000)).filter((r) => r.provenance['crr.dlq.cluster'] === p.source);
    expect(dlq.length).toBeGreaterThanOrEqual(1);
    expect(dlq[0]!.provenance).toMatchObject({ 'crr.dlq.reason': 'invalid', 'crr.dlq.topic': p.dataTopic, 'crr.dlq.partition': '1' });
    expect(dlq[0]!.provenance['crr.dlq.error']).toMatch(/vertex\.id: missing/);
    expect(JSON.parse(dlq[0]!.value!).id).toBe('bad-1');

    const skipped = await runCrr(['replay', '--config', p.configPath, '--cluster', p.source, '--exit-when-caught-up', '--http-port', '0'], {
      CRR__replay__deadLetterPolicy: 'skip',
    });
    expect(skipped.code, skipped.stderr).toBe(0);
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM ${p.primarySchema}.vertices WHERE id = 'after-bad'`);
    await db.end();
    expect(rows[0].n).toBe(1);
  }, 180_000);
});
