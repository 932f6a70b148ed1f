import fc from 'fast-check';
import { expect, it } from 'vitest';
import { CrrError, type ErrorCode } from '../../../src/errors.js';

/**
 * Shared pieces of the property-based fuzz tests (test/unit/fuzz/*.test.ts).
 *
 * Every property runs with a fixed seed, printed in its test name, so that a failure is
 * reproducible: `fc.assert(prop, { seed, numRuns })` replays the same inputs, and fast-check
 * prints the shrunk counterexample and the `path` to replay it. Each parser gets at least 10 000
 * runs in all, shared among its properties so that the whole folder stays under a minute on two
 * slow cores. `CRR_FUZZ_SCALE` multiplies every property's runs (e.g. 100 for a long local hunt);
 * `CRR_FUZZ_SEED` replaces every seed.
 */

/** Multiplies every property's runs. */
const SCALE = Number(process.env.CRR_FUZZ_SCALE ?? 1);

/** The runs of a property: its share of its parser's 10 000, times CRR_FUZZ_SCALE. */
export const runsOf = (n: number): number => Math.max(1, Math.round(n * SCALE));

/** The seed of a property: its fixed default, or CRR_FUZZ_SEED. */
export const seedOf = (fixed: number): number => (process.env.CRR_FUZZ_SEED === undefined ? fixed : Number(process.env.CRR_FUZZ_SEED));

/** The options of `fc.assert` for a seed and a number of runs (before scaling). */
export const params = (seed: number, numRuns: number): fc.Parameters<unknown> => ({ seed: seedOf(seed), numRuns: runsOf(numRuns) });

/** A test name carrying the seed and the runs: `name (seed 12639745, 4000 runs)`. */
export const named = (name: string, seed: number, numRuns: number): string => `${name} (seed ${seedOf(seed)}, ${runsOf(numRuns)} runs)`;

/** Per-property time bound for vitest, ms (a hang fails the test instead of the suite). */
export const TIME_BOUND_MS = 60_000;

/**
 * A property test: named with its seed and runs, bounded in time, `body` given the options of
 * `fc.assert` (`await fc.assert(property, options)`).
 */
export function fuzz(name: string, seed: number, numRuns: number, body: (options: fc.Parameters<unknown>) => void | Promise<void>): void {
  it(named(name, seed, numRuns), { timeout: TIME_BOUND_MS }, () => body(params(seed, numRuns)));
}

/**
 * Calls a parser and checks the outcome: either it returns (the value is handed to `valid`,
 * which asserts what a valid value is), or it throws a CrrError of `code` whose message names
 * where the problem is (`where` asserts that). Any other exception fails the property.
 */
export function outcome<T>(run: () => T, code: ErrorCode, valid: (value: T) => void, where: (err: CrrError) => void): void {
  let value: T;
  try {
    value = run();
  } catch (err) {
    checkError(err, code, where);
    return;
  }
  valid(value);
}

/** {@link outcome} for an async parser. */
export async function outcomeAsync<T>(run: () => Promise<T>, code: ErrorCode, valid: (value: T) => void, where: (err: CrrError) => void): Promise<void> {
  let value: T;
  try {
    value = await run();
  } catch (err) {
    checkError(err, code, where);
    return;
  }
  valid(value);
}

function checkError(err: unknown, code: ErrorCode, where: (err: CrrError) => void): void {
  if (!(err instanceof CrrError)) {
    throw new Error(`expected a CrrError ${code}, got ${err instanceof Error ? `${err.constructor.name}: ${err.message}` : String(err)}`, { cause: err });
  }
  expect(err.code).toBe(code);
  where(err);
}

/** A lone (unpaired) UTF-16 surrogate. */
export const loneSurrogate = fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c));

/** One unit of a nasty string: any code point, a lone surrogate, NUL, a quote, a backslash, a line separator. */
const nastyUnit = fc.oneof(
  { weight: 6, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: loneSurrogate },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', '"', '\\', '\n', '\u2028', '\ufeff', ':', '.', '/') },
);

/**
 * Strings that break naive parsers: NUL bytes, lone surrogates, every plane, names of
 * Object.prototype's properties, and long strings (one in 100: mostly up to 4 KiB, one in 200 of these up to 1 MiB).
 */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 75, arbitrary: fc.string({ unit: nastyUnit, maxLength: 24 }) },
  {
    weight: 24,
    arbitrary: fc.constantFrom(
      '',
      '\u0000',
      'a\u0000b',
      '\ud800',
      '\udfff',
      'x\udc00y',
      '__proto__',
      'constructor',
      'prototype',
      'toString',
      'hasOwnProperty',
      'null',
      '1e400',
      '-0',
      'NaN',
    ),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom('a', '\u0000', 'é', '\ud83d\udca5', '\ud800'),
        fc.oneof({ weight: 199, arbitrary: fc.integer({ min: 1_000, max: 4_096 }) }, { weight: 1, arbitrary: fc.integer({ min: 4_096, max: 1 << 20 }) }),
      )
      .map(([c, n]) => c.repeat(Math.ceil(n / c.length))),
  },
);

/**
 * Strings a store can hold (no NUL, no lone surrogate), up to `maxLength` code points: what a
 * valid document carries. Names of Object.prototype's properties, quotes and separators included.
 */
export const storableString = (maxLength: number): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 8, arbitrary: fc.string({ unit: 'binary', maxLength: Math.min(maxLength, 24) }).map((s) => s.replaceAll('\u0000', ' ')) },
    {
      weight: 2,
      arbitrary: fc
        .constantFrom('', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '"', '\\', '\u2028', '\ud83d\udca5', 'null', '-0')
        .filter((s) => [...s].length <= maxLength),
    },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: maxLength }).map((n) => 'é'.repeat(n)) },
  );

/** Numbers at the edges: huge, tiny, negative, fractional, beyond 2^53, -0 (JSON-representable ones; 1e400 is made by {@link jsonText}). */
export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.constantFrom(
    0,
    -0,
    -1,
    1,
    0.5,
    2 ** 31 - 1,
    2 ** 31,
    2 ** 32,
    2 ** 53 - 1,
    2 ** 53,
    2 ** 53 + 2,
    -(2 ** 53),
    8.64e15,
    8.64e15 + 1,
    1e21,
    1e308,
    Number.MAX_VALUE,
    Number.MIN_VALUE,
    -Number.MAX_VALUE,
  ),
);

/** Any JSON value built from nasty strings and numbers (keys nasty too), up to a few levels deep. */
export const nastyJson: fc.Arbitrary<unknown> = fc.letrec<{ value: unknown }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    nastyNumber,
    nastyString,
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(nastyString, tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** A value nested `depth` levels in arrays or objects (deep nesting: up to 200, or 3 000 to 12 000 levels, past JSON.stringify's stack). */
export const deeplyNested: fc.Arbitrary<string> = fc
  .tuple(fc.oneof(fc.integer({ min: 1, max: 200 }), fc.integer({ min: 3_000, max: 12_000 })), fc.boolean())
  .map(([depth, arrays]) => (arrays ? `${'['.repeat(depth)}1${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`));

/**
 * JSON text of a value, sometimes with a number spelled out of range (`1e400`, which
 * JSON.parse reads as Infinity) or a duplicate key: what another process could write.
 */
export function jsonText(value: unknown): fc.Arbitrary<string> {
  return fc.constantFrom('plain', 'pretty', 'inf', 'negInf').map((how) => {
    const text = JSON.stringify(value, null, how === 'pretty' ? 2 : undefined) ?? 'null';
    if (how === 'inf') return text.replace(/(-?\d+(\.\d+)?(e[+-]?\d+)?)(?=[,}\]]|$)/, '1e400');
    if (how === 'negInf') return text.replace(/(-?\d+(\.\d+)?(e[+-]?\d+)?)(?=[,}\]]|$)/, '-1e400');
    return text;
  });
}

/** Arbitrary bytes: random, random UTF-8-ish text, or invalid UTF-8 around JSON. */
export const nastyBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 256 }).map((b) => Buffer.from(b)),
  nastyString.map((s) => Buffer.from(s, 'utf8')),
  fc
    .tuple(fc.uint8Array({ maxLength: 8 }), nastyJson, fc.uint8Array({ maxLength: 8 }))
    .map(([a, v, b]) => Buffer.concat([a, Buffer.from(JSON.stringify(v) ?? ''), b])),
  fc.constantFrom(Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('\u0000'), Buffer.alloc(0)),
);

/** A path into a JSON value (keys and indices), as `formatPath` spells it. */
export type JsonPath = Array<string | number>;

/** Every path to a node of a JSON value (the root excluded). */
export function pathsOf(value: unknown, prefix: JsonPath = []): JsonPath[] {
  if (value === null || typeof value !== 'object') return [];
  const out: JsonPath[] = [];
  const entries: Array<[string | number, unknown]> = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  for (const [k, v] of entries) {
    const p = [...prefix, k];
    out.push(p, ...pathsOf(v, p));
  }
  return out;
}

/** A copy of `value` with the node at `path` replaced (`replacement` undefined: removed). */
export function setPath(value: unknown, path: JsonPath, replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy = Array.isArray(value) ? [...value] : { ...(value as Record<string, unknown>) };
  const [head, ...rest] = path;
  const child = (copy as Record<string | number, unknown>)[head!];
  if (rest.length === 0 && replacement === undefined) {
    if (Array.isArray(copy)) copy.splice(head as number, 1);
    else delete (copy as Record<string, unknown>)[head as string];
  } else {
    Object.defineProperty(copy, head!, { value: setPath(child, rest, replacement), enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/** What to do to one node of a valid document. */
export type Mutation = { kind: 'drop' } | { kind: 'set'; value: unknown } | { kind: 'add'; key: string; value: unknown };

/** A wrong-typed or extreme value for a field. */
export const wrongValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, 1.5, 2 ** 53, 1e308, -1e308, '', 'x', [], {}, [null], { a: 1 }),
  nastyNumber,
  nastyString,
  nastyJson,
);

/** A mutation of one node of a document. */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.constant({ kind: 'drop' } as const),
  wrongValue.map((value) => ({ kind: 'set', value }) as const),
  fc.tuple(nastyString, wrongValue).map(([key, value]) => ({ kind: 'add', key, value }) as const),
);

/**
 * Applies a mutation at `path` (for `add`, a key is added to the object at `path`, or to the root
 * when that is not an object). @returns the mutated copy and the path of the object or field changed
 */
export function mutate(doc: unknown, path: JsonPath, m: Mutation): { doc: unknown; at: JsonPath } {
  if (m.kind === 'drop') return { doc: setPath(doc, path, undefined), at: path };
  if (m.kind === 'set') return { doc: setPath(doc, path, m.value), at: path };
  const target = path.reduce<unknown>((node, k) => (node as Record<string | number, unknown>)[k], doc);
  if (target === null || typeof target !== 'object' || Array.isArray(target)) return { doc: setPath(doc, [m.key], m.value), at: [] };
  return { doc: setPath(doc, [...path, m.key], m.value), at: path };
}

/** Does the spelled issue path `p` lie at or under the spelled path `under`? */
export const within = (p: string, under: string): boolean => under === '(root)' || p === under || p.startsWith(`${under}.`) || p.startsWith(`${under}[`);

/** A readable `formatPath`-like spelling of a path, for messages in tests. */
export const spell = (path: JsonPath): string =>
  path.length === 0 ? '(root)' : path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${p}`)).join('');
