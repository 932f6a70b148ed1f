import type pg from 'pg';
import { toStoreError } from './pg-errors.js';
import { checkOut } from './postgres.js';
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

/** Whether the write fence holds, as {@link checkFence} found it. */
export interface FenceCheck {
  /** True when `appRole` can only read the schema. */
  inPlace: boolean;
  /** Why it does not hold, one line each (empty when it does). */
  problems: string[];
}

/**
 * Checks the write fence in the database's catalogs instead of assuming it: it holds when
 * `appRole` exists, is not a superuser (privileges do not bind one), neither owns the schema nor
 * inherits its owner's rights (`pg_has_role`), has no CREATE on the schema and no INSERT,
 * UPDATE, DELETE or TRUNCATE on any of its tables (`has_table_privilege`, which counts rights
 * granted to PUBLIC and to roles `appRole` is a member of). Read-only; any role may run it.
 * @throws CrrError CRR_STORE when the database fails
 */
export async function checkFence(pool: pg.Pool, roles: FenceRoles): Promise<FenceCheck> {
  const problems: string[] = [];
  const { schema, appRole } = roles;
  try {
    const role = await pool.query<{ rolsuper: boolean }>('SELECT rolsuper FROM pg_roles WHERE rolname = $1', [appRole]);
    if (role.rowCount === 0) return { inPlace: false, problems: [`the application role ${appRole} does not exist`] };
    if (role.rows[0]!.rolsuper) problems.push(`the application role ${appRole} is a superuser: no privilege binds it`);
    const owner = await pool.query<{ owner: string; inherits: boolean; create: boolean }>(
      `SELECT pg_get_userbyid(nspowner) AS owner, pg_has_role($2, nspowner, 'USAGE') AS inherits, has_schema_privilege($2, nspname, 'CREATE') AS create
         FROM pg_namespace WHERE nspname = $1`,
      [schema, appRole],
    );
    const o = owner.rows[0];
    if (!o) return { inPlace: false, problems: [`the schema ${schema} does not exist`] };
    if (o.inherits) problems.push(`the application role ${appRole} owns the schema ${schema} or has its owner's (${o.owner}) rights`);
    else if (o.create) problems.push(`the application role ${appRole} may CREATE in the schema ${schema}`);
    const writable = await pool.query<{ relname: string; rights: string }>(
      `SELECT c.relname, concat_ws(',',
                CASE WHEN has_table_privilege($2, c.oid, 'INSERT') THEN 'INSERT' END,
                CASE WHEN has_table_privilege($2, c.oid, 'UPDATE') THEN 'UPDATE' END,
                CASE WHEN has_table_privilege($2, c.oid, 'DELETE') THEN 'DELETE' END,
                CASE WHEN has_table_privilege($2, c.oid, 'TRUNCATE') THEN 'TRUNCATE' END) AS rights
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
        ORDER BY c.relname`,
      [schema, appRole],
    );
    for (const t of writable.rows) if (t.rights !== '') problems.push(`the application role ${appRole} may ${t.rights} on ${schema}.${t.relname}`);
  } catch (err) {
    throw toStoreError(err, schema);
  }
  return { inPlace: problems.length === 0, problems };
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
 * Must run as a role that owns the schema and is a member of `replayRole` (to set the default
 * privileges of tables it creates); it needs CREATEROLE only when a role is missing (a DBA can
 * create the roles once with docs/sql/write-fence-roles.sql, so the daemon runs without it).
 * A write by `appRole` then fails with SQLSTATE 42501 (insufficient_privilege).
 *
 * @param pool a pool connected as such a role (e.g. `PostgresStore.pool`)
 * @returns what {@link checkFence} finds afterwards: grants cannot bind a superuser or the
 *   schema's owner, so the fence is reported as in place only when the catalogs show it
 * @throws CrrError CRR_STORE when a statement fails (e.g. a role is missing and the caller may not create roles)
 */
export async function fence(pool: pg.Pool, roles: FenceRoles): Promise<FenceCheck> {
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
  return checkFence(pool, roles);
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
  let held: Awaited<ReturnType<typeof checkOut>> | undefined;
  let broken: unknown;
  try {
    held = await checkOut(pool);
    await held.client.query('BEGIN');
    for (const stmt of statements) await held.client.query(stmt);
    await held.client.query('COMMIT');
  } catch (err) {
    await held?.client.query('ROLLBACK').catch((rollbackErr: unknown) => {
      broken = rollbackErr; // the connection is unusable: do not return it to the pool
    });
    throw toStoreError(err, schema);
  } finally {
    held?.release(broken);
  }
}
