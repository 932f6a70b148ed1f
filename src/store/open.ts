import { CrrError } from '../errors.js';
import { PgliteStore } from './pglite.js';
import { PostgresStore } from './postgres.js';
import type { StoreConfig } from './schema.js';
import type { Store } from './store.js';

/**
 * Opens the store a config names (not yet migrated: call `migrate()`). A PGlite store with a
 * `dataDir` takes that directory's lock file at once (see {@link PgliteStore}); `close()` releases it.
 * @throws CrrError CRR_CONFIG_INVALID when `type` is `postgres` without a `connectionString`
 * @throws CrrError CRR_STORE_LOCKED when `type` is `pglite` and another live process on this host
 *   (or another open store of this process) uses the same `dataDir`
 */
export function openStore(config: StoreConfig): Store {
  if (config.type === 'pglite') return new PgliteStore({ schema: config.schema, ...(config.dataDir ? { dataDir: config.dataDir } : {}) });
  if (!config.connectionString) throw new CrrError('CRR_CONFIG_INVALID', 'store.connectionString: required when type is postgres');
  return new PostgresStore({ connectionString: config.connectionString, schema: config.schema, ...(config.ssl ? { ssl: config.ssl } : {}) });
}
