import { EXIT } from '../cli/exit-codes.js';
import { CliUsageError } from '../cli/usage-error.js';
import type { Role } from '../cluster/schema.js';
import { configuredRole } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import { SQL_IDENTIFIER, type StoreConfig } from '../store/schema.js';
import type { BackupConfig } from './schema.js';

// Which repository and store `crr backup` and `crr restore` work on, from the config. Refusals
// are CliUsageErrors carrying the exit code the command exits with (src/cli/exit-codes.ts).

/**
 * The cluster's backup config, and its store config when `needStore` (`crr backup`).
 * @throws CliUsageError exit 2 for an unknown alias; 78 for a cluster without `backup`
 *   (naming `clusters.<alias>.backup`) or, when needed, without a store it can open
 */
export function resolveBackupTarget(config: Config, alias: string, needStore: boolean): { backup: BackupConfig; store?: StoreConfig } {
  const cluster = config.clusters[alias];
  if (!cluster) throw new CliUsageError(`unknown cluster alias "${alias}"; known: ${Object.keys(config.clusters).join(', ')}`, EXIT.USAGE);
  if (!cluster.backup) {
    throw new CliUsageError(
      `clusters.${alias}.backup: required by crr backup (the cluster's backup repository: { repository: { type: local, path } } or { repository: { type: s3, bucket, ... } })`,
      EXIT.CONFIG,
    );
  }
  if (!needStore) return { backup: cluster.backup };
  const store = cluster.store;
  if (!store) throw new CliUsageError(`clusters.${alias}.store: required by crr backup create (the store to back up)`, EXIT.CONFIG);
  if (store.type === 'pglite' && (store.dataDir === undefined || store.dataDir.startsWith('memory://'))) {
    throw new CliUsageError(
      `clusters.${alias}.store.dataDir: crr backup needs a store it can open; an in-memory PGlite store exists only inside the crr process that runs it`,
      EXIT.CONFIG,
    );
  }
  return { backup: cluster.backup, store };
}

/** What `crr restore` restores, from where, into what. */
export interface RestoreTarget {
  /** The cluster whose repository holds the backup: `--from`, else the source of the flow into a replica, else the cluster itself. */
  from: string;
  /** The backup config of that cluster (`clusters.<from>.backup`): its repository and the keys of its backups. */
  backup: BackupConfig;
  /** The store restored into (`clusters.<cluster>.store`). */
  store: StoreConfig;
  /** The cluster's configured role (see configuredRole). */
  role: Role;
}

/**
 * Resolves `crr restore`'s cluster, repository and store from the config.
 * @throws CliUsageError exit 2 for an unknown alias (`--cluster` or `--from`) or an invalid
 *   `--as`; 78 for a cluster without a store crr restore can open, or a `--from` cluster without `backup`
 */
export function resolveRestoreTarget(config: Config, alias: string, from: string | undefined, as: string | undefined): RestoreTarget {
  const known = Object.keys(config.clusters).join(', ');
  const cluster = config.clusters[alias];
  if (!cluster) throw new CliUsageError(`unknown cluster alias "${alias}"; known: ${known}`, EXIT.USAGE);
  const role = configuredRole(config, alias);
  const source = from ?? (role === 'replica' ? (config.mirror.flows.find((f) => f.enabled && f.target === alias)?.source ?? alias) : alias);
  const repoCluster = config.clusters[source];
  if (!repoCluster) throw new CliUsageError(`--from: unknown cluster alias "${source}"; known: ${known}`, EXIT.USAGE);
  if (!repoCluster.backup) {
    throw new CliUsageError(`clusters.${source}.backup: required by crr restore (the repository the backups of ${source} are in)`, EXIT.CONFIG);
  }
  if (as !== undefined && !SQL_IDENTIFIER.test(as))
    throw new CliUsageError(`--as: "${as}" is not a lower-case SQL identifier ([a-z_][a-z0-9_]*, at most 63 characters)`, EXIT.USAGE);
  const store = cluster.store;
  if (!store) throw new CliUsageError(`clusters.${alias}.store: required by crr restore (the store to restore into)`, EXIT.CONFIG);
  if (store.type === 'pglite' && (store.dataDir === undefined || store.dataDir.startsWith('memory://'))) {
    throw new CliUsageError(
      `clusters.${alias}.store.dataDir: crr restore needs a store it can open; an in-memory PGlite store exists only inside the crr process that runs it`,
      EXIT.CONFIG,
    );
  }
  return { from: source, backup: repoCluster.backup, store, role };
}
