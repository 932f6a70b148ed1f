import type pg from 'pg';
import { toStoreError } from './pg-errors.js';
import { quoteIdent } from './sql-client.js';

/**
 * The roles of the write fence on a PostgreSQL store.
 * - `schema`: the store's schema (must exist: run `migrate()` first)
 * - `appRole`: login role of applications; fenced, it can only read
 * - `replayRole`: login role of replay; it can always write
 * All three are lower-case SQL identifiers. Roles are created without a password: set one with
 * `ALTER ROLE ... PASSWORD` (or use certificate or peer authentication) on a shared server.
 */
export interface FenceRoles {
  schema: string;
  appRole: string;
  replayRole: string;
}

/**
 * Makes a replica read-only to applications (the write fence), idempotently, in one transaction:
 * - creates `appRole` and `replayRole` (LOGIN) when missing; roles are server-wide, so one name
 *   per store is best on a shared server;
 * - `appRole`: USAGE on the schema and SELECT on its tables, nothing else (no INSERT, UPDATE,
 *   DELETE, TRUNCATE, no CREATE in the schema); tables created later in the schema by the
 *   caller or by `replayRole` are readable too (default privileges);
 * - `replayRole`: USAGE and CREATE on the schema, SELECT, INSERT, UPDATE, DELETE on its tables
 *   and on future ones.
 *
 * Must run as a role that owns the schema and may create roles (a superuser, or CREATEROLE).
 * A write by `appRole` then fails with SQLSTATE 42501 (insufficient_privilege).
 *
 * @param pool a pool connected as such a role (e.g. `PostgresStore.pool`)
 * @throws CrrError CRR_STORE when a statement fails (e.g. the caller may not create roles)
 */
export async function fence(pool: pg.Pool, roles: FenceRoles): Promise<void> {
  const { s, app, replay } = idents(roles);
  await inTransaction(pool, roles.schema, [
    ...createRole(roles.appRole),
    ...createRole(roles.replayRole),
    `REVOKE ALL ON SCHEMA ${s} FROM ${app}`,
    `REVOKE ALL ON ALL TABLES IN SCHEMA ${s} FROM ${app}`,
    `GRANT USAGE ON SCHEMA ${s} TO ${app}`,
    `GRANT SELECT ON ALL TABLES IN SCHEMA ${s} TO ${app}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLES FROM ${app}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT ON TABLES TO ${app}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${replay} IN SCHEMA ${s} REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON TABLES FROM ${app}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${replay} IN SCHEMA ${s} GRANT SELECT ON TABLES TO ${app}`,
    `GRANT USAGE, CREATE ON SCHEMA ${s} TO ${replay}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${replay}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${replay}`,
  ]);
}

/**
 * Lifts the write fence for a promoted primary: `appRole` may INSERT, UPDATE and DELETE in the
 * schema's tables, now and in tables created later. `replayRole` keeps its rights. Idempotent.
 * Runs as for {@link fence}; the roles must exist (run {@link fence} first).
 *
 * @throws CrrError CRR_STORE when a statement fails
 */
export async function unfence(pool: pg.Pool, roles: FenceRoles): Promise<void> {
  const { s, app, replay } = idents(roles);
  await inTransaction(pool, roles.schema, [
    `GRANT USAGE ON SCHEMA ${s} TO ${app}`,
    `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${app}`,
    `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${app}`,
    `ALTER DEFAULT PRIVILEGES FOR ROLE ${replay} IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${app}`,
  ]);
}

function idents(roles: FenceRoles): { s: string; app: string; replay: string } {
  return { s: quoteIdent(roles.schema), app: quoteIdent(roles.appRole), replay: quoteIdent(roles.replayRole) };
}

/** `CREATE ROLE ... LOGIN` unless it exists (PostgreSQL has no CREATE ROLE IF NOT EXISTS). */
function createRole(role: string): string[] {
  // The name was checked by quoteIdent (lower-case identifier), so it is safe inside the literal.
  return [`DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${role}') THEN CREATE ROLE ${quoteIdent(role)} LOGIN; END IF; END $$`];
}

async function inTransaction(pool: pg.Pool, schema: string, statements: string[]): Promise<void> {
  let client: pg.PoolClient | undefined;
  try {
    client = await pool.connect();
    await client.query('BEGIN');
    for (const stmt of statements) await client.query(stmt);
    await client.query('COMMIT');
  } catch (err) {
    await client?.query('ROLLBACK').catch(() => undefined);
    throw toStoreError(err, schema);
  } finally {
    client?.release();
  }
}
