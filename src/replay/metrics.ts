import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { PRIMARY_STATES, REPLICA_STATES } from '../cluster/cluster-state.js';

/** Every cluster state, for the one-hot `crr_cluster_state` gauge. */
export const CLUSTER_STATES = [...PRIMARY_STATES, ...REPLICA_STATES] as const;

/**
 * Replay's metrics, on crr's own registry. Labelled by `cluster` (the alias whose store replay
 * writes); no keys, ids or offsets as labels.
 */
export class ReplayMetrics {
  /** Change events applied to the store (committed), by operation. */
  readonly events: Counter<'cluster' | 'op'>;
  /** Events read but not applied: `below-position` (already in the store), `stale-epoch` (an older epoch: a late event of an old primary). */
  readonly skipped: Counter<'cluster' | 'reason'>;
  /** Events sent to the dead-letter topic, by reason: `invalid` (not a valid event), `unapplicable` (the store refused it). */
  readonly deadLetters: Counter<'cluster' | 'reason'>;
  /** Topic log end offset minus the next offset to apply, per read topic and partition. */
  readonly lagRecords: Gauge<'cluster' | 'topic' | 'partition'>;
  /** 0 when caught up; else seconds since the newest applied record was appended (the age of what the store shows). */
  readonly lagSeconds: Gauge<'cluster'>;
  /** 1 for the cluster's current state, 0 for the others. */
  readonly clusterState: Gauge<'cluster' | 'state'>;
  /** The store's epoch. */
  readonly clusterEpoch: Gauge<'cluster'>;
  /** 1 while replay is stopped at an event it will not pass (dead letter with policy `halt`, or the cluster is OUTDATED). */
  /** 1 when the store answered its last request, 0 while it cannot be reached (replay waits and retries; the mirror goes on). */
  readonly storeUp: Gauge<'cluster'>;
  /** 1 when the write fence of a replica's store is in place as its catalogs show (src/store/fence.ts checkFence), 0 when not. */
  readonly writeFenceInPlace: Gauge<'cluster'>;
  readonly halted: Gauge<'cluster'>;
  /**
   * 1 while a replica's reseed waits for the primary (`backupSource: primary-daemon`: the
   * primary's daemon does not answer the backup request, or its Kafka cannot be reached), else 0.
   */
  readonly reseedWaitingForPrimary: Gauge<'cluster'>;
  /** Store transactions of replay, by result (`committed`, `failed`). */
  readonly batches: Counter<'cluster' | 'result'>;
  /** Replay task restarts after a failure. */
  readonly restarts: Counter<'cluster'>;
  /**
   * Sync-breaking events that made the cluster OUTDATED, by reason: `import`, `drop-all`,
   * `clear-graph-store`, `reset` (markers), `epoch` (an event of a higher epoch),
   * `retention-gap`, `topic-recreated` (found by the mirror).
   */
  readonly syncBreaks: Counter<'cluster' | 'reason'>;
  /** Reseed attempts, by the sync break they cure (`reason`) and `result` (`succeeded`, `failed`). */
  readonly reseeds: Counter<'cluster' | 'reason' | 'result'>;
  /** Duration of completed reseeds, seconds (from OUTDATED to REPLICATING again). */
  readonly reseedDuration: Histogram<'cluster'>;
  /** Bytes of backups taken for reseeds (stored, gzip). */
  readonly backupBytes: Counter<'cluster'>;
  /** Bytes of backups restored by reseeds (stored, gzip). */
  readonly restoreBytes: Counter<'cluster'>;
  /** Promotions of this cluster to primary (`crr promote`), by `mode` (`graceful`, `force`): counted from the store's promotion history when the daemon starts. */
  readonly promotions: Counter<'cluster' | 'mode'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.events = new Counter({
      name: 'crr_replay_events_total',
      help: 'Change events applied to the store by replay, by operation.',
      labelNames: ['cluster', 'op'],
      registers,
    });
    this.skipped = new Counter({
      name: 'crr_replay_events_skipped_total',
      help: 'Change events read by replay but not applied, by reason (below-position, stale-epoch).',
      labelNames: ['cluster', 'reason'],
      registers,
    });
    this.deadLetters = new Counter({
      name: 'crr_dead_letters_total',
      help: 'Change events sent to the dead-letter topic, by reason (invalid, unapplicable).',
      labelNames: ['cluster', 'reason'],
      registers,
    });
    this.lagRecords = new Gauge({
      name: 'crr_replay_lag_records',
      help: 'Replay lag: topic log end offset minus the next offset the store will apply.',
      labelNames: ['cluster', 'topic', 'partition'],
      registers,
    });
    this.lagSeconds = new Gauge({
      name: 'crr_replay_lag_seconds',
      help: 'Replay lag in seconds: 0 when caught up, else the age of the newest applied record.',
      labelNames: ['cluster'],
      registers,
    });
    this.clusterState = new Gauge({
      name: 'crr_cluster_state',
      help: 'The cluster state: 1 for the current state, 0 for the others.',
      labelNames: ['cluster', 'state'],
      registers,
    });
    this.clusterEpoch = new Gauge({ name: 'crr_cluster_epoch', help: "The epoch of the cluster's store.", labelNames: ['cluster'], registers });
    this.writeFenceInPlace = new Gauge({
      name: 'crr_write_fence_in_place',
      help: "1 when the replica store's write fence holds as PostgreSQL's catalogs show it (the application role can only read), 0 when it does not; absent where no fence is configured.",
      labelNames: ['cluster'],
      registers,
    });
    this.storeUp = new Gauge({
      name: 'crr_store_up',
      help: "1 when the cluster's store answered its last request, 0 while it cannot be reached.",
      labelNames: ['cluster'],
      registers,
    });
    this.halted = new Gauge({
      name: 'crr_replay_halted',
      help: 'Replay is stopped at an event it will not pass (a dead letter under policy halt, or the cluster is OUTDATED).',
      labelNames: ['cluster'],
      registers,
    });
    this.reseedWaitingForPrimary = new Gauge({
      name: 'crr_reseed_waiting_for_primary',
      help: "1 while a replica's reseed waits for the primary's daemon to answer its backup request (the reason is in /status replay.reseed.waitingFor), else 0.",
      labelNames: ['cluster'],
      registers,
    });
    this.batches = new Counter({
      name: 'crr_replay_batches_total',
      help: 'Store transactions of replay, by result.',
      labelNames: ['cluster', 'result'],
      registers,
    });
    this.restarts = new Counter({ name: 'crr_replay_restarts_total', help: 'Replay task restarts after a failure.', labelNames: ['cluster'], registers });
    this.promotions = new Counter({
      name: 'crr_promotions_total',
      help: 'Promotions of this cluster to primary (crr promote), by mode (graceful, force), from its promotion history.',
      labelNames: ['cluster', 'mode'],
      registers,
    });
    this.reseeds = new Counter({
      name: 'crr_reseeds_total',
      help: 'Reseed attempts, by the sync break they cure and result.',
      labelNames: ['cluster', 'reason', 'result'],
      registers,
    });
    this.reseedDuration = new Histogram({
      name: 'crr_reseed_duration_seconds',
      help: 'Duration of completed reseeds.',
      labelNames: ['cluster'],
      buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200],
      registers,
    });
    this.backupBytes = new Counter({
      name: 'crr_backup_bytes_total',
      help: 'Bytes of backups taken for reseeds (stored, gzip).',
      labelNames: ['cluster'],
      registers,
    });
    this.restoreBytes = new Counter({
      name: 'crr_restore_bytes_total',
      help: 'Bytes of backups restored by reseeds (stored, gzip).',
      labelNames: ['cluster'],
      registers,
    });
    this.syncBreaks = new Counter({
      name: 'crr_sync_breaks_total',
      help: 'Sync-breaking events that made the cluster OUTDATED, by reason.',
      labelNames: ['cluster', 'reason'],
      registers,
    });
  }

  /** Sets the one-hot state gauge and the epoch gauge. */
  setState(cluster: string, state: string, epoch: number): void {
    for (const s of CLUSTER_STATES) this.clusterState.set({ cluster, state: s }, s === state ? 1 : 0);
    this.clusterEpoch.set({ cluster }, epoch);
  }
}
