import { CrrError } from '../errors.js';
import { runSql } from './pg-errors.js';
import { quoteIdent, type SqlDriver } from './sql-client.js';

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
  // 4: the replay fence (Store.activateReplay): the token of the one replay activation allowed to
  // apply; a restore's swap brings a fresh row, which fences every replay that ran before it
  (s) => [
    `CREATE TABLE ${s}.replay_fence (singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
       generation bigint NOT NULL CHECK (generation >= 0), token text, activated_at timestamptz)`,
    `INSERT INTO ${s}.replay_fence (generation) VALUES (0)`,
  ],
  // 5: the backup the cluster state refers to (ClusterStateInput.backupId: the one a RESEEDING
  // replica restores, or the one a REPLICATING replica was restored from); a resumed reseed
  // reads it here instead of parsing the free-text reason
  (s) => [`ALTER TABLE ${s}.cluster_state ADD COLUMN backup_id text`],
];

/** The latest schema version. */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Creates the schema `schema` and its tables, or brings them to {@link SCHEMA_VERSION}, in one
 * transaction (Store.migrate). Idempotent; concurrent callers serialize on the transaction-level
 * advisory lock `hashtext('crr.migrate.<schema>')`. Each version applied is recorded in
 * `<schema>.schema_migrations`.
 * @param schema a lower-case SQL identifier
 * @throws CrrError CRR_STORE (not retriable) when the schema is at a version newer than this
 *   crr's; CRR_STORE when the database fails (see toStoreError)
 */
export async function migrateSchema(db: SqlDriver, schema: string): Promise<void> {
  const s = quoteIdent(schema);
  await runSql(schema, () =>
    db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(hashtext($1))`, [`crr.migrate.${schema}`]);
      await tx.query(`CREATE SCHEMA IF NOT EXISTS ${s}`);
      await tx.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await tx.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_migrations`);
      const current = Number(rows[0]?.v ?? 0);
      if (current > SCHEMA_VERSION) {
        throw new CrrError('CRR_STORE', `schema ${schema} is at version ${current}, newer than this crr (${SCHEMA_VERSION})`, { retriable: false });
      }
      for (let v = current + 1; v <= SCHEMA_VERSION; v++) {
        for (const stmt of MIGRATIONS[v - 1]!(s)) await tx.query(stmt);
        await tx.query(`INSERT INTO ${s}.schema_migrations (version) VALUES ($1)`, [v]);
      }
    }),
  );
}
