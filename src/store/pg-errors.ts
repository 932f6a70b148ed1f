import { CrrError } from '../errors.js';

/**
 * Wraps a driver error as CrrError CRR_STORE with its SQLSTATE as `sqlState`; retriable for
 * connection failures (class 08), serialization failures and deadlocks (class 40), and server
 * shutdowns (57P01-57P03), and for errors without a SQLSTATE (a lost socket). CrrErrors and
 * programming errors (TypeError, RangeError) are returned as they are.
 * @param schema the store's schema, named in the message and as the `schema` property
 */
export function toStoreError(err: unknown, schema: string): unknown {
  if (err instanceof CrrError || err instanceof TypeError || err instanceof RangeError) return err;
  const sqlState = err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
  const retriable = sqlState === undefined || /^(08|40)/.test(sqlState) || /^57P0[123]$/.test(sqlState);
  const message = err instanceof Error ? err.message : String(err);
  return new CrrError('CRR_STORE', `store (schema ${schema}) failed${sqlState ? ` [${sqlState}]` : ''}: ${message}`, { cause: err, retriable, context: { sqlState, schema } });
}

/**
 * Runs a database call, turning driver errors into CrrError CRR_STORE naming `schema` (see
 * {@link toStoreError}; CrrErrors and programming errors pass through).
 */
export async function runSql<T>(schema: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toStoreError(err, schema);
  }
}
