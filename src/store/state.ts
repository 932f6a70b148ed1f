import { CrrError } from '../errors.js';
import { runSql } from './pg-errors.js';
import { quoteIdent, type SqlClient, type SqlDriver } from './sql-client.js';
import { ClusterStateInputSchema, type ClusterState, type ClusterStateInput } from '../cluster/cluster-state.js';
import type { PromotionInput, PromotionRecord, StorePosition } from './store.js';

// The small tables of a store's schema: positions, the cluster state row and the promotions.
// Each function takes the driver (or a transaction) and the schema name, a lower-case SQL identifier.

/**
 * Every applied position of `<schema>.positions` through `client` (a transaction of a snapshot,
 * or the driver), sorted by topic and partition. Offsets are numbers (bigint read as text).
 * Driver errors are not wrapped: the caller runs this under {@link runSql}.
 */
export async function readPositions(client: SqlClient, schema: string): Promise<StorePosition[]> {
  const { rows } = await client.query<{ topic: string; partition: number; next_offset: string | number }>(
    `SELECT topic, partition, next_offset FROM ${quoteIdent(schema)}.positions ORDER BY topic, partition`,
  );
  return rows.map((r) => ({ topic: r.topic, partition: Number(r.partition), nextOffset: Number(r.next_offset) }));
}

/**
 * The cluster state row of `<schema>.cluster_state` through `client`; `undefined` when never set.
 * `reason` and `backupId` (column `backup_id`, migration 5) are left out when NULL; `updatedAt`
 * is the row's `updated_at`. Driver errors are not wrapped: the caller runs this under {@link runSql}.
 */
export async function readClusterState(client: SqlClient, schema: string): Promise<ClusterState | undefined> {
  const { rows } = await client.query<{
    role: string;
    state: string;
    epoch: string | number;
    reason: string | null;
    backup_id: string | null;
    updated_at: Date;
  }>(`SELECT role, state, epoch, reason, backup_id, updated_at FROM ${quoteIdent(schema)}.cluster_state`);
  const r = rows[0];
  if (!r) return undefined;
  const state = {
    role: r.role,
    state: r.state,
    epoch: Number(r.epoch),
    ...(r.reason === null ? {} : { reason: r.reason }),
    ...(r.backup_id === null ? {} : { backupId: r.backup_id }),
  } as ClusterStateInput;
  return { ...state, updatedAt: new Date(r.updated_at) };
}

/**
 * Validates a cluster state against ClusterStateInputSchema.
 * @returns the parsed state
 * @throws CrrError CRR_STORE_APPLY naming each invalid field (`path: message`)
 */
export function parseClusterState(input: ClusterStateInput): ClusterStateInput {
  const parsed = ClusterStateInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new CrrError(
      'CRR_STORE_APPLY',
      `invalid cluster state ${JSON.stringify(input)}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
  return parsed.data;
}

/**
 * Upserts the single row of `<schema>.cluster_state` (`updated_at` = now()) through `client`,
 * usually a transaction; every column is replaced (a state without `backupId` clears `backup_id`). `state` must be valid (see {@link parseClusterState}). Driver errors
 * are not wrapped.
 */
export async function writeClusterState(client: SqlClient, schema: string, state: ClusterStateInput): Promise<void> {
  const { role, state: name, epoch, reason } = state;
  const backupId = state.role === 'replica' ? state.backupId : undefined;
  await client.query(
    `INSERT INTO ${quoteIdent(schema)}.cluster_state (singleton, role, state, epoch, reason, backup_id, updated_at) VALUES (true, $1, $2, $3, $4, $5, now())
     ON CONFLICT (singleton) DO UPDATE SET role = excluded.role, state = excluded.state, epoch = excluded.epoch, reason = excluded.reason,
       backup_id = excluded.backup_id, updated_at = excluded.updated_at`,
    [role, name, epoch, reason ?? null, backupId ?? null],
  );
}

/**
 * Records the cluster's role, state and epoch (Store.setClusterState).
 * @throws CrrError CRR_STORE_APPLY for an invalid state (nothing written); CRR_STORE when the database fails
 */
export async function setClusterState(db: SqlDriver, schema: string, input: ClusterStateInput): Promise<void> {
  const state = parseClusterState(input);
  await runSql(schema, () => writeClusterState(db, schema, state));
}

/**
 * Records a promotion (Store.recordPromotion) in one transaction: the new cluster state, the
 * given positions (upserted) and a row of `<schema>.promotions`.
 * @param input must be role `primary`, state `ACTIVE` at epoch `promotion.toEpoch`
 * @returns the promotion with its `id` and `promotedAt` (the server's now())
 * @throws CrrError CRR_STORE_APPLY when `input` is not such a state (nothing written);
 *   CRR_STORE when the database fails
 */
export async function recordPromotion(
  db: SqlDriver,
  schema: string,
  input: ClusterStateInput,
  promotion: PromotionInput,
  positions: readonly StorePosition[] = [],
): Promise<PromotionRecord> {
  const parsed = ClusterStateInputSchema.safeParse(input);
  if (!parsed.success || parsed.data.role !== 'primary' || parsed.data.state !== 'ACTIVE' || parsed.data.epoch !== promotion.toEpoch) {
    throw new CrrError('CRR_STORE_APPLY', `a promotion records role primary, state ACTIVE at its new epoch ${promotion.toEpoch}; got ${JSON.stringify(input)}`);
  }
  const s = quoteIdent(schema);
  const state = parsed.data;
  return runSql(schema, () =>
    db.transaction(async (tx) => {
      await writeClusterState(tx, schema, state);
      if (positions.length > 0) {
        await tx.query(
          `INSERT INTO ${s}.positions (topic, partition, next_offset) SELECT r.topic, r.partition, r.next_offset FROM jsonb_to_recordset($1::text::jsonb) AS r(topic text, partition integer, next_offset bigint)
           ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset`,
          [JSON.stringify(positions.map((p) => ({ topic: p.topic, partition: p.partition, next_offset: p.nextOffset })))],
        );
      }
      const { rows } = await tx.query<{ id: string | number; promoted_at: Date }>(
        `INSERT INTO ${s}.promotions (mode, from_epoch, to_epoch, summary) VALUES ($1, $2, $3, $4::text::jsonb) RETURNING id, promoted_at`,
        [promotion.mode, promotion.fromEpoch, promotion.toEpoch, JSON.stringify(promotion.summary)],
      );
      return { ...promotion, id: Number(rows[0]!.id), promotedAt: new Date(rows[0]!.promoted_at) };
    }),
  );
}

/**
 * Every recorded promotion (Store.promotions), oldest first (by id).
 * @throws CrrError CRR_STORE when the database fails
 */
export async function readPromotions(db: SqlDriver, schema: string): Promise<PromotionRecord[]> {
  const { rows } = await runSql(schema, () =>
    db.query<{ id: string | number; promoted_at: Date; mode: 'graceful' | 'force'; from_epoch: string | number; to_epoch: string | number; summary: unknown }>(
      `SELECT id, promoted_at, mode, from_epoch, to_epoch, summary FROM ${quoteIdent(schema)}.promotions ORDER BY id`,
    ),
  );
  return rows.map((r) => ({
    id: Number(r.id),
    promotedAt: new Date(r.promoted_at),
    mode: r.mode,
    fromEpoch: Number(r.from_epoch),
    toEpoch: Number(r.to_epoch),
    summary: (typeof r.summary === 'string' ? JSON.parse(r.summary) : r.summary) as Record<string, unknown>,
  }));
}
