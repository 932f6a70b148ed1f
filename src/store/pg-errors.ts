import { CrrError } from '../errors.js';

/**
 * SQLSTATE classes that say the data itself cannot be stored, so the same statement will fail
 * the same way however often it is retried: 22 data exception (U+0000 or an invalid escape in
 * text or jsonb, a value out of range), 23 integrity constraint violation (a CHECK, NOT NULL or
 * unique constraint), 54 program limit exceeded (an index row over the btree limit, a value too
 * large). `pg` and PGlite both report PostgreSQL's SQLSTATE as the error's `code`.
 */
const DATA_ERROR_CLASSES = /^(22|23|54)/;

/** The `code` of a driver error: PostgreSQL's SQLSTATE from `pg` and PGlite (a Node.js socket error's code, such as `ECONNRESET`, too). */
function sqlStateOf(err: unknown): string | undefined {
  const code = err && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Whether a SQLSTATE says the data cannot be stored (class 22, 23 or 54; see {@link toApplyError}). */
export function isDataErrorState(sqlState: string | undefined): boolean {
  return sqlState !== undefined && /^[0-9A-Z]{5}$/.test(sqlState) && DATA_ERROR_CLASSES.test(sqlState);
}

/**
 * Wraps a driver error as CrrError CRR_STORE with its SQLSTATE as `sqlState`; retriable for
 * connection failures (class 08), serialization failures and deadlocks (class 40), and server
 * shutdowns (57P01-57P03), and for errors without a SQLSTATE (a lost socket). CrrErrors and
 * programming errors (TypeError, RangeError) are returned as they are.
 * @param schema the store's schema, named in the message and as the `schema` property
 */
export function toStoreError(err: unknown, schema: string): unknown {
  if (err instanceof CrrError || err instanceof TypeError || err instanceof RangeError) return err;
  const sqlState = sqlStateOf(err);
  // a code that is not a SQLSTATE is a Node.js socket error (ECONNREFUSED, ECONNRESET, ETIMEDOUT ...): the server is unreachable, retry
  const socketError = sqlState !== undefined && !/^[0-9A-Z]{5}$/.test(sqlState);
  const retriable = sqlState === undefined || socketError || /^(08|40)/.test(sqlState) || /^57P0[123]$/.test(sqlState);
  const message = err instanceof Error ? err.message : String(err);
  return new CrrError('CRR_STORE', `store (schema ${schema}) failed${sqlState ? ` [${sqlState}]` : ''}: ${message}`, {
    cause: err,
    retriable,
    context: { sqlState, schema },
  });
}

/**
 * As {@link toStoreError}, for a statement that writes change events (Store.applyBatch): a data
 * error (SQLSTATE class 22, 23 or 54) says those events can never be stored, so it becomes
 * CRR_STORE_APPLY, not retriable, with the SQLSTATE as `sqlState`; replay then finds the event
 * and dead-letters it (src/replay/replay-task.ts) instead of retrying it forever. Anything else
 * (an outage, a deadlock) is what toStoreError makes of it.
 */
export function toApplyError(err: unknown, schema: string): unknown {
  if (err instanceof CrrError || err instanceof TypeError || err instanceof RangeError) return err;
  const sqlState = sqlStateOf(err);
  if (!isDataErrorState(sqlState)) return toStoreError(err, schema);
  const message = err instanceof Error ? err.message : String(err);
  return new CrrError('CRR_STORE_APPLY', `store (schema ${schema}) refused the data [${sqlState}]: ${message}`, {
    cause: err,
    retriable: false,
    context: { sqlState, schema },
  });
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

/** As {@link runSql}, for a call that writes change events: a data error is CRR_STORE_APPLY (see {@link toApplyError}). */
export async function runApply<T>(schema: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toApplyError(err, schema);
  }
}
