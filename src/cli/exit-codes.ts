/** Exit codes of the `crr` command. Documented in README.md ("CLI"). */
export const EXIT = {
  OK: 0,
  /** `crr status`: replication lag above `maxReplicationLagRecords` on some flow. */
  LAGGING: 1,
  /** A bad command-line argument (usage printed), or `crr status`: a cluster unreachable. */
  USAGE: 2,
  UNREACHABLE: 2,
  /** The mirror stopped on an error it does not retry. */
  SOFTWARE: 70,
  /** The configuration file is missing or invalid (sysexits' EX_CONFIG). */
  CONFIG: 78,
} as const;
