import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { CrrError } from '../errors.js';
import { tryAdvisoryLease } from './leases.js';
import type { SqlClient, SqlDriver } from './sql-client.js';
import { SqlStore } from './sql-store.js';
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
  /** TLS to the server (see StoreSchema's `ssl`); absent = what the connection string says. */
  ssl?: StoreTls;
}

/** TLS settings of a PostgreSQL store, libpq's `sslmode` semantics. */
export interface StoreTls {
  mode: 'disable' | 'require' | 'verify-ca' | 'verify-full';
  caFile?: string | undefined;
  certFile?: string | undefined;
  keyFile?: string | undefined;
}

/**
 * node-postgres's `ssl` option for {@link StoreTls}: `false` for `disable`; otherwise TLS that
 * verifies the server's chain (`verify-ca`, `verify-full`) and name (`verify-full` only), with the
 * client certificate when given. Files are read now.
 * @throws CrrError CRR_CONFIG_INVALID naming `store.ssl.<field>` when a file cannot be read
 */
export function pgTlsOptions(tls: StoreTls): false | ConnectionOptions {
  if (tls.mode === 'disable') return false;
  const read = (field: 'caFile' | 'certFile' | 'keyFile'): string | undefined => {
    const path = tls[field];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (cause) {
      throw new CrrError('CRR_CONFIG_INVALID', `store.ssl.${field}: cannot read ${path}: ${(cause as Error).message}`, { cause });
    }
  };
  const ca = read('caFile');
  const cert = read('certFile');
  const key = read('keyFile');
  return {
    rejectUnauthorized: tls.mode !== 'require',
    ...(tls.mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined && key !== undefined ? { cert, key } : {}),
  };
}

/** How long opening a connection to PostgreSQL may take, ms. */
export const POOL_CONNECT_TIMEOUT_MS = 10_000;
/**
 * The longest one statement may run, ms (PostgreSQL's `statement_timeout`, and the client's
 * `query_timeout` a little later for a server that stopped answering). Generous: a restore's
 * bulk load and a backup's snapshot pages are the longest statements crr runs.
 */
export const STATEMENT_TIMEOUT_MS = 600_000;

/**
 * The {@link SqlStore} on a PostgreSQL server through a `pg` Pool. Call `migrate()` before the
 * first use. `pool` is exposed for the write fence (src/store/fence.ts) and for tests.
 */
export class PostgresStore extends SqlStore {
  readonly pool: pg.Pool;
  private readonly connectionString: string;
  private readonly tls: false | ConnectionOptions | undefined;

  constructor(options: PostgresStoreOptions) {
    const tls = options.ssl ? pgTlsOptions(options.ssl) : undefined;
    const pool = new pg.Pool({
      connectionString: options.connectionString,
      ...(tls === undefined ? {} : { ssl: tls }),
      max: options.poolMax ?? 4,
      // an unreachable or hung server fails a request in bounded time, so callers retry instead of hanging
      connectionTimeoutMillis: POOL_CONNECT_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS + 10_000,
    });
    // An idle client that loses its connection emits 'error' on the pool; without a listener
    // that would crash the process. The next query gets a fresh connection (or a CRR_STORE error).
    pool.on('error', () => undefined);
    super(poolDriver(pool), options.schema ?? 'crr');
    this.pool = pool;
    this.connectionString = options.connectionString;
    this.tls = tls;
  }

  /**
   * Cuts every connection of the pool at once, those still connecting or running a query
   * included (their queries fail: "Connection terminated"), and ends the pool: for a caller that
   * gave up waiting for the server. `close()` instead waits for the queries in flight.
   * (pg's Pool lists its clients only in pg-pool's `_clients`.)
   */
  async terminate(): Promise<void> {
    const clients = (this.pool as unknown as { _clients?: Array<{ connection?: { stream?: { destroy(): void } } }> })._clients ?? [];
    for (const c of clients) c.connection?.stream?.destroy();
    await this.pool.end().catch(() => undefined);
  }

  /** The lease as a PostgreSQL session-level advisory lock on a connection of its own: see {@link tryAdvisoryLease}. */
  override async tryLease(name: string, holder: string): Promise<StoreLease | { heldBy: string }> {
    return tryAdvisoryLease(this.connectionString, this.schema, name, holder, this.tls);
  }
}

/**
 * Checks a client out of `pool` with an `'error'` listener for as long as it is held.
 * node-postgres emits `'error'` on a checked-out client whose connection ends while no query runs
 * on it (a cut or blackholed network, a server that ends an idle-in-transaction session); without
 * a listener that event ends the process. The error is kept: the client's next query fails, and
 * `release()` then discards the client instead of returning it to the pool.
 * @throws what `pool.connect()` throws (the caller maps it, see toStoreError)
 */
export async function checkOut(pool: pg.Pool): Promise<{ client: pg.PoolClient; release(err?: unknown): void }> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (err: Error): void => {
    lost ??= err;
  };
  client.on('error', onError);
  return {
    client,
    release(err?: unknown): void {
      client.removeListener('error', onError);
      const broken = lost ?? (err instanceof Error ? err : undefined);
      client.release(broken);
    },
  };
}

function poolDriver(pool: pg.Pool): SqlDriver {
  return {
    query: async <R>(text: string, params?: unknown[]) => {
      const res = await pool.query(text, params);
      return { rows: res.rows as R[] };
    },
    transaction: async <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> => {
      const { client, release } = await checkOut(pool);
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
        release(broken);
      }
    },
    close: () => pool.end(),
  };
}
