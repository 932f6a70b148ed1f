import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { ConfigSchema, type Config } from '../../../src/config/schema.js';
import type { CrrError } from '../../../src/errors.js';
import { deeplyNested, fuzz, mutate, mutation, nastyJson, nastyString, outcome, pathsOf, spell, within, type JsonPath } from './fuzz-helpers.js';

/**
 * The config loader (src/config/load.ts) reads what an operator wrote: a YAML file and CRR__
 * environment overrides. Whatever the text, the environment or the parsed value, it returns a
 * valid config or throws CrrError CRR_CONFIG_INVALID naming the file and the config path.
 */

const dir = mkdtempSync(join(tmpdir(), 'crr-fuzz-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// thousands of odd files make the YAML library warn (unresolved tags) through process.emitWarning: kept off stderr here
const emitWarning = process.emitWarning;
beforeAll(() => {
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    if (warning instanceof Error && warning.name === 'YAMLWarning') return;
    (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest);
  }) as typeof process.emitWarning;
});
afterAll(() => {
  process.emitWarning = emitWarning;
});
const FILE = join(dir, 'crr.yaml');

const exampleText = readFileSync(new URL('../../../config/crr.example.yaml', import.meta.url), 'utf8');
const example = parseYaml(exampleText) as Record<string, unknown>;

/** A loaded config is valid: the schema takes it again. */
function validConfig(c: Config): void {
  if (!ConfigSchema.safeParse(c).success) expect(ConfigSchema.safeParse(c).error?.issues).toEqual([]);
}

/** `<source>: not valid YAML ...` or `<source> is invalid:` then one `  - path: what` per problem. */
function namesPath(err: CrrError, source: string, under?: string): void {
  if (err.message.startsWith(`${source}: not valid YAML`)) {
    expect(under).toBeUndefined();
    return;
  }
  expect(err.message.startsWith(`${source} is invalid:\n  - `), err.message.slice(0, 300)).toBe(true);
  const issues = err.issues as Array<{ path: string; message: string }>;
  expect(issues.length).toBeGreaterThan(0);
  for (const i of issues) expect(err.message).toContain(`  - ${i.path}: ${i.message}`);
  // a problem is named at the changed path or beside it (a field it selects, as a store's type), under it, at a path
  // holding it (a union, a record), or on a flow (the cross-field rules)
  if (under !== undefined) {
    const beside = under.replace(/(\.[^.[]*|\[\d+\])$/, '') || '(root)';
    expect(
      issues.some((i) => within(i.path, beside) || (i.path !== '(root)' && within(under, i.path)) || i.path.startsWith('mirror.flows')),
      `${err.message.slice(0, 300)} (changed: ${under})`,
    ).toBe(true);
  }
}

/** Loads `text` as the config file, with `env` as the environment. */
function load(text: string, env: NodeJS.ProcessEnv = {}, under?: string): void {
  writeFileSync(FILE, text);
  outcome(
    () => loadConfig(FILE, env),
    'CRR_CONFIG_INVALID',
    validConfig,
    (err) => namesPath(err, FILE, under),
  );
}

/** YAML that trips parsers: aliases (a billion laughs), tags, merge keys, YAML 1.1, several documents, odd scalars. */
const trickyYaml = fc.constantFrom(
  `a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n`,
  'a: &a [*a]\n',
  'clusters: &c {x: *c}\n',
  '%YAML 1.1\n---\nclusters: !!set {a, b}\n',
  '%YAML 1.1\n---\nclusters: !!omap [{a: 1}]\n',
  '%YAML 1.1\n---\nclusters:\n  primary:\n    bootstrapServers: [!!binary aGVsbG8=]\n',
  '%YAML 1.1\n---\nclusters: {primary: {bootstrapServers: ["h:1"], connectionTimeoutMs: 2001-12-14t21:59:43.10-05:00}}\n',
  'clusters: !!map {? [a, b] : c}\n',
  'base: &b {bootstrapServers: ["h:1"]}\nclusters: {primary: {<<: *b}}\n',
  'clusters: {primary: !foo {bootstrapServers: ["h:1"]}}\n',
  'clusters:\n  primary: {bootstrapServers: ["h:1"]}\n---\nclusters: {}\n',
  'clusters: {primary: {bootstrapServers: ["h:1"], connectionTimeoutMs: .inf}}\n',
  'clusters: {primary: {bootstrapServers: ["h:1"], connectionTimeoutMs: 1e400}}\n',
  'clusters: {primary: {bootstrapServers: ["h:1"], connectionTimeoutMs: .nan}}\n',
  'clusters: {primary: {bootstrapServers: ["h:1"], connectionTimeoutMs: 0x7fffffffffffffffff}}\n',
  'clusters: {__proto__: {bootstrapServers: ["h:1"]}}\n',
  'clusters: {constructor: {bootstrapServers: ["h:1"]}}\n',
  'clusters: {primary: {bootstrapServers: ["h:1"]}, primary: {bootstrapServers: ["h:2"]}}\n',
  '5\n',
  '"just a string"\n',
  '[1, 2]\n',
  '~\n',
  '',
  '\u0000',
  '\ufeffclusters: {}\n',
  'clusters: {a: {bootstrapServers: ["h:1"]}}\nmirror: {flows: [{source: a, target: a, topics: {include: ["("]}}]}\n',
);

/** A small valid config file (the YAML library takes 6 to 14 ms to parse the commented example, 0.3 ms this). */
const smallText = `clusters:
  primary:
    bootstrapServers: ["127.0.0.1:19092"]
    store: {type: pglite, schema: crr}
  dr:
    bootstrapServers: ["127.0.0.1:29092"]
    store: {type: postgres, connectionString: "postgres://crr@127.0.0.1:5432/crr", appRole: crr_app}
mirror:
  flows:
    - source: primary
      target: dr
      topics: {include: [".*"], exclude: [".*[\\-\\.]internal"]}
      replicationPolicy: {type: prefix, separator: "."}
http: {port: 9464}
log: {level: info}
`;

/** A character-level edit of a config file: what a typo does. */
const typoIn = (text: string): fc.Arbitrary<string> =>
  fc
    .tuple(
      fc.nat(text.length),
      fc.nat(40),
      fc.oneof(nastyString, fc.constantFrom(':', '  ', '\t', '-', '"', "'", '[', '{', '&x', '*x', '!!str', '#', '\n', '? ')),
    )
    .map(([at, cut, insert]) => text.slice(0, at) + insert + text.slice(at + cut));

/** Environment overrides: CRR__a__b=value, with odd names and YAML values. */
const envVar = fc.tuple(
  fc.array(
    fc.oneof(
      fc.constantFrom(
        'clusters',
        'primary',
        'dr',
        'mirror',
        'flows',
        '0',
        '7',
        'bootstrapServers',
        'store',
        'http',
        'port',
        'log',
        'level',
        '__proto__',
        'constructor',
        'prototype',
        '',
      ),
      nastyString,
    ),
    { minLength: 0, maxLength: 5 },
  ),
  fc.oneof(nastyString, fc.constantFrom('5000', 'true', '["h1:9092","h2:9092"]', '{a: 1}', '[', '&a [*a]', '~', '', '1e400', '-1')),
);
const env = fc
  .array(envVar, { maxLength: 3 })
  .map((vars) => Object.fromEntries(vars.map(([path, value]) => [`CRR__${path.join('__')}`, value])) as NodeJS.ProcessEnv);

describe('fuzz: loadConfig and parseConfig (src/config/load.ts)', () => {
  fuzz(
    'arbitrary YAML text (random, tricky, deep, a typo in a config file) with arbitrary CRR__ overrides gives a config or CRR_CONFIG_INVALID naming the file and path',
    0xc0f1,
    4000,
    (options) => {
      // nesting 100 to 2 000 deep, as flow or block YAML, or JSON
      const deepYaml = fc.oneof(
        fc.integer({ min: 100, max: 2_000 }).map((d) => `${'['.repeat(d)}1${']'.repeat(d)}`),
        fc.integer({ min: 100, max: 500 }).map((d) => Array.from({ length: d }, (_, i) => `${'  '.repeat(i)}a:`).join('\n')),
        deeplyNested.filter((d) => d.length <= 2_000),
      );
      const text = fc.oneof(
        { weight: 120, arbitrary: nastyString },
        { weight: 120, arbitrary: nastyJson.map((v) => stringifyYaml(v)) },
        { weight: 80, arbitrary: trickyYaml },
        { weight: 120, arbitrary: typoIn(smallText) },
        // slow to parse, so 1 run in 40 each: the commented example (6 to 14 ms), deep nesting (up to 40 ms)
        { weight: 11, arbitrary: typoIn(exampleText) },
        { weight: 11, arbitrary: deepYaml },
      );
      fc.assert(
        fc.property(text, fc.oneof(fc.constant({}), env), (t, e) => load(t, e)),
        options,
      );
    },
  );

  fuzz('arbitrary values (objects, arrays, Maps, Sets, Dates, typed arrays, null-prototype objects) given to parseConfig', 0xc0f2, 2000, (options) => {
    const value = fc.oneof(
      fc.anything({ withMap: true, withSet: true, withDate: true, withTypedArray: true, withNullPrototype: true, withBoxedValues: true, maxDepth: 4 }),
      nastyJson.map((v) => ({ clusters: v })),
      nastyJson.map((v) => ({ ...example, mirror: v })),
    );
    fc.assert(
      fc.property(value, (v) =>
        outcome(
          () => parseConfig(v, 'fuzz.yaml'),
          'CRR_CONFIG_INVALID',
          validConfig,
          (err) => namesPath(err, 'fuzz.yaml'),
        ),
      ),
      options,
    );
  });

  fuzz(
    'a mutated example config (a field dropped, of a wrong type, huge, a key added) given to parseConfig is refused naming the path, or is valid',
    0xc0f3,
    3000,
    (options) => {
      const paths: JsonPath[] = pathsOf(example);
      fc.assert(
        fc.property(fc.constantFrom(...paths), mutation, (path, m) => {
          const { doc, at } = mutate(example, path, m);
          outcome(
            () => parseConfig(doc, FILE),
            'CRR_CONFIG_INVALID',
            validConfig,
            (err) => namesPath(err, FILE, at.length > 0 ? spell(at) : undefined),
          );
        }),
        options,
      );
    },
  );

  fuzz('small configs (a mapping, a list, a scalar, binary, a timestamp) and the example with arbitrary CRR__ overrides', 0xc0f4, 1000, (options) => {
    const file = fc.oneof(
      { weight: 1, arbitrary: fc.constant(exampleText) }, // slow to parse (6 ms): once in 20
      {
        weight: 19,
        arbitrary: fc.constantFrom(
          'clusters: {primary: {bootstrapServers: ["h:1"]}}\n',
          'clusters: {primary: {bootstrapServers: ["h:1"]}, dr: {bootstrapServers: ["h:2"]}}\nmirror: {flows: [{source: primary, target: dr}]}\n',
          '[1, 2]\n',
          'clusters: [1]\n',
          '5\n',
          '',
          '%YAML 1.1\n---\n!!binary aGVsbG8=\n',
          '%YAML 1.1\n---\nclusters: !!binary aGVsbG8=\n',
          '%YAML 1.1\n---\nclusters: 2001-12-14t21:59:43.10-05:00\n',
          '%YAML 1.1\n---\nclusters: !!set {a, b}\n',
        ),
      },
    );
    const lengthVar = fc
      .tuple(
        fc.constantFrom('CRR__length', 'CRR__clusters__length', 'CRR__mirror__flows__length', 'CRR__clusters__byteLength', 'CRR__clusters__size'),
        fc.constantFrom('x', '-1', '5', '1e400', '[]'),
      )
      .map(([k, v]) => ({ [k]: v }) as NodeJS.ProcessEnv);
    fc.assert(
      fc.property(file, fc.oneof(env, lengthVar), (t, e) => load(t, e)),
      options,
    );
  });

  // found by 'arbitrary YAML text ... with arbitrary CRR__ overrides' (seed 49393, counterexample
  // a file holding `0` with CRR__clusters=''): applyEnvOverrides set a property on a number, and
  // a TypeError escaped loadConfig
  it('an override on a file that is a scalar is refused naming the file and (root)', () => {
    for (const text of ['5\n', '"s"\n', 'true\n', '\u0000']) {
      writeFileSync(FILE, text);
      outcome(
        () => loadConfig(FILE, { CRR__clusters__a__bootstrapServers: '["h:1"]' }),
        'CRR_CONFIG_INVALID',
        () => expect.unreachable(text),
        (err) => {
          namesPath(err, FILE);
          expect(err.message).toContain('(root): ');
        },
      );
    }
  });

  // found by 'small configs ... with arbitrary CRR__ overrides' (seed 49396, counterexample
  // `clusters: !!set {a, b}` (YAML 1.1) with CRR__clusters__size=x: a TypeError, a Set's size has
  // no setter); likewise a list's length (CRR__clusters__length=x on `clusters: [1]`: a RangeError)
  it('an override a list or binary value cannot take is refused naming the variable and the path', () => {
    for (const [text, name] of [
      ['clusters: [1]\n', 'CRR__clusters__length'],
      ['%YAML 1.1\n---\nclusters: !!binary aGVsbG8=\n', 'CRR__clusters__length'],
    ] as const) {
      writeFileSync(FILE, text);
      outcome(
        () => loadConfig(FILE, { [name]: 'x' }),
        'CRR_CONFIG_INVALID',
        () => expect.unreachable(text),
        (err) => {
          namesPath(err, FILE);
          expect(err.message).toContain(`clusters.length: cannot apply the environment override ${name}`);
        },
      );
    }
  });
});
