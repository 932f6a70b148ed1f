import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import type { CrrError } from '../../src/errors.js';
import { checkFence } from '../../src/store/fence.js';
import { toStoreError } from '../../src/store/pg-errors.js';
import { PostgresStore } from '../../src/store/postgres.js';
import type { SqlDriver } from '../../src/store/sql-client.js';
import { PG_URL, uniq, waitFor } from '../support/helpers.js';

// Found by the soak (SOAK_FAULTS=net-blackhole-pg): node-postgres emits 'error' on a client
// checked out of the pool when its connection ends while no query runs on it (a cut network, a
// server that ends an idle-in-transaction session). Without a listener that event ends the process.
const killer = new pg.Pool({ connectionString: PG_URL, max: 1 });
const schema = `crr_t_${uniq().replace(/-/g, '_').slice(0, 20)}_loss`;
afterAll(async () => {
  await killer.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await killer.end();
});

describe('a PostgreSQL connection lost in the middle of a transaction', () => {
  it('fails that transaction (mapped to a retriable CRR_STORE), and the process and the pool go on', async () => {
    const store = new PostgresStore({ connectionString: PG_URL, schema });
    try {
      await store.migrate();
      const db = (store as unknown as { db: SqlDriver }).db;
      const failed = await db
        .transaction(async (tx) => {
          const { rows } = await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await killer.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);
          // idle in the transaction while the server ends the session: the client learns it with no query running
          await waitFor(
            'the session to be gone',
            async () => (await killer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [rows[0]!.pid])).rowCount === 0,
            10_000,
            50,
          );
          await new Promise((r) => setTimeout(r, 200)); // the socket's end reaches the client a moment later
          await tx.query('SELECT 1');
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      // the store's callers map it (toStoreError): a lost connection is retried
      expect(failed).toBeInstanceOf(Error);
      const mapped = toStoreError(failed, schema) as CrrError;
      expect(mapped.code).toBe('CRR_STORE');
      expect(mapped.retriable).toBe(true);
      // the broken client was not returned to the pool: the store works on
      await store.applyBatch([], [{ topic: 't', partition: 0, nextOffset: 1 }]);
      expect(await store.positions()).toEqual([{ topic: 't', partition: 0, nextOffset: 1 }]);
      expect((await checkFence(store.pool, { schema, appRole: 'nobody_here', replayRole: 'nobody_either' })).inPlace).toBe(false);
    } finally {
      await store.close();
    }
  });
});
