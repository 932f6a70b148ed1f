import { randomUUID } from 'node:crypto';
import { CrrError } from '../errors.js';
import { CATALOG_KIND, isMarkerOp, type ChangeEvent, type MetadataOp } from '../protocol/schema.js';
import { DataPlanner, isDataEvent, type DataPlan } from './batch-plan.js';
import { runApply, runSql } from './pg-errors.js';
import { quoteIdent, type SqlClient, type SqlDriver } from './sql-client.js';
import { parseClusterState, writeClusterState } from './state.js';
import type { StorePosition, SyncBreakOp, SyncBreakOptions, SyncBreakResult } from './store.js';

// Applying change events and positions to a store's schema: Store.applyBatch and Store.applySyncBreak.
// Each function takes the driver and the schema name, a lower-case SQL identifier.

/** @throws CrrError CRR_STORE_APPLY naming the first sync-breaking marker among `events` (a store never applies one). */
function refuseMarkers(events: readonly ChangeEvent[]): void {
  events.forEach((e, i) => {
    if (isMarkerOp(e.op)) {
      throw new CrrError('CRR_STORE_APPLY', `event ${i} (${e.id}) is the sync-breaking marker ${e.op}: a store never applies markers; replay must handle it`, {
        context: { eventId: e.id, op: e.op },
      });
    }
  });
}

/**
 * Applies change events and upserts `positions` in ONE transaction (Store.applyBatch; semantics
 * per operation in docs/protocol.md). Positions: `nextOffset` a safe integer >= 0, `partition`
 * an integer >= 0; of several positions of one partition the last one given wins.
 * @throws CrrError CRR_STORE_APPLY for a sync-breaking marker, an invalid position, an event
 *   that contradicts the store or one the database refuses with a data error (SQLSTATE class 22,
 *   23 or 54, as `sqlState`; see toApplyError) (nothing applied); CRR_STORE when the database fails
 */
export async function applyBatch(
  db: SqlDriver,
  schema: string,
  events: readonly ChangeEvent[],
  positions: readonly StorePosition[],
  fence?: ReplayFence,
): Promise<void> {
  refuseMarkers(events);
  for (const p of positions) {
    if (!Number.isSafeInteger(p.nextOffset) || p.nextOffset < 0 || !Number.isInteger(p.partition) || p.partition < 0) {
      throw new CrrError('CRR_STORE_APPLY', `invalid position ${p.topic}:${p.partition} nextOffset ${p.nextOffset}`);
    }
  }
  const s = quoteIdent(schema);
  // a data error (SQLSTATE class 22, 23, 54: U+0000, an index row too large, a constraint) is CRR_STORE_APPLY: the events can never be stored
  await runApply(schema, () =>
    db.transaction(async (tx) => {
      if (fence) await checkReplayFence(tx, s, fence);
      await applyEvents(tx, s, events);
      if (positions.length > 0) {
        // positions never move back here: only a RESET (applySyncBreak) or a restore sets one lower
        await tx.query(
          `INSERT INTO ${s}.positions (topic, partition, next_offset)
           SELECT r.topic, r.partition, r.next_offset FROM jsonb_to_recordset($1::text::jsonb) AS r(topic text, partition integer, next_offset bigint)
           ON CONFLICT (topic, partition) DO UPDATE SET next_offset = GREATEST(${s}.positions.next_offset, excluded.next_offset)`,
          // one row per partition (the last one given wins): ON CONFLICT cannot touch a row twice
          [
            JSON.stringify([
              ...new Map(
                positions.map((p) => [`${p.topic}\u0000${p.partition}`, { topic: p.topic, partition: p.partition, next_offset: p.nextOffset }]),
              ).values(),
            ]),
          ],
        );
      }
    }),
  );
}

/**
 * Makes the caller the one replay activation allowed to apply to this store (Store.activateReplay):
 * raises the fence's generation and records a fresh token, so every batch of an earlier
 * activation is refused from now on (checkReplayFence). Waits for batches in flight to commit.
 * @param holder who activates, for the token (e.g. `crr run --cluster dr pid 42 on host`)
 */
export async function activateReplay(db: SqlDriver, schema: string, holder: string): Promise<ReplayFence & { generation: number }> {
  const s = quoteIdent(schema);
  const token = `${holder} ${randomUUID()}`;
  return runSql(schema, () =>
    db.transaction(async (tx) => {
      const r = await tx.query<{ generation: string }>(
        `UPDATE ${s}.replay_fence SET generation = generation + 1, token = $1, activated_at = now() RETURNING generation::text AS generation`,
        [token],
      );
      return { token, generation: Number(r.rows[0]?.generation ?? 0) };
    }),
  );
}

/**
 * How long a replay batch's transaction may sit idle (its process stalled mid-transaction)
 * before PostgreSQL ends the session, rolling it back and releasing its locks, ms. A replay
 * transaction runs its statements back to back, so only a stalled process reaches it.
 */
export const REPLAY_TRANSACTION_IDLE_TIMEOUT_MS = 10_000;

/** The replay activation a batch belongs to (Store.activateReplay). */
export interface ReplayFence {
  /** The token activateReplay returned. */
  token: string;
}

/**
 * Within a batch's transaction, before anything is written: the batch belongs to the current
 * replay activation, or it is refused. The fence row is read with a shared lock, so concurrent
 * batches of one activation do not wait for each other, while an activation (an UPDATE of the
 * row) waits for the batches in flight and every later batch of an older activation sees the
 * new token.
 * @throws CrrError CRR_REPLAY_FENCED (retriable: the run ends and restarts as a standby)
 */
async function checkReplayFence(tx: SqlClient, s: string, fence: ReplayFence): Promise<void> {
  // a replay process that stalls inside this transaction (SIGSTOP, a GC pause) would hold its locks,
  // and so block its successor's activation, until PostgreSQL ends its session: bound that wait
  // one round trip per batch: the timeout is set for this transaction only (set_config's is_local) in the fence read
  const r = await tx.query<{ token: string | null; generation: string }>(
    `SELECT token, generation::text AS generation, set_config('idle_in_transaction_session_timeout', '${REPLAY_TRANSACTION_IDLE_TIMEOUT_MS}', true)
       FROM ${s}.replay_fence FOR SHARE`,
  );
  const row = r.rows[0];
  if (row?.token !== fence.token) {
    throw new CrrError(
      'CRR_REPLAY_FENCED',
      `another replay activation (generation ${row?.generation ?? '?'}) took over this store, or a restore replaced it: this batch is not applied`,
      { retriable: true },
    );
  }
}

/**
 * Applies events in array order within `tx`: runs of data operations as plans, metadata operations one by one.
 * @param s the quoted schema (see quoteIdent)
 */
async function applyEvents(tx: SqlClient, s: string, events: readonly ChangeEvent[]): Promise<void> {
  const planner = new DataPlanner();
  for (const e of events) {
    if (isDataEvent(e)) {
      planner.add(e);
      continue;
    }
    if (!planner.empty) await writePlan(tx, s, planner.take());
    await applyMetadata(tx, s, e);
  }
  if (!planner.empty) await writePlan(tx, s, planner.take());
}

/**
 * A sync-breaking operation's effect and the new cluster state in one transaction
 * (Store.applySyncBreak): DROP_ALL deletes catalog, edges and vertices; CLEAR_GRAPH_STORE edges
 * and vertices; IMPORT applies `options.events` (an array, or batches from an async iterable);
 * RESET sets the positions of `options.resetTopics` to 0 and fences the running replay activation
 * (its next batch gets CRR_REPLAY_FENCED, and it restarts from the positions set back). The state row is locked first, so two
 * such operations (or one and a promotion) serialize.
 * @returns rows deleted, events applied and positions reset
 * @throws CrrError CRR_STORE_APPLY for an invalid `newState`, options of another operation or an
 *   event that cannot be applied; CRR_WRITE_REFUSED when `expectedEpoch` is given and the cluster
 *   is no longer an ACTIVE primary at that epoch (nothing changed); CRR_STORE when the database fails
 */
export async function applySyncBreak(db: SqlDriver, schema: string, op: SyncBreakOp, options: SyncBreakOptions): Promise<SyncBreakResult> {
  const newState = parseClusterState(options.newState);
  if (options.events !== undefined && op !== 'IMPORT') throw new CrrError('CRR_STORE_APPLY', `${op}: events are loaded by IMPORT only`);
  if (options.resetTopics !== undefined && op !== 'RESET') throw new CrrError('CRR_STORE_APPLY', `${op}: positions are reset by RESET only`);
  const s = quoteIdent(schema);
  const result: SyncBreakResult = { verticesDeleted: 0, edgesDeleted: 0, catalogDeleted: 0, eventsApplied: 0, positionsReset: 0 };
  const deleted = async (tx: SqlClient, table: string): Promise<number> =>
    Number((await tx.query<{ n: string | number }>(`WITH d AS (DELETE FROM ${s}.${table} RETURNING 1) SELECT count(*) AS n FROM d`)).rows[0]?.n ?? 0);
  return runSql(schema, () =>
    db.transaction(async (tx) => {
      // the state row is locked first: two sync-breaking operations (or one and a promotion) serialize here
      const { rows } = await tx.query<{ role: string; state: string; epoch: string | number }>(`SELECT role, state, epoch FROM ${s}.cluster_state FOR UPDATE`);
      const current = rows[0];
      if (options.expectedEpoch !== undefined) {
        const ok = current
          ? current.role === 'primary' && current.state === 'ACTIVE' && Number(current.epoch) === options.expectedEpoch
          : options.expectedEpoch === 0;
        if (!ok) {
          const now = current ? `${current.role} ${current.state} at epoch ${Number(current.epoch)}` : 'without a recorded state';
          throw new CrrError(
            'CRR_WRITE_REFUSED',
            `${op}: the cluster is now ${now}, not an ACTIVE primary at epoch ${options.expectedEpoch} as when the operation was planned; nothing was changed`,
          );
        }
      }
      switch (op) {
        case 'DROP_ALL':
          result.catalogDeleted = await deleted(tx, 'catalog');
          result.edgesDeleted = await deleted(tx, 'edges');
          result.verticesDeleted = await deleted(tx, 'vertices');
          break;
        case 'CLEAR_GRAPH_STORE':
          result.edgesDeleted = await deleted(tx, 'edges');
          result.verticesDeleted = await deleted(tx, 'vertices');
          break;
        case 'IMPORT': {
          const source = options.events ?? [];
          const batches: AsyncIterable<readonly ChangeEvent[]> | Iterable<readonly ChangeEvent[]> = Array.isArray(source)
            ? [source as readonly ChangeEvent[]]
            : (source as AsyncIterable<readonly ChangeEvent[]>);
          for await (const batch of batches) {
            refuseMarkers(batch);
            await applyEvents(tx, s, batch);
            result.eventsApplied += batch.length;
          }
          break;
        }
        case 'RESET': {
          const topics = [...new Set(options.resetTopics ?? [])];
          if (topics.length > 0) {
            const r = await tx.query<{ n: string | number }>(
              `WITH u AS (UPDATE ${s}.positions SET next_offset = 0 WHERE topic IN (SELECT jsonb_array_elements_text($1::text::jsonb)) RETURNING 1) SELECT count(*) AS n FROM u`,
              [JSON.stringify(topics)],
            );
            result.positionsReset = Number(r.rows[0]?.n ?? 0);
          }
          // fence the running replay activation: a batch of the old topics it applies after this commit
          // would move the positions forward again (they never decrease in applyBatch); it restarts and
          // reads the positions set back here
          await tx.query(`UPDATE ${s}.replay_fence SET generation = generation + 1, token = NULL`);
          break;
        }
        default:
          throw new CrrError('CRR_STORE_APPLY', `unknown sync-breaking operation ${String(op)}`);
      }
      await writeClusterState(tx, schema, newState);
      return result;
    }),
  );
}

/**
 * Writes a run of data operations in at most five multi-row statements (order: see DataPlan).
 * @param s the quoted schema
 */
async function writePlan(tx: SqlClient, s: string, plan: DataPlan): Promise<void> {
  const json = (rows: unknown[]): string => JSON.stringify(rows);
  const vertices = [...plan.vertices.values()];
  const edges = [...plan.edges.values()];
  const gone = vertices.filter((v) => v.effect !== 'merge').map(({ type, id }) => ({ type, id }));
  if (gone.length > 0) {
    await tx.query(`DELETE FROM ${s}.vertices v USING jsonb_to_recordset($1::text::jsonb) AS r(type text, id text) WHERE v.type = r.type AND v.id = r.id`, [
      json(gone),
    ]);
  }
  const goneEdges = edges.filter((e) => e.effect !== 'merge');
  if (goneEdges.length > 0) {
    await tx.query(
      `DELETE FROM ${s}.edges e USING jsonb_to_recordset($1::text::jsonb) AS r(type text, from_type text, from_id text, to_type text, to_id text)
       WHERE e.type = r.type AND e.from_type = r.from_type AND e.from_id = r.from_id AND e.to_type = r.to_type AND e.to_id = r.to_id`,
      [json(goneEdges.map(({ type, from_type, from_id, to_type, to_id }) => ({ type, from_type, from_id, to_type, to_id })))],
    );
  }
  const upserts = vertices.filter((v) => v.effect !== 'delete').map(({ type, id, attributes }) => ({ type, id, attributes }));
  if (upserts.length > 0) {
    await tx.query(
      `INSERT INTO ${s}.vertices (type, id, attributes)
       SELECT r.type, r.id, r.attributes FROM jsonb_to_recordset($1::text::jsonb) AS r(type text, id text, attributes jsonb)
       ON CONFLICT (type, id) DO UPDATE SET attributes = vertices.attributes || excluded.attributes`,
      [json(upserts)],
    );
  }
  const edgeUpserts = edges.filter((e) => e.effect !== 'delete').map(({ effect: _e, ...row }) => row);
  if (edgeUpserts.length > 0) {
    await tx.query(
      `INSERT INTO ${s}.edges (type, from_type, from_id, to_type, to_id, attributes)
       SELECT r.type, r.from_type, r.from_id, r.to_type, r.to_id, r.attributes
       FROM jsonb_to_recordset($1::text::jsonb) AS r(type text, from_type text, from_id text, to_type text, to_id text, attributes jsonb)
       ON CONFLICT (type, from_type, from_id, to_type, to_id) DO UPDATE SET attributes = edges.attributes || excluded.attributes`,
      [json(edgeUpserts)],
    );
  }
}

/**
 * Applies one metadata operation to the catalog (and, for type changes, to vertices and edges).
 * @param s the quoted schema
 * @throws CrrError CRR_STORE_APPLY when it names an unknown catalog entry, or is not a metadata operation
 */
async function applyMetadata(
  tx: SqlClient,
  s: string,
  e: Exclude<ChangeEvent, { op: 'UPSERT_VERTEX' | 'DELETE_VERTEX' | 'UPSERT_EDGE' | 'DELETE_EDGE' }>,
): Promise<void> {
  const kind = CATALOG_KIND[e.op as MetadataOp];
  const name = (e as { name: string }).name;
  const put = (body: unknown) =>
    tx.query(`INSERT INTO ${s}.catalog (kind, name, body) VALUES ($1, $2, $3::text::jsonb) ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body`, [
      kind,
      name,
      JSON.stringify(body),
    ]);
  const drop = () => tx.query(`DELETE FROM ${s}.catalog WHERE kind = $1 AND name = $2`, [kind, name]);
  const existing = async (): Promise<Record<string, unknown>> => {
    const { rows } = await tx.query<{ body: Record<string, unknown> }>(`SELECT body FROM ${s}.catalog WHERE kind = $1 AND name = $2 FOR UPDATE`, [kind, name]);
    if (!rows[0]) {
      throw new CrrError('CRR_STORE_APPLY', `event ${e.id}: ${e.op} of unknown ${kind} "${name}"`, { context: { eventId: e.id, op: e.op } });
    }
    return rows[0].body;
  };
  switch (e.op) {
    case 'CREATE_VERTEX_TYPE':
      return void (await put({ primaryIdType: e.primaryIdType, attributes: e.attributes }));
    case 'CREATE_EDGE_TYPE':
      return void (await put({ fromType: e.fromType, toType: e.toType, directed: e.directed, attributes: e.attributes }));
    case 'ALTER_VERTEX_TYPE':
    case 'ALTER_EDGE_TYPE': {
      const body = await existing();
      const dropped = new Set(e.dropAttributes);
      const kept = (body.attributes as Array<{ name: string }>).filter((a) => !dropped.has(a.name) && !e.addAttributes.some((b) => b.name === a.name));
      // the catalog only: stored values of a dropped attribute are hidden by the live views
      return void (await put({ ...body, attributes: [...kept, ...e.addAttributes] }));
    }
    case 'DROP_VERTEX_TYPE':
    case 'DROP_EDGE_TYPE':
      // the catalog only: the type's vertices or edges are hidden by the live views
      return void (await drop());
    case 'CREATE_USER':
      return void (await put({ roles: [...new Set(e.roles)].sort() }));
    case 'GRANT_ROLE':
    case 'REVOKE_ROLE': {
      const body = await existing();
      const roles = new Set(body.roles as string[]);
      if (e.op === 'GRANT_ROLE') roles.add(e.role);
      else roles.delete(e.role);
      return void (await put({ ...body, roles: [...roles].sort() }));
    }
    case 'CREATE_QUERY':
      return void (await put({ text: e.text, installed: false }));
    case 'INSTALL_QUERY':
      return void (await put({ ...(await existing()), installed: true }));
    case 'CREATE_UDF':
      return void (await put({ source: e.source }));
    case 'CREATE_LOADING_JOB':
      return void (await put({ text: e.text }));
    case 'DROP_USER':
    case 'DROP_QUERY':
    case 'DROP_UDF':
    case 'DROP_LOADING_JOB':
      return void (await drop());
    default:
      throw new CrrError('CRR_STORE_APPLY', `event ${e.id}: operation ${e.op} cannot be applied by a store`);
  }
}
