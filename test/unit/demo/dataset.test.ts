import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { datasetEvents, datasetSummary, EDGE_TYPES, LIVE_NOTE_ATTRIBUTE, liveEvents, schemaEvents, VERTEX_TYPES } from '../../../demo/dataset.js';
import { parseEvent } from '../../../src/protocol/codec.js';
import type { ChangeEvent } from '../../../src/protocol/schema.js';
import { PgliteStore } from '../../../src/store/pglite.js';
import type { WriteInput } from '../../../src/writer/writer.js';

const LIMIT = 5000;
const LIVE = 5000;
const envelope = { v: 1, id: 'x', ts: 1, epoch: 0, origin: 'primary' };

/** schema + the first LIMIT dataset events + LIVE live events of `seed`: what a test store gets. */
const stream = (seed = 1): WriteInput[] => [...schemaEvents(), ...datasetEvents({ limit: LIMIT }), ...liveEvents(seed, LIVE, { limit: LIMIT })];
/** stream(1), made once for the tests that only read it. */
let seed1: WriteInput[] | undefined;
const events = (): WriteInput[] => (seed1 ??= stream(1));
const stamp = (e: WriteInput): ChangeEvent => parseEvent({ ...e, ...envelope });
const digest = (events: readonly WriteInput[]): string =>
  createHash('sha256')
    .update(events.map((e) => JSON.stringify(e)).join('\n'))
    .digest('hex');

const key = (r: { type: string; id: string }): string => `${r.type}\u0000${r.id}`;
/**
 * Plays events on sets of vertex and edge keys, the way the store does (a vertex delete leaves
 * its edges stored), and returns the counts per type the store should report.
 * @throws Error naming the event that deletes an absent entity or links an absent vertex
 */
function model(evs: readonly WriteInput[]): { vertices: Record<string, number>; edges: Record<string, number> } {
  const vertices = new Map<string, string>();
  const edges = new Map<string, string>();
  evs.forEach((e, i) => {
    const fail = (what: string): never => {
      throw new Error(`event ${i} ${e.op}: ${what}`);
    };
    if (e.op === 'UPSERT_VERTEX') vertices.set(key(e.vertex), e.vertex.type);
    if (e.op === 'DELETE_VERTEX' && !vertices.delete(key(e.vertex))) fail('vertex absent');
    if (e.op === 'UPSERT_EDGE' || e.op === 'DELETE_EDGE') {
      const k = `${e.type}\u0000${key(e.from)}\u0000${key(e.to)}`;
      if (e.op === 'UPSERT_EDGE' && !(vertices.has(key(e.from)) && vertices.has(key(e.to)))) fail('an end vertex is absent');
      if (e.op === 'UPSERT_EDGE') edges.set(k, e.type);
      if (e.op === 'DELETE_EDGE' && !edges.delete(k)) fail('edge absent');
    }
  });
  const count = (types: Iterable<string>): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const t of types) out[t] = (out[t] ?? 0) + 1;
    return out;
  };
  return { vertices: count(vertices.values()), edges: count(edges.values()) };
}

describe('demo dataset', () => {
  it('yields events that are valid protocol v1 once stamped', () => {
    expect(events().length).toBe(schemaEvents().length + LIMIT + LIVE);
    for (const e of events()) expect(() => stamp(e)).not.toThrow();
  });

  it('uses declared types, end types and attributes only', () => {
    const schema = schemaEvents();
    const attributes = new Map<string, Set<string>>();
    const ends = new Map<string, [string, string]>();
    for (const e of schema) {
      if (e.op === 'CREATE_VERTEX_TYPE') attributes.set(e.name, new Set([...e.attributes.map((a) => a.name), LIVE_NOTE_ATTRIBUTE]));
      if (e.op === 'CREATE_EDGE_TYPE') {
        attributes.set(e.name, new Set(e.attributes.map((a) => a.name)));
        ends.set(e.name, [e.fromType, e.toType]);
      }
    }
    expect([...attributes.keys()].sort()).toEqual([...VERTEX_TYPES, ...EDGE_TYPES].sort());
    for (const e of events()) {
      if (e.op === 'UPSERT_VERTEX' || e.op === 'DELETE_VERTEX') expect(attributes.has(e.vertex.type), e.vertex.type).toBe(true);
      if (e.op === 'UPSERT_VERTEX')
        for (const name of Object.keys(e.attributes)) expect(attributes.get(e.vertex.type)!.has(name), `${e.vertex.type}.${name}`).toBe(true);
      if (e.op === 'UPSERT_EDGE' || e.op === 'DELETE_EDGE') expect([e.from.type, e.to.type]).toEqual(ends.get(e.type));
      if (e.op === 'UPSERT_EDGE') for (const name of Object.keys(e.attributes)) expect(attributes.get(e.type)!.has(name), `${e.type}.${name}`).toBe(true);
    }
  });

  it('never deletes what is absent nor links a vertex that is absent', () => {
    expect(() => model(events())).not.toThrow();
  });

  it('applies to a store without error: vertices and edges of every type, every catalog kind', async () => {
    const store = new PgliteStore();
    try {
      await store.migrate();
      const stamped = events().map(stamp);
      for (let i = 0; i < stamped.length; i += 1000) await store.applyBatch(stamped.slice(i, i + 1000), []);
      const counts = await store.counts();
      const expected = model(events());
      expect(counts.vertices).toEqual(expected.vertices);
      expect(counts.edges).toEqual(expected.edges);
      expect(Object.keys(counts.vertices).sort()).toEqual([...VERTEX_TYPES].sort());
      expect(Object.keys(counts.edges).sort()).toEqual([...EDGE_TYPES].sort());
      expect(Object.keys(counts.catalog).sort()).toEqual(['edge_type', 'loading_job', 'query', 'udf', 'user', 'vertex_type']);
    } finally {
      await store.close();
    }
  });

  it('is deterministic: the same events on every run, another seed another mix', () => {
    expect(digest(stream(1))).toBe(digest(events()));
    expect(digest(stream(2))).not.toBe(digest(events()));
  });

  it('mixes about 1% metadata operations and 20% deletes among data operations', () => {
    const ops: Record<string, number> = {};
    for (const e of liveEvents(1, 20_000, { limit: LIMIT })) ops[e.op] = (ops[e.op] ?? 0) + 1;
    const data = (ops.UPSERT_VERTEX ?? 0) + (ops.DELETE_VERTEX ?? 0) + (ops.UPSERT_EDGE ?? 0) + (ops.DELETE_EDGE ?? 0);
    const deletes = (ops.DELETE_VERTEX ?? 0) + (ops.DELETE_EDGE ?? 0);
    expect((20_000 - data) / 20_000).toBeGreaterThan(0.005);
    expect((20_000 - data) / 20_000).toBeLessThan(0.02);
    expect(deletes / data).toBeGreaterThan(0.15);
    expect(deletes / data).toBeLessThan(0.25);
    for (const op of ['ALTER_VERTEX_TYPE', 'CREATE_QUERY', 'INSTALL_QUERY', 'DROP_QUERY', 'CREATE_USER', 'GRANT_ROLE', 'UPSERT_EDGE'])
      expect(ops[op], op).toBeGreaterThan(0);
  });

  it('summarizes the full data set: every type, 100k to 250k events', () => {
    const summary = datasetSummary();
    expect(Object.keys(summary.vertices).sort()).toEqual([...VERTEX_TYPES].sort());
    expect(Object.keys(summary.edges).sort()).toEqual([...EDGE_TYPES].sort());
    const total = Object.values(summary.vertices).reduce((a, b) => a + b, 0) + Object.values(summary.edges).reduce((a, b) => a + b, 0);
    expect(total).toBe(summary.events);
    expect(summary.events).toBeGreaterThan(100_000);
    expect(summary.events).toBeLessThan(250_000);
  });

  it('refuses bad arguments at the call', () => {
    expect(() => datasetEvents({ limit: -1 })).toThrow(/limit must be a non-negative integer, got -1/);
    expect(() => liveEvents(1.5, 10)).toThrow(/seed must be a safe integer, got 1.5/);
    expect(() => liveEvents(1, Number.NaN)).toThrow(/count must be a non-negative integer, got NaN/);
    expect(() => liveEvents(1, 10, { limit: 3 })).toThrow(/first 3 events of the data set have no (City|Airport) to change/);
  });
});
