import { EXIT } from '../cli/exit-codes.js';
import { CliUsageError } from '../cli/usage-error.js';
import { configuredRole } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import type { StoreConfig } from '../store/schema.js';

// Which two stores `crr verify` compares, from the config. Refusals are CliUsageErrors carrying
// the exit code the command exits with (src/cli/exit-codes.ts).

/** The two clusters `crr verify` compares, with their stores and the primary's change topics. */
export interface VerifyPair {
  primary: { alias: string; store: StoreConfig };
  replica: { alias: string; store: StoreConfig };
  /** `clusters.<primary>.changeTopics.data` and `.metadata`. */
  topics: string[];
}

/**
 * Picks the clusters to compare.
 * - replica: `--replica`, else the single cluster whose configured role is `replica`
 *   ({@link configuredRole}) and that has a `store`;
 * - primary: `--primary`, else the source of the enabled mirror flow into the replica.
 * @throws CliUsageError exit {@link EXIT.USAGE} for an unknown alias, an ambiguous replica or
 *   the same cluster twice; {@link EXIT.CONFIG} when there is no replica, or a cluster has no
 *   `store` or an in-memory PGlite one (the message names the path `clusters.<alias>.store`)
 */
export function resolveVerifyPair(config: Config, opts: { primary?: string; replica?: string }): VerifyPair {
  const aliases = Object.keys(config.clusters);
  for (const a of [opts.primary, opts.replica]) {
    if (a !== undefined && !(a in config.clusters)) throw new CliUsageError(`unknown cluster alias "${a}"; known: ${aliases.join(', ')}`, EXIT.USAGE);
  }
  let replica = opts.replica;
  if (replica === undefined) {
    const replicas = aliases.filter((a) => configuredRole(config, a) === 'replica');
    const withStore = replicas.filter((a) => config.clusters[a]!.store !== undefined);
    if (replicas.length === 0) {
      throw new CliUsageError(
        'no cluster is a replica (none has role: replica, and no enabled mirror flow targets one); name the clusters with --primary and --replica',
        EXIT.CONFIG,
      );
    }
    if (withStore.length === 0) throw new CliUsageError(`clusters.${replicas[0]}.store: required by crr verify (the replica's store to compare)`, EXIT.CONFIG);
    if (withStore.length > 1) throw new CliUsageError(`several replicas have a store (${withStore.join(', ')}): choose one with --replica`, EXIT.USAGE);
    replica = withStore[0]!;
  }
  let primary = opts.primary;
  if (primary === undefined) {
    const flow = config.mirror.flows.find((f) => f.enabled && f.target === replica);
    if (!flow) throw new CliUsageError(`no enabled mirror flow into ${replica}: name the primary with --primary`, EXIT.USAGE);
    primary = flow.source;
  }
  if (primary === replica) throw new CliUsageError(`--primary and --replica name the same cluster (${primary})`, EXIT.USAGE);
  const storeOf = (alias: string, what: string): StoreConfig => {
    const store = config.clusters[alias]!.store;
    if (!store) throw new CliUsageError(`clusters.${alias}.store: required by crr verify (the ${what}'s store to compare)`, EXIT.CONFIG);
    if (store.type === 'pglite' && (store.dataDir === undefined || store.dataDir.startsWith('memory://'))) {
      // an in-memory PGlite store lives inside the process that replays it: verify would open a new, empty one
      throw new CliUsageError(
        `clusters.${alias}.store.dataDir: crr verify needs a store it can open; an in-memory PGlite store exists only inside the crr process that runs it`,
        EXIT.CONFIG,
      );
    }
    return store;
  };
  const topics = config.clusters[primary]!.changeTopics;
  return {
    primary: { alias: primary, store: storeOf(primary, 'primary') },
    replica: { alias: replica, store: storeOf(replica, 'replica') },
    topics: [topics.data, topics.metadata],
  };
}
