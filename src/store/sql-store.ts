import { CrrError } from '../errors.js';
import type { ChangeEvent } from '../protocol/schema.js';
import { activateReplay, applyBatch, applySyncBreak, type ReplayFence } from './apply.js';
import { InProcessLeases } from './leases.js';
import { migrateSchema } from './migrations.js';
import { runSql } from './pg-errors.js';
import { dropAbandonedRestores, restoreSnapshot } from './restore.js';
import { compareSchemas, countRows, digestRows, exportSnapshot } from './snapshot.js';
import { quoteIdent, type SqlDriver } from './sql-client.js';
import { readClusterState, readPositions, readPromotions, recordPromotion, setClusterState } from './state.js';
import type { ClusterState, ClusterStateInput } from '../cluster/cluster-state.js';
import type {
  PromotionInput,
  PromotionRecord,
  RestoreBatch,
  RestoreOptions,
  RestorePlan,
  RestoreResult,
  SchemaComparison,
  SnapshotOptions,
  SnapshotSink,
  SnapshotTotals,
  Store,
  StoreCounts,
  StoreLease,
  StorePosition,
  SyncBreakOp,
  SyncBreakOptions,
  SyncBreakResult,
} from './store.js';

/**
 * The {@link Store} in PostgreSQL's dialect, over any {@link SqlDriver}. Tables live in the
 * schema `schema` (checked against SQL_IDENTIFIER). See store.ts for the contract; each method
 * runs the function of the module that holds that part of the dialect: migrations.ts, apply.ts
 * (change events and positions), state.ts (positions, cluster state, promotions), snapshot.ts
 * (backup reads, counts, digest), restore.ts (staging schema, checks, swap) and leases.ts.
 * Driver errors become CrrError CRR_STORE (pg-errors.ts).
 *
 * @throws CrrError CRR_CONFIG_INVALID (from the constructor) when `schema` is not a lower-case SQL identifier
 */
export class SqlStore implements Store {
  /** Leases held by this process: the in-process implementation (PGlite). PostgresStore overrides {@link tryLease}. */
  private readonly leases = new InProcessLeases();

  constructor(
    private readonly db: SqlDriver,
    readonly schema: string,
  ) {
    quoteIdent(schema);
  }

  async migrate(): Promise<void> {
    return migrateSchema(this.db, this.schema);
  }

  async applyBatch(events: readonly ChangeEvent[], positions: readonly StorePosition[], fence?: ReplayFence): Promise<void> {
    return applyBatch(this.db, this.schema, events, positions, fence);
  }

  async activateReplay(holder: string): Promise<ReplayFence & { generation: number }> {
    return activateReplay(this.db, this.schema, holder);
  }

  async applySyncBreak(op: SyncBreakOp, options: SyncBreakOptions): Promise<SyncBreakResult> {
    return applySyncBreak(this.db, this.schema, op, options);
  }

  async positions(): Promise<StorePosition[]> {
    return runSql(this.schema, () => readPositions(this.db, this.schema));
  }

  async clusterState(): Promise<ClusterState | undefined> {
    return runSql(this.schema, () => readClusterState(this.db, this.schema));
  }

  async setClusterState(input: ClusterStateInput): Promise<void> {
    return setClusterState(this.db, this.schema, input);
  }

  async recordPromotion(input: ClusterStateInput, promotion: PromotionInput, positions: readonly StorePosition[] = []): Promise<PromotionRecord> {
    return recordPromotion(this.db, this.schema, input, promotion, positions);
  }

  async promotions(): Promise<PromotionRecord[]> {
    return readPromotions(this.db, this.schema);
  }

  async counts(): Promise<StoreCounts> {
    return countRows(this.db, this.schema);
  }

  async digest(): Promise<string> {
    return digestRows(this.db, this.schema);
  }

  async compareWithSchema(other: string): Promise<SchemaComparison> {
    return compareSchemas(this.db, this.schema, other);
  }

  besideSchema(schema: string): Store {
    this.notOwnSchema(schema);
    // the same connections; closing the store beside leaves them to this one
    return new SqlStore({ query: this.db.query, transaction: this.db.transaction, close: async () => undefined }, schema);
  }

  async dropSchema(schema: string): Promise<void> {
    this.notOwnSchema(schema);
    await runSql(schema, () => this.db.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`));
  }

  private notOwnSchema(schema: string): void {
    quoteIdent(schema);
    if (schema === this.schema) throw new CrrError('CRR_CONFIG_INVALID', `schema ${schema} is the store's own schema, not one beside it`);
  }

  async exportSnapshot(sink: SnapshotSink, options: SnapshotOptions = {}): Promise<SnapshotTotals> {
    return exportSnapshot(this.db, this.schema, sink, options);
  }

  async restore(plan: RestorePlan, rows: AsyncIterable<RestoreBatch>, options: RestoreOptions = {}): Promise<RestoreResult> {
    return restoreSnapshot(this.db, this.schema, plan, rows, options);
  }

  async tryLease(name: string, holder: string): Promise<StoreLease | { heldBy: string }> {
    return this.leases.tryLease(name, holder);
  }

  async dropAbandonedRestores(): Promise<string[]> {
    return dropAbandonedRestores(this.db, this.schema);
  }

  async close(): Promise<void> {
    await this.db.close();
  }
}
