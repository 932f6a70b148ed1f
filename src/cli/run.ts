import { InvalidArgumentError, type Command } from 'commander';
import type { Config } from '../config/schema.js';
import type { Role } from '../cluster/schema.js';
import { configuredRole, effectiveRole } from '../cluster/topology.js';
import { readPublishedClusterState } from '../cluster/state.js';
import { createKafka } from '../kafka/client.js';
import { CrrError, describeError } from '../errors.js';
import { createLogger } from '../log/logger.js';
import { startService, type CrrService, type ServiceParts } from '../service.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { stopOnSignals } from './service.js';

interface ClusterOptions {
  config: string;
  cluster: string;
  httpPort?: number;
}

/**
 * Loads the config, applies `--http-port`, checks `--cluster` and starts the given parts.
 * Exits 2 on an unknown alias, 78 on a config error (a missing store), 70 when start-up fails.
 */
async function startFor(
  opts: ClusterOptions,
  command: string,
  parts: (config: Config, role: Role) => ServiceParts,
): Promise<{ config: Config; service: CrrService; logger: ReturnType<typeof createLogger> }> {
  const config = loadConfigOrExit(opts.config);
  if (opts.httpPort !== undefined) config.http.port = opts.httpPort;
  if (!config.clusters[opts.cluster]) {
    process.stderr.write(`crr ${command}: unknown cluster alias "${opts.cluster}"; configured: ${Object.keys(config.clusters).join(', ')}\n`);
    process.exit(EXIT.USAGE);
  }
  const logger = createLogger(config.log.level);
  try {
    const cluster = config.clusters[opts.cluster]!;
    const published = async (): Promise<Role | undefined> => {
      const kafka = createKafka(opts.cluster, cluster, 'start', logger, 'fatal');
      const admin = kafka.admin();
      try {
        await admin.connect();
        return (await readPublishedClusterState(kafka, admin, opts.cluster, 10_000))?.role;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    };
    const { role, differs, storeUnreachable } = await effectiveRole(config, opts.cluster, published);
    if (storeUnreachable) {
      logger.error(
        { cluster: opts.cluster, role },
        `the store of ${opts.cluster} cannot be reached (${storeUnreachable}); starting as ${role} (its published or configured role): replay waits for the store, the mirror runs`,
      );
    }
    if (differs) {
      logger.warn(
        { cluster: opts.cluster, recordedRole: role, configuredRole: configuredRole(config, opts.cluster) },
        `cluster ${opts.cluster} runs as ${role}, the role recorded in its store (${role === 'primary' ? 'it was promoted' : 'it was reseeded as a replica'}); update the config to match (docs/runbooks/)`,
      );
    }
    const service = await startService(config, logger, parts(config, role));
    return { config, service, logger };
  } catch (err) {
    process.stderr.write(`crr ${command}: ${describeError(err)}\n`);
    process.exit(err instanceof CrrError && err.code === 'CRR_CONFIG_INVALID' ? EXIT.CONFIG : EXIT.SOFTWARE);
  }
}

/** Parses `--http-port`: an integer 0-65535 (0: any free port). */
export function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

/**
 * `crr run --config F --cluster ALIAS`: the daemon of one region. It runs in the role recorded in
 * the cluster's store when there is one (after `crr promote`, the old replica runs as a primary
 * even before the config is updated), else the configured role. On a replica it runs the
 * mirror of the flow into the cluster (MM2's advice: consume remotely, produce locally) and the
 * replay of the remote topics into the cluster's store; on a primary, the replay of its own
 * change topics. Until SIGTERM/SIGINT.
 *
 * `crr replay --config F --cluster ALIAS [--exit-when-caught-up]`: replay alone. With
 * `--exit-when-caught-up` it exits 0 once replay lag is 0 on every partition, 5 when replay
 * halted (a dead letter under policy halt) or the cluster is OUTDATED, 70 on a failure.
 */
export function registerRunCommands(program: Command): void {
  program
    .command('run')
    .description('run the daemon of one region: mirror into it (on a replica) and replay its change log into its store')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .requiredOption('--cluster <alias>', 'the cluster this process serves')
    .option('--http-port <port>', 'override http.port (two daemons on one host)', port)
    .action(async (opts: ClusterOptions) => {
      const { config, service, logger } = await startFor(opts, 'run', (cfg, role) => ({
        flows: role === 'replica' ? cfg.mirror.flows.filter((f) => f.target === opts.cluster) : [],
        replayCluster: opts.cluster,
        replayRole: role,
      }));
      stopOnSignals(service, config, logger);
    });

  program
    .command('replay')
    .description("apply a cluster's change topics to its store, exactly once")
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .requiredOption('--cluster <alias>', 'the cluster whose store is written')
    .option('--http-port <port>', 'override http.port', port)
    .option('--exit-when-caught-up', 'exit 0 once replay lag is 0 (5 if it halts, 70 on failure)')
    .action(async (opts: ClusterOptions & { exitWhenCaughtUp?: boolean }) => {
      const { config, service, logger } = await startFor(opts, 'replay', (_cfg, role) => ({ flows: [], replayCluster: opts.cluster, replayRole: role }));
      if (!opts.exitWhenCaughtUp) {
        stopOnSignals(service, config, logger);
        return;
      }
      const replay = service.replay!;
      const result = await Promise.race([replay.caughtUp().then(() => 'caught-up' as const), replay.done().then(() => 'ended' as const)]);
      const status = replay.status;
      await service.stop();
      if (result === 'caught-up') {
        process.stdout.write(
          `replay of ${opts.cluster} caught up: ${status.eventsApplied} events applied in this run, epoch ${status.clusterState?.epoch ?? 0}\n`,
        );
        process.exit(EXIT.OK);
      }
      if (replay.failed) {
        process.stderr.write(`crr replay: ${describeError(replay.failed)}\n`);
        process.exit(EXIT.SOFTWARE);
      }
      process.stderr.write(`crr replay: replay of ${opts.cluster} stopped: ${status.haltReason ?? status.state}\n`);
      process.exit(EXIT.REPLAY_HALTED);
    });
}
