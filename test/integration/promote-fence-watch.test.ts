import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { fenced } from '../../src/cluster/cluster-state.js';
import { CLUSTER_STATE_TOPIC, readPublishedClusterState } from '../../src/cluster/state.js';
import { fence, unfence } from '../../src/store/fence.js';
import { openStore } from '../../src/store/open.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { admin, client, http, metricValue, PG_URL, PRIMARY, runCrr, uniq, useCrrProcesses, usePairs, waitFor, type TestPair } from '../support/helpers.js';

/**
 * Issue 12: "Promotion fences the old primary through Kafka (ACLs and the published state its own
 * daemon obeys), not by writing into its database". The promotion runs with the DR region's
 * config, which has no store for the old primary; the old primary's daemon, with its own config,
 * records FENCED in its store and applies the store's write fence (src/replay/fence-watch.ts).
 */

const start = useCrrProcesses();
const pair = usePairs();
const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

/** Whether `role` may INSERT into the store's vertices table (PostgreSQL's own answer). */
async function mayInsert(store: PostgresStore, schema: string, role: string): Promise<boolean> {
  const { rows } = await store.pool.query<{ ok: boolean }>(`SELECT has_table_privilege($1, $2, 'INSERT') AS ok`, [role, `${schema}.vertices`]);
  return rows[0]!.ok;
}

/** The primary's store as its DBA sees it: a primary's application role may write (granted by hand). */
async function grantAppWrites(p: TestPair): Promise<void> {
  const store = new PostgresStore({ connectionString: PG_URL, schema: p.primarySchema });
  try {
    const roles = { schema: p.primarySchema, appRole: p.appRole, replayRole: p.replayRole };
    await fence(store.pool, roles); // creates the roles when missing
    await unfence(store.pool, roles);
    expect(await mayInsert(store, p.primarySchema, p.appRole)).toBe(true);
  } finally {
    await store.close();
  }
}

describe('crr promote: the old primary fenced through its Kafka, its daemon obeys; a PGlite replica', () => {
  it('a promotion whose config lacks the old primary store: the running old primary daemon records FENCED, fences its store, shows it; restarted with its store ACTIVE, it obeys at once and never publishes ACTIVE', async () => {
    const p = pair();
    const cfg = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    cfg.clusters[p.source].store = { ...cfg.clusters[p.source].store, appRole: p.appRole, replayRole: p.replayRole };
    writeFileSync(p.configPath, stringify(cfg));
    // the DR region's config: the old primary's Kafka, not its database
    const drOnly = structuredClone(cfg);
    delete drOnly.clusters[p.source].store;
    const drConfig = join(tmpdir(), 'crr-tests', `dr-only-${uniq()}.yaml`);
    writeFileSync(drConfig, stringify(drOnly));

    const events = [
      { op: 'CREATE_VERTEX_TYPE', name: 'Account', primaryIdType: 'STRING', attributes: [{ name: 'balance', type: 'INT' }] },
      ...Array.from({ length: 20 }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'Account', id: `a${i}` }, attributes: { balance: i } })),
    ];
    const file = join(tmpdir(), 'crr-tests', `fence-watch-${uniq()}.ndjson`);
    writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
    expect((await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file])).code).toBe(0);

    const runPrimary = () => start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    let old = runPrimary();
    await waitFor(
      'the primary to apply its writes',
      async () => {
        const s = await replay(p.primaryHttpPort).catch(() => undefined);
        return s?.eventsApplied >= 21 && s.lagRecords === 0;
      },
      60_000,
      300,
    );
    expect((await replay(p.primaryHttpPort)).clusterState).toMatchObject({ role: 'primary', state: 'ACTIVE' });
    await grantAppWrites(p);

    const promoted = await runCrr(['promote', '--config', drConfig, '--cluster', p.target, '--execute', '--json']);
    expect(promoted.code, promoted.stderr).toBe(0);
    const summary = JSON.parse(promoted.stdout);
    expect(summary).toMatchObject({ cluster: p.target, mode: 'graceful', oldPrimaryFenced: 'kafka', rpo: { records: 0 } });

    // the old primary's daemon obeys: its store, its write fence, /status, metrics
    const status = await waitFor(
      `the old primary's daemon to obey the published FENCED (log: ${old.logPath})`,
      async () => {
        const s = await replay(p.primaryHttpPort).catch(() => undefined);
        return s?.clusterState?.state === 'FENCED' && s.writeFence?.inPlace ? s : undefined;
      },
      30_000,
      300,
    );
    expect(status.clusterState).toMatchObject({ role: 'primary', state: 'FENCED', epoch: 0 });
    expect(status.clusterState.reason).toContain(`${p.target} was promoted (graceful)`);
    expect(status.writeFence).toMatchObject({ appRole: p.appRole, inPlace: true, problems: [] });
    const metrics = (await http(p.primaryHttpPort, '/metrics')).body;
    expect(metricValue(metrics, 'crr_cluster_state', 'state="FENCED"')).toBe(1);
    expect(metricValue(metrics, 'crr_write_fence_in_place')).toBe(1);
    expect(old.log()).toMatch(/is FENCED \(fenced: .* was promoted/);
    const store = new PostgresStore({ connectionString: PG_URL, schema: p.primarySchema });
    try {
      expect(await store.clusterState()).toMatchObject({ role: 'primary', state: 'FENCED', epoch: 0 });
      expect(await mayInsert(store, p.primarySchema, p.appRole)).toBe(false);

      // restarted after the promotion with its store still ACTIVE (the fence reached only its Kafka)
      old.child.kill('SIGTERM');
      expect((await old.exited).code).toBe(0);
      await store.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 0, reason: 'as if the fence never reached the store' });
      await grantAppWrites(p);
      old = runPrimary();
      await waitFor(
        `the restarted daemon to obey at once (log: ${old.logPath})`,
        async () => (await replay(p.primaryHttpPort).catch(() => undefined))?.writeFence?.inPlace === true,
        30_000,
        300,
      );
      expect(await store.clusterState()).toMatchObject({ role: 'primary', state: 'FENCED', epoch: 0 });
      expect(await mayInsert(store, p.primarySchema, p.appRole)).toBe(false);
    } finally {
      await store.close();
    }
    // it did not publish its stale ACTIVE over the fence: writers still refuse
    const a = await admin(PRIMARY);
    try {
      expect(await readPublishedClusterState(await client(PRIMARY), a, p.source)).toMatchObject({ role: 'primary', state: 'FENCED' });
    } finally {
      await a.disconnect();
    }
    const refused = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/fenced primary/);
  }, 180_000);

  it('a FENCED state published over at once by a stale ACTIVE one (the old primary daemon starting during the promotion) is still obeyed, and published again', async () => {
    const p = pair();
    const daemon = start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    await waitFor(
      'the primary daemon to run',
      async () => (await replay(p.primaryHttpPort).catch(() => undefined))?.clusterState?.state === 'ACTIVE',
      60_000,
      300,
    );
    // past its check at start: its own state is published right after it
    const a = await admin(PRIMARY);
    try {
      await waitFor(
        'the daemon to publish its state',
        async () => (await readPublishedClusterState(await client(PRIMARY), a, p.source))?.state === 'ACTIVE',
        30_000,
        300,
      );
    } finally {
      await a.disconnect();
    }
    const producer = (await client(PRIMARY)).producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const value = (state: object) => JSON.stringify({ ...state, updatedAtMs: Date.now() });
    await producer.send({
      topic: CLUSTER_STATE_TOPIC,
      acks: -1,
      messages: [
        { key: p.source, value: value(fenced(0, 'fenced: the test promoted its replica')) },
        { key: p.source, value: value({ role: 'primary', state: 'ACTIVE', epoch: 0, reason: 'a stale state published over the fence' }) },
      ],
    });
    await producer.disconnect();
    await waitFor(
      `the daemon to obey the FENCED state under the stale one (log: ${daemon.logPath})`,
      async () => (await replay(p.primaryHttpPort).catch(() => undefined))?.clusterState?.state === 'FENCED',
      30_000,
      300,
    );
    const b = await admin(PRIMARY);
    try {
      await waitFor(
        'FENCED published again',
        async () => (await readPublishedClusterState(await client(PRIMARY), b, p.source))?.state === 'FENCED',
        20_000,
        300,
      );
    } finally {
      await b.disconnect();
    }
  }, 120_000);

  it('a replica with a PGlite store is promoted (the promotion does not hold the store while its in-process replay opens it)', async () => {
    const p = pair();
    const cfg = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    const dataDir = join(tmpdir(), 'crr-tests', `pglite-dr-${uniq()}`);
    cfg.clusters[p.target].store = { type: 'pglite', dataDir };
    writeFileSync(p.configPath, stringify(cfg));
    const file = join(tmpdir(), 'crr-tests', `pglite-promote-${uniq()}.ndjson`);
    writeFileSync(file, JSON.stringify({ op: 'CREATE_VERTEX_TYPE', name: 'Account', primaryIdType: 'STRING', attributes: [] }));
    expect((await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file])).code).toBe(0);
    const promoted = await runCrr(['promote', '--config', p.configPath, '--cluster', p.target, '--execute', '--json']);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(JSON.parse(promoted.stdout)).toMatchObject({ cluster: p.target, toEpoch: 1, eventsReplayed: 1 });
    const store = openStore({ type: 'pglite', dataDir, schema: 'crr' });
    try {
      expect(await store.clusterState()).toMatchObject({ role: 'primary', state: 'ACTIVE', epoch: 1 });
    } finally {
      await store.close();
    }
  }, 120_000);
});
