import { randomBytes } from 'node:crypto';
import { CrrError, describeError } from '../errors.js';
import { applyBatch } from './apply.js';
import { migrateSchema, SCHEMA_VERSION } from './migrations.js';
import { runSql } from './pg-errors.js';
import { quoteIdent, type SqlClient, type SqlDriver } from './sql-client.js';
import { setClusterState } from './state.js';
import type { RestoreBatch, RestoreOptions, RestorePlan, RestoreResult } from './store.js';

// Restoring a backup into a store (Store.restore): load into a staging schema, verify it against
// the plan, swap it in atomically; and dropping what killed restores left (Store.dropAbandonedRestores).

/** How long one attempt of a restore's swap waits for a lock (readers of the live tables) by default, ms. */
export const DEFAULT_SWAP_LOCK_TIMEOUT_MS = 5000;
/** Attempts of a restore's swap by default (see {@link DEFAULT_SWAP_LOCK_TIMEOUT_MS}). */
export const DEFAULT_SWAP_ATTEMPTS = 12;

/**
 * Restores a backup into the store of schema `schema` (Store.restore; see store.ts for the
 * contract): creates the staging schema `<home>_restore_<8 hex>` (home: `options.targetSchema`,
 * else `schema`; shortened to 63 characters), loads the plan's catalog, positions, cluster state
 * and `rows` into it part by part, checks each part's record count and the staging schema's
 * totals against the plan, then in ONE transaction renames it to `targetSchema`, or renames the
 * live schema aside (`<schema>_old_<8 hex>`), renames the staging schema to `schema` and drops
 * the old one. A swap waiting longer than `swapLockTimeoutMs` (default
 * {@link DEFAULT_SWAP_LOCK_TIMEOUT_MS}) for readers is tried again, `swapAttempts` times in all
 * (default {@link DEFAULT_SWAP_ATTEMPTS}). On any failure the staging schema is dropped and the
 * live state is untouched.
 * @returns the schema restored into, the staging and dropped schemas, and the rows loaded
 * @throws CrrError CRR_BACKUP_INVALID naming the part (or `manifest.json`) and the problem
 *   (`manifest`: a newer store schema version; `unexpected`, `corrupt`, `count`, `missing`)
 * @throws CrrError CRR_RESTORE_REFUSED when `targetSchema` exists already
 * @throws CrrError CRR_CONFIG_INVALID when `targetSchema` is not a lower-case SQL identifier
 * @throws CrrError CRR_STORE when the staging schema exists already (retriable), the swap waited
 *   too often (retriable), or the database fails; the signal's reason when aborted
 */
export async function restoreSnapshot(
  db: SqlDriver,
  schema: string,
  plan: RestorePlan,
  rows: AsyncIterable<RestoreBatch>,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const s = quoteIdent(schema);
  const backupId = plan.id;
  const invalid = (part: string, problem: string, message: string): CrrError =>
    new CrrError('CRR_BACKUP_INVALID', `backup ${backupId}: ${message}`, { context: { backupId, part, problem } });
  if (plan.storeSchemaVersion > SCHEMA_VERSION) {
    throw invalid(
      'manifest.json',
      'manifest',
      `was written by a store of schema version ${plan.storeSchemaVersion}, newer than this crr's (${SCHEMA_VERSION}); restore it with the crr release that wrote it`,
    );
  }
  const target = options.targetSchema;
  if (target !== undefined) quoteIdent(target);
  const home = target ?? schema;
  const short = `${/([0-9a-f]{4})$/.exec(backupId)?.[1] ?? '0000'}${randomBytes(2).toString('hex')}`;
  const staging = derivedSchema(home, `_restore_${short}`);
  const old = derivedSchema(schema, `_old_${short}`);
  if (await runSql(schema, () => schemaExists(db, staging))) {
    throw new CrrError('CRR_STORE', `staging schema ${staging} exists already (another restore of backup ${backupId} at the same time?)`, {
      retriable: true,
      context: { schema: staging },
    });
  }
  if (target !== undefined && (await runSql(schema, () => schemaExists(db, target)))) {
    throw new CrrError('CRR_RESTORE_REFUSED', `cannot restore backup ${backupId} as schema ${target}: it exists already (pick another name, or drop it)`, {
      context: { backupId, schema: target },
    });
  }
  const ss = quoteIdent(staging);
  const progress = { phase: 'load' as 'load' | 'verify' | 'swap' | 'done', vertices: 0, edges: 0, parts: 0 };
  const report = (): void => options.onProgress?.({ ...progress });
  let created = false;
  try {
    created = true;
    await migrateSchema(db, staging);
    if (plan.catalog.length > 0) {
      await runSql(staging, () =>
        db.query(
          `INSERT INTO ${ss}.catalog (kind, name, body) SELECT r.kind, r.name, r.body FROM jsonb_to_recordset($1::text::jsonb) AS r(kind text, name text, body jsonb)`,
          [JSON.stringify(plan.catalog.map((c) => ({ kind: c.kind, name: c.name, body: c.body ?? null })))],
        ),
      );
    }
    if (plan.positions.length > 0) await applyBatch(db, staging, [], plan.positions);
    if (options.clusterState) await setClusterState(db, staging, options.clusterState);

    // rows, part by part in the plan's order
    let partIndex = -1;
    let inPart = 0;
    const endPart = (): void => {
      if (partIndex < 0) return;
      const p = plan.parts[partIndex]!;
      if (inPart !== p.records) throw invalid(p.name, 'count', `part ${p.name} gave ${inPart} records, the manifest says ${p.records}`);
      progress.parts++;
    };
    for await (const batch of rows) {
      options.signal?.throwIfAborted();
      if (partIndex < 0 || batch.part !== plan.parts[partIndex]!.name) {
        endPart();
        partIndex++;
        inPart = 0;
        const p = plan.parts[partIndex];
        if (!p || p.name !== batch.part) {
          throw invalid(
            batch.part,
            'unexpected',
            `rows of part ${batch.part} arrived ${p ? `where the manifest has part ${p.name}` : 'after the last part of the manifest'}`,
          );
        }
        if (p.kind !== batch.kind) throw invalid(p.name, 'corrupt', `part ${p.name} is a ${p.kind} part, but ${batch.kind} rows arrived for it`);
      }
      inPart += batch.rows.length;
      if (batch.rows.length === 0) continue;
      if (batch.kind === 'vertices') {
        await runSql(staging, () =>
          db.query(
            `INSERT INTO ${ss}.vertices (type, id, attributes) SELECT r.type, r.id, r.attributes FROM jsonb_to_recordset($1::text::jsonb) AS r(type text, id text, attributes jsonb)`,
            [JSON.stringify(batch.rows)],
          ),
        );
        progress.vertices += batch.rows.length;
      } else {
        await runSql(staging, () =>
          db.query(
            `INSERT INTO ${ss}.edges (type, from_type, from_id, to_type, to_id, attributes)
             SELECT r.type, r.from_type, r.from_id, r.to_type, r.to_id, r.attributes
             FROM jsonb_to_recordset($1::text::jsonb) AS r(type text, from_type text, from_id text, to_type text, to_id text, attributes jsonb)`,
            [
              JSON.stringify(
                batch.rows.map((e) => ({
                  type: e.type,
                  from_type: e.from.type,
                  from_id: e.from.id,
                  to_type: e.to.type,
                  to_id: e.to.id,
                  attributes: e.attributes,
                })),
              ),
            ],
          ),
        );
        progress.edges += batch.rows.length;
      }
      report();
    }
    endPart();
    options.signal?.throwIfAborted();
    const missing = plan.parts[partIndex + 1];
    if (missing)
      throw invalid(missing.name, 'missing', `no rows of part ${missing.name} arrived (nor of the ${plan.parts.length - partIndex - 2} parts after it)`);

    // verify the staging schema against the plan
    progress.phase = 'verify';
    report();
    const sum = (kind: 'vertices' | 'edges'): number => plan.parts.filter((p) => p.kind === kind).reduce((n, p) => n + p.records, 0);
    const positionRows = new Set(plan.positions.map((p) => `${p.topic}\u0000${p.partition}`)).size;
    const { rows: counted } = await runSql(staging, () =>
      db.query<{ v: string | number; e: string | number; c: string | number; p: string | number }>(
        `SELECT (SELECT count(*) FROM ${ss}.vertices) AS v, (SELECT count(*) FROM ${ss}.edges) AS e, (SELECT count(*) FROM ${ss}.catalog) AS c, (SELECT count(*) FROM ${ss}.positions) AS p`,
      ),
    );
    const got = { vertices: Number(counted[0]!.v), edges: Number(counted[0]!.e), catalog: Number(counted[0]!.c), positions: Number(counted[0]!.p) };
    const want = { vertices: sum('vertices'), edges: sum('edges'), catalog: plan.catalog.length, positions: positionRows };
    for (const k of Object.keys(want) as Array<keyof typeof want>) {
      if (got[k] !== want[k]) throw invalid('manifest.json', 'count', `restored ${got[k]} ${k} into ${staging}, the manifest says ${want[k]}`);
    }

    await options.beforeSwap?.(staging);
    options.signal?.throwIfAborted();

    // the swap: one transaction
    progress.phase = 'swap';
    report();
    let droppedSchema: string | undefined;
    // Dropping the old tables waits for readers still in them, and new readers queue behind
    // that wait: so each attempt waits at most lockTimeoutMs, and the swap is tried again.
    const lockTimeoutMs = options.swapLockTimeoutMs ?? DEFAULT_SWAP_LOCK_TIMEOUT_MS;
    const attempts = options.swapAttempts ?? DEFAULT_SWAP_ATTEMPTS;
    for (let attempt = 1; ; attempt++) {
      try {
        droppedSchema = undefined;
        await runSql(schema, () =>
          db.transaction(async (tx) => {
            await tx.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.floor(lockTimeoutMs))}`);
            if (target !== undefined) {
              await tx.query(`ALTER SCHEMA ${ss} RENAME TO ${quoteIdent(target)}`);
              return;
            }
            if (await schemaExists(tx, schema)) {
              await tx.query(`ALTER SCHEMA ${s} RENAME TO ${quoteIdent(old)}`);
              droppedSchema = old;
            }
            await tx.query(`ALTER SCHEMA ${ss} RENAME TO ${s}`);
            if (droppedSchema !== undefined) await tx.query(`DROP SCHEMA ${quoteIdent(droppedSchema)} CASCADE`);
          }),
        );
        break;
      } catch (err) {
        const lockTimeout = err instanceof CrrError && err.sqlState === '55P03';
        if (!lockTimeout || attempt >= attempts) {
          if (lockTimeout) {
            throw new CrrError(
              'CRR_STORE',
              `restore of backup ${backupId}: the swap into schema ${home} waited ${attempts} times ${lockTimeoutMs} ms for readers of the live tables to finish; nothing was changed`,
              {
                cause: err,
                retriable: true,
                context: { schema: home },
              },
            );
          }
          throw err;
        }
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
    created = false;
    progress.phase = 'done';
    report();
    return {
      schema: home,
      stagingSchema: staging,
      swapped: target === undefined,
      ...(droppedSchema === undefined ? {} : { droppedSchema }),
      ...got,
    };
  } catch (err) {
    if (created) {
      try {
        await db.query(`DROP SCHEMA IF EXISTS ${ss} CASCADE`);
      } catch (dropErr) {
        if (err instanceof CrrError) {
          err.message += `; the staging schema ${staging} could not be dropped (${describeError(dropErr)}): drop it by hand`;
        }
      }
    }
    throw err;
  }
}

/** Whether a schema of that name exists (driver errors are not wrapped). */
async function schemaExists(client: SqlClient, name: string): Promise<boolean> {
  const { rows } = await client.query(`SELECT 1 FROM pg_namespace WHERE nspname = $1`, [name]);
  return rows.length > 0;
}

/**
 * Drops the staging schemas of restores into `schema` that were killed during their load
 * (Store.dropAbandonedRestores): every `<schema>_restore_<8 hex>` (the prefix shortened as
 * {@link restoreSnapshot} shortens it). Run it only when no restore into `schema` is running.
 * @returns the names of the schemas dropped
 * @throws CrrError CRR_STORE when the database fails
 */
export async function dropAbandonedRestores(db: SqlDriver, schema: string): Promise<string[]> {
  const prefix = derivedSchema(schema, `_restore_${'0'.repeat(8)}`).slice(0, -8);
  return runSql(schema, async () => {
    const { rows } = await db.query<{ n: string }>(`SELECT nspname AS n FROM pg_namespace WHERE left(nspname, $1) = $2 AND length(nspname) = $3`, [
      prefix.length,
      prefix,
      prefix.length + 8,
    ]);
    const dropped: string[] = [];
    for (const { n } of rows) {
      if (!/^[0-9a-f]{8}$/.test(n.slice(prefix.length))) continue;
      await db.query(`DROP SCHEMA IF EXISTS ${quoteIdent(n)} CASCADE`);
      dropped.push(n);
    }
    return dropped;
  });
}

/** `base` + `suffix` as a schema name of at most 63 characters (`base` shortened when needed). */
function derivedSchema(base: string, suffix: string): string {
  return `${base.slice(0, 63 - suffix.length)}${suffix}`;
}
