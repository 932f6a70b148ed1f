import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { http, PG_URL, runCrr, useCrrProcesses, waitFor, type TestPair } from '../support/helpers.js';
import { useReseedPairs, writeEvents } from '../support/reseed-pair.js';

// Issue "Proven under faults", item 1: positions belong to one incarnation of a topic.
const start = useCrrProcesses();
const reseedPair = useReseedPairs();
const pool = new pg.Pool({ connectionString: PG_URL, max: 2 });
afterAll(async () => {
  await pool.end();
});

const city = { op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] };
const cities = (prefix: string, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `${prefix}${i}` }, attributes: { n: i } }));
const write = writeEvents;

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

async function caughtUp(p: TestPair, epoch: number): Promise<void> {
  await waitFor(
    `both stores caught up at epoch ${epoch}`,
    async () => {
      const [a, b] = await Promise.all([replay(p.primaryHttpPort).catch(() => undefined), replay(p.httpPort).catch(() => undefined)]);
      return (
        a?.lagRecords === 0 &&
        a.clusterState?.epoch === epoch &&
        b?.state === 'active' &&
        b.lagRecords === 0 &&
        b.clusterState?.state === 'REPLICATING' &&
        b.clusterState.epoch === epoch
      );
    },
    180_000,
    300,
  );
}

/** Ids of the City vertices whose id starts with `prefix` in a store schema. */
async function ids(schema: string, prefix: string): Promise<Set<string>> {
  const r = await pool.query<{ id: string }>(`SELECT id FROM ${schema}.vertices WHERE type = 'City' AND id LIKE $1`, [`${prefix}%`]);
  return new Set(r.rows.map((x) => x.id));
}

describe('crr admin reset while both regions run', () => {
  it('writes go on past the old positions: both stores hold every acknowledged event, the replica reseeds and verify says EQUAL', async () => {
    const p = await reseedPair({ mode: 'auto', bucketPrefix: 'reset' });
    await write(p, [city, ...cities('old', 600)]);
    start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await caughtUp(p, 0);

    const reset = await runCrr(['admin', 'reset', '--config', p.configPath, '--cluster', p.source, '--reason', 'test', '--execute']);
    expect(reset.code, reset.stdout + reset.stderr).toBe(0);
    // ~667 records per partition: past the old positions (~200 per partition), in slices while the daemons react
    for (let i = 0; i < 4; i++) await write(p, cities(`new${i}-`, 500));
    await caughtUp(p, 1);

    const expected = new Set(Array.from({ length: 4 }, (_, i) => Array.from({ length: 500 }, (_, j) => `new${i}-${j}`)).flat());
    // replay lag 0 on DR does not mean the mirror copied the last slice yet: wait (bounded) for the store to hold them
    await waitFor('the DR store to hold every acknowledged event', async () => (await ids(p.drSchema, 'new')).size >= expected.size, 120_000, 500).catch(
      () => undefined, // the assertions below name what is missing
    );
    for (const [side, schema] of [
      ['primary', p.primarySchema],
      ['dr', p.drSchema],
    ] as const) {
      const held = await ids(schema, 'new');
      const missing = [...expected].filter((id) => !held.has(id));
      expect(missing.length, `${side} is missing ${missing.length} acknowledged events, e.g. ${missing.slice(0, 5).join(', ')}`).toBe(0);
      expect((await ids(schema, 'old')).size, `${side} keeps the data from before the reset`).toBe(600);
    }
    // the swap brought a new schema: the fence is applied to it and checked in the catalogs again
    expect((await replay(p.httpPort)).writeFence).toMatchObject({ appRole: p.appRole, inPlace: true, problems: [] });
    const verify = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '120000']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/City\s+2600\s+2600/);
  }, 420_000);
});
