import type { ClusterStateInput } from '../cluster/cluster-state.js';

/**
 * What replay reports on `/status`. Mutated in place by the running task; read by the HTTP server.
 *
 * `state`: `starting`; `waiting` (the topics to read do not exist yet); `standby` (another
 * process replays this cluster); `active`; `caught-up` is not a state — see `lagRecords`;
 * `halted` (stopped at an event it will not pass: `haltReason` says which and why);
 * `outdated` (the cluster is OUTDATED: the stream alone cannot keep it correct; a reseed cures
 * it); `reseeding` (a backup of the primary is taken and restored); `backoff` (restarting after a failure); `stopped`.
 */
export interface ReplayStatus {
  cluster: string;
  role: 'primary' | 'replica';
  state: 'starting' | 'waiting' | 'waiting-for-store' | 'standby' | 'active' | 'halted' | 'outdated' | 'reseeding' | 'backoff' | 'stopped';
  /** The kind of the sync break that made the cluster OUTDATED (the `reason` label of crr_sync_breaks_total). */
  syncBreak?: string;
  /**
   * The reseed in progress: step (`backup`, `restore`, `resume`), backup id, records and
   * percentage; `waitingFor` says why the backup step waits for the primary (its daemon does not
   * answer a backup request, its Kafka cannot be reached).
   */
  reseed?: { step: string; backupId?: string; records: number; totalRecords?: number; percent?: number; startedAt: string; waitingFor?: string };
  /** The last reseed that completed. */
  lastReseed?: { backupId: string; epoch: number; records: number; seconds: number; finishedAt: string };
  /**
   * The write fence of a replica's (or a fenced primary's) PostgreSQL store as its catalogs show
   * it (src/store/fence.ts checkFence), checked at start, after every reseed and when a primary
   * obeys a published FENCED state; absent where no `appRole` is configured.
   */
  writeFence?: { appRole: string; inPlace: boolean; problems: string[]; checkedAt: string };
  /** The store's recorded cluster state. */
  clusterState?: ClusterStateInput;
  /** Topics read: own change topics on a primary, remote topics on a replica. */
  topics: string[];
  haltReason?: string;
  lastError?: string;
  restarts: number;
  eventsApplied: number;
  deadLetters: number;
  lastAppliedAt?: string;
  /** Replay lag in records, summed over partitions (null until first measured). */
  lagRecords: number | null;
  lagSeconds: number | null;
  partitions: Array<{ topic: string; partition: number; logEndOffset: number; position: number; lagRecords: number }>;
}

/** A fresh status for a cluster whose replay has not started. */
export function newReplayStatus(cluster: string, role: 'primary' | 'replica', topics: string[]): ReplayStatus {
  return { cluster, role, state: 'starting', topics, restarts: 0, eventsApplied: 0, deadLetters: 0, lagRecords: null, lagSeconds: null, partitions: [] };
}
