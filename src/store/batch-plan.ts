import type { Attributes, ChangeEvent, EventOf } from '../protocol/schema.js';

/**
 * The net effect of a run of vertex and edge operations, so that a run is written with a few
 * multi-row statements instead of one statement per event, with the same result as applying
 * the events in order.
 *
 * Per entity the net effect is one of:
 * - `delete`: the entity ends absent;
 * - `merge`: the given attributes are set on the entity as it was before the run (created if absent);
 * - `replace`: the entity was deleted in the run and then upserted: it ends with exactly these attributes.
 *
 * Every operation changes its own entity only (a vertex delete leaves the vertex's edges in
 * place; readers use the `live_edges` view, see docs/protocol.md "Order"). That is what makes
 * the result independent of how replay interleaves the data topic's partitions, so a primary and
 * its replica converge.
 * The statements must run in this order: delete vertices (`delete`, `replace`), delete edges
 * (`delete`, `replace`), upsert vertices (`merge`, `replace`), upsert edges (`merge`, `replace`).
 */
export interface DataPlan {
  vertices: Map<string, PlannedVertex>;
  edges: Map<string, PlannedEdge>;
}

export type NetEffect = 'delete' | 'merge' | 'replace';
export interface PlannedVertex {
  type: string;
  id: string;
  effect: NetEffect;
  attributes: Attributes;
}
export interface PlannedEdge {
  type: string;
  from_type: string;
  from_id: string;
  to_type: string;
  to_id: string;
  effect: NetEffect;
  attributes: Attributes;
}

const vkey = (type: string, id: string): string => JSON.stringify([type, id]);

/** Builds plans for runs of data operations, one event at a time. */
export class DataPlanner {
  private plan: DataPlan = emptyPlan();

  /** Whether no event was added since the last {@link take}. */
  get empty(): boolean {
    return this.plan.vertices.size === 0 && this.plan.edges.size === 0;
  }

  add(event: EventOf<'UPSERT_VERTEX' | 'DELETE_VERTEX' | 'UPSERT_EDGE' | 'DELETE_EDGE'>): void {
    switch (event.op) {
      case 'UPSERT_VERTEX': {
        const { type, id } = event.vertex;
        const key = vkey(type, id);
        const prev = this.plan.vertices.get(key);
        this.plan.vertices.set(key, { type, id, ...upsert(prev, event.attributes) });
        return;
      }
      case 'DELETE_VERTEX': {
        const { type, id } = event.vertex;
        const key = vkey(type, id);
        this.plan.vertices.set(key, { type, id, effect: 'delete', attributes: {} });
        return;
      }
      case 'UPSERT_EDGE':
      case 'DELETE_EDGE': {
        const ends = { from_type: event.from.type, from_id: event.from.id, to_type: event.to.type, to_id: event.to.id };
        const key = JSON.stringify([event.type, ends.from_type, ends.from_id, ends.to_type, ends.to_id]);
        const prev = this.plan.edges.get(key);
        const next = event.op === 'UPSERT_EDGE' ? upsert(prev, event.attributes) : { effect: 'delete' as const, attributes: {} };
        this.plan.edges.set(key, { type: event.type, ...ends, ...next });
        return;
      }
    }
  }

  /** Returns the plan of the run so far and starts a new run. */
  take(): DataPlan {
    const plan = this.plan;
    this.plan = emptyPlan();
    return plan;
  }
}

function upsert(prev: { effect: NetEffect; attributes: Attributes } | undefined, attributes: Attributes): { effect: NetEffect; attributes: Attributes } {
  if (prev === undefined) return { effect: 'merge', attributes: { ...attributes } };
  if (prev.effect === 'delete') return { effect: 'replace', attributes: { ...attributes } };
  return { effect: prev.effect, attributes: { ...prev.attributes, ...attributes } };
}

function emptyPlan(): DataPlan {
  return { vertices: new Map(), edges: new Map() };
}

/** Whether an event is a vertex or edge operation (planned) rather than a metadata operation. */
export function isDataEvent(e: ChangeEvent): e is EventOf<'UPSERT_VERTEX' | 'DELETE_VERTEX' | 'UPSERT_EDGE' | 'DELETE_EDGE'> {
  return e.op === 'UPSERT_VERTEX' || e.op === 'DELETE_VERTEX' || e.op === 'UPSERT_EDGE' || e.op === 'DELETE_EDGE';
}
