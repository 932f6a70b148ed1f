import pg from 'pg';
import { SqlStore, toStoreError, type SqlClient, type SqlDriver } from './sql.js';
import type { StoreLease } from './store.js';

/**
 * Options of a PostgreSQL store.
 * - `connectionString`: `postgres://user[:password]@host:5432/db` (the user decides what the
 *   store may do: the replay role of the write fence writes, an application role only reads)
 * - `schema`: PostgreSQL schema of crr's tables; default `crr`
 * - `poolMax`: connections in the pool; default 4
 */
export interface PostgresStoreOptions {
  connectionString: string;
  schema?: string;
  poolMax?: number;
}

/**
 * The {@link SqlStore} on a PostgreSQL server through a `pg` Pool. Call `migrate()` before the
 * first use. `pool` is exposed for the write fence (src/store/fence.ts) and for tests.
 */
export class PostgresStore extends SqlStore {
  readonly pool: pg.Pool;
  private readonly connectionString: string;

  constructor(options: PostgresStoreOptions) {
    const pool = new pg.Pool({ connectionString: options.connectionString, max: options.poolMax ?? 4 });
    // An idle client that loses its connection emits 'error' on the pool; without a listener
    // that would crash the process. The next query gets a fresh connection (or a CRR_STORE error).
    pool.on('error', () => undefined);
    super(poolDriver(pool), options.schema ?? 'crr');
    this.pool = pool;
    this.connectionString = options.connectionString;
  }

  /**
   * The lease as a session-level advisory lock, on a connection of its own (not the pool's, so
   * the lease neither starves the pool nor ends when a pooled connection is recycled). The lock
   * key is `hashtextextended('crr.lease.<schema>.<name>', 0)`; the holder is the connection's
   * `application_name`, read from `pg_stat_activity` when the lease is refused.
   */
  override async tryLease(name: string, holder: string): Promise<StoreLease | { heldBy: string }> {
    const key = `crr.lease.${this.schema}.${name}`;
    const client = new pg.Client({ connectionString: this.connectionString, application_name: holder.slice(0, 63) });
    client.on('error', () => undefined); // a lost connection ends the lease; release() then does nothing
    try {
      await client.connect();
      const { rows } = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok', [key]);
      if (rows[0]?.ok) {
        let released = false;
        return {
          name,
          release: async () => {
            if (released) return;
            released = true;
            await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => undefined);
            await client.end().catch(() => undefined);
          },
        };
      }
      const held = await client.query<{ app: string | null; pid: number }>(
        `SELECT a.application_name AS app, a.pid FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0)`,
        [key],
      );
      await client.end().catch(() => undefined);
      const h = held.rows[0];
      return { heldBy: h ? `${h.app || 'a session'} (PostgreSQL backend pid ${h.pid})` : 'unknown' };
    } catch (err) {
      await client.end().catch(() => undefined);
      throw toStoreError(err, this.schema);
    }
  }
}

function poolDriver(pool: pg.Pool): SqlDriver {
  return {
    query: async <R>(text: string, params?: unknown[]) => {
      const res = await pool.query(text, params);
      return { rows: res.rows as R[] };
    },
    transaction: async <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> => {
      const client = await pool.connect();
      let broken: unknown;
      try {
        await client.query('BEGIN');
        const tx: SqlClient = {
          query: async <R>(text: string, params?: unknown[]) => ({ rows: (await client.query(text, params)).rows as R[] }),
        };
        const result = await fn(tx);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await client.query('ROLLBACK');
        } catch (rollbackErr) {
          broken = rollbackErr; // the connection is unusable: do not return it to the pool
        }
        throw err;
      } finally {
        client.release(broken instanceof Error ? broken : undefined);
      }
    },
    close: () => pool.end(),
  };
}
