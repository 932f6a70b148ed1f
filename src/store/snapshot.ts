import { runSql } from './pg-errors.js';
import { quoteIdent, type SqlClient, type SqlDriver } from './sql-client.js';
import { readClusterState, readPositions } from './state.js';
import type {
  CatalogEntry,
  EdgeRow,
  EntityDifference,
  SchemaComparison,
  SnapshotOptions,
  SnapshotSink,
  SnapshotTotals,
  StoreCounts,
  VertexRow,
} from './store.js';

// Reads of a store's whole state: the snapshot a backup is written from, the counts and
// digest crr verify compares, and the comparison of two schemas crr verify --against-log makes.
// Each function takes the driver (or a transaction) and the schema name.

/** Default rows per batch of {@link exportSnapshot}. */
export const DEFAULT_SNAPSHOT_BATCH_ROWS = 10_000;

/**
 * Rows per vertex type, edge type and catalog kind (Store.counts).
 * @throws CrrError CRR_STORE when the database fails
 */
export async function countRows(db: SqlClient, schema: string): Promise<StoreCounts> {
  const s = quoteIdent(schema);
  const { rows } = await runSql(schema, () =>
    db.query<{ what: 'vertices' | 'edges' | 'catalog'; k: string; n: string | number }>(
      `SELECT 'vertices' AS what, type AS k, count(*) AS n FROM ${s}.vertices GROUP BY type
       UNION ALL SELECT 'edges', type, count(*) FROM ${s}.edges GROUP BY type
       UNION ALL SELECT 'catalog', kind, count(*) FROM ${s}.catalog GROUP BY kind`,
    ),
  );
  const counts: StoreCounts = { vertices: {}, edges: {}, catalog: {} };
  for (const r of rows) counts[r.what][r.k] = Number(r.n);
  return counts;
}

/**
 * The order-independent digest of the data and the catalog (Store.digest): SHA-256, hex.
 * @throws CrrError CRR_STORE when the database fails
 */
export async function digestRows(db: SqlClient, schema: string): Promise<string> {
  // Each row is hashed as the text of a JSON array (jsonb's text form is canonical: keys
  // sorted, no insignificant spaces); the row hashes are sorted bytewise and hashed again.
  const s = quoteIdent(schema);
  const { rows } = await runSql(schema, () =>
    db.query<{ digest: string }>(
      `SELECT encode(sha256(coalesce(string_agg(h, ''::bytea ORDER BY h), ''::bytea)), 'hex') AS digest FROM (
         SELECT sha256(convert_to(jsonb_build_array('v'::text, type, id, attributes)::text, 'UTF8')) AS h FROM ${s}.vertices
         UNION ALL SELECT sha256(convert_to(jsonb_build_array('e'::text, type, from_type, from_id, to_type, to_id, attributes)::text, 'UTF8')) FROM ${s}.edges
         UNION ALL SELECT sha256(convert_to(jsonb_build_array('m'::text, kind, name, body)::text, 'UTF8')) FROM ${s}.catalog
       ) AS rows_`,
    ),
  );
  return rows[0]!.digest;
}

/**
 * Compares schema `schema` with schema `other` of the same database (Store.compareWithSchema)
 * in ONE `REPEATABLE READ, READ ONLY` transaction: the positions and cluster state of `schema`,
 * the counts and digests of both ({@link countRows}, {@link digestRows}), and, only when the
 * digests differ, the differing rows of each table (a row absent on one side, or with other
 * attributes or body) by a FULL JOIN on the primary key: how many, and the first in key order
 * (vertices, then edges, then catalog entries; the database's collation orders both sides).
 * @throws CrrError CRR_STORE when the database fails (a missing `other` schema included)
 */
export async function compareSchemas(db: SqlDriver, schema: string, other: string): Promise<SchemaComparison> {
  const s = quoteIdent(schema);
  const o = quoteIdent(other);
  return runSql(schema, () =>
    db.transaction(async (tx) => {
      await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
      const positions = await readPositions(tx, schema);
      const clusterState = await readClusterState(tx, schema);
      const counts = { here: await countRows(tx, schema), other: await countRows(tx, other) };
      const digests = { here: await digestRows(tx, schema), other: await digestRows(tx, other) };
      const differing = { vertices: 0, edges: 0, catalog: 0 };
      if (digests.here === digests.other) return { positions, clusterState, counts, digests, differing };
      let first: EntityDifference | undefined;
      // one FULL JOIN per table: the rows whose value differs (NULL = absent on that side; the value columns are NOT NULL)
      const diff = async (
        section: EntityDifference['section'],
        table: string,
        keys: readonly string[],
        value: string,
        toKey: (r: Record<string, string>) => EntityDifference['key'],
      ): Promise<void> => {
        const { rows } = await tx.query<Record<string, string> & { here: unknown; other: unknown; n: string | number }>(
          `SELECT ${keys.map((k) => `coalesce(a.${k}, b.${k}) AS ${k}`).join(', ')}, a.${value} AS here, b.${value} AS other, count(*) OVER () AS n
           FROM ${s}.${table} a FULL JOIN ${o}.${table} b ON ${keys.map((k) => `a.${k} = b.${k}`).join(' AND ')}
           WHERE a.${value} IS DISTINCT FROM b.${value}
           ORDER BY ${keys.map((_, i) => i + 1).join(', ')} LIMIT 1`,
        );
        const r = rows[0];
        if (!r) return;
        differing[section] = Number(r.n);
        first ??= { section, key: toKey(r), ...(r.here === null ? {} : { here: r.here }), ...(r.other === null ? {} : { other: r.other }) };
      };
      await diff('vertices', 'vertices', ['type', 'id'], 'attributes', (r) => ({ type: r.type!, id: r.id! }));
      await diff('edges', 'edges', ['type', 'from_type', 'from_id', 'to_type', 'to_id'], 'attributes', (r) => ({
        type: r.type!,
        from: { type: r.from_type!, id: r.from_id! },
        to: { type: r.to_type!, id: r.to_id! },
      }));
      await diff('catalog', 'catalog', ['kind', 'name'], 'body', (r) => ({ kind: r.kind!, name: r.name! }));
      return { positions, clusterState, counts, digests, differing, ...(first ? { first } : {}) };
    }),
  );
}

/**
 * Streams one consistent snapshot into `sink` (Store.exportSnapshot): ONE REPEATABLE READ, READ
 * ONLY transaction reads positions, cluster state and catalog (`sink.header`), then vertices and
 * edges in primary-key order, `options.batchRows` (default {@link DEFAULT_SNAPSHOT_BATCH_ROWS})
 * per page (keyset pagination) and per call of the sink.
 * @returns the rows exported
 * @throws RangeError when `batchRows` is not an integer >= 1
 * @throws what the sink throws, unchanged; CrrError CRR_STORE when the database fails
 */
export async function exportSnapshot(db: SqlDriver, schema: string, sink: SnapshotSink, options: SnapshotOptions = {}): Promise<SnapshotTotals> {
  const batchRows = options.batchRows ?? DEFAULT_SNAPSHOT_BATCH_ROWS;
  if (!Number.isSafeInteger(batchRows) || batchRows < 1) throw new RangeError(`batchRows must be an integer >= 1, got ${batchRows}`);
  const s = quoteIdent(schema);
  // Sink errors must pass through unchanged (runSql() leaves non-database errors alone only when
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
    return await runSql(schema, () =>
      db.transaction(async (tx) => {
        // must be the first statement of the transaction; PGlite accepts it too (one connection: a snapshot anyway)
        await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
        const positions = await readPositions(tx, schema);
        const clusterState = await readClusterState(tx, schema);
        const catalog = (
          await tx.query<{ kind: string; name: string; body: unknown }>(`SELECT kind, name, body FROM ${s}.catalog ORDER BY kind, name`)
        ).rows.map((r): CatalogEntry => ({ kind: r.kind, name: r.name, body: r.body }));
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
            sink.edges(
              rows.map(
                (r): EdgeRow => ({ type: r.type, from: { type: r.from_type, id: r.from_id }, to: { type: r.to_type, id: r.to_id }, attributes: r.attributes }),
              ),
            ),
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
