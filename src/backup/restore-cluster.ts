import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Role } from '../cluster/schema.js';
import { publishClusterState } from '../cluster/state.js';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { createCliLogger } from '../log/logger.js';
import { openStore } from '../store/open.js';
import { PostgresStore } from '../store/postgres.js';
import type { ClusterStateInput } from '../cluster/cluster-state.js';
import type { RestoreProgress, RestoreResult, Store, StoreLease } from '../store/store.js';
import { readManifest } from './catalog.js';
import { partKeyOf } from './part.js';
import type { Manifest } from './manifest.js';
import { openRepository } from './open-repository.js';
import { pinBackup, unpinAll, unpinBackup } from './pin.js';
import { restoreBackup, type RestoredBackup } from './restore.js';
import { resolveRestoreTarget, type RestoreTarget } from './targets.js';

// `crr restore` without its printing: the plan, and the restore of a backup into a cluster's
// store with the write fence, the cluster state it records and publishes (docs/architecture.md,
// "Backups, restore and reseed").

/** How long publishing the new cluster state to Kafka may take before crr restore gives up on it (it only warns), ms. */
const PUBLISH_TIMEOUT_MS = 15_000;

/** What `crr restore` is asked: `--cluster`, `--backup`, `--from`, `--as`. */
export interface ClusterRestoreRequest {
  /** The cluster whose store is restored. */
  cluster: string;
  /** The backup id. */
  backup: string;
  /** The cluster whose repository holds the backup (see {@link resolveRestoreTarget}). */
  from?: string;
  /** Restore beside the live state under this new schema. */
  as?: string;
}

/**
 * The cluster state a restore records: a replica becomes `REPLICATING` at the backup's epoch
 * (replay then refuses events of a higher epoch, and skips what the backup holds), naming the
 * backup (`backupId`); a primary keeps its state (`ACTIVE` when none) at the higher of its epoch
 * and the backup's (a primary's state names no backup: see ClusterStateInputSchema).
 */
export function restoredClusterState(role: Role, manifest: Manifest, current: ClusterStateInput | undefined): ClusterStateInput {
  if (role === 'replica') return { role: 'replica', state: 'REPLICATING', epoch: manifest.epoch, backupId: manifest.id };
  const state = current?.role === 'primary' ? current.state : 'ACTIVE';
  return { role: 'primary', state, epoch: Math.max(manifest.epoch, current?.epoch ?? 0) };
}

/** What {@link planClusterRestore} found: the restore that `crr restore --execute` would do. */
export interface ClusterRestorePlan {
  target: RestoreTarget;
  /** The repository's description (`/var/backups/crr`, `s3://bucket/prefix`). */
  repository: string;
  manifest: Manifest;
  /** The schema restored into: `as`, else the store's schema (whose live state is then replaced). */
  schema: string;
}

/**
 * The plan of a restore: resolves the target, opens the repository and reads the backup's
 * manifest; nothing else is opened. An encrypted backup whose key is not configured is refused
 * here already, so that the plan says so.
 * @throws CliUsageError see {@link resolveRestoreTarget}
 * @throws CrrError CRR_BACKUP_NOT_FOUND / CRR_BACKUP_INVALID / CRR_REPOSITORY (see readManifest;
 *   the key: partKeyOf in part.ts)
 */
export async function planClusterRestore(config: Config, request: ClusterRestoreRequest): Promise<ClusterRestorePlan> {
  const target = resolveRestoreTarget(config, request.cluster, request.from, request.as);
  const repo = await openRepository(target.backup, `clusters.${target.from}.backup`);
  try {
    const manifest = await readManifest(repo, request.backup);
    partKeyOf(manifest, repo.keys);
    return { target, repository: repo.description, manifest, schema: request.as ?? target.store.schema };
  } finally {
    repo.close();
  }
}

/** Callbacks of {@link restoreCluster}. */
export interface ClusterRestoreHooks {
  /** Aborts the restore (nothing changes unless the swap had begun); it rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called with the manifest once it is read, before anything is loaded. */
  onManifest?: (manifest: Manifest) => void;
  /** Progress of the load, verification and swap; phase `done` once the swap committed, before the state is published. */
  onProgress?: (p: RestoreProgress) => void;
}

/** What {@link restoreCluster} did. */
export interface ClusterRestore {
  target: RestoreTarget;
  /** The repository's description (`/var/backups/crr`, `s3://bucket/prefix`). */
  repository: string;
  manifest: Manifest;
  result: RestoreResult;
  /** The cluster's role: the one its store records, else the configured one. */
  role: Role;
  /** The cluster state recorded in the restored state (see {@link restoredClusterState}). */
  clusterState?: ClusterStateInput;
  /** The write fence re-applied (a PostgreSQL replica with `appRole`). */
  fence?: { appRole: string; replayRole: string };
  /** Why the new cluster state could not be published to the cluster's Kafka; absent when it was (or nothing was to publish: restored `as` another schema). */
  publishWarning?: string;
  /** Why the restore's pin (src/backup/pin.ts) could not be removed; absent when it was. */
  pinWarning?: string;
  /** From the start of the load to the end of publishing, ms. */
  durationMs: number;
}

/**
 * Restores a backup into a cluster's store: resolves the target ({@link resolveRestoreTarget}),
 * opens the repository and the store, loads the backup into a staging schema, verifies it and
 * swaps it in atomically ({@link restoreBackup}; with `as`, beside the live state instead),
 * re-applies the write fence of a PostgreSQL replica with `appRole` (replay role: `replayRole`,
 * else `<schema>_replay`), records the cluster state ({@link restoredClusterState}) and, when
 * the live state was replaced, publishes that state to the cluster's Kafka (at most 15 s; a
 * failure is only a warning: `crr run` publishes it when it starts). Closes what it opened.
 *
 * The backup is pinned for the cluster while it is restored (`<id>/pins/<cluster>.json`,
 * src/backup/pin.ts), so `crr backup prune` keeps it. Once the live state is replaced, every
 * pin of the cluster in that repository is removed: its state now refers to this backup only,
 * so a pin an interrupted reseed left is stale. Otherwise (restored `as` another schema, or
 * failed) only this restore's pin is removed, and not when the cluster's recorded state is a
 * reseed that will resume with this very backup. Failing to remove a pin is only a warning.
 *
 * @throws CliUsageError see {@link resolveRestoreTarget}
 * @throws CrrError CRR_BACKUP_NOT_FOUND, CRR_BACKUP_INVALID, CRR_RESTORE_REFUSED,
 *   CRR_CONFIG_INVALID, CRR_STORE, CRR_STORE_LOCKED, CRR_REPOSITORY (see restoreBackup, openStore);
 *   the signal's reason when aborted. The live state is unchanged unless the swap had begun.
 */
export async function restoreCluster(config: Config, request: ClusterRestoreRequest, hooks: ClusterRestoreHooks = {}): Promise<ClusterRestore> {
  const target = resolveRestoreTarget(config, request.cluster, request.from, request.as);
  const repo = await openRepository(target.backup, `clusters.${target.from}.backup`);
  let store: Store | undefined;
  let lease: StoreLease | undefined;
  try {
    store = openStore(target.store);
    // one reseed or restore at a time per store: a reseed drops the staging schemas of restores it takes for abandoned
    const held = await store.tryLease('reseed', `crr restore pid ${process.pid} on ${hostname()}`);
    if (!('release' in held)) {
      throw new CrrError('CRR_RESEED_IN_PROGRESS', `a reseed or restore of ${request.cluster} is running already, by ${held.heldBy}; one at a time per store`, {
        context: { cluster: request.cluster, heldBy: held.heldBy },
      });
    }
    lease = held;
    const current = await store.clusterState().catch(() => undefined);
    const role: Role = current?.role ?? target.role;
    const cfg = target.store;
    const fenceRoles =
      role === 'replica' && store instanceof PostgresStore && cfg.appRole
        ? { appRole: cfg.appRole, replayRole: cfg.replayRole ?? `${cfg.schema}_replay` }
        : undefined;
    let state: ClusterStateInput | undefined;
    const t0 = Date.now();
    await pinBackup(repo, request.backup, { cluster: request.cluster, purpose: 'restore', holder: `crr restore pid ${process.pid} on ${hostname()}` });
    let restored: RestoredBackup;
    try {
      restored = await restoreBackup(store, repo, request.backup, {
        ...(request.as === undefined ? {} : { as: request.as }),
        ...(fenceRoles ? { fence: fenceRoles } : {}),
        ...(hooks.signal ? { signal: hooks.signal } : {}),
        clusterState: (m) => (state = restoredClusterState(role, m, current)),
        ...(hooks.onManifest ? { onManifest: hooks.onManifest } : {}),
        ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
      });
    } catch (err) {
      const resumes = current?.state === 'RESEEDING' && current.backupId === request.backup;
      if (!resumes) await unpinBackup(repo, request.backup, request.cluster).catch(() => undefined);
      throw err;
    }
    const { manifest, result } = restored;
    let pinWarning: string | undefined;
    try {
      if (result.swapped) await unpinAll(repo, request.cluster);
      else await unpinBackup(repo, request.backup, request.cluster);
    } catch (err) {
      pinWarning = `could not remove the pin of ${request.cluster} on backup ${request.backup} (${describeError(err)}); the next reseed of ${request.cluster} removes it`;
    }
    let publishWarning: string | undefined;
    if (result.swapped && state) publishWarning = await publish(config, request.cluster, state);
    return {
      target,
      repository: repo.description,
      manifest,
      result,
      role,
      ...(state === undefined ? {} : { clusterState: state }),
      ...(fenceRoles === undefined ? {} : { fence: fenceRoles }),
      ...(publishWarning === undefined ? {} : { publishWarning }),
      ...(pinWarning === undefined ? {} : { pinWarning }),
      durationMs: Date.now() - t0,
    };
  } finally {
    repo.close();
    await lease?.release().catch(() => undefined);
    await store?.close().catch(() => undefined);
  }
}

/**
 * Publishes the restored cluster state to the cluster's Kafka.
 * @returns undefined when published, else a warning (Kafka unreachable: the store's record stands)
 */
async function publish(config: Config, alias: string, state: ClusterStateInput): Promise<string | undefined> {
  const c = config.clusters[alias]!;
  const kafka = createKafka(
    alias,
    { ...c, connectionTimeoutMs: Math.min(c.connectionTimeoutMs, 3000) },
    `restore-${randomUUID().slice(0, 8)}`,
    createCliLogger('fatal'),
    'fatal',
  );
  const admin = kafka.admin();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      (async () => {
        await admin.connect();
        await publishClusterState(kafka, admin, alias, state);
      })(),
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${PUBLISH_TIMEOUT_MS} ms`)), PUBLISH_TIMEOUT_MS))),
    ]);
    return undefined;
  } catch (err) {
    return `could not publish the cluster state to the Kafka of ${alias} (${describeError(err)}); crr run publishes it when it starts`;
  } finally {
    clearTimeout(timer);
    await admin.disconnect().catch(() => undefined);
  }
}
