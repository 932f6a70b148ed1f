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

/** A vertex as stored (table `vertices`): every attribute written, live or not. */
export interface VertexRow {
  type: string;
  id: string;
  /** Attribute name -> JSON value (docs/protocol.md, "attributes"). */
  attributes: Record<string, unknown>;
}

/** An edge as stored (table `edges`): its type, its two ends and every attribute written. */
export interface EdgeRow {
  type: string;
  from: { type: string; id: string };
  to: { type: string; id: string };
  attributes: Record<string, unknown>;
}

/** A catalog entry (table `catalog`): `kind` is `vertex_type`, `edge_type`, `user`, `query`, `udf` or `loading_job`. */
export interface CatalogEntry {
  kind: string;
  name: string;
  /** The entry's JSON body, as the store keeps it (see SqlStore's applyMetadata). */
  body: unknown;
}

/** What a snapshot starts with: everything but the vertices and edges, read in the snapshot's transaction. */
export interface SnapshotHeader {
  /** Applied positions, sorted by topic and partition: the snapshot holds exactly the events below them. */
  positions: StorePosition[];
  /** The cluster state recorded in the store; `undefined` for a fresh store. */
  clusterState: ClusterState | undefined;
  /** Every catalog entry, sorted by kind and name. */
  catalog: CatalogEntry[];
}

/**
 * Receives a snapshot (see {@link Store.exportSnapshot}): `header` once, then `vertices` batches
 * (all of them, in primary-key order), then `edges` batches. A sink applies back-pressure by
 * resolving late; throwing aborts the snapshot (the error is rethrown by exportSnapshot).
 */
export interface SnapshotSink {
  header(header: SnapshotHeader): Promise<void>;
  vertices(rows: VertexRow[]): Promise<void>;
  edges(rows: EdgeRow[]): Promise<void>;
}

/** Options of {@link Store.exportSnapshot}. */
export interface SnapshotOptions {
  /** Rows per batch handed to the sink (and per query). Default 10,000; integer >= 1. */
  batchRows?: number;
}

/** Totals of an exported snapshot. */
export interface SnapshotTotals {
  vertices: number;
  edges: number;
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
  /**
   * Reads a consistent snapshot of the whole store for a backup: positions, cluster state and
   * catalog, then every vertex and every edge (tables `vertices` and `edges`, not the live
   * views), all in ONE read-only snapshot transaction (PostgreSQL: REPEATABLE READ READ ONLY;
   * PGlite has one connection, so nothing else runs meanwhile). Writes that commit during the
   * export are not seen, so the rows are exactly the state at the positions in the header.
   * Rows are read in keyset-paginated batches of `batchRows` (primary-key order), so memory
   * stays bounded by one batch. The transaction stays open until the sink has taken the last
   * batch: on PostgreSQL it holds back vacuum meanwhile; on PGlite it blocks every other use of
   * the store (replay) meanwhile.
   * @returns the number of vertices and edges handed to the sink
   * @throws CrrError CRR_STORE when the database fails (nothing is half-read: the sink sees an error)
   * @throws whatever the sink throws
   */
  exportSnapshot(sink: SnapshotSink, options?: SnapshotOptions): Promise<SnapshotTotals>;
  /** Releases connections (PostgreSQL) or the database (PGlite). */
  close(): Promise<void>;
}
