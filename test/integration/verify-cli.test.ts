import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PostgresStore } from '../../src/store/postgres.js';
import type { StorePosition } from '../../src/store/store.js';
import { DR, PRIMARY, runCrr, uniq } from '../support/helpers.js';
import { Events } from '../support/store-events.js';

/**
 * `crr verify` as an operator runs it: the built CLI against two schemas of the PostgreSQL server
 * on this machine (trust auth), one per cluster. Verify reads stores only; the Kafka addresses
 * in the config are never contacted. Needs `npm run build` first (the CLI runs from dist/).
 */
const PG_URL = process.env.CRR_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const created: string[] = [];

afterAll(async () => {
  const pool = new pg.Pool({ connectionString: PG_URL, max: 1 });
  for (const schema of created) await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await pool.end();
});

const pos = (topic: string, partition: number, nextOffset: number): StorePosition => ({ topic, partition, nextOffset });

/**
 * A primary store and a DR store with the same graph at the same upstream positions (the DR one
 * also holds downstream positions of the remote topics it reads), and a config naming both.
 */
async function clusters(): Promise<{ configPath: string; primary: PostgresStore; dr: PostgresStore; close(): Promise<void> }> {
  const id = uniq();
  const schemas = { primary: `crr_verify_${id}_p`, dr: `crr_verify_${id}_d` };
  created.push(schemas.primary, schemas.dr);
  const primary = new PostgresStore({ connectionString: PG_URL, schema: schemas.primary });
  const dr = new PostgresStore({ connectionString: PG_URL, schema: schemas.dr });
  await Promise.all([primary.migrate(), dr.migrate()]);
  const e = new Events();
  const events = [
    e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'pop', type: 'INT' }] }),
    ...Array.from({ length: 50 }, (_, i) => e.upsertV('City', `c${i}`, { pop: i })),
    e.upsertV('Person', 'ada'),
    e.upsertE('lives_in', ['Person', 'ada'], ['City', 'c1']),
  ];
  const positions = [pos('graph.metadata', 0, 1), pos('graph.data', 0, 30), pos('graph.data', 1, 22)];
  await primary.applyBatch(events, positions);
  await dr.applyBatch(events, [...positions, pos('primary.graph.data', 0, 31), pos('primary.graph.data', 1, 25), pos('primary.graph.metadata', 0, 4)]);
  await primary.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 1 });
  await dr.setClusterState({ role: 'replica', state: 'REPLICATING', epoch: 1 });

  const dir = join(tmpdir(), 'crr-tests');
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, `verify-${id}.yaml`);
  writeFileSync(
    configPath,
    stringify({
      clusters: {
        primary: { bootstrapServers: [PRIMARY], store: { type: 'postgres', connectionString: PG_URL, schema: schemas.primary } },
        dr: { bootstrapServers: [DR], store: { type: 'postgres', connectionString: PG_URL, schema: schemas.dr } },
      },
      mirror: { flows: [{ source: 'primary', target: 'dr' }] },
    }),
  );
  return { configPath, primary, dr, close: async () => void (await Promise.all([primary.close(), dr.close()])) };
}

describe('crr verify (PostgreSQL stores)', () => {
  it('exits 0 with EQUAL when the DR store matches the primary at a common position', async () => {
    const c = await clusters();
    try {
      const { code, stdout, stderr } = await runCrr(['verify', '--config', c.configPath, '--timeout-ms', '5000']);
      expect(code, stderr).toBe(0);
      expect(stdout).toContain('verify primary -> dr');
      expect(stdout).toMatch(/graph\.data\s+1\s+22\s+22/);
      expect(stdout).toMatch(/vertices\s+City\s+50\s+50/);
      expect(stdout).not.toContain('primary.graph.data'); // the replica's downstream positions are not compared
      expect(stdout.trimEnd().split('\n').at(-1)).toBe('EQUAL');

      const json = await runCrr(['verify', '--config', c.configPath, '--json']);
      expect(json.code, json.stderr).toBe(0);
      const result = JSON.parse(json.stdout);
      expect(result).toMatchObject({
        equal: true,
        commonPosition: true,
        differences: [],
        primary: { alias: 'primary', epoch: 1 },
        replica: { alias: 'dr', epoch: 1 },
      });
      expect(result.primary.digest).toBe(result.replica.digest);
    } finally {
      await c.close();
    }
  });

  it('exits 1 naming the differing type when the DR store lost vertices', async () => {
    const c = await clusters();
    try {
      const e = new Events();
      await c.dr.applyBatch([e.deleteV('City', 'c7'), e.deleteV('City', 'c8')], []);
      const { code, stdout, stderr } = await runCrr(['verify', '--config', c.configPath, '--primary', 'primary', '--replica', 'dr', '--timeout-ms', '5000']);
      expect(code, stderr).toBe(1);
      expect(stdout).toContain('DIFFERENT:');
      expect(stdout).toContain('  - vertices City: primary 50, dr 48');
      expect(stdout).toMatch(/ {2}- digest: primary [0-9a-f]{64}, dr [0-9a-f]{64}/);
    } finally {
      await c.close();
    }
  });

  it('exits 3 when the stores reach no common position in time', async () => {
    const c = await clusters();
    try {
      await c.primary.applyBatch([new Events().upsertV('City', 'late')], [pos('graph.data', 1, 23)]);
      const { code, stdout, stderr } = await runCrr(['verify', '--config', c.configPath, '--timeout-ms', '300']);
      expect(code, stderr).toBe(3);
      expect(stdout).toContain('NOT COMPARABLE');
      expect(stdout).toContain('  - position graph.data[1]: primary 23, dr 22');
    } finally {
      await c.close();
    }
  });

  it('exits 78 naming the path when a cluster has no store, and 2 for an unknown alias', async () => {
    const dir = join(tmpdir(), 'crr-tests');
    mkdirSync(dir, { recursive: true });
    const configPath = join(dir, `verify-${uniq()}.yaml`);
    writeFileSync(
      configPath,
      stringify({
        clusters: {
          primary: { bootstrapServers: [PRIMARY] },
          dr: { bootstrapServers: [DR], store: { type: 'postgres', connectionString: PG_URL, schema: 'crr_never_opened' } },
        },
        mirror: { flows: [{ source: 'primary', target: 'dr' }] },
      }),
    );
    const noStore = await runCrr(['verify', '--config', configPath]);
    expect(noStore.code).toBe(78);
    expect(noStore.stderr).toContain('clusters.primary.store: required by crr verify');
    const unknown = await runCrr(['verify', '--config', configPath, '--replica', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown cluster alias "nope"');
    // a schema crr never created is refused, not taken for an empty store
    const never = join(dir, `verify-${uniq()}.yaml`);
    const nowhere = (schema: string) => ({ type: 'postgres', connectionString: PG_URL, schema });
    writeFileSync(
      never,
      stringify({
        clusters: {
          primary: { bootstrapServers: [PRIMARY], store: nowhere(`crr_nowhere_${uniq()}`) },
          dr: { bootstrapServers: [DR], store: nowhere(`crr_nowhere_${uniq()}`) },
        },
        mirror: { flows: [{ source: 'primary', target: 'dr' }] },
      }),
    );
    const notCreated = await runCrr(['verify', '--config', never]);
    expect(notCreated.code).toBe(70);
    expect(notCreated.stderr).toMatch(/the store of cluster primary has no crr tables/);
    const badTimeout = await runCrr(['verify', '--config', configPath, '--timeout-ms', 'soon']);
    expect(badTimeout.code).toBe(2);
    // an in-memory PGlite store would be a new, empty database: never "EQUAL" by accident
    const inMemory = join(dir, `verify-${uniq()}.yaml`);
    writeFileSync(
      inMemory,
      stringify({
        clusters: { primary: { bootstrapServers: [PRIMARY], store: {} }, dr: { bootstrapServers: [DR], store: {} } },
        mirror: { flows: [{ source: 'primary', target: 'dr' }] },
      }),
    );
    const memory = await runCrr(['verify', '--config', inMemory]);
    expect(memory.code).toBe(78);
    expect(memory.stderr).toContain('clusters.primary.store.dataDir: crr verify needs a store it can open');
  });
});
