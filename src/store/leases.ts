import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { toStoreError } from './pg-errors.js';
import type { StoreLease } from './store.js';

// The two implementations of Store.tryLease: a table of this process's leases (PGlite: one
// process owns the database anyway), and a PostgreSQL session-level advisory lock.

/** Leases held by this process, by name: the in-process implementation of Store.tryLease (PGlite). */
export class InProcessLeases {
  /** Holder of each lease held, by lease name. */
  private readonly leases = new Map<string, string>();

  /**
   * Takes the lease `name` for `holder` unless this process holds it already.
   * @returns the lease (its `release()` is idempotent), or `{ heldBy }` naming the holder
   */
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
}

/**
 * The lease as a session-level advisory lock, on a connection of its own (not the pool's, so
 * the lease neither starves the pool nor ends when a pooled connection is recycled). The lock
 * key is `hashtextextended('crr.lease.<schema>.<name>', 0)`; the holder is the connection's
 * `application_name` (its first 63 characters), read from `pg_stat_activity` when the lease is
 * refused. A lost connection ends the lease; `release()` is idempotent and never throws.
 * @param connectionString `postgres://user@host:5432/db`
 * @param schema the store's schema (part of the lock key)
 * @param ssl node-postgres's `ssl` option, as the store's pool has it (see pgTlsOptions)
 * @returns the lease, or `{ heldBy }`: `<application_name> (PostgreSQL backend pid <pid>)`, or
 *   `unknown` when the holder let go meanwhile
 * @throws CrrError CRR_STORE when the connection or a statement fails
 */
export async function tryAdvisoryLease(
  connectionString: string,
  schema: string,
  name: string,
  holder: string,
  ssl?: false | ConnectionOptions,
): Promise<StoreLease | { heldBy: string }> {
  const key = `crr.lease.${schema}.${name}`;
  const client = new pg.Client({ connectionString, application_name: holder.slice(0, 63), ...(ssl === undefined ? {} : { ssl }) });
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
    throw toStoreError(err, schema);
  }
}
