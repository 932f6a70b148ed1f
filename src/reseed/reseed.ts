import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Manifest } from '../backup/manifest.js';
import { readManifest } from '../backup/catalog.js';
import { openRepository } from '../backup/open-repository.js';
import type { BackupRepository } from '../backup/repository.js';
import { pinBackup, unpinAll, unpinBackup } from '../backup/pin.js';
import { restoreBackup } from '../backup/restore.js';
import { createBackup } from '../backup/write.js';
import type { ReplaySource } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { openStore } from '../store/open.js';
import { PostgresStore } from '../store/postgres.js';
import type { Store } from '../store/store.js';
import { reseeded, reseeding, type ClusterStateInput } from '../cluster/cluster-state.js';
import { recordClusterState } from '../cluster/state.js';
import { releaseBackup, requestBackup } from './backup-request.js';

/** The steps of a reseed, in order (docs/glossary.md, "reseed"). */
export type ReseedStep = 'backup' | 'restore' | 'resume';

/** Progress of a running reseed, for /status and logs. */
export interface ReseedProgress {
  step: ReseedStep;
  /** Backup id, once the backup is taken. */
  backupId?: string;
  /** Records written (backup) or loaded (restore) so far, and the total when known. */
  records: number;
  totalRecords?: number;
  /**
   * Why the backup step waits for the primary (`backupSource: primary-daemon`: its daemon does not
   * answer, its Kafka cannot be reached); absent while it does not wait.
   */
  waitingFor?: string;
}

/**
 * Who takes a reseed's backup of `primaryAlias` under `config` (src/reseed/schema.ts
 * `reseed.backupSource`): `auto` is `primary-store` when the config has the primary's store,
 * else `primary-daemon`.
 */
export function backupSourceOf(config: Config, primaryAlias: string): 'primary-daemon' | 'primary-store' {
  const source = config.reseed.backupSource;
  if (source !== 'auto') return source;
  return config.clusters[primaryAlias]?.store ? 'primary-store' : 'primary-daemon';
}

/**
 * Whether this config can get a fresh backup of `primaryAlias` for a reseed: the primary's
 * backup repository, and its store when {@link backupSourceOf} is `primary-store`. A replica's
 * daemon reseeds by itself (mode `auto`) only then; {@link reseedReplica} refuses otherwise.
 */
export function canTakeFreshBackup(config: Config, primaryAlias: string): boolean {
  const primary = config.clusters[primaryAlias];
  return Boolean(primary?.backup && (primary.store || backupSourceOf(config, primaryAlias) === 'primary-daemon'));
}

/** What a completed reseed did. */
export interface ReseedResult {
  backupId: string;
  epoch: number;
  records: number;
  backupBytes: number;
  /** Whether the backup step was skipped because a previous attempt had finished it. */
  resumed: boolean;
  /**
   * The replica's cluster state the reseed recorded (`REPLICATING` at the backup's epoch, with
   * `backupId`), or, when skipped, the state found: what the caller publishes.
   */
  state: ClusterStateInput;
  /**
   * True when nothing was done because, once the lease was held, the replica was no longer
   * OUTDATED or RESEEDING (someone else reseeded it meanwhile; only with `onlyIfOutdated`).
   */
  skipped?: boolean;
}

/**
 * Reseeds a replica: a fresh backup of the primary's store into the primary's backup
 * repository, then a restore of it into the replica's store (staging schema, checks, atomic
 * swap, write fence kept), which records the replica `REPLICATING` at the backup's epoch with
 * the backup's positions. Replay then resumes from those positions (skipping by upstream offset
 * what the backup holds). The caller stops the replica's replay first and starts it again after.
 *
 * Each step is recorded in the replica's cluster state: `RESEEDING` (reason "… taking a backup
 * of P"), then, once the backup is taken, `RESEEDING` with `backupId` = that backup (reason "…
 * restoring backup ID"), then `REPLICATING` with the same `backupId`. A reseed killed during the
 * restore resumes with the backup its state's `backupId` names (never one named in the free-text
 * reason); one killed during the backup takes a new one (the incomplete backup is left for
 * `crr backup prune`). A resumed backup that is no longer usable (deleted from the repository,
 * its manifest unreadable, or, found by the restore, a part missing or corrupt) is logged at
 * `warn`, naming it (and the part), and a fresh backup is taken in the same run. When the
 * backup the run took itself cannot be restored, the reseed records `RESEEDING` without
 * `backupId` and fails retriably, so that the next attempt takes a fresh backup: never the
 * same unusable backup again and again.
 *
 * The backup in use is pinned in the primary's repository (`<id>/pins/<replica>.json`,
 * src/backup/pin.ts) before it is restored, so `crr backup prune` and `crr backup delete`
 * (without `--force`) keep it; once the reseed completes, every pin of the replica in that
 * repository is removed (its own and any a killed or abandoned attempt left). A failure to
 * remove them is only logged: the reseed is done, and the next one removes them.
 *
 * One reseed at a time per replica: it holds the replica store's `reseed` lease throughout
 * (Store.tryLease: a PostgreSQL advisory lock, which a killed holder frees at once). Under the
 * lease it first drops the staging schemas of restores killed during their load.
 *
 * Who takes the backup is `reseed.backupSource` ({@link backupSourceOf}): with `primary-store`
 * this process opens the primary's store (PostgreSQL; a PGlite store is one process's database)
 * and writes the repository, pinning and unpinning as above; with `primary-daemon` (issue 12,
 * item 3: least privilege between regions) it asks the primary's `crr run` through the
 * primary's Kafka (src/reseed/backup-request.ts) and waits for it as long as it takes (the
 * progress says why: `waitingFor`), only reads the repository, and leaves the pins to the
 * primary's daemon (it pins the backup it takes; a `backup-release` sent after the restore
 * unpins it). Either way the primary's `backup` config (its repository) is needed.
 *
 * `opts.fromBackup` restores that backup (an operator's `crr reseed --from-backup ID`) instead of
 * taking a fresh one: it must be a complete backup of the primary; one that cannot be restored
 * fails the reseed (no fresh backup is taken in its place).
 *
 * @param why the sync break being cured (recorded in the state's reason)
 * @param opts.onlyIfOutdated do nothing (result `skipped`) unless the replica is OUTDATED or
 *   RESEEDING once the lease is held: the daemon's automatic reseed sets it, so that it does
 *   not reseed again what an operator's `crr reseed` has just reseeded
 * @param opts.holder who reseeds, as the lease names it to the refused; default
 *   `crr reseed pid <pid> on <host>`
 * @param opts.fromBackup the id of an existing backup of the primary to restore (no backup is taken)
 * @throws CrrError CRR_RESEED_IN_PROGRESS (retriable) when another reseed holds the lease,
 *   naming it; CRR_CONFIG_INVALID (no backup config for the primary, or no store with
 *   `primary-store`); CRR_BACKUP_REQUEST_FAILED (retriable) when the primary's daemon could not
 *   take the backup; CRR_BACKUP_NOT_FOUND / CRR_BACKUP_INVALID for a `fromBackup` that is not a
 *   usable backup of the primary;
 *   CRR_BACKUP_INVALID / CRR_BACKUP_NOT_FOUND made retriable when the restore found the backup
 *   unusable (the next attempt takes a fresh one); what createBackup / restoreBackup and the
 *   repository throw (all retriable by the caller: nothing live changes on failure)
 */
export async function reseedReplica(
  config: Config,
  source: ReplaySource,
  replicaStore: Store,
  why: string,
  opts: { log: Logger; onProgress?: (p: ReseedProgress) => void; signal?: AbortSignal; onlyIfOutdated?: boolean; holder?: string; fromBackup?: string },
): Promise<ReseedResult> {
  if (!source.upstream) throw new CrrError('CRR_CONFIG_INVALID', `cluster ${source.alias} is not a replica: only a replica is reseeded`);
  const primaryAlias = source.upstream.alias;
  const primary = config.clusters[primaryAlias]!;
  if (!primary.store && backupSourceOf(config, primaryAlias) === 'primary-store' && opts.fromBackup === undefined)
    throw new CrrError(
      'CRR_CONFIG_INVALID',
      `clusters.${primaryAlias}.store: required to reseed ${source.alias} with reseed.backupSource primary-store (or set backupSource: primary-daemon: ${primaryAlias}'s own daemon takes the backup)`,
    );
  if (!primary.backup)
    throw new CrrError(
      'CRR_CONFIG_INVALID',
      `clusters.${primaryAlias}.backup: required to reseed ${source.alias} (the repository the backup of ${primaryAlias} is read from)`,
    );
  const holder = opts.holder ?? `crr reseed pid ${process.pid} on ${hostname()}`;
  const lease = await replicaStore.tryLease('reseed', holder);
  if (!('release' in lease)) {
    throw new CrrError('CRR_RESEED_IN_PROGRESS', `a reseed of ${source.alias} is running already, by ${lease.heldBy}; one reseed at a time per replica`, {
      context: { cluster: source.alias, heldBy: lease.heldBy },
    });
  }
  try {
    return await reseedUnderLease(config, source, replicaStore, why, { ...opts, holder });
  } finally {
    await lease.release();
  }
}

/** Whether a backup cannot be restored as it is: gone from the repository, incomplete, invalid, or a part missing or corrupt. */
const unusable = (err: unknown): err is CrrError => err instanceof CrrError && (err.code === 'CRR_BACKUP_NOT_FOUND' || err.code === 'CRR_BACKUP_INVALID');

async function reseedUnderLease(
  config: Config,
  source: ReplaySource,
  replicaStore: Store,
  why: string,
  opts: { log: Logger; onProgress?: (p: ReseedProgress) => void; signal?: AbortSignal; onlyIfOutdated?: boolean; holder: string; fromBackup?: string },
): Promise<ReseedResult> {
  const { log } = opts;
  // primary-daemon: the repository is only read from here; the primary's daemon pins and unpins
  const byDaemon = backupSourceOf(config, source.upstream!.alias) === 'primary-daemon';
  const alias = source.alias;
  const primaryAlias = source.upstream!.alias;
  const primary = config.clusters[primaryAlias]!;
  const backupConfig = primary.backup!;
  const current = await replicaStore.clusterState();
  if (opts.onlyIfOutdated && current && current.state !== 'OUTDATED' && current.state !== 'RESEEDING') {
    log.info({ state: current.state, epoch: current.epoch, reason: current.reason }, 'reseed: nothing to do, the replica was reseeded meanwhile');
    const { updatedAt: _updatedAt, ...state } = current;
    return {
      backupId: (current.role === 'replica' ? current.backupId : undefined) ?? '',
      epoch: current.epoch,
      records: 0,
      backupBytes: 0,
      resumed: false,
      skipped: true,
      state,
    };
  }
  const abandoned = await replicaStore.dropAbandonedRestores();
  if (abandoned.length > 0) log.warn({ schemas: abandoned }, 'reseed: dropped the staging schemas of restores killed during their load');
  const epoch = current?.epoch ?? 0;
  const repo = await openRepository(backupConfig, `clusters.${primaryAlias}.backup`);
  try {
    const pin = { cluster: alias, purpose: 'reseed' as const, holder: opts.holder };

    // an operator's --from-backup, else resume with the backup the state names, if it is still
    // there (pinned first, so that a prune that lists it after this sees the pin; checked after,
    // so one that deleted it before is seen)
    let backupId = opts.fromBackup ?? (current?.state === 'RESEEDING' ? current.backupId : undefined);
    if (opts.fromBackup !== undefined) {
      if (!byDaemon) await pinBackup(repo, opts.fromBackup, pin);
      const manifest = await readManifest(repo, opts.fromBackup);
      if (manifest.cluster !== primaryAlias) {
        throw new CrrError(
          'CRR_BACKUP_INVALID',
          `backup ${opts.fromBackup} is a backup of ${manifest.cluster}, not of ${primaryAlias}: ${alias} replicates ${primaryAlias}`,
          {
            context: { backupId: opts.fromBackup },
          },
        );
      }
      await recordClusterState(replicaStore, alias, reseeding(epoch, `reseed (${why}): restoring backup ${opts.fromBackup}`, opts.fromBackup));
    } else if (backupId !== undefined) {
      try {
        if (!byDaemon) await pinBackup(repo, backupId, pin);
        await readManifest(repo, backupId);
      } catch (err) {
        if (!unusable(err)) throw err;
        log.warn(
          { backup: backupId, err: describeError(err) },
          `reseed: backup ${backupId}, which a previous attempt took, is no longer usable (${describeError(err)}); taking a fresh one`,
        );
        if (!byDaemon) await unpinBackup(repo, backupId, alias).catch(() => undefined);
        backupId = undefined;
      }
    }

    const cfg = source.store;
    const fence =
      replicaStore instanceof PostgresStore && cfg.appRole ? { appRole: cfg.appRole, replayRole: cfg.replayRole ?? `${cfg.schema}_replay` } : undefined;
    let backupBytes = 0;
    let tookFresh = false;
    let restored: { id: string; manifest: Manifest; state: ClusterStateInput } | undefined;
    while (restored === undefined) {
      if (backupId === undefined) {
        const taken = byDaemon
          ? await requestFreshBackup(config, source, replicaStore, why, epoch, opts)
          : await takeBackup(config, source, replicaStore, why, epoch, repo, pin, opts);
        backupId = taken.id;
        backupBytes = taken.bytes;
        tookFresh = true;
      } else {
        log.info({ backup: backupId }, 'reseed: resuming with the backup a previous attempt took');
      }
      const id = backupId;
      let total: number | undefined;
      let state: ClusterStateInput | undefined;
      try {
        const { manifest } = await restoreBackup(replicaStore, repo, id, {
          clusterState: (m) => (state = reseeded(m.epoch, `reseeded from backup ${id} (${why})`, id)),
          ...(fence ? { fence } : {}),
          onManifest: (m) => (total = m.totals.vertices + m.totals.edges),
          onProgress: (p) =>
            opts.onProgress?.({ step: 'restore', backupId: id, records: p.vertices + p.edges, ...(total !== undefined ? { totalRecords: total } : {}) }),
          ...(opts.signal ? { signal: opts.signal } : {}),
        });
        restored = { id, manifest, state: state ?? reseeded(manifest.epoch, `reseeded from backup ${id} (${why})`, id) };
      } catch (err) {
        if (!unusable(err) || opts.fromBackup !== undefined) throw err;
        // a part missing or corrupt, or the backup deleted under the restore: the live state is untouched
        if (!byDaemon) await unpinBackup(repo, id, alias).catch(() => undefined);
        if (!tookFresh) {
          // the backup of an earlier attempt went bad: take a fresh one now (once)
          log.warn(
            { backup: id, err: describeError(err) },
            `reseed: backup ${id}, which a previous attempt took, cannot be restored (${describeError(err)}); taking a fresh one`,
          );
          backupId = undefined;
          continue;
        }
        // the backup this run took cannot be restored: forget it, so that the next attempt takes a fresh one
        await recordClusterState(
          replicaStore,
          alias,
          reseeding(epoch, `reseed (${why}): backup ${id} could not be restored; the next attempt takes a fresh one`),
        );
        throw new CrrError(err.code, `reseed of ${alias}: the backup it took, ${id}, could not be restored; the next attempt takes a fresh backup`, {
          cause: err,
          retriable: true,
          context: { backupId: id, cluster: alias },
        });
      }
    }
    const { id, manifest } = restored;
    opts.onProgress?.({ step: 'resume', backupId: id, records: 0 });
    log.info({ backup: id, epoch: manifest.epoch }, 'reseed: backup restored; replay resumes from its positions');
    if (byDaemon) await releaseBackup(config, primaryAlias, alias, id, log);
    else
      try {
        const unpinned = await unpinAll(repo, alias);
        if (unpinned.length > 1) log.info({ backups: unpinned }, `reseed: removed the pins of ${alias} (stale ones of earlier attempts included)`);
      } catch (err) {
        log.warn(
          { backup: id, err: describeError(err) },
          `reseed: done, but the pin of ${alias} on backup ${id} could not be removed; the next reseed removes it`,
        );
      }
    return {
      backupId: id,
      epoch: manifest.epoch,
      records: manifest.totals.vertices + manifest.totals.edges,
      backupBytes: backupBytes || manifest.totals.bytes,
      resumed: !tookFresh,
      state: restored.state,
    };
  } finally {
    repo.close();
  }
}

/**
 * The backup step of a reseed: records `RESEEDING` ("taking a backup"), takes a fresh backup of
 * the primary's store into `repo`, pins it for the replica, then records `RESEEDING` with its
 * `backupId` (pinned first: a kill in between leaves a pin, which the next completed reseed removes).
 * @returns the backup id and its size as stored, bytes
 */
async function takeBackup(
  config: Config,
  source: ReplaySource,
  replicaStore: Store,
  why: string,
  epoch: number,
  repo: BackupRepository,
  pin: { cluster: string; purpose: 'reseed'; holder: string },
  opts: { log: Logger; onProgress?: (p: ReseedProgress) => void; signal?: AbortSignal },
): Promise<{ id: string; bytes: number }> {
  const primaryAlias = source.upstream!.alias;
  const primary = config.clusters[primaryAlias]!;
  await recordClusterState(replicaStore, source.alias, reseeding(epoch, `reseed (${why}): taking a backup of ${primaryAlias}`));
  opts.onProgress?.({ step: 'backup', records: 0 });
  const primaryStore = openStore(primary.store!);
  let manifest: Manifest;
  try {
    manifest = await createBackup(primaryStore, repo, {
      cluster: primaryAlias,
      partSizeBytes: primary.backup!.partSizeBytes,
      onProgress: (p) => opts.onProgress?.({ step: 'backup', records: p.vertices + p.edges }),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } finally {
    await primaryStore.close().catch(() => undefined);
  }
  opts.log.info(
    { backup: manifest.id, epoch: manifest.epoch, records: manifest.totals.vertices + manifest.totals.edges, bytes: manifest.totals.bytes },
    'reseed: backup of the primary taken',
  );
  await pinBackup(repo, manifest.id, pin);
  await recordClusterState(replicaStore, source.alias, reseeding(epoch, `reseed (${why}): restoring backup ${manifest.id}`, manifest.id));
  return { id: manifest.id, bytes: manifest.totals.bytes };
}

/**
 * The backup step of a reseed with `backupSource: primary-daemon`: records `RESEEDING` ("asking
 * P's daemon for a backup"), asks the primary's daemon through its Kafka and waits for the
 * backup (src/reseed/backup-request.ts; it is pinned for the replica there), then records
 * `RESEEDING` with its `backupId`.
 * @returns the backup id and its size as stored, bytes
 */
async function requestFreshBackup(
  config: Config,
  source: ReplaySource,
  replicaStore: Store,
  why: string,
  epoch: number,
  opts: { log: Logger; onProgress?: (p: ReseedProgress) => void; signal?: AbortSignal; holder: string },
): Promise<{ id: string; bytes: number }> {
  const primaryAlias = source.upstream!.alias;
  await recordClusterState(replicaStore, source.alias, reseeding(epoch, `reseed (${why}): asking ${primaryAlias}'s daemon for a backup`));
  let records = 0;
  let waitingFor: string | undefined;
  const report = (): void => opts.onProgress?.({ step: 'backup', records, ...(waitingFor ? { waitingFor } : {}) });
  report();
  const taken = await requestBackup(config, primaryAlias, source.alias, why, {
    log: opts.log,
    holder: opts.holder,
    ...(opts.signal ? { signal: opts.signal } : {}),
    onProgress: (n) => {
      records = n;
      report();
    },
    onWaiting: (reason) => {
      waitingFor = reason;
      report();
    },
  });
  await recordClusterState(replicaStore, source.alias, reseeding(epoch, `reseed (${why}): restoring backup ${taken.backupId}`, taken.backupId));
  return { id: taken.backupId, bytes: taken.bytes };
}
