/** Exit codes of the `crr` command. Documented in README.md ("CLI"). */
export const EXIT = {
  OK: 0,
  /** `crr status`: replication lag above `maxReplicationLagRecords` on some flow, or a cluster OUTDATED. */
  LAGGING: 1,
  /** `crr verify`: at a common position, the primary's and the replica's stores differ. */
  DIFFERENT: 1,
  /** A bad command-line argument (usage printed), or `crr status`: a cluster unreachable. */
  USAGE: 2,
  UNREACHABLE: 2,
  /**
   * `crr verify`: the primary and the replica store did not reach a common position (the same
   * next offset on every partition of the primary's change topics) within `--timeout-ms`, so
   * nothing was compared. (`crr verify` exits 1 when they were compared and differ.)
   */
  NOT_COMPARABLE: 3,
  /**
   * `crr verify --against-log`: the change log cannot explain the store from where the audit
   * starts (a sync-breaking marker or an epoch raise whose effect is not in the log, or a log
   * start above it); nothing was compared. Audit again with `--from-backup` and a backup taken after that point.
   */
  CANNOT_AUDIT: 6,
  /** `crr promote`: refused (the blockers are listed: a running daemon, the primary unreachable for a graceful promotion, an OUTDATED replica). */
  PROMOTE_REFUSED: 3,
  /** `crr promote`: the graceful drain did not finish in time; the replica stays PROMOTING (run it again). */
  PROMOTE_TIMEOUT: 1,
  /** `crr backup delete --execute`: the backup is pinned by a reseed or restore (CRR_BACKUP_PINNED); nothing was deleted (`--force` deletes it). */
  BACKUP_PINNED: 3,
  /** `crr backup verify`: a part is missing or corrupt (each problem is listed). */
  BACKUP_PROBLEMS: 1,
  /** `crr restore`: the backup cannot be used as it is (CRR_BACKUP_INVALID: incomplete, corrupt or unknown format). */
  BACKUP_INVALID: 1,
  /** `crr write`: the cluster is a replica or a fenced primary; nothing was written. */
  WRITE_REFUSED: 4,
  /** `crr write`: an input line is not a valid change event (sysexits' EX_DATAERR); lines before it were written. `crr reseed --from-backup`: no usable backup of the primary by that id. */
  DATA_ERROR: 65,
  /** `crr replay --exit-when-caught-up`: replay halted at a dead letter, or the cluster is OUTDATED. */
  REPLAY_HALTED: 5,
  /** `crr reseed --execute`: another reseed of the replica holds its lease (sysexits' EX_TEMPFAIL); try again later. */
  TEMPFAIL: 75,
  /** The mirror stopped on an error it does not retry. */
  SOFTWARE: 70,
  /** Interrupted by SIGINT (128 + 2); a one-shot command cleaned up first (src/cli/interrupt.ts). */
  INTERRUPTED: 130,
  /** Stopped by SIGTERM (128 + 15); a one-shot command cleaned up first, as on SIGINT (src/cli/interrupt.ts). */
  TERMINATED: 143,
  /** The configuration file is missing or invalid (sysexits' EX_CONFIG). */
  CONFIG: 78,
} as const;
