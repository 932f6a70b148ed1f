import { describe, expect, it } from 'vitest';
import { CrrError } from '../../../src/errors.js';
import { decodeEvent, parseEvent } from '../../../src/protocol/codec.js';
import { invalidIdentifier, MAX_IDENTIFIER_BYTES, unstorableText } from '../../../src/protocol/schema.js';
import { ChangeLogWriter, type WriteInput } from '../../../src/writer/writer.js';

// Issue 11, item 2: the protocol refuses what the store can never hold (U+0000, a lone UTF-16
// surrogate, an identifier over MAX_IDENTIFIER_BYTES UTF-8 bytes), naming the field.

const base = { v: 1, id: 'e1', ts: 1763900000000, epoch: 0, origin: 'primary' };
const NUL = 'a\u0000b';
const LONE = 'a\ud800b';
const LONG = 'x'.repeat(MAX_IDENTIFIER_BYTES + 1);
const ref = (id: string, type = 'Person') => ({ type, id });

/** The message decoding `raw` (as UTF-8 JSON, so a lone surrogate travels as its `\ud800` escape) throws. */
function rejection(raw: object): string {
  try {
    decodeEvent(Buffer.from(JSON.stringify(raw), 'utf8'));
  } catch (err) {
    expect(err).toBeInstanceOf(CrrError);
    expect((err as CrrError).code).toBe('CRR_EVENT_INVALID');
    return (err as CrrError).message;
  }
  throw new Error(`expected ${JSON.stringify(raw).slice(0, 200)} to be rejected`);
}

describe('protocol: strings the store cannot hold', () => {
  const nul = /contains U\+0000 \(NUL\) at character \d+/;
  const lone = /contains a lone UTF-16 surrogate \(U\+D[89A-F][0-9A-F]{2}\) at character \d+/;
  const long = new RegExp(`is ${MAX_IDENTIFIER_BYTES + 1} bytes in UTF-8, over the limit of ${MAX_IDENTIFIER_BYTES} bytes`);

  it.each([
    ['a vertex id', { ...base, op: 'UPSERT_VERTEX', vertex: ref('%'), attributes: {} }, 'vertex.id'],
    ['a vertex type', { ...base, op: 'DELETE_VERTEX', vertex: { type: '%', id: 'a' } }, 'vertex.type'],
    ['an edge type', { ...base, op: 'DELETE_EDGE', type: '%', from: ref('a'), to: ref('b') }, 'type'],
    ['an edge source id', { ...base, op: 'DELETE_EDGE', type: 'k', from: ref('%'), to: ref('b') }, 'from.id'],
    ['an edge target id', { ...base, op: 'UPSERT_EDGE', type: 'k', from: ref('a'), to: ref('%'), attributes: {} }, 'to.id'],
    ['an edge target type', { ...base, op: 'UPSERT_EDGE', type: 'k', from: ref('a'), to: { type: '%', id: 'b' }, attributes: {} }, 'to.type'],
    ['a type name', { ...base, op: 'CREATE_VERTEX_TYPE', name: '%', primaryIdType: 'STRING', attributes: [] }, 'name'],
    ['an edge type end', { ...base, op: 'CREATE_EDGE_TYPE', name: 'k', fromType: '%', toType: 'P', directed: true, attributes: [] }, 'fromType'],
    [
      'an attribute definition',
      { ...base, op: 'CREATE_VERTEX_TYPE', name: 'P', primaryIdType: 'STRING', attributes: [{ name: '%', type: 'INT' }] },
      'attributes[0].name',
    ],
    ['a dropped attribute', { ...base, op: 'ALTER_VERTEX_TYPE', name: 'P', dropAttributes: ['ok', '%'] }, 'dropAttributes[1]'],
    ['a user name', { ...base, op: 'DROP_USER', name: '%' }, 'name'],
    ['a role', { ...base, op: 'GRANT_ROLE', name: 'u', role: '%' }, 'role'],
    ['a role of a new user', { ...base, op: 'CREATE_USER', name: 'u', roles: ['%'] }, 'roles[0]'],
    ['a query name', { ...base, op: 'INSTALL_QUERY', name: '%' }, 'name'],
    ['the event id', { ...base, id: '%', op: 'DROP_UDF', name: 'f' }, 'id'],
    ['the origin', { ...base, origin: '%', op: 'DROP_UDF', name: 'f' }, 'origin'],
  ])('refuses U+0000, a lone surrogate and an over-long identifier in %s, naming %s', (_what, template, path) => {
    const fill = (value: string): object => JSON.parse(JSON.stringify(template).replace('"%"', JSON.stringify(value))) as object;
    const at = (re: RegExp): RegExp => new RegExp(`(: |; )${path.replace(/[.[\]]/g, '\\$&')}: ${re.source}`);
    expect(rejection(fill(NUL))).toMatch(at(nul));
    expect(rejection(fill(LONE))).toMatch(at(lone));
    expect(rejection(fill(LONG))).toMatch(at(long));
  });

  it.each([
    ['an attribute value', { note: NUL }, /attributes\.note: contains U\+0000/],
    ['an attribute value with a lone low surrogate', { note: '\udc00x' }, /attributes\.note: contains a lone UTF-16 surrogate \(U\+DC00\) at character 0/],
    ['an element of a list attribute', { tags: ['ok', NUL] }, /attributes\.tags\[1\]: contains U\+0000/],
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the message names the NUL it refuses
    ['an attribute name', { [NUL]: 1 }, /attributes\.a\u0000b: attribute name contains U\+0000/],
    ['an over-long attribute name', { [LONG]: 1 }, /attribute name is 513 bytes in UTF-8/],
  ])('refuses %s that jsonb cannot hold, naming it', (_what, attributes, expected) => {
    expect(rejection({ ...base, op: 'UPSERT_VERTEX', vertex: ref('a'), attributes })).toMatch(expected);
  });

  it.each([
    ['query text', { op: 'CREATE_QUERY', name: 'q', text: NUL }, /text: contains U\+0000/],
    ['UDF source', { op: 'CREATE_UDF', name: 'f', source: LONE }, /source: contains a lone UTF-16 surrogate/],
    ['loading job text', { op: 'CREATE_LOADING_JOB', name: 'j', text: NUL }, /text: contains U\+0000/],
    ['a marker reason', { op: 'RESET', reason: NUL }, /reason: contains U\+0000/],
  ])('refuses U+0000 or a lone surrogate in free text (%s), which has no length limit', (_what, fields, expected) => {
    expect(rejection({ ...base, ...fields })).toMatch(expected);
    expect(() =>
      parseEvent({
        ...base,
        ...fields,
        ...Object.fromEntries(
          Object.entries(fields)
            .filter(([k]) => k !== 'op' && k !== 'name')
            .map(([k]) => [k, 'y'.repeat(100_000)]),
        ),
      }),
    ).not.toThrow();
  });

  it(`counts the limit in UTF-8 bytes: ${MAX_IDENTIFIER_BYTES} bytes pass, one more does not`, () => {
    const euro = '\u20ac'; // 3 bytes in UTF-8
    const emoji = '\u{1F600}'; // a surrogate pair: 4 bytes
    const ok = [
      'x'.repeat(MAX_IDENTIFIER_BYTES),
      euro.repeat(Math.floor(MAX_IDENTIFIER_BYTES / 3)) + 'x'.repeat(MAX_IDENTIFIER_BYTES % 3),
      emoji.repeat(MAX_IDENTIFIER_BYTES / 4),
    ];
    for (const id of ok) {
      expect(Buffer.byteLength(id)).toBe(MAX_IDENTIFIER_BYTES);
      expect(() => parseEvent({ ...base, op: 'DELETE_VERTEX', vertex: ref(id) })).not.toThrow();
    }
    const over = euro.repeat(Math.ceil((MAX_IDENTIFIER_BYTES + 1) / 3)); // 171 characters, 513 bytes
    expect(over.length).toBeLessThan(MAX_IDENTIFIER_BYTES);
    expect(rejection({ ...base, op: 'DELETE_VERTEX', vertex: ref(over) })).toMatch(/vertex\.id: is 513 bytes in UTF-8/);
  });

  it('accepts surrogate pairs and other well-formed text, and refuses only lone halves', () => {
    expect(unstorableText('caf\u00e9 \u{1F600} \u4e2d')).toBeUndefined();
    expect(unstorableText('\ud83d')).toMatch(/U\+D83D\) at character 0/);
    expect(unstorableText('x\ude00')).toMatch(/U\+DE00\) at character 1/);
    expect(unstorableText('\ude00\ud83d')).toMatch(/lone/); // reversed halves are no pair
    expect(invalidIdentifier('')).toBeUndefined(); // emptiness is the schema's rule (`expected a non-empty string`)
    expect(rejection({ ...base, op: 'DROP_USER', name: '' })).toMatch(/name: expected a non-empty string/);
  });

  it('never repeats the offending value in the message', () => {
    const secret = `s3cr3t${'\u0000'}`;
    expect(rejection({ ...base, op: 'DELETE_VERTEX', vertex: ref(secret) })).not.toContain('s3cr3t');
  });
});

describe('writer: refuses them before anything is sent', () => {
  // a writer as ChangeLogWriter.open returns it, without Kafka: stamp() validates only
  const WriterCtor = ChangeLogWriter as unknown as new (opts: object, producer: object, state: object) => ChangeLogWriter;
  const writer = new WriterCtor({ alias: 'primary' }, {}, { role: 'primary', state: 'ACTIVE', epoch: 0 });

  it.each([
    ['U+0000 in a vertex id', { op: 'UPSERT_VERTEX', vertex: ref(NUL), attributes: {} }, /invalid change event \(line 7\).*vertex\.id: contains U\+0000/],
    [
      'a lone surrogate in an edge end',
      { op: 'DELETE_EDGE', type: 'k', from: ref('a'), to: ref(LONE) },
      /\(line 7\).*to\.id: contains a lone UTF-16 surrogate/,
    ],
    [
      'a 3000-byte vertex id',
      { op: 'DELETE_VERTEX', vertex: ref('y'.repeat(3000)) },
      /\(line 7\).*vertex\.id: is 3000 bytes in UTF-8, over the limit of 512 bytes/,
    ],
    ['U+0000 in a catalog name', { op: 'CREATE_QUERY', name: NUL, text: 'SELECT 1' }, /\(line 7\).*name: contains U\+0000/],
    ['U+0000 in an attribute value', { op: 'UPSERT_VERTEX', vertex: ref('a'), attributes: { note: NUL } }, /\(line 7\).*attributes\.note: contains U\+0000/],
  ])('%s: CRR_EVENT_INVALID naming the line and the field', (_what, input, expected) => {
    let thrown: unknown;
    try {
      writer.stamp(input as WriteInput, 7);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(CrrError);
    expect((thrown as CrrError).code).toBe('CRR_EVENT_INVALID');
    expect((thrown as CrrError).message).toMatch(expected);
  });
});
