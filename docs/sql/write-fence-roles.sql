-- The roles of a replica store's write fence, created once by a DBA, so that crr's daemon runs
-- without CREATEROLE (src/store/fence.ts: the daemon then only grants and revokes).
--
--   psql "postgres://dba@db.example:5432/crr" \
--     -v app_role=app -v replay_role=crr_replay -v daemon_role=crr \
--     -f docs/sql/write-fence-roles.sql
--
-- app_role     the applications' login role (clusters.<alias>.store.appRole): fenced to SELECT on a replica
-- replay_role  clusters.<alias>.store.replayRole (default <schema>_replay): may always write the schema
-- daemon_role  the role in crr's connectionString: creates and owns the schema, applies the fence;
--              neither a superuser nor CREATEROLE. It needs CREATE on the database (for the schema)
--              and membership in replay_role.
-- Give each a password (ALTER ROLE ... PASSWORD) or certificate authentication afterwards.
-- Idempotent: roles that exist are left as they are.
\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I LOGIN', :'app_role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_role') \gexec
SELECT format('CREATE ROLE %I LOGIN', :'replay_role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'replay_role') \gexec
SELECT format('CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEROLE NOCREATEDB', :'daemon_role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'daemon_role') \gexec
SELECT format('GRANT CREATE ON DATABASE %I TO %I', current_database(), :'daemon_role') \gexec
-- the fence sets the default privileges of tables replay_role creates (ALTER DEFAULT PRIVILEGES
-- FOR ROLE), which PostgreSQL allows only to a member of that role
SELECT format('GRANT %I TO %I', :'replay_role', :'daemon_role') \gexec
