import { z } from 'zod';
import type { ChangeEvent } from '../protocol/schema.js';

/**
 * An applied position: the next offset of a topic partition that the store has not applied yet
 * (like a committed consumer offset). Written in the same transaction as the data it covers,
 * which is what makes replay exactly-once.
 */
export interface StorePosition {
  topic: string;
  partition: number;
  /** Next offset to apply (integer >= 0). */
  nextOffset: number;
}

/** States allowed per role (DESIGN.md, Vocabulary). */
export const PRIMARY_STATES = ['ACTIVE', 'FENCED'] as const;
export const REPLICA_STATES = ['REPLICATING', 'OUTDATED', 'RESEEDING', 'PROMOTING'] as const;

/** What {@link Store.setClusterState} accepts: a role, a state of that role, the store's epoch and why. */
export const ClusterStateInputSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('primary'), state: z.enum(PRIMARY_STATES), epoch: z.number().int().nonnegative(), reason: z.string().optional() }),
  z.strictObject({ role: z.literal('replica'), state: z.enum(REPLICA_STATES), epoch: z.number().int().nonnegative(), reason: z.string().optional() }),
]);
export type ClusterStateInput = z.infer<typeof ClusterStateInputSchema>;
/** The recorded cluster state, with the time it was last set. */
export type ClusterState = ClusterStateInput & { updatedAt: Date };

/** Rows per vertex type, per edge type and per catalog kind (`vertex_type`, `user`, ...). Absent = 0. */
export interface StoreCounts {
  vertices: Record<string, number>;
  edges: Record<string, number>;
  catalog: Record<string, number>;
}

/**
 * The store contract: state materialized from a cluster's change log, with the positions it
 * covers, the cluster's role and epoch. PostgreSQL and PGlite implement it with one SQL dialect
 * (src/store/sql.ts); `test/integration/store-conformance.test.ts` runs against both.
 *
 * Errors: CrrError `CRR_STORE_APPLY` for a batch that cannot be applied (not retriable),
 * `CRR_STORE` when the database fails (retriable for lost connections, serialization failures
 * and deadlocks). A failed call changes nothing.
 */
export interface Store {
  /** Creates the schema and tables, or brings them to the latest version. Idempotent; concurrent callers serialize on an advisory lock. */
  migrate(): Promise<void>;
  /**
   * Applies change events and upserts `positions`, in ONE transaction: both or neither.
   * The effect equals applying the events one by one in array order (an upsert then a delete of
   * one vertex leaves it absent), though statements are multi-row. Semantics per operation are
   * in docs/protocol.md.
   * @throws CrrError CRR_STORE_APPLY for a sync-breaking marker (the store never applies one;
   *   replay handles it) or an event that contradicts the store (altering an unknown type,
   *   granting a role to an unknown user); nothing is applied
   */
  applyBatch(events: readonly ChangeEvent[], positions: readonly StorePosition[]): Promise<void>;
  /** Every applied position, sorted by topic and partition. */
  positions(): Promise<StorePosition[]>;
  /** The recorded role, state and epoch; `undefined` when never set (a fresh store). */
  clusterState(): Promise<ClusterState | undefined>;
  /**
   * Records role, state, epoch and reason (replacing the previous ones).
   * @throws CrrError CRR_STORE_APPLY when the state does not belong to the role or the epoch is negative
   */
  setClusterState(state: ClusterStateInput): Promise<void>;
  /** Row counts per vertex type, edge type and catalog kind. */
  counts(): Promise<StoreCounts>;
  /**
   * SHA-256 (hex) over all vertices, edges and catalog entries, independent of their order and
   * of the store implementation: equal digests mean equal content. Positions and cluster state
   * are not included.
   */
  digest(): Promise<string>;
  /** Releases connections (PostgreSQL) or the database (PGlite). */
  close(): Promise<void>;
}
