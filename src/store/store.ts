import type { ClusterState, ClusterStateInput } from '../cluster/cluster-state.js';
import type { ChangeEvent } from '../protocol/schema.js';
import type { ReplayFence } from './apply.js';

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

/**
 * The primary's sync-breaking operations a store carries out itself (docs/glossary.md, "sync-breaking event";
 * docs/protocol.md, "Sync-breaking markers"), named as their markers.
 */
export type SyncBreakOp = 'IMPORT' | 'DROP_ALL' | 'CLEAR_GRAPH_STORE' | 'RESET';

/** What {@link Store.applySyncBreak} needs beside the operation. */
export interface SyncBreakOptions {
  /**
   * IMPORT only: the events to load (vertex, edge and metadata operations with their envelope;
   * no markers), as one array or as batches from an async source (a file read while the
   * transaction is open). Applied as {@link Store.applyBatch} applies events, without positions.
   */
  events?: readonly ChangeEvent[] | AsyncIterable<readonly ChangeEvent[]>;
  /** RESET only: topics whose applied positions go back to 0 (the recreated change topics). */
  resetTopics?: readonly string[];
  /** The cluster state recorded in the same transaction (the raised epoch). */
  newState: ClusterStateInput;
  /**
   * When given, the recorded epoch must be this one and the recorded state a primary's
   * `ACTIVE` (or none recorded yet, for epoch 0): a concurrent operation or a promotion in
   * between makes the call refuse (CRR_WRITE_REFUSED) with nothing changed.
   */
  expectedEpoch?: number;
}

/** Rows one {@link Store.applySyncBreak} call changed. */
export interface SyncBreakResult {
  /** Vertices deleted (DROP_ALL, CLEAR_GRAPH_STORE). */
  verticesDeleted: number;
  /** Edges deleted (DROP_ALL, CLEAR_GRAPH_STORE). */
  edgesDeleted: number;
  /** Catalog entries deleted (DROP_ALL). */
  catalogDeleted: number;
  /** Events applied (IMPORT). */
  eventsApplied: number;
  /** Position rows set back to 0 (RESET). */
  positionsReset: number;
}

/**
 * One row that differs between two schemas (see {@link Store.compareWithSchema}): its table, its
 * key, and its value on each side.
 */
export interface EntityDifference {
  section: 'vertices' | 'edges' | 'catalog';
  /** Vertex `{type, id}`; edge `{type, from: {type, id}, to: {type, id}}`; catalog entry `{kind, name}`. */
  key: { type: string; id: string } | { type: string; from: { type: string; id: string }; to: { type: string; id: string } } | { kind: string; name: string };
  /** The attributes (vertex, edge) or the body (catalog entry) in this store's schema; absent = no such row there. */
  here?: unknown;
  /** The same in the other schema; absent = no such row there. */
  other?: unknown;
}

/** What {@link Store.compareWithSchema} read, all in one snapshot. */
export interface SchemaComparison {
  /** This store's applied positions, sorted by topic and partition. */
  positions: StorePosition[];
  /** This store's cluster state; `undefined` when never set. */
  clusterState: ClusterState | undefined;
  /** Rows per type and kind: `here` in this store's schema, `other` in the other schema. */
  counts: { here: StoreCounts; other: StoreCounts };
  /** The content digests ({@link Store.digest}) of both. */
  digests: { here: string; other: string };
  /** Rows that differ per table (absent on one side, or another value); all 0 when the digests are equal. */
  differing: { vertices: number; edges: number; catalog: number };
  /** The first differing row in key order (vertices, then edges, then catalog entries); absent when the digests are equal. */
  first?: EntityDifference;
}

/** Totals of an exported snapshot. */
export interface SnapshotTotals {
  vertices: number;
  edges: number;
}

/**
 * What a restore loads besides the rows (see {@link Store.restore}). A backup manifest
 * (src/backup/manifest.ts) has this shape.
 */
export interface RestorePlan {
  /** The backup id: named in errors, and its last 4 hex digits name the staging schema. */
  id: string;
  /** Schema version of the store that was backed up (SCHEMA_VERSION of src/store/migrations.ts); refused when newer than this crr's. */
  storeSchemaVersion: number;
  /** Positions to record, as they are: replay resumes (and, on a replica, skips by upstream offset) from here. */
  positions: readonly StorePosition[];
  /** Every catalog entry. */
  catalog: readonly CatalogEntry[];
  /** The data parts in the order their rows arrive, with their record counts (each >= 1). */
  parts: ReadonlyArray<{ name: string; kind: 'vertices' | 'edges'; records: number }>;
}

/** A batch of rows of one part, as {@link Store.restore} takes them (the backup's `readBackup` yields these). */
export type RestoreBatch = { part: string; kind: 'vertices'; rows: VertexRow[] } | { part: string; kind: 'edges'; rows: EdgeRow[] };

/** Progress of {@link Store.restore}: rows loaded into the staging schema so far, then the phases after loading. */
export interface RestoreProgress {
  phase: 'load' | 'verify' | 'swap' | 'done';
  vertices: number;
  edges: number;
  /** Parts whose rows were all loaded. */
  parts: number;
}

/** Options of {@link Store.restore}. */
export interface RestoreOptions {
  /**
   * Restore beside the live state under this schema (a lower-case SQL identifier that must not
   * exist; InfluxDB's `-newdb`) instead of replacing the live state. Default: replace.
   */
  targetSchema?: string;
  /** The cluster state recorded in the restored state (e.g. `{role:'replica', state:'REPLICATING', epoch}`); absent = none recorded. */
  clusterState?: ClusterStateInput;
  onProgress?: (p: RestoreProgress) => void;
  /**
   * Called with the staging schema once it is loaded and verified, just before the swap (e.g.
   * to apply the write fence to it: grants follow the schema through its rename, so readers
   * never lose access). Throwing aborts the restore (the staging schema is dropped).
   */
  beforeSwap?: (stagingSchema: string) => Promise<void>;
  /** Aborts the load (the staging schema is dropped); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /**
   * The swap waits at most this long for a lock (PostgreSQL `lock_timeout`), ms: dropping the
   * old tables waits for transactions still reading them, and new readers queue behind it.
   * Default 5000.
   */
  swapLockTimeoutMs?: number;
  /** Attempts of the swap before it gives up (CRR_STORE, retriable; nothing changed). Default 12. */
  swapAttempts?: number;
}

/**
 * A lease held on a store: while it is held, no other holder (in any process) gets a lease of
 * the same name on the same store. It ends with {@link release}, or when its holder dies
 * (PostgreSQL: the session-level advisory lock goes with the connection, so a SIGKILLed holder
 * frees it at once; PGlite: the store is one process's database, see `crr.lock`).
 */
export interface StoreLease {
  /** The lease's name, e.g. `reseed`. */
  readonly name: string;
  /** Ends the lease. Idempotent; never throws (a lost connection has ended it already). */
  release(): Promise<void>;
}

/** A promotion to record with {@link Store.recordPromotion}. */
export interface PromotionInput {
  /** `graceful` (drained, old primary fenced) or `force` (the primary unreachable). */
  mode: 'graceful' | 'force';
  /** The replica's epoch before, and the new primary's epoch after (higher than every epoch of the old primary). */
  fromEpoch: number;
  toEpoch: number;
  /** What `crr promote` reports (RPO, RTO, fenced, ...), kept as JSON. */
  summary: Record<string, unknown>;
}

/** A recorded promotion (table `promotions`, store migration 3). */
export interface PromotionRecord extends PromotionInput {
  id: number;
  promotedAt: Date;
}

/** What {@link Store.restore} did. */
export interface RestoreResult {
  /** The schema now holding the restored state: the store's own, or `targetSchema`. */
  schema: string;
  /** The staging schema it was loaded into (gone now: renamed to `schema`). */
  stagingSchema: string;
  /** True when the live state was replaced (no `targetSchema`). */
  swapped: boolean;
  /** The schema the replaced live state was renamed to, then dropped (swapped and the live schema existed). */
  droppedSchema?: string;
  vertices: number;
  edges: number;
  catalog: number;
  positions: number;
}

/**
 * The store contract: state materialized from a cluster's change log, with the positions it
 * covers, the cluster's role and epoch. PostgreSQL and PGlite implement it with one SQL dialect
 * (src/store/sql-store.ts and the modules it runs); `test/integration/store-conformance.test.ts` runs against both.
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
  applyBatch(events: readonly ChangeEvent[], positions: readonly StorePosition[], fence?: ReplayFence): Promise<void>;
  /**
   * Makes the caller the one replay activation that may apply to this store: raises the replay
   * fence's generation and returns a fresh token. A batch given a `fence` (applyBatch) is applied
   * only while its token is the current one, so a replay that stalled (GC pause, SIGSTOP, a hung
   * connection) past its group session and then resumes cannot apply over its successor; a
   * restore's swap fences every earlier activation too. Positions never move back in applyBatch.
   * @param holder who activates (in the token, for operators)
   */
  activateReplay(holder: string): Promise<ReplayFence & { generation: number }>;
  /** Every applied position, sorted by topic and partition. */
  positions(): Promise<StorePosition[]>;
  /** The recorded role, state and epoch; `undefined` when never set (a fresh store). */
  clusterState(): Promise<ClusterState | undefined>;
  /**
   * Records role, state, epoch, reason and a replica's backupId (replacing the previous ones; an absent one is cleared).
   * @throws CrrError CRR_STORE_APPLY when the state does not belong to the role or the epoch is negative
   */
  setClusterState(state: ClusterStateInput): Promise<void>;
  /**
   * Records a promotion: the new cluster state (role `primary`, state `ACTIVE`, epoch
   * `promotion.toEpoch`), a row of the promotion history and `positions` (upserted: where the
   * new primary's replay of its own change topics starts), in ONE transaction.
   * @throws CrrError CRR_STORE_APPLY when the state is not primary ACTIVE at `toEpoch`
   */
  recordPromotion(state: ClusterStateInput, promotion: PromotionInput, positions?: readonly StorePosition[]): Promise<PromotionRecord>;
  /** The promotion history, oldest first (empty for a cluster never promoted; a restore replaces it with the backup's). */
  promotions(): Promise<PromotionRecord[]>;
  /** Row counts per vertex type, edge type and catalog kind. */
  counts(): Promise<StoreCounts>;
  /**
   * SHA-256 (hex) over all vertices, edges and catalog entries, independent of their order and
   * of the store implementation: equal digests mean equal content. Positions and cluster state
   * are not included.
   */
  digest(): Promise<string>;
  /**
   * Compares this store's data and catalog with those of schema `other` of the same database
   * (a scratch schema: `crr verify --against-log`), in ONE read-only snapshot transaction
   * (PostgreSQL: REPEATABLE READ READ ONLY): this store's positions and cluster state, both
   * sides' counts and digests, and, when the digests differ, how many rows of each table differ
   * and the first one in key order (found by a FULL JOIN on the primary keys).
   * @throws CrrError CRR_STORE when the database fails or `other` has no crr tables
   */
  compareWithSchema(other: string): Promise<SchemaComparison>;
  /**
   * A store on schema `schema` of this store's database, over this store's connections (a
   * scratch schema beside the live one). Nothing is created until its `migrate()`. Its `close()`
   * leaves the connections open (they are this store's); its leases are in-process only.
   * @throws CrrError CRR_CONFIG_INVALID when `schema` is not a lower-case SQL identifier, or is this store's own schema
   */
  besideSchema(schema: string): Store;
  /**
   * Drops schema `schema` of this store's database with everything in it (`DROP SCHEMA IF
   * EXISTS ... CASCADE`): the cleanup of a scratch schema made with {@link besideSchema}.
   * @throws CrrError CRR_CONFIG_INVALID when `schema` is not a lower-case SQL identifier, or is this store's own schema
   * @throws CrrError CRR_STORE when the database fails
   */
  dropSchema(schema: string): Promise<void>;
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
  /**
   * Restores a backup, replacing the live state atomically (or beside it, with
   * `options.targetSchema`). Steps:
   * 1. creates a fresh staging schema `<schema>_restore_<4 hex of the id><4 random hex>` (or
   *    `<targetSchema>_restore_...`) and migrates it (the same migrations as {@link migrate});
   * 2. loads the catalog and `plan.positions` as they are (no other position rows), the
   *    cluster state given, and every batch of `rows` (multi-row INSERTs; a duplicate row is an
   *    error), checking that the batches come part by part in `plan.parts` order;
   * 3. verifies the staging schema: rows per part equal the part's `records`, and the
   *    vertices, edges, catalog entries and positions counted in SQL equal the plan's sums;
   * 4. calls `options.beforeSwap(staging)`;
   * 5. in ONE transaction: renames the live schema to `<schema>_old_<...>`, renames the staging
   *    schema to the live name, drops the old schema (CASCADE: objects others put in it, and
   *    views elsewhere that depend on its tables, go too). Readers see the old state until the
   *    commit and the new one after; this store object keeps working (its queries name the
   *    schema). With `targetSchema`: the staging schema is renamed to it instead, nothing else.
   *
   * The swap waits for transactions still reading the live tables (each attempt at most
   * `swapLockTimeoutMs`, then it is tried again, up to `swapAttempts` times); new readers wait
   * meanwhile, then see the restored state.
   * Writes committed to the live schema meanwhile (replay) are replaced with it: stop replay
   * for the restore, and restart it afterwards (it reads the positions again). A crash during
   * the load leaves a `<schema>_restore_*` schema behind, which can be dropped.
   *
   * On any failure the staging schema is dropped and the live state is untouched.
   * @throws CrrError CRR_BACKUP_INVALID naming the part: rows of a part not in the plan, out of
   *   order, or another count than the plan says; and naming the manifest: a newer store schema
   *   version, counts in SQL that differ from the plan's
   * @throws CrrError CRR_RESTORE_REFUSED when `targetSchema` exists already
   * @throws CrrError CRR_CONFIG_INVALID when `targetSchema` is not a valid SQL identifier
   * @throws CrrError CRR_STORE when the database fails
   * @throws whatever `rows` throws (e.g. CRR_BACKUP_INVALID for a corrupt or missing part), or
   *   `beforeSwap` throws, or the signal's reason
   */
  restore(plan: RestorePlan, rows: AsyncIterable<RestoreBatch>, options?: RestoreOptions): Promise<RestoreResult>;
  /**
   * Carries out the store's part of a sync-breaking operation and records the new cluster state
   * (the raised epoch), in ONE transaction: both or neither. Used by `crr admin`
   * (src/admin/admin.ts), which then writes the operation's marker.
   * - `DROP_ALL`: deletes every vertex, edge and catalog entry;
   * - `CLEAR_GRAPH_STORE`: deletes every vertex and edge, keeps the catalog;
   * - `IMPORT`: applies `events` (batch by batch, all in this transaction) without positions;
   * - `RESET`: sets the applied positions of `resetTopics` back to 0; the data stays.
   * Rows are deleted with DELETE (not TRUNCATE) so that a backup's snapshot transaction running
   * meanwhile keeps reading the rows it started with.
   * @throws CrrError CRR_STORE_APPLY when `events` hold a marker or an event that contradicts the
   *   store, when `newState` is invalid, or `events`/`resetTopics` are given to another operation;
   *   CRR_WRITE_REFUSED when `expectedEpoch` no longer holds; whatever an async `events` source
   *   throws (nothing is applied in every case)
   */
  applySyncBreak(op: SyncBreakOp, options: SyncBreakOptions): Promise<SyncBreakResult>;
  /**
   * Takes the lease `name` on this store if nobody holds it (one reseed at a time per replica).
   * PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its
   * own, keyed by the schema and the name; `holder` is set as that connection's
   * `application_name` so that the refused can name it.
   * @param holder who asks, for the refused (e.g. `crr reseed pid 123 on host-a`)
   * @returns the lease, or `{ heldBy }` naming the current holder when it is held (`heldBy` is
   *   `unknown` when the holder cannot be read)
   * @throws CrrError CRR_STORE when the database cannot be reached
   */
  tryLease(name: string, holder: string): Promise<StoreLease | { heldBy: string }>;
  /**
   * Drops the staging schemas that restores into this store's schema left behind when they
   * were killed during the load (`<schema>_restore_*`). Call it only while holding the
   * `reseed` lease: a restore running meanwhile would lose its staging schema.
   * @returns the names of the dropped schemas
   * @throws CrrError CRR_STORE when the database fails
   */
  dropAbandonedRestores(): Promise<string[]>;
  /** Releases connections (PostgreSQL) or the database (PGlite). */
  close(): Promise<void>;
}
