import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import { createKafka } from '../../src/kafka/client.js';
import { openStore } from '../../src/store/open.js';
import type { Store } from '../../src/store/store.js';
import { auditAgainstLog } from '../../src/verify/against-log.js';
import { http, PG_URL, runCrr, startCrr, uniq, useCrrProcesses, usePairs, waitFor, type TestPair } from '../support/helpers.js';

/**
 * `crr verify --against-log` as an operator runs it (the built CLI, real Kafka, the machine's
 * PostgreSQL): events are written with `crr write` and replayed into the primary's store with
 * `crr replay --exit-when-caught-up`; the audit then replays the primary's change topics into a
 * scratch schema and compares. Each test has its own primary (fresh schema and topics).
 * Needs `npm run build` first.
 */
const makePair = usePairs();
const start = useCrrProcesses();

/** A fresh primary/replica pair whose primary has a local backup repository. */
function pair(opts: Parameters<typeof makePair>[0] = {}): TestPair {
  const p = makePair(opts);
  const config = parseYaml(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
  config.clusters[p.source].backup = { repository: { type: 'local', path: join(tmpdir(), 'crr-tests', `audit-backups-${p.id}`) } };
  writeFileSync(p.configPath, stringify(config));
  return p;
}

/** Schema, 20 vertices, 10 edges and a user: 33 events. */
const initial = (): object[] => [
  { op: 'CREATE_VERTEX_TYPE', name: 'Person', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] },
  { op: 'CREATE_EDGE_TYPE', name: 'KNOWS', fromType: 'Person', toType: 'Person', directed: true, attributes: [] },
  ...Array.from({ length: 20 }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: `p${i}` }, attributes: { n: i } })),
  ...Array.from({ length: 10 }, (_, i) => ({
    op: 'UPSERT_EDGE',
    type: 'KNOWS',
    from: { type: 'Person', id: `p${i}` },
    to: { type: 'Person', id: `p${i + 1}` },
    attributes: {},
  })),
  { op: 'CREATE_USER', name: 'analyst', roles: ['queryreader'] },
];

async function write(p: TestPair, events: object[]): Promise<void> {
  const file = join(tmpdir(), 'crr-tests', `audit-${uniq()}.ndjson`);
  writeFileSync(file, `${events.map((e) => JSON.stringify(e)).join('\n')}\n`);
  const r = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
  expect(r.code, r.stderr).toBe(0);
}

async function replayPrimary(p: TestPair): Promise<void> {
  const r = await runCrr(['replay', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort), '--exit-when-caught-up']);
  expect(r.code, r.stdout + r.stderr).toBe(0);
}

const audit = (p: TestPair, ...args: string[]) => runCrr(['verify', '--against-log', '--cluster', p.source, '--config', p.configPath, ...args]);

async function sql<R extends Record<string, unknown>>(text: string, params: unknown[] = []): Promise<R[]> {
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  try {
    return (await db.query(text, params)).rows as R[];
  } finally {
    await db.end();
  }
}

/** Scratch schemas an audit of `p`'s primary left behind (there must be none). */
const scratchSchemas = async (p: TestPair): Promise<string[]> =>
  (await sql<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE nspname LIKE $1`, [`${p.primarySchema}_audit_%`])).map((r) => r.n);

describe('crr verify --against-log: a store audited against its own change log', () => {
  it('says EQUAL for a store replayed from its log, and DIFFERENT naming the vertex a loss both sides would share', async () => {
    const p = pair();
    await write(p, initial());
    await replayPrimary(p);

    const equal = await audit(p);
    expect(equal.code, equal.stdout + equal.stderr).toBe(0);
    expect(equal.stdout).toContain(`audit ${p.source} (primary) against its change log: ${p.dataTopic}, ${p.metadataTopic}`);
    expect(equal.stdout).toContain('from: the log start');
    expect(equal.stdout).toContain('replayed: 33 records read, 33 events applied, 0 skipped');
    expect(equal.stdout).toMatch(/vertices\s+Person\s+20\s+20/);
    expect(equal.stdout.trimEnd().split('\n').at(-1)).toBe('EQUAL');
    const json = await audit(p, '--json');
    expect(json.code, json.stderr).toBe(0);
    const result = JSON.parse(json.stdout);
    expect(result).toMatchObject({ outcome: 'equal', cluster: p.source, role: 'primary', from: { epoch: 0 }, comparison: { epoch: 0 } });
    expect(result.comparison.digests.store).toBe(result.comparison.digests.log);
    expect(await scratchSchemas(p)).toEqual([]);

    // a loss in the store that no replica would notice: it would have the same loss after a reseed from this store's backup
    await sql(`DELETE FROM ${p.primarySchema}.vertices WHERE type = 'Person' AND id = 'p7'`);
    const different = await audit(p);
    expect(different.code, different.stdout + different.stderr).toBe(1);
    expect(different.stdout).toMatch(/vertices\s+Person\s+19\s+20\s+<- differs/);
    expect(different.stdout).toContain('DIFFERENT: 1 vertices, 0 edges and 0 catalog entries differ between the store and its log');
    expect(different.stdout).toContain('  first: vertex Person/p7: the store has none; the log has {"n":7}');
    const dj = JSON.parse((await audit(p, '--json')).stdout);
    expect(dj).toMatchObject({
      outcome: 'different',
      comparison: { differing: { vertices: 1, edges: 0, catalog: 0 }, first: { section: 'vertices', key: { type: 'Person', id: 'p7' }, other: { n: 7 } } },
    });
    expect(dj.comparison.first).not.toHaveProperty('here');
    expect(await scratchSchemas(p)).toEqual([]);
  }, 120_000);

  it("audits a replica against its remote topics (upstream offsets, the mirror's transaction markers): EQUAL, then DIFFERENT naming a lost edge", async () => {
    const p = pair();
    await write(p, initial());
    const dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor(
      'the replica to replay every event',
      async () => {
        const s = JSON.parse((await http(p.httpPort, '/status')).body);
        return s.replay?.lagRecords === 0 && s.replay.eventsApplied >= 33;
      },
      90_000,
      300,
    );
    dr.child.kill('SIGTERM');
    expect((await dr.exited).code, dr.log()).toBe(0);

    const equal = await runCrr(['verify', '--against-log', '--cluster', p.target, '--config', p.configPath, '--json']);
    expect(equal.code, equal.stdout + equal.stderr).toBe(0);
    expect(JSON.parse(equal.stdout)).toMatchObject({
      outcome: 'equal',
      role: 'replica',
      topics: [p.remote(p.dataTopic), p.remote(p.metadataTopic)],
      replayed: { read: 33, applied: 33 },
    });
    await sql(`DELETE FROM ${p.drSchema}.edges WHERE from_id = 'p4'`);
    const different = await runCrr(['verify', '--against-log', '--cluster', p.target, '--config', p.configPath]);
    expect(different.code, different.stdout + different.stderr).toBe(1);
    expect(different.stdout).toContain('  first: edge KNOWS Person/p4 -> Person/p5: the store has none; the log has {}');
  }, 150_000);

  it("finds the loss crr verify cannot see: a primary's lost vertex, shared by a DR restored from its backup", async () => {
    const p = pair();
    await write(p, initial());
    await replayPrimary(p);
    await sql(`DELETE FROM ${p.primarySchema}.vertices WHERE type = 'Person' AND id = 'p3'`);
    const backup = await runCrr(['backup', 'create', '--config', p.configPath, '--cluster', p.source, '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const id = JSON.parse(backup.stdout).id as string;
    const restored = await runCrr(['restore', '--config', p.configPath, '--cluster', p.target, '--backup', id, '--execute']);
    expect(restored.code, restored.stdout + restored.stderr).toBe(0);

    // the two stores agree: the loss is on both sides
    const verify = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '5000']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/vertices\s+Person\s+19\s+19/);

    const primary = await audit(p);
    expect(primary.code, primary.stdout + primary.stderr).toBe(1);
    expect(primary.stdout).toContain('  first: vertex Person/p3: the store has none; the log has {"n":3}');
    // the DR store came from a backup, not from its remote topics (the mirror never ran): the log cannot explain it
    const dr = await runCrr(['verify', '--against-log', '--cluster', p.target, '--config', p.configPath]);
    expect(dr.code, dr.stdout + dr.stderr).toBe(6);
    expect(dr.stdout).toContain(`audit ${p.target} (replica) against its change log: ${p.remote(p.dataTopic)}, ${p.remote(p.metadataTopic)}`);
    expect(dr.stdout).toMatch(
      /CANNOT AUDIT: cannot audit from the log start past .*: the store holds .*'s records of .* below upstream offset \d+, but its log up to its position carries them to 0 only \(the store was restored from a backup\)/,
    );
  }, 120_000);

  it('refuses to audit past a DROP_ALL from the log start (exit 6), and says EQUAL from a backup taken after it', async () => {
    const p = pair();
    await write(p, initial());
    await replayPrimary(p);
    const dropped = await runCrr(['admin', 'drop-all', '--config', p.configPath, '--cluster', p.source, '--reason', 'audit test', '--execute']);
    expect(dropped.code, dropped.stdout + dropped.stderr).toBe(0);
    const after = [
      { op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [] },
      ...Array.from({ length: 5 }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${i}` }, attributes: {} })),
    ];
    await write(p, after);
    await replayPrimary(p); // passes the marker (its epoch is the store's) and applies the writes of epoch 1

    // the marker is the 4th record of the metadata topic: CREATE_VERTEX_TYPE, CREATE_EDGE_TYPE, CREATE_USER, DROP_ALL
    const refused = await audit(p);
    expect(refused.code, refused.stdout + refused.stderr).toBe(6);
    expect(refused.stdout).toContain(
      `CANNOT AUDIT: cannot audit from the log start past ${p.metadataTopic}[0]@3: a DROP_ALL marker (epoch 1) whose effect is not in the log; use --from-backup with a backup taken after it`,
    );
    expect(refused.stdout).not.toContain('EQUAL');
    expect(JSON.parse((await audit(p, '--json')).stdout)).toMatchObject({ outcome: 'cannot-audit', refusal: { at: `${p.metadataTopic}[0]@3` } });
    expect(await scratchSchemas(p)).toEqual([]);

    const backup = await runCrr(['backup', 'create', '--config', p.configPath, '--cluster', p.source, '--json']);
    expect(backup.code, backup.stderr).toBe(0);
    const id = JSON.parse(backup.stdout).id as string;
    // written after the backup: the audit replays these from the backup's positions
    await write(p, [
      { op: 'UPSERT_VERTEX', vertex: { type: 'City', id: 'c9' }, attributes: {} },
      { op: 'DELETE_VERTEX', vertex: { type: 'City', id: 'c0' } },
    ]);
    await replayPrimary(p);
    const fromBackup = await audit(p, '--from-backup', id);
    expect(fromBackup.code, fromBackup.stdout + fromBackup.stderr).toBe(0);
    expect(fromBackup.stdout).toContain(`from: backup ${id} (epoch 1)`);
    expect(fromBackup.stdout).toContain('replayed: 2 records read, 2 events applied');
    expect(fromBackup.stdout).toMatch(/vertices\s+City\s+5\s+5/);
    expect(fromBackup.stdout.trimEnd().split('\n').at(-1)).toBe('EQUAL');
    expect(await scratchSchemas(p)).toEqual([]);
    const unknown = await audit(p, '--from-backup', '20260101T000000Z-nope-0000');
    expect(unknown.code, unknown.stdout + unknown.stderr).toBe(2);
    expect(unknown.stderr).toContain('20260101T000000Z-nope-0000');
    expect(await scratchSchemas(p)).toEqual([]);
  }, 180_000);

  it('audits a PGlite store too: the scratch schema lives in the same PGlite database, and is gone afterwards', async () => {
    const p = pair({ primaryStore: 'pglite' });
    await write(p, initial());
    await replayPrimary(p);
    const r = await audit(p, '--json');
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result).toMatchObject({ outcome: 'equal', replayed: { read: 33, applied: 33 }, comparison: { differing: { vertices: 0 } } });
    // the daemon's replay finds its store as it was: the scratch schema was dropped from the PGlite database
    await write(p, [{ op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'late' }, attributes: { n: 1 } }]);
    await replayPrimary(p);
    const again = await audit(p);
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect(again.stdout).toContain('replayed: 34 records read, 34 events applied');
    const { PgliteStore } = await import('../../src/store/pglite.js');
    const config = parseYaml(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    const store = new PgliteStore({ dataDir: config.clusters[p.source].store.dataDir });
    try {
      const { rows } = await store.pglite.query<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE nspname LIKE 'crr_audit_%'`);
      expect(rows).toEqual([]);
    } finally {
      await store.close();
    }
  }, 120_000);

  it('drops its scratch schema when stopped by SIGTERM (exit 143) or SIGINT (exit 130) in the middle of the replay', async () => {
    const p = pair();
    await write(p, [
      { op: 'CREATE_VERTEX_TYPE', name: 'Person', primaryIdType: 'STRING', attributes: [] },
      ...Array.from({ length: 3000 }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: `p${i}` }, attributes: {} })),
    ]);
    await replayPrimary(p);
    for (const [signal, code] of [
      ['SIGTERM', 143],
      ['SIGINT', 130],
    ] as const) {
      // one event per scratch transaction: the replay into the scratch schema takes seconds
      const running = startCrr(['verify', '--against-log', '--cluster', p.source, '--config', p.configPath], { CRR__replay__maxBatchEvents: '1' });
      const scratch = await waitFor(
        'the audit to apply events to its scratch schema',
        async () => {
          const [name] = await scratchSchemas(p);
          if (!name) return undefined;
          const rows = await sql<{ n: number }>(`SELECT count(*)::int AS n FROM ${name}.vertices`).catch(() => [{ n: 0 }]);
          return rows[0]!.n > 0 ? name : undefined;
        },
        60_000,
        50,
      );
      running.child.kill(signal);
      const exited = await running.exited;
      expect(exited.code, running.log()).toBe(code);
      expect(running.log()).toContain(`crr verify: interrupted by ${signal}`);
      expect(await scratchSchemas(p), `${scratch} left behind`).toEqual([]);
    }
  }, 180_000);

  it('refuses bad arguments with exit 2, naming them', async () => {
    const p = pair();
    const run = (...args: string[]) => runCrr(['verify', '--config', p.configPath, ...args]);
    const cases: Array<[string[], string]> = [
      [['--against-log'], '--against-log needs --cluster <alias>'],
      [['--cluster', p.source], '--cluster is an option of --against-log'],
      [['--against-log', '--cluster', p.source, '--primary', p.source], '--against-log audits one cluster'],
      [['--against-log', '--cluster', 'nope'], 'unknown cluster alias "nope"'],
    ];
    for (const [args, message] of cases) {
      const r = await run(...args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(message);
    }
  }, 60_000);

  it('follows a store written during the audit: the scratch replays on to the positions of the snapshot it is compared in', async () => {
    const p = pair();
    await write(p, initial());
    await replayPrimary(p);
    await write(p, [
      { op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'moved1' }, attributes: { n: 1 } },
      { op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'moved2' }, attributes: { n: 2 } },
    ]);
    const config = loadConfig(p.configPath);
    const live = openStore(config.clusters[p.source]!.store!);
    let compared = 0;
    // replay applies the two new events between the audit's first replay and its first comparison
    const store = new Proxy(live, {
      get(target, key) {
        if (key === 'compareWithSchema') {
          return async (other: string) => {
            if (compared++ === 0) await replayPrimary(p);
            return target.compareWithSchema(other);
          };
        }
        const v = Reflect.get(target, key);
        return typeof v === 'function' ? v.bind(target) : v;
      },
    }) as Store;
    const log = pino({ level: 'silent' });
    try {
      const result = await auditAgainstLog(config, p.source, store, createKafka(p.source, config.clusters[p.source]!, 'audit-test', log, 'fatal'), {
        timeoutMs: 30_000,
        log,
      });
      expect(result).toMatchObject({ outcome: 'equal', rounds: 2, replayed: { read: 35, applied: 35 } });
      expect(result.comparison!.counts.store.vertices.Person).toBe(22);
    } finally {
      await live.close();
    }
    expect(await scratchSchemas(p)).toEqual([]);
  }, 120_000);
});
