import { CrrError } from '../errors.js';
import { SQL_IDENTIFIER } from './schema.js';

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

/**
 * `"name"`, for identifiers already checked against SQL_IDENTIFIER.
 * @throws CrrError CRR_CONFIG_INVALID when `name` is not a lower-case SQL identifier
 */
export function quoteIdent(name: string): string {
  if (!SQL_IDENTIFIER.test(name)) throw new CrrError('CRR_CONFIG_INVALID', `not a valid SQL identifier: "${name}"`);
  return `"${name}"`;
}
