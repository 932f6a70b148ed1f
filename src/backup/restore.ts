import { CrrError } from '../errors.js';
import { fence } from '../store/fence.js';
import { PostgresStore } from '../store/postgres.js';
import type { ClusterStateInput } from '../cluster/cluster-state.js';
import type { RestoreProgress, RestoreResult, Store } from '../store/store.js';
import { readBackup, readManifest } from './catalog.js';
import type { Manifest } from './manifest.js';
import { partKeyOf } from './part.js';
import type { BackupRepository } from './repository.js';

/** Options of {@link restoreBackup}. */
export interface RestoreBackupOptions {
  /**
   * Restore beside the live state under this schema (must not exist; like InfluxDB's `-newdb`)
   * instead of replacing the live state.
   */
  as?: string;
  /**
   * The cluster state to record in the restored state, or a function of the manifest giving
   * it. For a replica restoring the primary's backup: `{ role: 'replica', state:
   * 'REPLICATING', epoch: manifest.epoch }`. Absent: none is recorded.
   */
  clusterState?: ClusterStateInput | ((manifest: Manifest) => ClusterStateInput);
  /**
   * The write fence to apply to the restored schema (PostgreSQL stores only), before the swap:
   * grants follow the schema through its rename, so applications keep reading and never gain
   * write access. See src/store/fence.ts.
   */
  fence?: { appRole: string; replayRole: string };
  /** Called with the manifest once it is read, before anything is loaded. */
  onManifest?: (manifest: Manifest) => void;
  onProgress?: (p: RestoreProgress) => void;
  /** Rows per batch read from the backup and per INSERT. Default 10,000. */
  batchRows?: number;
  /** Aborts the restore (nothing changes); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** See RestoreOptions in src/store/store.ts: how long one attempt of the swap waits for readers of the live tables, ms (default 5000), and how many attempts (default 12). */
  swapLockTimeoutMs?: number;
  swapAttempts?: number;
}

/** What {@link restoreBackup} did: the manifest restored and the store's {@link RestoreResult}. */
export interface RestoredBackup {
  manifest: Manifest;
  result: RestoreResult;
}

/**
 * Restores backup `id` from `repo` into `store` (docs/architecture.md, "Backups, restore and reseed"):
 * reads and validates the manifest (format version, totals), then streams every part through
 * {@link readBackup} (each part's SHA-256, size, gzip and record count checked as it is read)
 * into a staging schema with {@link Store.restore}, which verifies the counts and swaps the
 * staging schema in atomically (or, with `as`, renames it to that schema beside the live one).
 * The restored positions are the manifest's: on a replica they are upstream positions (the
 * primary's own topic names), so replay skips by upstream offset everything the backup holds.
 * Readers keep the old state until the swap; on any failure the live state is untouched and
 * the staging schema is dropped.
 *
 * @returns the manifest and what the store did
 * @throws CrrError CRR_BACKUP_NOT_FOUND when the repository has no such backup
 * @throws CrrError CRR_BACKUP_INVALID naming the manifest (missing, invalid, unknown format
 *   version, newer store schema, HMAC missing or wrong under a configured key), the key (an
 *   encrypted backup whose key id is not the configured `backup.encryption` key's: problem `key`,
 *   naming the backup and the key id) or the part (missing, corrupt or altered, another record count)
 * @throws CrrError CRR_RESTORE_REFUSED when `as` names an existing schema
 * @throws CrrError CRR_CONFIG_INVALID when `as` is not a lower-case SQL identifier, or `fence`
 *   is given for a store that is not PostgreSQL
 * @throws CrrError CRR_REPOSITORY / CRR_STORE when the repository or the store fails
 */
export async function restoreBackup(store: Store, repo: BackupRepository, id: string, options: RestoreBackupOptions = {}): Promise<RestoredBackup> {
  const manifest = await readManifest(repo, id);
  // an encrypted backup without its key is refused before anything is loaded
  partKeyOf(manifest, repo.keys);
  options.onManifest?.(manifest);
  const fenceRoles = options.fence;
  if (fenceRoles && !(store instanceof PostgresStore)) {
    throw new CrrError('CRR_CONFIG_INVALID', 'a write fence (appRole) can only be applied to a PostgreSQL store');
  }
  const clusterState = typeof options.clusterState === 'function' ? options.clusterState(manifest) : options.clusterState;
  const result = await store.restore(
    manifest,
    readBackup(repo, id, { manifest, ...(options.batchRows === undefined ? {} : { batchRows: options.batchRows }) }),
    {
      ...(options.as === undefined ? {} : { targetSchema: options.as }),
      ...(clusterState === undefined ? {} : { clusterState }),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.swapLockTimeoutMs === undefined ? {} : { swapLockTimeoutMs: options.swapLockTimeoutMs }),
      ...(options.swapAttempts === undefined ? {} : { swapAttempts: options.swapAttempts }),
      ...(fenceRoles
        ? {
            // the fence is checked again by the daemon's replay once the swapped store is in use
            beforeSwap: async (staging: string) => {
              await fence((store as PostgresStore).pool, { schema: staging, appRole: fenceRoles.appRole, replayRole: fenceRoles.replayRole });
            },
          }
        : {}),
    },
  );
  return { manifest, result };
}
