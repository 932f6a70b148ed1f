// Over 450 lines: the properties of the two readers of a backup repository (the manifest, the data parts), each with its generators; one reader's properties per describe.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { isDeepStrictEqual } from 'node:util';
import { createGzip, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ManifestSchema, newBackupId, parseManifest, totalsOf, type BackupPart, type Manifest } from '../../../src/backup/manifest.js';
import { MAX_PART_BATCH_BYTES, MAX_PART_LINE_BYTES, readPart } from '../../../src/backup/part.js';
import type { BackupRepository } from '../../../src/backup/repository.js';
import { PRIMARY_STATES, REPLICA_STATES } from '../../../src/cluster/cluster-state.js';
import { CrrError } from '../../../src/errors.js';
import type { EdgeRow, VertexRow } from '../../../src/store/store.js';
import {
  deeplyNested,
  fuzz,
  jsonText,
  loneSurrogate,
  mutate,
  mutation,
  nastyBytes,
  nastyJson,
  nastyString,
  outcome,
  outcomeAsync,
  pathsOf,
  type JsonPath,
} from './fuzz-helpers.js';

/**
 * What a restore and `crr backup verify` read from a backup repository, which anyone with write
 * access to the bucket or directory may have changed: the manifest (src/backup/manifest.ts
 * parseManifest) and the data parts (src/backup/part.ts readPart). Each either gives a valid
 * manifest or rows, or throws CrrError CRR_BACKUP_INVALID naming the backup, the part and the
 * line; readPart never holds more than MAX_PART_LINE_BYTES of one line.
 */

// --- the manifest ----------------------------------------------------------------------------

const count = fc.oneof(fc.nat(1_000_000), fc.nat());
const sha = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
const nonEmpty = nastyString.filter((s) => s.length > 0);
const MAX_DATE_MS = 253_402_300_799_999; // 9999-12-31T23:59:59.999Z, the last 4-digit year

const partsOf = (kind: BackupPart['kind'], n: number): fc.Arbitrary<BackupPart[]> =>
  fc
    .array(fc.record({ records: fc.integer({ min: 1, max: 1_000_000 }), bytes: count, uncompressedBytes: count, sha256: sha }), { minLength: n, maxLength: n })
    .map((ps) => ps.map((p, i) => ({ name: `${kind}-${String(i + 1).padStart(5, '0')}.ndjson.gz`, kind, ...p })));

const clusterState = fc
  .oneof(
    fc.constant(null),
    fc.record({
      role: fc.constant('primary' as const),
      state: fc.constantFrom(...PRIMARY_STATES),
      epoch: count,
      reason: fc.option(nastyString, { nil: undefined }),
      updatedAt: fc.integer({ min: 0, max: MAX_DATE_MS }).map((ms) => new Date(ms).toISOString()),
    }),
    fc.record({
      role: fc.constant('replica' as const),
      state: fc.constantFrom(...REPLICA_STATES),
      epoch: count,
      reason: fc.option(nastyString, { nil: undefined }),
      updatedAt: fc.integer({ min: 0, max: MAX_DATE_MS }).map((ms) => new Date(ms).toISOString()),
    }),
  )
  .map((s) => (s !== null && s.reason === undefined ? (({ reason: _r, ...rest }) => rest)(s) : s));

/** Valid manifests: every field arbitrary within the schema, totals the sums of the parts. */
const manifests: fc.Arbitrary<Manifest> = fc
  .record({
    cluster: fc.stringMatching(/^[A-Za-z0-9_-]{1,16}$/),
    createdAtMs: fc.integer({ min: 0, max: MAX_DATE_MS - 10_000 }),
    took: fc.nat(10_000),
    rnd: fc.stringMatching(/^[0-9a-f]{4}$/),
    epoch: count,
    crrVersion: nastyString,
    storeSchemaVersion: fc.integer({ min: 1, max: 1_000 }),
    positions: fc.array(fc.record({ topic: nonEmpty, partition: count, nextOffset: count }), { maxLength: 3 }),
    clusterState,
    catalog: fc.array(fc.record({ kind: nonEmpty, name: nonEmpty, body: nastyJson }), { maxLength: 3 }),
    vertices: fc.nat(3).chain((n) => partsOf('vertices', n)),
    edges: fc.nat(3).chain((n) => partsOf('edges', n)),
  })
  .map(({ cluster, createdAtMs, took, rnd, vertices, edges, ...rest }) => {
    const parts = [...vertices, ...edges];
    return {
      formatVersion: 1 as const,
      id: newBackupId(cluster, new Date(createdAtMs), rnd),
      cluster,
      epoch: rest.epoch,
      createdAt: new Date(createdAtMs).toISOString(),
      createdAtMs,
      completedAtMs: createdAtMs + took,
      crrVersion: rest.crrVersion,
      storeSchemaVersion: rest.storeSchemaVersion,
      positions: rest.positions,
      clusterState: rest.clusterState as Manifest['clusterState'],
      catalog: rest.catalog,
      parts,
      totals: totalsOf(parts, rest.catalog.length),
    };
  });

function validManifest(m: Manifest, id: string): void {
  if (!ManifestSchema.safeParse(m).success) expect.unreachable('the manifest does not match its schema');
  expect(m.id).toBe(id);
  if (!isDeepStrictEqual(m.totals, totalsOf(m.parts, m.catalog.length))) expect(m.totals).toEqual(totalsOf(m.parts, m.catalog.length));
  expect(new Set(m.parts.map((p) => p.name)).size).toBe(m.parts.length);
}

/** The fields a manifest message names (`parts.0.records: ...`), after "is invalid: ". */
function namedPaths(message: string): string[] {
  const m = /^backup [^:]+: manifest manifest\.json is invalid: (.*)$/s.exec(message);
  return m ? m[1]!.split('; ').map((issue) => issue.slice(0, issue.indexOf(': '))) : [];
}

const MANIFEST_WHY =
  /^backup \S+: manifest manifest\.json (is not JSON|is not a JSON object|has no formatVersion|has format version|is invalid: \S|names backup|lists part|part \S+ has kind|part \S+ is (not )?encrypted|totals\.\w+ is)/s;

const manifestOutcome = (text: string, id: string, at?: JsonPath): void =>
  outcome(
    () => parseManifest(text, id),
    'CRR_BACKUP_INVALID',
    (m) => validManifest(m, id),
    (err) => {
      expect(err.message).toMatch(MANIFEST_WHY);
      expect(err.message.startsWith(`backup ${id}: `)).toBe(true);
      if (at === undefined || at.length === 0 || !/ is invalid: /.test(err.message)) return;
      // a schema problem is named at the changed field, under it, or at a field holding it
      const where = at.join('.');
      const related = (p: string): boolean => p === where || p.startsWith(`${where}.`) || (p !== '(root)' && where.startsWith(`${p}.`));
      expect(namedPaths(err.message).some(related), `${err.message.slice(0, 300)} (the mutation at ${where})`).toBe(true);
    },
  );

const ID = '20261123T134501Z-primary-3fa9';

describe('fuzz: parseManifest (backup manifest.json)', () => {
  fuzz('arbitrary text and JSON give a manifest or CRR_BACKUP_INVALID naming the backup', 0xba0001, 3000, (options) => {
    const text = fc.oneof(
      nastyBytes.map((b) => b.toString('utf8')),
      nastyJson.chain(jsonText),
      deeplyNested,
      nastyJson.map((v) => JSON.stringify({ formatVersion: 1, ...(typeof v === 'object' && v !== null ? v : { v }) })),
    );
    fc.assert(
      fc.property(text, (t) => manifestOutcome(t, ID)),
      options,
    );
  });

  fuzz('a valid manifest parses to itself', 0xba0002, 3000, (options) => {
    fc.assert(
      fc.property(manifests, (m) => {
        const text = JSON.stringify(m, null, 2);
        const parsed = parseManifest(text, m.id);
        if (!isDeepStrictEqual(parsed, JSON.parse(text))) expect(parsed).toEqual(JSON.parse(text)); // -0 in a catalog body is written 0
      }),
      options,
    );
  });

  fuzz(
    'a mutated valid manifest (a field dropped, of a wrong type, huge, 1e400, a key added) is refused naming the field, or is valid',
    0xba0003,
    4000,
    (options) => {
      const mutated = manifests.chain((m) => fc.tuple(fc.constant(m), fc.constantFrom<JsonPath>([], ...pathsOf(m)), mutation, fc.constantFrom('plain', 'inf')));
      fc.assert(
        fc.property(mutated, ([m, path, mu, spelling]) => {
          const { doc, at } = mutate(m, path, mu);
          let text = JSON.stringify(doc) ?? '';
          if (spelling === 'inf') text = text.replace(/(?<=:)-?\d+(\.\d+)?(e[+-]?\d+)?(?=[,}])/, '1e400');
          manifestOutcome(text, m.id, spelling === 'plain' && mu.kind !== 'add' ? at : undefined);
        }),
        options,
      );
    },
  );
});

// --- the parts -------------------------------------------------------------------------------

/** A repository holding objects in memory, each served in chunks of a given size. */
class MemoryRepository implements BackupRepository {
  readonly description = 'memory://fuzz';
  constructor(private readonly objects: Map<string, { data: Buffer; chunk: number } | (() => Readable)>) {}
  async get(key: string): Promise<Readable | undefined> {
    const o = this.objects.get(key);
    if (o === undefined) return undefined;
    if (typeof o === 'function') return o();
    return Readable.from(
      (function* () {
        for (let i = 0; i < o.data.length; i += o.chunk) yield o.data.subarray(i, i + o.chunk);
      })(),
      { objectMode: false },
    );
  }
  put(): Promise<void> {
    throw new Error('read-only');
  }
  async *list(): AsyncIterable<never> {}
  delete(): Promise<void> {
    throw new Error('read-only');
  }
  close(): void {}
}

const BACKUP = '20261123T134501Z-primary-0001';
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isRef = (v: unknown): boolean => isObject(v) && typeof v.type === 'string' && typeof v.id === 'string';
const isRowOf = (kind: BackupPart['kind'], v: unknown): boolean =>
  kind === 'vertices'
    ? isObject(v) && typeof v.type === 'string' && typeof v.id === 'string' && isObject(v.attributes)
    : isObject(v) && typeof v.type === 'string' && isRef(v.from) && isRef(v.to) && isObject(v.attributes);

const attributes = fc.dictionary(nastyString, fc.oneof(nastyString, fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null)), {
  maxKeys: 4,
});
const ref = fc.record({ type: nastyString, id: nastyString });
const vertexRow: fc.Arbitrary<VertexRow> = fc.record({ type: nastyString, id: nastyString, attributes });
const edgeRow: fc.Arbitrary<EdgeRow> = fc.record({ type: nastyString, from: ref, to: ref, attributes });

/** A well-formed part: its kind, rows, stored (gzip) bytes and its true manifest entry. */
interface PartCase {
  kind: BackupPart['kind'];
  rows: Array<VertexRow | EdgeRow>;
  stored: Buffer;
  entry: BackupPart;
}

const entryOf = (kind: BackupPart['kind'], text: Buffer, stored: Buffer, records: number): BackupPart => ({
  name: `${kind}-00001.ndjson.gz`,
  kind,
  records,
  bytes: stored.length,
  uncompressedBytes: text.length,
  sha256: createHash('sha256').update(stored).digest('hex'),
});

const gzip = (text: Buffer, level: number): Buffer => gzipSync(text, { level });

const partCases: fc.Arbitrary<PartCase> = fc
  .tuple(fc.constantFrom<BackupPart['kind']>('vertices', 'edges'), fc.integer({ min: 0, max: 9 }))
  .chain(([kind, level]) =>
    fc.array((kind === 'vertices' ? vertexRow : edgeRow) as fc.Arbitrary<VertexRow | EdgeRow>, { minLength: 1, maxLength: 12 }).map((rows) => {
      const text = Buffer.from(rows.map((r) => `${JSON.stringify(r)}\n`).join(''), 'utf8');
      const stored = gzip(text, level);
      // what JSON gives back (a lone surrogate stays one; -0 becomes 0)
      return { kind, rows: rows.map((r) => JSON.parse(JSON.stringify(r)) as VertexRow | EdgeRow), stored, entry: entryOf(kind, text, stored, rows.length) };
    }),
  );

/** Reads a part to its end: every batch. */
async function readAll(repo: BackupRepository, entry: BackupPart, batchRows: number): Promise<Array<Array<VertexRow | EdgeRow>>> {
  const batches: Array<Array<VertexRow | EdgeRow>> = [];
  for await (const b of readPart(repo, BACKUP, entry, batchRows)) batches.push(b);
  return batches;
}

/** How the repository serves a part: whole, in chunks of 256 B to 4 KiB, or (rarely: slow) of 1 to 64 B. */
const chunkSize = fc.oneof(
  { weight: 4, arbitrary: fc.constant(1 << 30) },
  { weight: 4, arbitrary: fc.integer({ min: 256, max: 4096 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 64 }) },
);

const repoOf = (entry: BackupPart, stored: Buffer, chunk: number): MemoryRepository =>
  new MemoryRepository(new Map([[`${BACKUP}/${entry.name}`, { data: stored, chunk }]]));

/** The error names the backup and the part (message and `part` property). */
function namesPart(err: CrrError, entry: BackupPart): void {
  expect(err.message).toContain(`backup ${BACKUP}: `);
  expect(err.message).toContain(`part ${entry.name} `);
  expect(err.part).toBe(entry.name);
  expect(['corrupt', 'count', 'missing']).toContain(err.problem);
}

describe('fuzz: readPart (backup data parts)', () => {
  fuzz(
    'arbitrary stored bytes (random, or gzip of arbitrary lines) under an arbitrary entry give rows or CRR_BACKUP_INVALID naming the part',
    0xba0101,
    3000,
    async (options) => {
      const stored = fc.oneof(
        nastyBytes,
        fc
          .tuple(
            fc.array(
              fc.oneof(
                nastyString,
                nastyJson.map((v) => JSON.stringify(v) ?? ''),
              ),
              { maxLength: 8 },
            ),
            fc.boolean(),
            fc.integer({ min: 0, max: 9 }),
          )
          .map(([lines, nl, level]) => gzip(Buffer.from(lines.join('\n') + (nl ? '\n' : ''), 'utf8'), level)),
      );
      const input = fc.tuple(
        stored,
        fc.constantFrom<BackupPart['kind']>('vertices', 'edges'),
        fc.boolean(),
        chunkSize,
        fc.integer({ min: 1, max: 5 }),
        fc.nat(20),
      );
      await fc.assert(
        fc.asyncProperty(input, async ([bytes, kind, trueEntry, chunk, batchRows, records]) => {
          const entry: BackupPart = trueEntry
            ? { ...entryOf(kind, Buffer.alloc(0), bytes, records), uncompressedBytes: 1 << 20 }
            : { name: `${kind}-00001.ndjson.gz`, kind, records, bytes: bytes.length + 1, uncompressedBytes: records * 10, sha256: '0'.repeat(64) };
          await outcomeAsync(
            () => readAll(repoOf(entry, bytes, chunk), entry, batchRows),
            'CRR_BACKUP_INVALID',
            (batches) => {
              for (const b of batches) for (const r of b) expect(isRowOf(kind, r)).toBe(true);
              expect(batches.flat()).toHaveLength(entry.records);
            },
            (err) => namesPart(err, entry),
          );
        }),
        options,
      );
    },
  );

  fuzz('a valid part is read back exactly, in batches of at most batchRows', 0xba0102, 2000, async (options) => {
    await fc.assert(
      fc.asyncProperty(partCases, chunkSize, fc.integer({ min: 1, max: 12 }), async (p, chunk, batchRows) => {
        const batches = await readAll(repoOf(p.entry, p.stored, chunk), p.entry, batchRows);
        for (const b of batches) expect(b.length).toBeLessThanOrEqual(batchRows);
        if (!isDeepStrictEqual(batches.flat(), p.rows)) expect(batches.flat()).toEqual(p.rows);
      }),
      options,
    );
  });

  fuzz(
    'a valid part with a byte flipped, cut short or extended, or an entry that is off, is always refused naming the part',
    0xba0103,
    2500,
    async (options) => {
      const damage = fc.oneof(
        fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
        fc.record({ kind: fc.constant('cut' as const), keep: fc.nat() }),
        fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
        fc.record({
          kind: fc.constant('entry' as const),
          field: fc.constantFrom('records', 'bytes', 'uncompressedBytes', 'sha256'),
          delta: fc.integer({ min: -3, max: 3 }).filter((d) => d !== 0),
        }),
      );
      await fc.assert(
        fc.asyncProperty(partCases, damage, chunkSize, async (p, d, chunk) => {
          let stored = p.stored;
          let entry = p.entry;
          if (d.kind === 'flip') {
            stored = Buffer.from(stored);
            stored[d.at % stored.length]! ^= 1 << d.bit;
          } else if (d.kind === 'cut') stored = stored.subarray(0, d.keep % stored.length);
          else if (d.kind === 'extend') stored = Buffer.concat([stored, d.extra]);
          else if (d.field === 'sha256') entry = { ...entry, sha256: entry.sha256.replace(/^./, (c) => (c === '0' ? '1' : '0')) };
          else entry = { ...entry, [d.field]: Math.max(0, entry[d.field] + d.delta) };
          if (stored.equals(p.stored) && isDeepStrictEqual(entry, p.entry)) return; // clamped at 0: no change
          await outcomeAsync(
            () => readAll(repoOf(entry, stored, chunk), entry, 5),
            'CRR_BACKUP_INVALID',
            () => expect.unreachable(`a damaged part (${d.kind}) was read`),
            (err) => namesPart(err, entry),
          );
        }),
        options,
      );
    },
  );

  fuzz(
    'a line that is not a row (garbage, NUL, a lone surrogate, invalid UTF-8, deep nesting, no final newline) is refused naming its line',
    0xba0104,
    2500,
    async (options) => {
      const badLine = fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 32 }).map((b) => Buffer.from(b.map((x) => (x === 0x0a ? 0x20 : x)))),
        nastyJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'undefined', 'utf8')),
        fc.tuple(fc.constantFrom('\u0000', '\ud800'), loneSurrogate).map(([a, b]) => Buffer.from(`{"type":"${a}","id":"${b}"}`, 'utf8')),
        fc.constantFrom(Buffer.from([0xff, 0xfe]), Buffer.from('{"type":"t","id":"i","attributes":[]}'), Buffer.from(''), Buffer.from('\r')),
        deeplyNested.map((d) => Buffer.from(d)),
      );
      const input = partCases.chain((p) => fc.tuple(fc.constant(p), badLine, fc.nat(p.rows.length), fc.boolean(), chunkSize));
      await fc.assert(
        fc.asyncProperty(input, async ([p, bad, at, finalNewline, chunk]) => {
          const lines = p.rows.map((r) => Buffer.from(JSON.stringify(r), 'utf8'));
          const badParsed = (() => {
            try {
              return JSON.parse(bad.toString('utf8')) as unknown;
            } catch {
              return undefined;
            }
          })();
          if (isRowOf(p.kind, badParsed)) return; // by chance a row
          lines.splice(at, 0, bad);
          const text = Buffer.concat(lines.flatMap((l, i) => (i < lines.length - 1 || finalNewline ? [l, Buffer.from('\n')] : [l])));
          const stored = gzip(text, 1);
          const entry = entryOf(p.kind, text, stored, lines.length);
          await outcomeAsync(
            () => readAll(repoOf(entry, stored, chunk), entry, 4),
            'CRR_BACKUP_INVALID',
            () => expect.unreachable('a part with a bad line was read'),
            (err) => {
              namesPart(err, entry);
              // a last line without its newline: refused as such, or (an empty one) it is no line, so one record is missing
              if (at === lines.length - 1 && !finalNewline)
                expect(err.message).toMatch(
                  new RegExp(
                    `line ${at + 1} is not|the last line \\(${at + 1}\\) does not end with a newline|holds ${at} records, the manifest says ${at + 1}`,
                  ),
                );
              else expect(err.message).toContain(`line ${at + 1} is not`);
            },
          );
        }),
        options,
      );
    },
  );

  /** A stored part made on the fly: gzip of `lines()` (as much as the reader pulls), counting the bytes made. */
  function lazyPart(line: () => Iterable<Buffer>, level: number): { repo: BackupRepository; made: () => number; pulled: () => number } {
    let made = 0;
    let pulled = 0;
    const repo = new MemoryRepository(
      new Map([
        [
          `${BACKUP}/vertices-00001.ndjson.gz`,
          () => {
            const src = Readable.from(
              (function* () {
                for (const b of line()) {
                  made += b.length;
                  yield b;
                }
              })(),
              { objectMode: false },
            );
            const gz = src.pipe(createGzip({ level }));
            gz.on('data', (c: Buffer) => (pulled += c.length));
            return gz;
          },
        ],
      ]),
    );
    return { repo, made: () => made, pulled: () => pulled };
  }

  it(`a part holding one line of 256 MiB is refused at line 1 once ${MAX_PART_LINE_BYTES} bytes of it are read, before its checksum and without reading the rest`, {
    timeout: 60_000,
  }, async () => {
    const total = 256 * 1024 * 1024;
    const piece = Buffer.alloc(64 * 1024, 'a');
    // gzip level 0 (stored blocks): the bytes pulled from the repository are the line's bytes
    const { repo, made, pulled } = lazyPart(function* () {
      for (let n = 0; n < total; n += piece.length) yield piece;
    }, 0);
    const entry: BackupPart = {
      name: 'vertices-00001.ndjson.gz',
      kind: 'vertices',
      records: 1,
      bytes: Number.MAX_SAFE_INTEGER,
      uncompressedBytes: Number.MAX_SAFE_INTEGER,
      sha256: '0'.repeat(64),
    };
    const err = await readAll(repo, entry, 10).then(
      () => expect.unreachable('read'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CrrError);
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', part: entry.name, problem: 'corrupt' });
    expect((err as CrrError).message).toContain(`part ${entry.name} is corrupt: line 1 is longer than ${MAX_PART_LINE_BYTES} bytes`);
    // what the reader pulled from the repository: the limit and a few stream buffers, not 256 MiB
    expect(pulled()).toBeGreaterThan(MAX_PART_LINE_BYTES);
    expect(pulled()).toBeLessThan(MAX_PART_LINE_BYTES + 1024 * 1024);
    expect(made()).toBeLessThan(MAX_PART_LINE_BYTES + 1024 * 1024);
  });

  it('a gzip bomb (more decompressed bytes than the manifest says) is refused without decompressing the rest', { timeout: 60_000 }, async () => {
    const row = Buffer.from(`${JSON.stringify({ type: 'person', id: 'x', attributes: {} })}\n`);
    const rows = Buffer.concat(Array.from({ length: 1024 }, () => row));
    const { repo, made } = lazyPart(function* () {
      for (let n = 0; n < 256 * 1024 * 1024; n += rows.length) yield rows;
    }, 1);
    const entry: BackupPart = {
      name: 'vertices-00001.ndjson.gz',
      kind: 'vertices',
      records: 1_000,
      bytes: Number.MAX_SAFE_INTEGER,
      uncompressedBytes: 1024 * 1024,
      sha256: '0'.repeat(64),
    };
    const err = await readAll(repo, entry, 10_000).then(
      () => expect.unreachable('read'),
      (e: unknown) => e as CrrError,
    );
    expect(err).toMatchObject({ code: 'CRR_BACKUP_INVALID', part: entry.name, problem: 'corrupt' });
    expect(err.message).toContain('more than the 1048576 bytes uncompressed the manifest says');
    expect(made()).toBeLessThan(8 * 1024 * 1024);
  });

  it(`a batch holds at most ${MAX_PART_BATCH_BYTES} bytes of lines, whatever batchRows`, { timeout: 60_000 }, async () => {
    const line = Buffer.from(`${JSON.stringify({ type: 't', id: 'i', attributes: { blob: 'b'.repeat(4 * 1024 * 1024) } })}\n`);
    const lines = 20; // 80 MiB
    const text = Buffer.concat(Array.from({ length: lines }, () => line));
    const stored = gzip(text, 1);
    const entry = entryOf('vertices', text, stored, lines);
    const batches = await readAll(repoOf(entry, stored, 1 << 20), entry, 1_000);
    expect(batches.map((b) => b.length)).toEqual([16, 4]);
  });

  it('a missing part is refused naming it', async () => {
    const entry: BackupPart = { name: 'edges-00001.ndjson.gz', kind: 'edges', records: 1, bytes: 1, uncompressedBytes: 1, sha256: '0'.repeat(64) };
    await outcomeAsync(
      () => readAll(new MemoryRepository(new Map()), entry, 1),
      'CRR_BACKUP_INVALID',
      () => expect.unreachable(),
      (err) => {
        namesPart(err, entry);
        expect(err.problem).toBe('missing');
      },
    );
  });
});
