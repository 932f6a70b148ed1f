import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { CrrError } from '../../src/errors.js';
import type { ChangeEvent } from '../../src/protocol/schema.js';
import { PostgresStore } from '../../src/store/postgres.js';
import {
  createTopic,
  PG_URL,
  PRIMARY,
  produce,
  readTopic,
  runCrr,
  uniq,
  useCrrProcesses,
  usePairs,
  type SeenRecord,
  type TestPair,
} from '../support/helpers.js';

// Issue 11, item 2: events that an old writer or a foreign producer put on a change topic, which
// PostgreSQL can never store (an id with U+0000, with a lone UTF-16 surrogate, or too long for a
// btree index entry). Before the fix each made replay fail on the store's error and start over
// at the same event, forever; now the protocol refuses them (so replay dead-letters them as
// `invalid` and crr write refuses them), and an event the store still refuses with a data error
// (SQLSTATE class 22, 23 or 54) is dead-lettered as `unapplicable` with its SQLSTATE.

const start = useCrrProcesses();
const pair = usePairs();
const DLQ = 'crr-dead-letters.internal';

/** A pair whose primary change topics exist (3 data partitions, 1 metadata), for raw records. */
async function pairWithTopics(): Promise<TestPair> {
  const p = pair();
  await createTopic(PRIMARY, p.dataTopic, 3);
  await createTopic(PRIMARY, p.metadataTopic, 1);
  return p;
}

/** 3000 bytes that pglz cannot compress: over PostgreSQL's btree limit (2704 bytes) even as an index entry. */
const LONG_ID = randomBytes(2250).toString('base64');

const envelope = (p: TestPair, id: string): Record<string, unknown> => ({ v: 1, id, ts: Date.now(), epoch: 0, origin: p.source });
const vertex = (p: TestPair, eventId: string, id: string, attributes: Record<string, unknown> = {}): Record<string, unknown> => ({
  ...envelope(p, eventId),
  op: 'UPSERT_VERTEX',
  vertex: { type: 'Person', id },
  attributes,
});

/** JSON of an event as bytes; JSON.stringify escapes a lone surrogate (`\ud800`), so it survives UTF-8. */
const bytes = (event: object): Buffer => Buffer.from(JSON.stringify(event), 'utf8');

async function count(sql: string, params: unknown[] = []): Promise<number> {
  const db = new pg.Client({ connectionString: PG_URL });
  await db.connect();
  try {
    return (await db.query<{ n: number }>(sql, params)).rows[0]!.n;
  } finally {
    await db.end();
  }
}

async function deadLetters(p: TestPair): Promise<SeenRecord[]> {
  return (await readTopic(PRIMARY, DLQ, 1, 30_000)).filter((r) => r.provenance['crr.dlq.cluster'] === p.source);
}

/**
 * `crr replay --exit-when-caught-up` of the primary, killed after `timeoutMs` (before the fix
 * it never ended: it started over at the same event), with its output.
 */
async function replay(p: TestPair, env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<{ code: number | null; stderr: string }> {
  const proc = start(['replay', '--config', p.configPath, '--cluster', p.source, '--exit-when-caught-up', '--http-port', '0'], env);
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
  const { code } = await proc.exited;
  clearTimeout(timer);
  return { code, stderr: proc.log() };
}

describe('unstorable events: written raw to a change topic, past an old writer', () => {
  it('each goes to the dead-letter topic naming the field; halt stops at them, skip passes them and applies what follows', async () => {
    const p = await pairWithTopics();
    const bad = [
      { id: 'nul-1', topic: 'data', event: vertex(p, 'nul-1', 'a\u0000b'), error: /vertex\.id: .*U\+0000/ },
      { id: 'surrogate-1', topic: 'data', event: vertex(p, 'surrogate-1', 'a\ud800b'), error: /vertex\.id: .*lone UTF-16 surrogate/ },
      { id: 'long-1', topic: 'data', event: vertex(p, 'long-1', LONG_ID), error: /vertex\.id: .*3000 bytes/ },
      {
        id: 'edge-1',
        topic: 'data',
        event: {
          ...envelope(p, 'edge-1'),
          op: 'UPSERT_EDGE',
          type: 'LINK',
          from: { type: 'Person', id: 'before-bad' },
          to: { type: 'Person', id: 'x\u0000' },
          attributes: {},
        },
        error: /to\.id: .*U\+0000/,
      },
      { id: 'attr-1', topic: 'data', event: vertex(p, 'attr-1', 'fine', { note: 'a\u0000b' }), error: /attributes\.note: .*U\+0000/ },
      {
        id: 'type-1',
        topic: 'metadata',
        event: { ...envelope(p, 'type-1'), op: 'CREATE_VERTEX_TYPE', name: 'T\u0000', primaryIdType: 'STRING', attributes: [] },
        error: /name: .*U\+0000/,
      },
    ];
    // partition 0 of the data topic: a good event, the bad ones, a good one after them
    await produce(PRIMARY, p.dataTopic, [
      { key: 'v:Person:before-bad', value: bytes(vertex(p, 'before-1', 'before-bad')), partition: 0 },
      ...bad.filter((b) => b.topic === 'data').map((b) => ({ key: `bad:${b.id}`, value: bytes(b.event), partition: 0 })),
      { key: 'v:Person:after-bad', value: bytes(vertex(p, 'after-1', 'after-bad')), partition: 0 },
    ]);
    await produce(PRIMARY, p.metadataTopic, [
      ...bad.filter((b) => b.topic === 'metadata').map((b) => ({ key: `bad:${b.id}`, value: bytes(b.event), partition: 0 })),
      {
        key: 'm:vertex_type:AfterBad',
        value: bytes({ ...envelope(p, 'after-2'), op: 'CREATE_VERTEX_TYPE', name: 'AfterBad', primaryIdType: 'STRING', attributes: [] }),
        partition: 0,
      },
    ]);

    // halt (the default): replay stops at the first of them and says why
    const halted = await replay(p);
    expect(halted.code, halted.stderr).toBe(5);
    expect(halted.stderr).toMatch(/not a valid change event .*(U\+0000|surrogate).*replay stops here/);
    expect(await count(`SELECT count(*)::int AS n FROM ${p.primarySchema}.vertices WHERE id = 'after-bad'`)).toBe(0);
    const first = await deadLetters(p);
    expect(first.length).toBeGreaterThanOrEqual(1);
    expect(first[0]!.provenance['crr.dlq.reason']).toBe('invalid');

    // skip: every one is dead-lettered with the field it breaks; the events after them are applied
    const skipped = await replay(p, { CRR__replay__deadLetterPolicy: 'skip' });
    expect(skipped.code, skipped.stderr).toBe(0);
    const letters = await deadLetters(p);
    for (const b of bad) {
      const letter = letters.find((r) => r.value !== null && (JSON.parse(r.value) as { id: string }).id === b.id);
      expect(letter, `dead letter of ${b.id}`).toBeDefined();
      expect(letter!.provenance).toMatchObject({ 'crr.dlq.reason': 'invalid', 'crr.dlq.topic': b.topic === 'data' ? p.dataTopic : p.metadataTopic });
      expect(letter!.provenance['crr.dlq.error']).toMatch(b.error);
    }
    // the dead letter keeps the record's bytes: the surrogate is still there
    const surrogate = letters.find((r) => r.value?.includes('surrogate-1'));
    expect((JSON.parse(surrogate!.value!) as { vertex: { id: string } }).vertex.id).toBe('a\ud800b');
    expect(await count(`SELECT count(*)::int AS n FROM ${p.primarySchema}.vertices WHERE id IN ('before-bad', 'after-bad')`)).toBe(2);
    expect(await count(`SELECT count(*)::int AS n FROM ${p.primarySchema}.catalog WHERE name = 'AfterBad'`)).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM ${p.primarySchema}.vertices WHERE id <> ALL($1)`, [['before-bad', 'after-bad']])).toBe(0);
  }, 180_000);

  it('an event the store refuses with a data error (SQLSTATE 23514) is dead-lettered as unapplicable with its SQLSTATE; halt stops there, skip passes it', async () => {
    const p = await pairWithTopics();
    await produce(PRIMARY, p.dataTopic, [{ key: 'v:Person:first', value: bytes(vertex(p, 'first-1', 'first')), partition: 0 }]);
    const ready = await replay(p);
    expect(ready.code, ready.stderr).toBe(0);
    // an operator's constraint the store enforces: the protocol cannot know of it
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    await db.query(`ALTER TABLE ${p.primarySchema}.vertices ADD CONSTRAINT no_forbidden CHECK (id <> 'forbidden')`);
    await db.end();
    await produce(PRIMARY, p.dataTopic, [
      { key: 'v:Person:good-before', value: bytes(vertex(p, 'good-1', 'good-before')), partition: 0 },
      { key: 'v:Person:forbidden', value: bytes(vertex(p, 'forbidden-1', 'forbidden')), partition: 0 },
      { key: 'v:Person:good-after', value: bytes(vertex(p, 'good-2', 'good-after')), partition: 0 },
    ]);

    const halted = await replay(p);
    expect(halted.code, halted.stderr).toBe(5);
    expect(halted.stderr).toMatch(/refused by the store .*23514.*replay stops here/);
    // the batch was retried event by event: the one before it is applied, the one after is not
    expect(await count(`SELECT count(*)::int AS n FROM ${p.primarySchema}.vertices WHERE id = 'good-before'`)).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM ${p.primarySchema}.vertices WHERE id = 'good-after'`)).toBe(0);
    const letters = await deadLetters(p);
    expect(letters.length).toBeGreaterThanOrEqual(1);
    expect(letters[0]!.provenance).toMatchObject({
      'crr.dlq.reason': 'unapplicable',
      'crr.dlq.sqlstate': '23514',
      'crr.dlq.topic': p.dataTopic,
      'crr.dlq.partition': '0',
    });
    expect(letters[0]!.provenance['crr.dlq.error']).toMatch(/no_forbidden/);
    expect((JSON.parse(letters[0]!.value!) as { id: string }).id).toBe('forbidden-1');

    const skipped = await replay(p, { CRR__replay__deadLetterPolicy: 'skip' });
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(await count(`SELECT count(*)::int AS n FROM ${p.primarySchema}.vertices WHERE id = 'good-after'`)).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM ${p.primarySchema}.vertices WHERE id = 'forbidden'`)).toBe(0);
  }, 180_000);

  it('the PostgreSQL store refuses them (bypassing the protocol) as CRR_STORE_APPLY with the SQLSTATE, not retriable', async () => {
    const schema = `crr_t_${uniq()}_u`;
    const store = new PostgresStore({ connectionString: PG_URL, schema });
    try {
      await store.migrate();
      const raw = (id: string, attributes: Record<string, unknown> = {}): ChangeEvent =>
        ({ v: 1, id: `e-${uniq()}`, ts: 1, epoch: 0, origin: 'primary', op: 'UPSERT_VERTEX', vertex: { type: 'Person', id }, attributes }) as ChangeEvent;
      const cases: Array<[string, ChangeEvent, RegExp]> = [
        ['U+0000 in an id', raw('a\u0000b'), /^22/],
        ['a lone surrogate in an id', raw('a\ud800b'), /^22/],
        ['a 3000-byte id', raw(LONG_ID), /^54/],
        ['U+0000 in an attribute', raw('fine', { note: 'a\u0000' }), /^22/],
        ['U+0000 in a catalog name', { v: 1, id: 'e-t', ts: 1, epoch: 0, origin: 'primary', op: 'DROP_USER', name: 'u\u0000' } as ChangeEvent, /^22/],
      ];
      for (const [what, event, sqlState] of cases) {
        const err = await store.applyBatch([event], []).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, what).toBeInstanceOf(CrrError);
        expect((err as CrrError).code, what).toBe('CRR_STORE_APPLY');
        expect((err as CrrError).retriable, what).toBe(false);
        expect((err as CrrError).sqlState, what).toMatch(sqlState);
      }
      // still a working store afterwards
      await store.applyBatch([raw('fine')], []);
      expect((await store.counts()).vertices).toEqual({ Person: 1 });
    } finally {
      await store.close();
      const db = new pg.Client({ connectionString: PG_URL });
      await db.connect();
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.end();
    }
  }, 60_000);
});

describe('crr write refuses them', () => {
  it.each([
    ['U+0000 in a vertex id', { op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'a\u0000b' }, attributes: {} }, /line 2\b.*vertex\.id: .*U\+0000/],
    [
      'a lone surrogate in an edge end',
      { op: 'DELETE_EDGE', type: 'LINK', from: { type: 'Person', id: 'a' }, to: { type: 'Person', id: '\udc00' } },
      /line 2\b.*to\.id: .*lone UTF-16 surrogate/,
    ],
    ['a 3000-byte vertex id', { op: 'DELETE_VERTEX', vertex: { type: 'Person', id: LONG_ID } }, /line 2\b.*vertex\.id: .*3000 bytes.*512/],
    ['U+0000 in a type name', { op: 'CREATE_VERTEX_TYPE', name: 'T\u0000', primaryIdType: 'STRING', attributes: [] }, /line 2\b.*name: .*U\+0000/],
  ])(
    '%s: exit 65 naming the line and the field, nothing written',
    async (_what, event, expected) => {
      const p = pair();
      const dir = join(tmpdir(), 'crr-tests');
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `unstorable-${uniq()}.ndjson`);
      const good = { op: 'UPSERT_VERTEX', vertex: { type: 'Person', id: 'ok' }, attributes: {} };
      writeFileSync(file, `${JSON.stringify(good)}\n${JSON.stringify(event)}\n`);
      const r = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
      expect(r.code, r.stdout + r.stderr).toBe(65);
      expect(r.stderr).toMatch(expected);
    },
    60_000,
  );
});
