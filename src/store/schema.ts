import { z } from 'zod';

/** A PostgreSQL identifier crr creates or names without quoting surprises: lower case, digits, `_`. */
export const SQL_IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;
const identifier = z.string().regex(SQL_IDENTIFIER, 'expected a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)');

/**
 * The store part of the config: where a cluster's state materialized from its change log lives.
 * Not yet wired into the root config schema.
 *
 * - `type`: `pglite` (default; PostgreSQL in WebAssembly, in process) or `postgres` (a server).
 * - `connectionString`: `postgres` only, required: `postgres://user@host:5432/db`. Put a password
 *   in an env override (`CRR__store__connectionString`), not in the file.
 * - `dataDir`: `pglite` only: directory of the database; absent = in memory (lost on exit).
 * - `schema`: PostgreSQL schema holding crr's tables. Default `crr`.
 * - `appRole` / `replayRole`: `postgres` only: the login roles of the write fence (see
 *   src/store/fence.ts): applications read as `appRole`; replay writes as `replayRole`.
 * - `ssl`: `postgres` only: TLS to the server, libpq's `sslmode` semantics (PostgreSQL docs,
 *   "SSL Support"): `mode` `disable`, `require` (encrypted, the server not verified),
 *   `verify-ca` (its certificate chains to `caFile`) or `verify-full` (default: also its name);
 *   `caFile` (PEM; absent = the system's CAs), `certFile`/`keyFile` (a client certificate, for
 *   `cert` authentication). Not together with `sslmode` in the connection string.
 */
export const StoreSchema = z
  .strictObject({
    type: z.enum(['postgres', 'pglite']).default('pglite'),
    connectionString: z.string().min(1).optional(),
    dataDir: z.string().min(1).optional(),
    schema: identifier.default('crr'),
    appRole: identifier.optional(),
    replayRole: identifier.optional(),
    ssl: z
      .strictObject({
        mode: z.enum(['disable', 'require', 'verify-ca', 'verify-full']).default('verify-full'),
        caFile: z.string().min(1).optional(),
        certFile: z.string().min(1).optional(),
        keyFile: z.string().min(1).optional(),
      })
      .optional(),
  })
  .superRefine((s, ctx) => {
    if (s.type === 'postgres' && s.connectionString === undefined) {
      ctx.addIssue({ code: 'custom', path: ['connectionString'], message: 'required when type is postgres' });
    }
    if (s.type === 'pglite') {
      for (const key of ['connectionString', 'appRole', 'replayRole'] as const) {
        if (s[key] !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'only allowed when type is postgres' });
      }
    }
    if (s.ssl !== undefined) {
      if (s.type !== 'postgres') ctx.addIssue({ code: 'custom', path: ['ssl'], message: 'only allowed when type is postgres' });
      if ((s.ssl.certFile === undefined) !== (s.ssl.keyFile === undefined))
        ctx.addIssue({ code: 'custom', path: ['ssl', s.ssl.certFile === undefined ? 'certFile' : 'keyFile'], message: 'certFile and keyFile go together' });
      if (/[?&](sslmode|ssl|sslrootcert|sslcert|sslkey)=/.test(s.connectionString ?? ''))
        ctx.addIssue({ code: 'custom', path: ['ssl'], message: 'give TLS either here or as sslmode/sslrootcert/sslcert/sslkey in connectionString, not both' });
    }
    if (s.appRole !== undefined && s.appRole === s.replayRole) {
      ctx.addIssue({ code: 'custom', path: ['replayRole'], message: 'must differ from appRole' });
    }
  });

/** The validated store config. */
export type StoreConfig = z.infer<typeof StoreSchema>;
