import { mulberry32 } from '../../src/util/prng.js';
import { parseEvent } from '../../src/protocol/codec.js';
import type { ChangeEvent } from '../../src/protocol/schema.js';

/** Builds valid change events for store tests (ids count up; epoch 1; origin `primary`). */
export class Events {
  private n = 0;

  ev(fields: Record<string, unknown>): ChangeEvent {
    this.n++;
    return parseEvent({ v: 1, id: `ev-${this.n}`, ts: 1763900000000 + this.n, epoch: 1, origin: 'primary', ...fields });
  }
  upsertV(type: string, id: string, attributes: Record<string, unknown> = {}): ChangeEvent {
    return this.ev({ op: 'UPSERT_VERTEX', vertex: { type, id }, attributes });
  }
  deleteV(type: string, id: string): ChangeEvent {
    return this.ev({ op: 'DELETE_VERTEX', vertex: { type, id } });
  }
  upsertE(type: string, from: [string, string], to: [string, string], attributes: Record<string, unknown> = {}): ChangeEvent {
    return this.ev({ op: 'UPSERT_EDGE', type, from: { type: from[0], id: from[1] }, to: { type: to[0], id: to[1] }, attributes });
  }
  deleteE(type: string, from: [string, string], to: [string, string]): ChangeEvent {
    return this.ev({ op: 'DELETE_EDGE', type, from: { type: from[0], id: from[1] }, to: { type: to[0], id: to[1] } });
  }
}

/** A small deterministic PRNG, so that a failing random sequence can be replayed. */
export const prng = mulberry32;

/**
 * A random mix of every data operation and the metadata operations that touch data, over a
 * small key space so that the same entities are upserted, deleted and re-created many times.
 */
export function randomEvents(seed: number, count: number): ChangeEvent[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const vtypes = ['person', 'city'] as const;
  const ids = ['a', 'b', 'c', 'd'];
  const etypes = ['knows', 'lives_in'];
  const vertex = (): [string, string] => [pick(vtypes), pick(ids)];
  const attrs = (): Record<string, unknown> =>
    Object.fromEntries(['x', 'y', 'z', 'p', 'q', 'r'].filter(() => rnd() < 0.3).map((k) => [k, Math.floor(rnd() * 100)]));
  const e = new Events();
  const out: ChangeEvent[] = [e.ev({ op: 'CREATE_VERTEX_TYPE', name: 'person', primaryIdType: 'STRING', attributes: [{ name: 'x', type: 'INT' }] })];
  for (let i = 0; i < count; i++) {
    const r = rnd();
    if (r < 0.3) out.push(e.upsertV(...vertex(), attrs()));
    else if (r < 0.45) out.push(e.deleteV(...vertex()));
    else if (r < 0.75) out.push(e.upsertE(pick(etypes), vertex(), vertex(), attrs()));
    else if (r < 0.9) out.push(e.deleteE(pick(etypes), vertex(), vertex()));
    else if (r < 0.95) out.push(e.ev({ op: 'ALTER_VERTEX_TYPE', name: 'person', dropAttributes: [pick(['x', 'y'])] }));
    else if (r < 0.97) out.push(e.ev({ op: 'DROP_VERTEX_TYPE', name: 'city' }));
    else if (r < 0.99) out.push(e.ev({ op: 'DROP_EDGE_TYPE', name: pick(etypes) }));
    else out.push(e.ev({ op: 'CREATE_USER', name: pick(ids), roles: ['r'] }));
  }
  return out;
}
