import { randomBytes } from 'node:crypto';
import { CrrError, describeError } from '../errors.js';
import { CATALOG_KIND, isMarkerOp, type ChangeEvent, type MetadataOp } from '../protocol/schema.js';
import { DataPlanner, isDataEvent, type DataPlan } from './batch-plan.js';
import { SQL_IDENTIFIER } from './schema.js';
import {
  ClusterStateInputSchema,
  type CatalogEntry,
  type ClusterState,
  type ClusterStateInput,
  type EdgeRow,
  type RestoreBatch,
  type RestoreOptions,
  type RestorePlan,
  type RestoreResult,
  type SnapshotOptions,
  type SnapshotSink,
  type SnapshotTotals,
  type Store,
  type StoreCounts,
  type StoreLease,
  type PromotionInput,
  type PromotionRecord,
  type StorePosition,
  type SyncBreakOp,
  type SyncBreakOptions,
  type SyncBreakResult,
  type VertexRow,
} from './store.js';

/**
 * What the one SQL dialect needs of a driver: parameterized single statements, and a
 * transaction. `pg` (src/store/postgres.ts) and PGlite (src/store/pglite.ts) provide it.
 * Parameters are strings or numbers; JSON travels as text and is cast in SQL (`$1::text::jsonb`),
 * which both drivers pass through unchanged.
 */
export interface SqlClient {
  query<R = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
}
export interface SqlDriver extends SqlClient {
  /** Runs `fn` in BEGIN ... COMMIT; ROLLBACK when it throws (and rethrows). */
  transaction<T>(fn: (tx: SqlClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

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

/** `"name"`, for identifiers already checked against SQL_IDENTIFIER. */
export function quoteIdent(name: string): string {
  if (!SQL_IDENTIFIER.test(name)) throw new CrrError('CRR_CONFIG_INVALID', `not a valid SQL identifier: "${name}"`);
  return `"${name}"`;
}

/** Versioned migrations: index + 1 is the version recorded in `schema_migrations`. Append only. */
const MIGRATIONS: ReadonlyArray<(s: string) => string[]> = [
  (s) => [
    `CREATE TABLE ${s}.vertices (type text NOT NULL, id text NOT NULL, attributes jsonb NOT NULL, PRIMARY KEY (type, id))`,
    `CREATE TABLE ${s}.edges (type text NOT NULL, from_type text NOT NULL, from_id text NOT NULL, to_type text NOT NULL, to_id text NOT NULL,
       attributes jsonb NOT NULL, PRIMARY KEY (type, from_type, from_id, to_type, to_id))`,
    `CREATE INDEX edges_from ON ${s}.edges (from_type, from_id)`,
    `CREATE INDEX edges_to ON ${s}.edges (to_type, to_id)`,
    `CREATE TABLE ${s}.catalog (kind text NOT NULL, name text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (kind, name))`,
    `CREATE TABLE ${s}.positions (topic text NOT NULL, partition integer NOT NULL CHECK (partition >= 0),
       next_offset bigint NOT NULL CHECK (next_offset >= 0), PRIMARY KEY (topic, partition))`,
    `CREATE TABLE ${s}.cluster_state (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
       role text NOT NULL CHECK (role IN ('primary', 'replica')), state text NOT NULL, epoch bigint NOT NULL CHECK (epoch >= 0),
       reason text, updated_at timestamptz NOT NULL DEFAULT now())`,
  ],
  // 2: every operation changes only the entity or catalog entry it names (docs/protocol.md,
  // "Order"): cascades are read-time, in these views of what applications see
  (s) => {
    const declared = (attributes: string): string =>
      `(SELECT coalesce(jsonb_object_agg(a.key, a.value), '{}'::jsonb) FROM jsonb_each(${attributes}) AS a
          WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(c.body->'attributes') AS d WHERE d->>'name' = a.key))`;
    const vertexLive = (type: string, id: string): string =>
      `EXISTS (SELECT 1 FROM ${s}.vertices v JOIN ${s}.catalog vc ON vc.kind = 'vertex_type' AND vc.name = v.type WHERE v.type = ${type} AND v.id = ${id})`;
    return [
      `CREATE VIEW ${s}.live_vertices AS
         SELECT v.type, v.id, ${declared('v.attributes')} AS attributes
         FROM ${s}.vertices v JOIN ${s}.catalog c ON c.kind = 'vertex_type' AND c.name = v.type`,
      `CREATE VIEW ${s}.live_edges AS
         SELECT e.type, e.from_type, e.from_id, e.to_type, e.to_id, ${declared('e.attributes')} AS attributes
         FROM ${s}.edges e JOIN ${s}.catalog c ON c.kind = 'edge_type' AND c.name = e.type
         WHERE ${vertexLive('e.from_type', 'e.from_id')} AND ${vertexLive('e.to_type', 'e.to_id')}`,
    ];
  },
  // 3: the promotions of this cluster (crr promote), for its summary, `crr status` and crr_promotions_total
  (s) => [
    `CREATE TABLE ${s}.promotions (id bigserial PRIMARY KEY, promoted_at timestamptz NOT NULL DEFAULT now(),
       mode text NOT NULL CHECK (mode IN ('graceful', 'force')), from_epoch bigint NOT NULL, to_epoch bigint NOT NULL, summary jsonb NOT NULL)`,
  ],
];

/** Default rows per batch of {@link SqlStore.exportSnapshot}. */
export const DEFAULT_SNAPSHOT_BATCH_ROWS = 10_000;

/** How long one attempt of a restore's swap waits for a lock (readers of the live tables) by default, ms. */
export const DEFAULT_SWAP_LOCK_TIMEOUT_MS = 5000;
/** Attempts of a restore's swap by default (see {@link DEFAULT_SWAP_LOCK_TIMEOUT_MS}). */
export const DEFAULT_SWAP_ATTEMPTS = 12;

/** The latest schema version. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * The {@link Store} in PostgreSQL's dialect, over any {@link SqlDriver}. Tables live in the
 * schema `schema` (checked against SQL_IDENTIFIER). See store.ts for the contract.
 */
export class SqlStore implements Store {
  private readonly s: string;

  constructor(private readonly db: SqlDriver, readonly schema: string) {
    this.s = quoteIdent(schema);
  }

  async migrate(): Promise<void> {
    await this.run(() =>
      this.db.transaction(async (tx) => {
        await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`crr.migrate.${this.schema}`]);
        await tx.query(`CREATE SCHEMA IF NOT EXISTS ${this.s}`);
        await tx.query(`CREATE TABLE IF NOT EXISTS ${this.s}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
        const { rows } = await tx.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${this.s}.schema_migrations`);
        const current = Number(rows[0]?.v ?? 0);
        if (current > SCHEMA_VERSION) {
          throw new CrrError('CRR_STORE', `schema ${this.schema} is at version ${current}, newer than this crr (${SCHEMA_VERSION})`, { retriable: false });
        }
        for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
          for (const stmt of MIGRATIONS[v - 1]!(this.s)) await tx.query(stmt);
          await tx.query(`INSERT INTO ${this.s}.schema_migrations (version) VALUES ($1)`, [v]);
        }
      }),
    );
  }

  async applyBatch(events: readonly ChangeEvent[], positions: readonly StorePosition[]): Promise<void> {
    refuseMarkers(events);
    for (const p of positions) {
      if (!Number.isSafeInteger(p.nextOffset) || p.nextOffset < 0 || !Number.isInteger(p.partition) || p.partition < 0) {
        throw new CrrError('CRR_STORE_APPLY', `invalid position ${p.topic}:${p.partition} nextOffset ${p.nextOffset}`);
      }
    }
    await this.run(() =>
      this.db.transaction(async (tx) => {
        await this.applyEvents(tx, events);
        if (positions.length > 0) {
          await tx.query(
            `INSERT INTO ${this.s}.positions (topic, partition, next_offset)
             SELECT r.topic, r.partition, r.next_offset FROM jsonb_to_recordset($1::text::jsonb) AS r(topic text, partition integer, next_offset bigint)
             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset`,
            // one row per partition (the last one given wins): ON CONFLICT cannot touch a row twice
            [JSON.stringify([...new Map(positions.map((p) => [`${p.topic}\u0000${p.partition}`, { topic: p.topic, partition: p.partition, next_offset: p.nextOffset }])).values()])],
          );
        }
      }),
    );
  }

  /** Applies events in array order within `tx`: runs of data operations as plans, metadata operations one by one. */
  private async applyEvents(tx: SqlClient, events: readonly ChangeEvent[]): Promise<void> {
    const planner = new DataPlanner();
    for (const e of events) {
      if (isDataEvent(e)) {
        planner.add(e);
        continue;
      }
      if (!planner.empty) await this.writePlan(tx, planner.take());
      await this.applyMetadata(tx, e);
    }
    if (!planner.empty) await this.writePlan(tx, planner.take());
  }

  async applySyncBreak(op: SyncBreakOp, options: SyncBreakOptions): Promise<SyncBreakResult> {
    const parsed = ClusterStateInputSchema.safeParse(options.newState);
    if (!parsed.success) {
      throw new CrrError('CRR_STORE_APPLY', `invalid cluster state ${JSON.stringify(options.newState)}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    }
    if (options.events !== undefined && op !== 'IMPORT') throw new CrrError('CRR_STORE_APPLY', `${op}: events are loaded by IMPORT only`);
    if (options.resetTopics !== undefined && op !== 'RESET') throw new CrrError('CRR_STORE_APPLY', `${op}: positions are reset by RESET only`);
    const s = this.s;
    const result: SyncBreakResult = { verticesDeleted: 0, edgesDeleted: 0, catalogDeleted: 0, eventsApplied: 0, positionsReset: 0 };
    const deleted = async (tx: SqlClient, table: string): Promise<number> =>
      Number((await tx.query<{ n: string | number }>(`WITH d AS (DELETE FROM ${s}.${table} RETURNING 1) SELECT count(*) AS n FROM d`)).rows[0]?.n ?? 0);
    return this.run(() =>
      this.db.transaction(async (tx) => {
        // the state row is locked first: two sync-breaking operations (or one and a promotion) serialize here
        const { rows } = await tx.query<{ role: string; state: string; epoch: string | number }>(`SELECT role, state, epoch FROM ${s}.cluster_state FOR UPDATE`);
        const current = rows[0];
        if (options.expectedEpoch !== undefined) {
          const ok = current ? current.role === 'primary' && current.state === 'ACTIVE' && Number(current.epoch) === options.expectedEpoch : options.expectedEpoch === 0;
          if (!ok) {
            const now = current ? `${current.role} ${current.state} at epoch ${Number(current.epoch)}` : 'without a recorded state';
            throw new CrrError('CRR_WRITE_REFUSED', `${op}: the cluster is now ${now}, not an ACTIVE primary at epoch ${options.expectedEpoch} as when the operation was planned; nothing was changed`);
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
            const batches: AsyncIterable<readonly ChangeEvent[]> | Iterable<readonly ChangeEvent[]> = Array.isArray(source) ? [source as readonly ChangeEvent[]] : (source as AsyncIterable<readonly ChangeEvent[]>);
            for await (const batch of batches) {
              refuseMarkers(batch);
              await this.applyEvents(tx, batch);
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
            break;
          }
          default:
            throw new CrrError('CRR_STORE_APPLY', `unknown sync-breaking operation ${String(op)}`);
        }
        const { role, state, epoch, reason } = parsed.data;
        await tx.query(
          `INSERT INTO ${s}.cluster_state (singleton, role, state, epoch, reason, updated_at) VALUES (true, $1, $2, $3, $4, now())
           ON CONFLICT (singleton) DO UPDATE SET role = excluded.role, state = excluded.state, epoch = excluded.epoch, reason = excluded.reason, updated_at = excluded.updated_at`,
          [role, state, epoch, reason ?? null],
        );
        return result;
      }),
    );
  }

  /** Writes a run of data operations in at most five multi-row statements (order: see DataPlan). */
  private async writePlan(tx: SqlClient, plan: DataPlan): Promise<void> {
    const s = this.s;
    const json = (rows: unknown[]): string => JSON.stringify(rows);
    const vertices = [...plan.vertices.values()];
    const edges = [...plan.edges.values()];
    const gone = vertices.filter((v) => v.effect !== 'merge').map(({ type, id }) => ({ type, id }));
    if (gone.length > 0) {
      await tx.query(`DELETE FROM ${s}.vertices v USING jsonb_to_recordset($1::text::jsonb) AS r(type text, id text) WHERE v.type = r.type AND v.id = r.id`, [json(gone)]);
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

  /** Applies one metadata operation to the catalog (and, for type changes, to vertices and edges). */
  private async applyMetadata(tx: SqlClient, e: Exclude<ChangeEvent, { op: 'UPSERT_VERTEX' | 'DELETE_VERTEX' | 'UPSERT_EDGE' | 'DELETE_EDGE' }>): Promise<void> {
    const s = this.s;
    const kind = CATALOG_KIND[e.op as MetadataOp];
    const name = (e as { name: string }).name;
    const put = (body: unknown) =>
      tx.query(`INSERT INTO ${s}.catalog (kind, name, body) VALUES ($1, $2, $3::text::jsonb) ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body`, [kind, name, JSON.stringify(body)]);
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

  async positions(): Promise<StorePosition[]> {
    return this.run(() => this.readPositions(this.db));
  }

  private async readPositions(client: SqlClient): Promise<StorePosition[]> {
    const { rows } = await client.query<{ topic: string; partition: number; next_offset: string | number }>(`SELECT topic, partition, next_offset FROM ${this.s}.positions ORDER BY topic, partition`);
    return rows.map((r) => ({ topic: r.topic, partition: Number(r.partition), nextOffset: Number(r.next_offset) }));
  }

  async clusterState(): Promise<ClusterState | undefined> {
    return this.run(() => this.readClusterState(this.db));
  }

  private async readClusterState(client: SqlClient): Promise<ClusterState | undefined> {
    const { rows } = await client.query<{ role: string; state: string; epoch: string | number; reason: string | null; updated_at: Date }>(
      `SELECT role, state, epoch, reason, updated_at FROM ${this.s}.cluster_state`,
    );
    const r = rows[0];
    if (!r) return undefined;
    const state = { role: r.role, state: r.state, epoch: Number(r.epoch), ...(r.reason === null ? {} : { reason: r.reason }) } as ClusterStateInput;
    return { ...state, updatedAt: new Date(r.updated_at) };
  }

  async setClusterState(input: ClusterStateInput): Promise<void> {
    const parsed = ClusterStateInputSchema.safeParse(input);
    if (!parsed.success) {
      throw new CrrError('CRR_STORE_APPLY', `invalid cluster state ${JSON.stringify(input)}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
    }
    const { role, state, epoch, reason } = parsed.data;
    await this.run(() =>
      this.db.query(
        `INSERT INTO ${this.s}.cluster_state (singleton, role, state, epoch, reason, updated_at) VALUES (true, $1, $2, $3, $4, now())
         ON CONFLICT (singleton) DO UPDATE SET role = excluded.role, state = excluded.state, epoch = excluded.epoch, reason = excluded.reason, updated_at = excluded.updated_at`,
        [role, state, epoch, reason ?? null],
      ),
    );
  }

  async recordPromotion(input: ClusterStateInput, promotion: PromotionInput, positions: readonly StorePosition[] = []): Promise<PromotionRecord> {
    const parsed = ClusterStateInputSchema.safeParse(input);
    if (!parsed.success || parsed.data.role !== 'primary' || parsed.data.state !== 'ACTIVE' || parsed.data.epoch !== promotion.toEpoch) {
      throw new CrrError('CRR_STORE_APPLY', `a promotion records role primary, state ACTIVE at its new epoch ${promotion.toEpoch}; got ${JSON.stringify(input)}`);
    }
    const { role, state, epoch, reason } = parsed.data;
    return this.run(() =>
      this.db.transaction(async (tx) => {
        await tx.query(
          `INSERT INTO ${this.s}.cluster_state (singleton, role, state, epoch, reason, updated_at) VALUES (true, $1, $2, $3, $4, now())
           ON CONFLICT (singleton) DO UPDATE SET role = excluded.role, state = excluded.state, epoch = excluded.epoch, reason = excluded.reason, updated_at = excluded.updated_at`,
          [role, state, epoch, reason ?? null],
        );
        if (positions.length > 0) {
          await tx.query(
            `INSERT INTO ${this.s}.positions (topic, partition, next_offset) SELECT r.topic, r.partition, r.next_offset FROM jsonb_to_recordset($1::text::jsonb) AS r(topic text, partition integer, next_offset bigint)
             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset`,
            [JSON.stringify(positions.map((p) => ({ topic: p.topic, partition: p.partition, next_offset: p.nextOffset })))],
          );
        }
        const { rows } = await tx.query<{ id: string | number; promoted_at: Date }>(
          `INSERT INTO ${this.s}.promotions (mode, from_epoch, to_epoch, summary) VALUES ($1, $2, $3, $4::text::jsonb) RETURNING id, promoted_at`,
          [promotion.mode, promotion.fromEpoch, promotion.toEpoch, JSON.stringify(promotion.summary)],
        );
        return { ...promotion, id: Number(rows[0]!.id), promotedAt: new Date(rows[0]!.promoted_at) };
      }),
    );
  }

  async promotions(): Promise<PromotionRecord[]> {
    const { rows } = await this.run(() =>
      this.db.query<{ id: string | number; promoted_at: Date; mode: 'graceful' | 'force'; from_epoch: string | number; to_epoch: string | number; summary: unknown }>(
        `SELECT id, promoted_at, mode, from_epoch, to_epoch, summary FROM ${this.s}.promotions ORDER BY id`,
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

  async counts(): Promise<StoreCounts> {
    const { rows } = await this.run(() =>
      this.db.query<{ what: 'vertices' | 'edges' | 'catalog'; k: string; n: string | number }>(
        `SELECT 'vertices' AS what, type AS k, count(*) AS n FROM ${this.s}.vertices GROUP BY type
         UNION ALL SELECT 'edges', type, count(*) FROM ${this.s}.edges GROUP BY type
         UNION ALL SELECT 'catalog', kind, count(*) FROM ${this.s}.catalog GROUP BY kind`,
      ),
    );
    const counts: StoreCounts = { vertices: {}, edges: {}, catalog: {} };
    for (const r of rows) counts[r.what][r.k] = Number(r.n);
    return counts;
  }

  async digest(): Promise<string> {
    // Each row is hashed as the text of a JSON array (jsonb's text form is canonical: keys
    // sorted, no insignificant spaces); the row hashes are sorted bytewise and hashed again.
    const s = this.s;
    const { rows } = await this.run(() =>
      this.db.query<{ digest: string }>(
        `SELECT encode(sha256(coalesce(string_agg(h, ''::bytea ORDER BY h), ''::bytea)), 'hex') AS digest FROM (
           SELECT sha256(convert_to(jsonb_build_array('v'::text, type, id, attributes)::text, 'UTF8')) AS h FROM ${s}.vertices
           UNION ALL SELECT sha256(convert_to(jsonb_build_array('e'::text, type, from_type, from_id, to_type, to_id, attributes)::text, 'UTF8')) FROM ${s}.edges
           UNION ALL SELECT sha256(convert_to(jsonb_build_array('m'::text, kind, name, body)::text, 'UTF8')) FROM ${s}.catalog
         ) AS rows_`,
      ),
    );
    return rows[0]!.digest;
  }

  async exportSnapshot(sink: SnapshotSink, options: SnapshotOptions = {}): Promise<SnapshotTotals> {
    const batchRows = options.batchRows ?? DEFAULT_SNAPSHOT_BATCH_ROWS;
    if (!Number.isSafeInteger(batchRows) || batchRows < 1) throw new RangeError(`batchRows must be an integer >= 1, got ${batchRows}`);
    const s = this.s;
    // Sink errors must pass through unchanged (run() leaves non-database errors alone only when
    // they are CrrErrors or programming errors), so they are carried out of the transaction apart.
    let sinkError: { err: unknown } | undefined;
    const toSink = async (fn: () => Promise<void>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        sinkError = { err };
        throw err;
      }
    };
    try {
      return await this.run(() =>
        this.db.transaction(async (tx) => {
          // must be the first statement of the transaction; PGlite accepts it too (one connection: a snapshot anyway)
          await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
          const positions = await this.readPositions(tx);
          const clusterState = await this.readClusterState(tx);
          const catalog = (await tx.query<{ kind: string; name: string; body: unknown }>(`SELECT kind, name, body FROM ${s}.catalog ORDER BY kind, name`)).rows.map(
            (r): CatalogEntry => ({ kind: r.kind, name: r.name, body: r.body }),
          );
          await toSink(() => sink.header({ positions, clusterState, catalog }));
          const totals: SnapshotTotals = { vertices: 0, edges: 0 };
          // keyset pagination in primary-key order: each page is an index range scan
          let lastV: [string, string] | undefined;
          for (;;) {
            const { rows } = await tx.query<{ type: string; id: string; attributes: Record<string, unknown> }>(
              lastV === undefined
                ? `SELECT type, id, attributes FROM ${s}.vertices ORDER BY type, id LIMIT ${batchRows}`
                : `SELECT type, id, attributes FROM ${s}.vertices WHERE (type, id) > ($1, $2) ORDER BY type, id LIMIT ${batchRows}`,
              lastV,
            );
            if (rows.length === 0) break;
            const last = rows[rows.length - 1]!;
            lastV = [last.type, last.id];
            totals.vertices += rows.length;
            await toSink(() => sink.vertices(rows.map((r): VertexRow => ({ type: r.type, id: r.id, attributes: r.attributes }))));
            if (rows.length < batchRows) break;
          }
          type EdgeDbRow = { type: string; from_type: string; from_id: string; to_type: string; to_id: string; attributes: Record<string, unknown> };
          const cols = 'type, from_type, from_id, to_type, to_id';
          let lastE: [string, string, string, string, string] | undefined;
          for (;;) {
            const { rows } = await tx.query<EdgeDbRow>(
              lastE === undefined
                ? `SELECT ${cols}, attributes FROM ${s}.edges ORDER BY ${cols} LIMIT ${batchRows}`
                : `SELECT ${cols}, attributes FROM ${s}.edges WHERE (${cols}) > ($1, $2, $3, $4, $5) ORDER BY ${cols} LIMIT ${batchRows}`,
              lastE,
            );
            if (rows.length === 0) break;
            const last = rows[rows.length - 1]!;
            lastE = [last.type, last.from_type, last.from_id, last.to_type, last.to_id];
            totals.edges += rows.length;
            await toSink(() =>
              sink.edges(rows.map((r): EdgeRow => ({ type: r.type, from: { type: r.from_type, id: r.from_id }, to: { type: r.to_type, id: r.to_id }, attributes: r.attributes }))),
            );
            if (rows.length < batchRows) break;
          }
          return totals;
        }),
      );
    } catch (err) {
      if (sinkError) throw sinkError.err;
      throw err;
    }
  }

  async restore(plan: RestorePlan, rows: AsyncIterable<RestoreBatch>, options: RestoreOptions = {}): Promise<RestoreResult> {
    const backupId = plan.id;
    const invalid = (part: string, problem: string, message: string): CrrError =>
      new CrrError('CRR_BACKUP_INVALID', `backup ${backupId}: ${message}`, { context: { backupId, part, problem } });
    if (plan.storeSchemaVersion > SCHEMA_VERSION) {
      throw invalid('manifest.json', 'manifest', `was written by a store of schema version ${plan.storeSchemaVersion}, newer than this crr's (${SCHEMA_VERSION}); restore it with the crr release that wrote it`);
    }
    const target = options.targetSchema;
    if (target !== undefined) quoteIdent(target);
    const home = target ?? this.schema;
    const short = `${/([0-9a-f]{4})$/.exec(backupId)?.[1] ?? '0000'}${randomBytes(2).toString('hex')}`;
    const staging = derivedSchema(home, `_restore_${short}`);
    const old = derivedSchema(this.schema, `_old_${short}`);
    if (await this.run(() => this.schemaExists(this.db, staging))) {
      throw new CrrError('CRR_STORE', `staging schema ${staging} exists already (another restore of backup ${backupId} at the same time?)`, { retriable: true, context: { schema: staging } });
    }
    if (target !== undefined && (await this.run(() => this.schemaExists(this.db, target)))) {
      throw new CrrError('CRR_RESTORE_REFUSED', `cannot restore backup ${backupId} as schema ${target}: it exists already (pick another name, or drop it)`, { context: { backupId, schema: target } });
    }
    const st = new SqlStore(this.db, staging);
    const ss = st.s;
    const progress = { phase: 'load' as 'load' | 'verify' | 'swap' | 'done', vertices: 0, edges: 0, parts: 0 };
    const report = (): void => options.onProgress?.({ ...progress });
    let created = false;
    try {
      created = true;
      await st.migrate();
      if (plan.catalog.length > 0) {
        await st.run(() =>
          this.db.query(
            `INSERT INTO ${ss}.catalog (kind, name, body) SELECT r.kind, r.name, r.body FROM jsonb_to_recordset($1::text::jsonb) AS r(kind text, name text, body jsonb)`,
            [JSON.stringify(plan.catalog.map((c) => ({ kind: c.kind, name: c.name, body: c.body ?? null })))],
          ),
        );
      }
      if (plan.positions.length > 0) await st.applyBatch([], plan.positions);
      if (options.clusterState) await st.setClusterState(options.clusterState);

      // rows, part by part in the plan's order
      let partIndex = -1;
      let inPart = 0;
      const endPart = (): void => {
        if (partIndex < 0) return;
        const p = plan.parts[partIndex]!;
        if (inPart !== p.records) throw invalid(p.name, 'count', `part ${p.name} gave ${inPart} records, the manifest says ${p.records}`);
        progress.parts++;
      };
      for await (const batch of rows) {
        options.signal?.throwIfAborted();
        if (partIndex < 0 || batch.part !== plan.parts[partIndex]!.name) {
          endPart();
          partIndex++;
          inPart = 0;
          const p = plan.parts[partIndex];
          if (!p || p.name !== batch.part) {
            throw invalid(batch.part, 'unexpected', `rows of part ${batch.part} arrived ${p ? `where the manifest has part ${p.name}` : 'after the last part of the manifest'}`);
          }
          if (p.kind !== batch.kind) throw invalid(p.name, 'corrupt', `part ${p.name} is a ${p.kind} part, but ${batch.kind} rows arrived for it`);
        }
        inPart += batch.rows.length;
        if (batch.rows.length === 0) continue;
        if (batch.kind === 'vertices') {
          await st.run(() =>
            this.db.query(
              `INSERT INTO ${ss}.vertices (type, id, attributes) SELECT r.type, r.id, r.attributes FROM jsonb_to_recordset($1::text::jsonb) AS r(type text, id text, attributes jsonb)`,
              [JSON.stringify(batch.rows)],
            ),
          );
          progress.vertices += batch.rows.length;
        } else {
          await st.run(() =>
            this.db.query(
              `INSERT INTO ${ss}.edges (type, from_type, from_id, to_type, to_id, attributes)
               SELECT r.type, r.from_type, r.from_id, r.to_type, r.to_id, r.attributes
               FROM jsonb_to_recordset($1::text::jsonb) AS r(type text, from_type text, from_id text, to_type text, to_id text, attributes jsonb)`,
              [JSON.stringify(batch.rows.map((e) => ({ type: e.type, from_type: e.from.type, from_id: e.from.id, to_type: e.to.type, to_id: e.to.id, attributes: e.attributes })))],
            ),
          );
          progress.edges += batch.rows.length;
        }
        report();
      }
      endPart();
      options.signal?.throwIfAborted();
      const missing = plan.parts[partIndex + 1];
      if (missing) throw invalid(missing.name, 'missing', `no rows of part ${missing.name} arrived (nor of the ${plan.parts.length - partIndex - 2} parts after it)`);

      // verify the staging schema against the plan
      progress.phase = 'verify';
      report();
      const sum = (kind: 'vertices' | 'edges'): number => plan.parts.filter((p) => p.kind === kind).reduce((n, p) => n + p.records, 0);
      const positionRows = new Set(plan.positions.map((p) => `${p.topic}\u0000${p.partition}`)).size;
      const { rows: counted } = await st.run(() =>
        this.db.query<{ v: string | number; e: string | number; c: string | number; p: string | number }>(
          `SELECT (SELECT count(*) FROM ${ss}.vertices) AS v, (SELECT count(*) FROM ${ss}.edges) AS e, (SELECT count(*) FROM ${ss}.catalog) AS c, (SELECT count(*) FROM ${ss}.positions) AS p`,
        ),
      );
      const got = { vertices: Number(counted[0]!.v), edges: Number(counted[0]!.e), catalog: Number(counted[0]!.c), positions: Number(counted[0]!.p) };
      const want = { vertices: sum('vertices'), edges: sum('edges'), catalog: plan.catalog.length, positions: positionRows };
      for (const k of Object.keys(want) as Array<keyof typeof want>) {
        if (got[k] !== want[k]) throw invalid('manifest.json', 'count', `restored ${got[k]} ${k} into ${staging}, the manifest says ${want[k]}`);
      }

      await options.beforeSwap?.(staging);
      options.signal?.throwIfAborted();

      // the swap: one transaction
      progress.phase = 'swap';
      report();
      let droppedSchema: string | undefined;
      // Dropping the old tables waits for readers still in them, and new readers queue behind
      // that wait: so each attempt waits at most lockTimeoutMs, and the swap is tried again.
      const lockTimeoutMs = options.swapLockTimeoutMs ?? DEFAULT_SWAP_LOCK_TIMEOUT_MS;
      const attempts = options.swapAttempts ?? DEFAULT_SWAP_ATTEMPTS;
      for (let attempt = 1; ; attempt++) {
        try {
          droppedSchema = undefined;
          await this.run(() =>
            this.db.transaction(async (tx) => {
              await tx.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
              if (target !== undefined) {
                await tx.query(`ALTER SCHEMA ${ss} RENAME TO ${quoteIdent(target)}`);
                return;
              }
              if (await this.schemaExists(tx, this.schema)) {
                await tx.query(`ALTER SCHEMA ${this.s} RENAME TO ${quoteIdent(old)}`);
                droppedSchema = old;
              }
              await tx.query(`ALTER SCHEMA ${ss} RENAME TO ${this.s}`);
              if (droppedSchema !== undefined) await tx.query(`DROP SCHEMA ${quoteIdent(droppedSchema)} CASCADE`);
            }),
          );
          break;
        } catch (err) {
          const lockTimeout = err instanceof CrrError && err.sqlState === '55P03';
          if (!lockTimeout || attempt >= attempts) {
            if (lockTimeout) {
              throw new CrrError('CRR_STORE', `restore of backup ${backupId}: the swap into schema ${home} waited ${attempts} times ${lockTimeoutMs} ms for readers of the live tables to finish; nothing was changed`, {
                cause: err,
                retriable: true,
                context: { schema: home },
              });
            }
            throw err;
          }
          await new Promise((r) => setTimeout(r, 100 * attempt));
        }
      }
      created = false;
      progress.phase = 'done';
      report();
      return {
        schema: home,
        stagingSchema: staging,
        swapped: target === undefined,
        ...(droppedSchema === undefined ? {} : { droppedSchema }),
        ...got,
      };
    } catch (err) {
      if (created) {
        try {
          await this.db.query(`DROP SCHEMA IF EXISTS ${ss} CASCADE`);
        } catch (dropErr) {
          if (err instanceof CrrError) {
            err.message += `; the staging schema ${staging} could not be dropped (${describeError(dropErr)}): drop it by hand`;
          }
        }
      }
      throw err;
    }
  }

  private async schemaExists(client: SqlClient, name: string): Promise<boolean> {
    const { rows } = await client.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [name]);
    return rows.length > 0;
  }

  /** Leases held by this process, by name: the in-process implementation (PGlite). PostgresStore overrides {@link tryLease}. */
  private readonly leases = new Map<string, string>();

  async tryLease(name: string, holder: string): Promise<StoreLease | { heldBy: string }> {
    const heldBy = this.leases.get(name);
    if (heldBy !== undefined) return { heldBy };
    this.leases.set(name, holder);
    return {
      name,
      release: async () => {
        if (this.leases.get(name) === holder) this.leases.delete(name);
      },
    };
  }

  async dropAbandonedRestores(): Promise<string[]> {
    const prefix = derivedSchema(this.schema, `_restore_${'0'.repeat(8)}`).slice(0, -8);
    return this.run(async () => {
      const { rows } = await this.db.query<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE left(nspname, $1) = $2 AND length(nspname) = $3`, [
        prefix.length,
        prefix,
        prefix.length + 8,
      ]);
      const dropped: string[] = [];
      for (const { n } of rows) {
        if (!/^[0-9a-f]{8}$/.test(n.slice(prefix.length))) continue;
        await this.db.query(`DROP SCHEMA IF EXISTS ${quoteIdent(n)} CASCADE`);
        dropped.push(n);
      }
      return dropped;
    });
  }

  async close(): Promise<void> {
    await this.db.close();
  }

  /** Runs a database call, turning driver errors into CrrError CRR_STORE (CrrErrors pass through). */
  private async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(err, this.schema);
    }
  }
}

/** `base` + `suffix` as a schema name of at most 63 characters (`base` shortened when needed). */
function derivedSchema(base: string, suffix: string): string {
  return `${base.slice(0, 63 - suffix.length)}${suffix}`;
}

/**
 * Wraps a driver error as CrrError CRR_STORE with its SQLSTATE as `sqlState`; retriable for
 * connection failures (class 08), serialization failures and deadlocks (class 40), and server
 * shutdowns (57P01-57P03), and for errors without a SQLSTATE (a lost socket). CrrErrors and
 * programming errors (TypeError, RangeError) are returned as they are.
 */
export function toStoreError(err: unknown, schema: string): unknown {
  if (err instanceof CrrError || err instanceof TypeError || err instanceof RangeError) return err;
  const sqlState = err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
  const retriable = sqlState === undefined || /^(08|40)/.test(sqlState) || /^57P0[123]$/.test(sqlState);
  const message = err instanceof Error ? err.message : String(err);
  return new CrrError('CRR_STORE', `store (schema ${schema}) failed${sqlState ? ` [${sqlState}]` : ''}: ${message}`, { cause: err, retriable, context: { sqlState, schema } });
}
