import { PGlite } from '@electric-sql/pglite';
import { SqlStore, type SqlClient, type SqlDriver } from './sql.js';

/**
 * Options of an embedded PGlite store.
 * - `dataDir`: directory of the database (created if missing); absent = in memory, lost on close
 * - `schema`: PostgreSQL schema of crr's tables; default `crr`
 */
export interface PgliteStoreOptions {
  dataDir?: string;
  schema?: string;
}

/**
 * The {@link SqlStore} on PGlite: PostgreSQL compiled to WebAssembly, running in this process,
 * with one connection (so transactions are serialized by PGlite itself). There are no roles to
 * speak of, so no write fence: PGlite is the embedded default for a single process.
 * Call `migrate()` before the first use.
 */
export class PgliteStore extends SqlStore {
  readonly pglite: PGlite;

  constructor(options: PgliteStoreOptions = {}) {
    const db = new PGlite(options.dataDir);
    super(pgliteDriver(db), options.schema ?? 'crr');
    this.pglite = db;
  }
}

function pgliteDriver(db: PGlite): SqlDriver {
  return {
    query: async <R>(text: string, params?: unknown[]) => ({ rows: (await db.query<R>(text, params)).rows }),
    transaction: <T>(fn: (tx: SqlClient) => Promise<T>): Promise<T> =>
      db.transaction(async (tx) => fn({ query: async <R>(text: string, params?: unknown[]) => ({ rows: (await tx.query<R>(text, params)).rows }) })),
    close: () => db.close(),
  };
}
