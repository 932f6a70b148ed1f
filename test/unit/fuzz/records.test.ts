import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCheckpoint, encodeCheckpoint, type Checkpoint } from '../../../src/checkpoint/checkpoint.js';
import { PRIMARY_STATES, REPLICA_STATES } from '../../../src/cluster/cluster-state.js';
import { CLUSTER_STATE_TOPIC, decodePublishedClusterState, type PublishedClusterState } from '../../../src/cluster/state.js';
import type { CrrError, ErrorCode } from '../../../src/errors.js';
import { decodePosition, encodePosition, type Position } from '../../../src/replication/positions.js';
import { decodeOffsetSync, encodeOffsetSync, type OffsetSync } from '../../../src/replication/offset-sync.js';
import { fuzz, jsonText, mutate, mutation, nastyBytes, nastyJson, nastyNumber, nastyString, outcome, pathsOf, type JsonPath } from './fuzz-helpers.js';

/**
 * The records crr reads back from its own internal topics, which another crr process (another
 * version, a zombie, an operator with kafka-console-producer) may have written: mirror positions
 * (src/mirror/positions.ts), offset syncs (src/replication/offset-sync.ts), checkpoints
 * (src/checkpoint/checkpoint.ts) and the published cluster state (src/cluster/state.ts). Each
 * decoder returns a valid value or throws its CrrError naming the field, whatever the bytes.
 */

const FLOW = 'primary->dr';
const isCount = (n: unknown): boolean => Number.isSafeInteger(n) && (n as number) >= 0;
const buf = (text: string): Buffer => Buffer.from(text, 'utf8');

/** One key/value JSON record decoder under test. */
interface RecordCodec<T> {
  code: ErrorCode;
  decode(key: Buffer | null, value: Buffer | null): T | undefined;
  /** Asserts a decoded value is valid. */
  valid(decoded: T | undefined): void;
  /** What every message of the decoder's CrrError looks like (names the key, the value, a field). */
  where: RegExp;
  /** Fields of the key and of the value, as messages name them. */
  fields: { key: string[]; value: string[] };
  /** Valid records: the key and value objects, and what decoding them gives. */
  records: fc.Arbitrary<{ key: Record<string, unknown>; value: Record<string, unknown>; decoded: T }>;
  /** Encodes a decoded value again (the writer's side). */
  encode(decoded: T): { key: Buffer; value: Buffer };
}

const topic = nastyString;
const count = fc.oneof(fc.nat(), fc.maxSafeNat());

const positions: RecordCodec<{ topic: string; partition: number; position: Position | null }> = {
  code: 'CRR_POSITION_CORRUPT',
  decode: (k, v) => decodePosition(FLOW, k, v),
  valid: (d) => {
    if (d === undefined) return;
    expect(typeof d.topic).toBe('string');
    expect(isCount(d.partition), `partition ${d.partition}`).toBe(true);
    if (d.position === null) return;
    for (const f of ['offset', 'timestampMs', 'committedAtMs'] as const) expect(isCount(d.position[f]), `${f} ${String(d.position[f])}`).toBe(true);
    if (d.position.resumeDownstream !== undefined) expect(isCount(d.position.resumeDownstream)).toBe(true);
    if (d.position.topicId !== undefined) expect(d.position.topicId).toMatch(/^[0-9a-f-]{36}$/);
  },
  where:
    /^position (record without a key|key is not JSON|key is not a JSON object|key lacks (topic|partition)|value for .*:\d+ is invalid: (not JSON|not a JSON object|offset|timestampMs|committedAtMs|resumeDownstream|topicId))/s,
  fields: { key: ['topic', 'partition'], value: ['offset', 'timestampMs', 'committedAtMs'] },
  records: fc.record({ topic, partition: count, offset: count, timestampMs: count, committedAtMs: count }).map(({ topic, partition, ...position }) => ({
    key: { flow: FLOW, topic, partition },
    value: position,
    decoded: { topic, partition, position },
  })),
  encode: (d) => encodePosition(FLOW, d.topic, d.partition, d.position!) as { key: Buffer; value: Buffer },
};

const offsetSyncs: RecordCodec<OffsetSync> = {
  code: 'CRR_OFFSET_SYNC_CORRUPT',
  decode: (k, v) => decodeOffsetSync(FLOW, k, v),
  valid: (d) => {
    if (d === undefined) return;
    expect(typeof d.topic).toBe('string');
    for (const f of ['partition', 'upstreamOffset', 'downstreamOffset'] as const) expect(isCount(d[f]), `${f} ${d[f]}`).toBe(true);
  },
  where:
    /^offset sync (key is not JSON|value is not JSON|record is invalid \((key\.topic|key\.partition|value \(not a JSON object\)|value\.upstreamOffset|value\.downstreamOffset)(, |\)))/s,
  fields: { key: ['key.topic', 'key.partition'], value: ['value.upstreamOffset', 'value.downstreamOffset'] },
  records: fc.record({ topic, partition: count, upstreamOffset: count, downstreamOffset: count }).map((s) => ({
    key: { flow: FLOW, topic: s.topic, partition: s.partition },
    value: { upstreamOffset: s.upstreamOffset, downstreamOffset: s.downstreamOffset },
    decoded: s,
  })),
  encode: (d) => encodeOffsetSync(FLOW, d) as { key: Buffer; value: Buffer },
};

const checkpoints: RecordCodec<Checkpoint> = {
  code: 'CRR_CHECKPOINT_CORRUPT',
  decode: decodeCheckpoint,
  valid: (d) => {
    if (d === undefined) return;
    for (const f of ['group', 'topic', 'metadata'] as const) expect(typeof d[f]).toBe('string');
    for (const f of ['partition', 'upstreamOffset', 'downstreamOffset', 'checkpointedAtMs'] as const) expect(isCount(d[f]), `${f} ${d[f]}`).toBe(true);
  },
  where:
    /^checkpoint record is invalid \((the key is not JSON|the value is not JSON|(key \(not a JSON object\)|key\.group|key\.topic|key\.partition|value \(not a JSON object\)|value\.upstreamOffset|value\.downstreamOffset)(, |\)))/s,
  fields: { key: ['key.group', 'key.topic', 'key.partition'], value: ['value.upstreamOffset', 'value.downstreamOffset'] },
  records: fc
    .record({ group: nastyString, topic, partition: count, upstreamOffset: count, downstreamOffset: count, metadata: nastyString, checkpointedAtMs: count })
    .map((c) => ({
      key: { group: c.group, topic: c.topic, partition: c.partition },
      value: { upstreamOffset: c.upstreamOffset, downstreamOffset: c.downstreamOffset, metadata: c.metadata, checkpointedAtMs: c.checkpointedAtMs },
      decoded: c,
    })),
  encode: (d) => encodeCheckpoint(d) as { key: Buffer; value: Buffer },
};

/** Key or value bytes: nothing (a tombstone, a record without a key), arbitrary bytes, or any JSON text. */
const part = fc.oneof(fc.constant(null), nastyBytes, nastyJson.chain(jsonText).map(buf));

/** The four properties of a record decoder: 10 000 runs in all. */
function fuzzRecords<T>(name: string, c: RecordCodec<T>, seed: number): void {
  const check = (key: Buffer | null, value: Buffer | null): void =>
    outcome(
      () => c.decode(key, value),
      c.code,
      c.valid,
      (err: CrrError) => expect(err.message).toMatch(c.where),
    );

  fuzz(`${name}: arbitrary key and value bytes give a record or ${c.code}`, seed, 3000, (options) => {
    fc.assert(fc.property(part, part, check), options);
  });

  fuzz(`${name}: a valid key (this flow) with an arbitrary value, a valid value with an arbitrary key`, seed + 1, 2000, (options) => {
    const record = c.records.chain((r) => fc.tuple(fc.constant(r), part, part, fc.boolean()));
    fc.assert(
      fc.property(record, ([r, key, value, keepKey]) => (keepKey ? check(buf(JSON.stringify(r.key)), value) : check(key, buf(JSON.stringify(r.value))))),
      options,
    );
  });

  fuzz(
    `${name}: a mutated valid record (a field dropped, of a wrong type, huge, 1e400, a key added) is refused naming the field, or is valid`,
    seed + 2,
    3000,
    (options) => {
      const mutated = c.records.chain((r) =>
        fc.tuple(fc.constant(r), fc.constantFrom<'key' | 'value'>('key', 'value')).chain(([r, side]) => {
          const doc = r[side];
          const paths: JsonPath[] = [[], ...pathsOf(doc)];
          return fc.tuple(fc.constant(r), fc.constant(side), fc.constantFrom(...paths), mutation, fc.constantFrom('plain', '1e400'));
        }),
      );
      fc.assert(
        fc.property(mutated, ([r, side, path, m, spelling]) => {
          const { doc, at } = mutate(r[side], path, m);
          let text = JSON.stringify(doc) ?? '';
          if (spelling === '1e400') text = text.replace(/(?<=:)-?\d+(\.\d+)?(e[+-]?\d+)?(?=[,}])/, '1e400');
          const key = side === 'key' ? buf(text) : buf(JSON.stringify(r.key));
          const value = side === 'value' ? buf(text) : buf(JSON.stringify(r.value));
          outcome(
            () => c.decode(key, value),
            c.code,
            c.valid,
            (err) => {
              expect(err.message).toMatch(c.where);
              // a field of a wrong type is named (a field dropped or set may also break only the flow: then nothing is decoded)
              const field = at.length > 0 && typeof at[0] === 'string' ? at[0] : undefined;
              const named = c.fields[side].find((f) => f === field || f.endsWith(`.${field}`));
              if (named !== undefined && spelling === 'plain' && m.kind !== 'add') expect(err.message).toContain(named);
            },
          );
        }),
        options,
      );
    },
  );

  fuzz(`${name}: a valid record decodes to itself, and encodes to the same record`, seed + 3, 2000, (options) => {
    fc.assert(
      fc.property(c.records, (r) => {
        const decoded = c.decode(buf(JSON.stringify(r.key)), buf(JSON.stringify(r.value)));
        expect(decoded).toEqual(r.decoded);
        const again = c.encode(decoded!);
        expect(c.decode(again.key, again.value)).toEqual(r.decoded);
      }),
      options,
    );
  });
}

describe('fuzz: records of crr internal topics', () => {
  fuzzRecords('decodePosition (mirror positions)', positions, 0x9051);
  fuzzRecords('decodeOffsetSync (offset syncs)', offsetSyncs, 0x0ff5);
  fuzzRecords('decodeCheckpoint (checkpoints)', checkpoints, 0xc4e0);

  it('a position of another flow is skipped; a record without a key is refused', () => {
    expect(decodePosition(FLOW, buf('{"flow":"other->dr","topic":"t","partition":0}'), buf('null'))).toBeUndefined();
    outcome(
      () => decodePosition(FLOW, null, buf('{}')),
      'CRR_POSITION_CORRUPT',
      () => expect.unreachable(),
      (err) => expect(err.message).toMatch(/without a key/),
    );
  });

  // found by 'decodePosition: arbitrary key and value bytes' (seed 36945, counterexample key and
  // value `null`): the key `null` made
  // decodePosition read `null.flow` (a TypeError escaped)
  it('a position key that is JSON but not an object is refused', () => {
    for (const key of ['null', '5', '"x"', '[]'])
      outcome(
        () => decodePosition(FLOW, buf(key), buf('{"offset":1}')),
        'CRR_POSITION_CORRUPT',
        () => expect.unreachable(key),
        (err) => expect(err.message).toMatch(/key is not a JSON object/),
      );
  });

  // found by 'decodeOffsetSync: a valid key (this flow) with an arbitrary value' (seed 4086): the
  // value `null` made decodeOffsetSync read `null.upstreamOffset` (a TypeError escaped)
  it('an offset sync value that is JSON but not an object is refused, naming it', () => {
    outcome(
      () => decodeOffsetSync(FLOW, buf(`{"flow":"${FLOW}","topic":"t","partition":0}`), buf('null')),
      'CRR_OFFSET_SYNC_CORRUPT',
      () => expect.unreachable(),
      (err) => expect(err.message).toContain('value (not a JSON object)'),
    );
  });
});

// --- the published cluster state -------------------------------------------------------------

/** A backup id as a cluster state refers to it (`backupId`, docs/glossary.md "backup id"). */
const backupIdRef = fc
  .tuple(
    fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2999-12-31T23:59:59Z'), noInvalidDate: true }),
    fc.stringMatching(/^[a-z0-9_-]{1,20}$/),
    fc.stringMatching(/^[0-9a-f]{4}$/),
  )
  .map(
    ([t, alias, hex]) =>
      `${t
        .toISOString()
        .replace(/\.\d{3}Z$/, 'Z')
        .replace(/[-:]/g, '')}-${alias}-${hex}`,
  );

const states = fc
  .oneof(
    fc.record({
      role: fc.constant('primary' as const),
      state: fc.constantFrom(...PRIMARY_STATES),
      epoch: count,
      reason: fc.option(nastyString, { nil: undefined }),
      updatedAtMs: fc.integer({ min: 0, max: 8.64e15 }),
    }),
    fc.record({
      role: fc.constant('replica' as const),
      state: fc.constantFrom(...REPLICA_STATES),
      epoch: count,
      reason: fc.option(nastyString, { nil: undefined }),
      backupId: fc.option(backupIdRef, { nil: undefined }),
      updatedAtMs: fc.integer({ min: 0, max: 8.64e15 }),
    }),
  )
  .map((s) => (s.reason === undefined ? (({ reason: _r, ...rest }) => rest)(s) : s))
  .map((s) => ('backupId' in s && s.backupId === undefined ? (({ backupId: _b, ...rest }) => rest)(s) : s) as PublishedClusterState);

function validState(s: PublishedClusterState): void {
  expect(s.role === 'primary' ? (PRIMARY_STATES as readonly string[]).includes(s.state) : (REPLICA_STATES as readonly string[]).includes(s.state)).toBe(true);
  expect(isCount(s.epoch)).toBe(true);
  expect(s.reason === undefined || typeof s.reason === 'string').toBe(true);
  // what `crr status` does with it
  expect(() => new Date(s.updatedAtMs).toISOString()).not.toThrow();
}

const stateWhere = (err: CrrError, field?: string): void => {
  expect(err.message).toMatch(
    new RegExp(
      `^the state of cluster dr in ${CLUSTER_STATE_TOPIC.replaceAll('.', '\\.')} is invalid: (not JSON|not a JSON object|(\\(root\\)|role|state|epoch|reason|backupId): )`,
      's',
    ),
  );
  if (field !== undefined) expect(err.message).toContain(`${field}: `);
};

const decodeState = (value: Buffer, field?: string): void =>
  outcome(
    () => decodePublishedClusterState('dr', value),
    'CRR_STATE_CORRUPT',
    validState,
    (err) => stateWhere(err, field),
  );

describe('fuzz: decodePublishedClusterState (crr-cluster-state.internal)', () => {
  fuzz('arbitrary bytes and JSON give a state or CRR_STATE_CORRUPT', 0x57a7e, 4000, (options) => {
    fc.assert(
      fc.property(fc.oneof(nastyBytes, nastyJson.chain(jsonText).map(buf)), (v) => decodeState(v)),
      options,
    );
  });

  fuzz(
    'a mutated valid state (a field dropped, of a wrong type, huge, 1e400, a key added) is refused naming the field, or is valid',
    0x57a7f,
    4000,
    (options) => {
      const mutated = states.chain((s) => fc.tuple(fc.constant(s), fc.constantFrom<JsonPath>([], ...pathsOf(s)), mutation, fc.constantFrom('plain', 'inf')));
      fc.assert(
        fc.property(mutated, ([s, path, m, spelling]) => {
          const { doc, at } = mutate(s, path, m);
          let text = JSON.stringify(doc) ?? '';
          if (spelling === 'inf') text = text.replace(/(?<=:)-?\d+(\.\d+)?(e[+-]?\d+)?(?=[,}])/, '1e400');
          // role is the discriminator: a wrong role is named as role, whatever else
          const field = spelling === 'plain' && m.kind !== 'add' && typeof at[0] === 'string' && at[0] !== 'updatedAtMs' ? at[0] : undefined;
          decodeState(buf(text), field);
        }),
        options,
      );
    },
  );

  fuzz('a published state decodes to itself', 0x57a80, 2000, (options) => {
    fc.assert(
      fc.property(states, nastyNumber, (s, n) => {
        expect(decodePublishedClusterState('dr', buf(JSON.stringify(s)))).toEqual(s);
        // updatedAtMs out of a Date's range (or not an integer) reads as 0
        const odd = decodePublishedClusterState('dr', buf(JSON.stringify({ ...s, updatedAtMs: n })));
        expect(odd.updatedAtMs).toBe(Number.isSafeInteger(n) && Math.abs(n) <= 8.64e15 ? n + 0 : 0); // -0 is written as 0
      }),
      options,
    );
  });

  // found by 'a published state decodes to itself' (seed 359040, counterexample updatedAtMs 5e-324):
  // any number was returned as it was, so updatedAtMs 1e400 (Infinity) or 9e15 made `crr status`
  // throw a RangeError printing new Date(updatedAtMs).toISOString()
  it('updatedAtMs beyond what a Date holds reads as 0', () => {
    for (const n of ['1e400', '-1e400', '9e15', '1.5'])
      expect(decodePublishedClusterState('dr', buf(`{"role":"primary","state":"ACTIVE","epoch":1,"updatedAtMs":${n}}`)).updatedAtMs).toBe(0);
  });
});
