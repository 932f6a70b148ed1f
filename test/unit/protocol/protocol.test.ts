import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CrrError } from '../../../src/errors.js';
import { decodeEvent, encodeEvent, eventKey, MARKER_KEY } from '../../../src/protocol/codec.js';
import { isMetadataOp, OPS, type ChangeEvent } from '../../../src/protocol/schema.js';

const doc = readFileSync(new URL('../../../docs/protocol.md', import.meta.url), 'utf8');
const examples = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1]!);

const base = { v: 1, id: 'e1', ts: 1763900000000, epoch: 3, origin: 'primary' };
const upsert = { ...base, op: 'UPSERT_VERTEX', vertex: { type: 'person', id: 'alice' }, attributes: { age: 42 } };

/** The message of the CrrError that decoding `value` throws. */
function rejection(value: string | Buffer): string {
  try {
    decodeEvent(typeof value === 'string' ? Buffer.from(value) : value);
  } catch (err) {
    expect(err).toBeInstanceOf(CrrError);
    expect((err as CrrError).code).toBe('CRR_EVENT_INVALID');
    return (err as CrrError).message;
  }
  throw new Error(`expected ${String(value)} to be rejected`);
}

describe('change-event protocol v1', () => {
  it('documents an example of every operation, and every example parses', () => {
    expect(examples.length).toBeGreaterThanOrEqual(OPS.length);
    const seen = new Set<string>();
    for (const text of examples) {
      const event = decodeEvent(Buffer.from(text));
      seen.add(event.op);
    }
    expect([...seen].sort()).toEqual([...OPS].sort());
  });

  it('keeps the event id apart from the vertex id', () => {
    const event = decodeEvent(Buffer.from(JSON.stringify(upsert)));
    expect(event.id).toBe('e1');
    expect(event.op === 'UPSERT_VERTEX' && event.vertex).toEqual({ type: 'person', id: 'alice' });
  });

  it('round-trips an event through encode and decode', () => {
    const event = decodeEvent(Buffer.from(JSON.stringify(upsert)));
    expect(decodeEvent(encodeEvent(event))).toEqual(event);
  });

  it.each([
    ['a missing envelope field', { ...upsert, id: undefined }, 'id: missing (expected string)'],
    ['a missing operation field', { ...upsert, attributes: undefined }, 'attributes: missing (expected record)'],
    ['a flat vertex id (v1 names a vertex by a reference)', { ...base, op: 'DELETE_VERTEX', type: 'person' }, 'vertex: missing (expected object)'],
    [
      'a missing nested field',
      { ...base, op: 'DELETE_EDGE', type: 'knows', from: { type: 'person' }, to: { type: 'person', id: 'b' } },
      'from.id: missing (expected string)',
    ],
    ['a wrong type', { ...upsert, ts: '2026-11-23' }, 'ts: expected number, got string'],
    ['a fractional timestamp', { ...upsert, ts: 1.5 }, 'ts: expected int'],
    [
      'a wrong attribute value',
      { ...upsert, attributes: { age: { years: 42 } } },
      'attributes.age: expected a string, number, boolean, null or a list of these',
    ],
    ['an unknown op', { ...base, op: 'FOO' }, 'op: unknown operation "FOO"'],
    ['a missing op', { ...base }, 'op: missing'],
    ['an unknown key', { ...upsert, color: 'red' }, '(root): unknown key "color"'],
    [
      'an unknown nested key',
      { ...base, op: 'DELETE_EDGE', type: 'k', from: { type: 'p', id: 'a', x: 1 }, to: { type: 'p', id: 'b' } },
      'from: unknown key "x"',
    ],
    ['a wrong version', { ...upsert, v: 2 }, 'v: expected 1, got 2'],
    ['a negative epoch', { ...upsert, epoch: -1 }, 'epoch: expected number >= 0, got -1'],
    ['an empty name', { ...base, op: 'DROP_USER', name: '' }, 'name: expected a non-empty string'],
    [
      'an unknown attribute type',
      { ...base, op: 'CREATE_VERTEX_TYPE', name: 'p', primaryIdType: 'STRING', attributes: [{ name: 'a', type: 'BLOB' }] },
      'attributes[0].type:',
    ],
    ['a marker without a reason', { ...base, op: 'DROP_ALL' }, 'reason: missing (expected string)'],
    ['an array', [upsert], '(root): expected object, got array'],
  ])('rejects %s, naming the field', (_name, raw, expected) => {
    expect(rejection(JSON.stringify(raw))).toContain(expected);
  });

  it('rejects a value that is not JSON, saying so', () => {
    expect(rejection('{"v":1,')).toMatch(/^change event is not JSON/);
    expect(rejection(Buffer.from([0xff, 0x00]))).toMatch(/not JSON/);
  });

  it('lists the problems as issues, for the logs', () => {
    try {
      decodeEvent(Buffer.from(JSON.stringify({ ...upsert, epoch: -1, extra: 1 })));
      expect.unreachable();
    } catch (err) {
      expect((err as CrrError).issues).toEqual([
        { path: 'epoch', message: 'expected number >= 0, got -1' },
        { path: '(root)', message: 'unknown key "extra"' },
      ]);
    }
  });
});

describe('eventKey and isMetadataOp', () => {
  const ev = (raw: object): ChangeEvent => decodeEvent(Buffer.from(JSON.stringify({ ...base, ...raw })));
  const from = { type: 'person', id: 'alice' };
  const to = { type: 'city', id: 'paris' };

  it.each([
    [{ op: 'UPSERT_VERTEX', vertex: { type: 'person', id: 'alice' }, attributes: {} }, 'v:person:alice', false],
    [{ op: 'DELETE_VERTEX', vertex: { type: 'person', id: 'alice' } }, 'v:person:alice', false],
    [{ op: 'UPSERT_EDGE', type: 'lives_in', from, to, attributes: { since: 2019 } }, 'e:lives_in:person:alice:city:paris', false],
    [{ op: 'DELETE_EDGE', type: 'lives_in', from, to }, 'e:lives_in:person:alice:city:paris', false],
    [{ op: 'CREATE_VERTEX_TYPE', name: 'person', primaryIdType: 'STRING', attributes: [] }, 'm:vertex_type:person', true],
    [{ op: 'DROP_VERTEX_TYPE', name: 'person' }, 'm:vertex_type:person', true],
    [{ op: 'ALTER_EDGE_TYPE', name: 'lives_in' }, 'm:edge_type:lives_in', true],
    [{ op: 'GRANT_ROLE', name: 'analyst', role: 'designer' }, 'm:user:analyst', true],
    [{ op: 'INSTALL_QUERY', name: 'friends' }, 'm:query:friends', true],
    [{ op: 'DROP_UDF', name: 'f' }, 'm:udf:f', true],
    [{ op: 'CREATE_LOADING_JOB', name: 'j', text: 'LOAD' }, 'm:loading_job:j', true],
    [{ op: 'IMPORT', reason: 'bulk load', source: '/data/people.csv' }, MARKER_KEY, true],
    [{ op: 'RESET', reason: 'topics recreated' }, MARKER_KEY, true],
  ])('%o has key %s (metadata topic: %s)', (raw, key, metadata) => {
    const event = ev(raw);
    expect(eventKey(event)).toBe(key);
    expect(isMetadataOp(event.op)).toBe(metadata);
  });

  it('keys every change of one vertex alike, and different vertices apart', () => {
    const a = { type: 'person', id: 'a' };
    expect(eventKey(ev({ op: 'UPSERT_VERTEX', vertex: a, attributes: { x: 1 } }))).toBe(eventKey(ev({ op: 'DELETE_VERTEX', vertex: a })));
    expect(eventKey(ev({ op: 'DELETE_VERTEX', vertex: a }))).not.toBe(eventKey(ev({ op: 'DELETE_VERTEX', vertex: { ...a, type: 'city' } })));
  });

  it('sends only vertex and edge operations to the data topic', () => {
    expect(OPS.filter((op) => !isMetadataOp(op)).sort()).toEqual(['DELETE_EDGE', 'DELETE_VERTEX', 'UPSERT_EDGE', 'UPSERT_VERTEX']);
  });
});
