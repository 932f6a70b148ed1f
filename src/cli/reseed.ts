import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { publishClusterState } from '../cluster/state.js';
import { replaySource } from '../cluster/topology.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { createCliLogger } from '../log/logger.js';
import { backupSourceOf, reseedReplica } from '../reseed/reseed.js';
import { openStore } from '../store/open.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { onStopSignals } from './interrupt.js';

/**
 * `crr reseed --config F [--cluster A] [--execute]`: reseeds a replica by hand (reseed mode
 * `manual`, or any time): a fresh backup of the primary's store, restored into the replica's
 * store (staging schema, checks, atomic swap), state REPLICATING at the backup's epoch with its
 * positions. A running `crr run` of the replica notices the new state and resumes replay (in
 * mode `auto` it reseeds by itself). Without `--execute` it prints the plan and exits 0.
 *
 * `--from-backup ID` restores that existing backup of the primary instead of taking a fresh one
 * (the primary is down, or its daemon cannot answer a backup request: `crr backup list`).
 * With `reseed.backupSource: primary-daemon` (no primary store in this config) the fresh backup
 * is asked of the primary's `crr run` through its Kafka, and waited for (each reason to wait is
 * printed on stderr).
 *
 * Exit codes: 0 done (or the plan); 2 unknown cluster or not a replica; 65 `--from-backup` names
 * no usable backup of the primary; 70 a failure (the live
 * state is untouched; run it again: a reseed killed after its backup resumes with that backup);
 * 75 another reseed of the replica is running (it holds the replica store's `reseed` lease);
 * 78 bad config (no store or backup config); 130 SIGINT, 143 SIGTERM: the reseed stops, removes
 * what it started (the incomplete backup's objects and its multipart upload, or the staging
 * schema) and leaves the live state untouched; run it again to finish.
 */
export function registerReseedCommand(program: Command): void {
  program
    .command('reseed')
    .description('reseed a replica from a fresh backup of the primary (prints the plan unless --execute)')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--cluster <alias>', 'the replica (default: the single replica of the config)')
    .option('--from-backup <id>', 'restore this existing backup of the primary (crr backup list) instead of taking a fresh one')
    .option('--execute', 'reseed; without this, only print the plan')
    .action(async (opts: { config: string; cluster?: string; execute?: boolean; fromBackup?: string }) => {
      const config = loadConfigOrExit(opts.config);
      const replicas = Object.keys(config.clusters).filter(
        (a) => config.mirror.flows.some((f) => f.enabled && f.target === a) && config.clusters[a]!.role !== 'primary',
      );
      const alias = opts.cluster ?? (replicas.length === 1 ? replicas[0] : undefined);
      if (!alias || !config.clusters[alias]) {
        process.stderr.write(
          `crr reseed: ${alias ? `unknown cluster alias "${alias}"` : 'name the replica with --cluster'}; replicas: ${replicas.join(', ') || '(none)'}\n`,
        );
        process.exit(EXIT.USAGE);
      }
      let source;
      try {
        source = replaySource(config, alias);
      } catch (err) {
        process.stderr.write(`crr reseed: ${describeError(err)}\n`);
        process.exit(EXIT.CONFIG);
      }
      if (!source.upstream) {
        process.stderr.write(`crr reseed: cluster ${alias} is not a replica\n`);
        process.exit(EXIT.USAGE);
      }
      const primary = source.upstream.alias;
      if (!opts.execute) {
        process.stdout.write(
          [
            `reseed plan for replica ${alias}:`,
            opts.fromBackup !== undefined
              ? `  1. read backup ${opts.fromBackup} of ${primary} from ${primary}'s backup repository (no backup is taken)`
              : backupSourceOf(config, primary) === 'primary-daemon'
                ? `  1. ask ${primary}'s daemon (crr run --cluster ${primary}) through ${primary}'s Kafka (crr-control.internal) for a fresh backup into ${primary}'s backup repository, and wait for it`
                : `  1. take a fresh backup of ${primary}'s store into ${primary}'s backup repository`,
            `  2. restore it into ${alias}'s store: staging schema, checksums and counts, one-transaction swap (the live state is replaced; readers see it until the swap)`,
            `  3. record ${alias} REPLICATING at the backup's epoch, with the backup's positions; replay resumes from them`,
            'run again with --execute to do it',
            '',
          ].join('\n'),
        );
        return;
      }
      const logger = createCliLogger(config.log.level === 'info' ? 'warn' : config.log.level);
      const stop = onStopSignals();
      const store = openStore(source.store);
      const bar = new cliProgress.SingleBar(
        { format: '{step} [{bar}] {value}/{total} records', hideCursor: true, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      let started = false;
      let step = '';
      try {
        await store.migrate();
        const result = await reseedReplica(config, source, store, 'manual crr reseed', {
          log: logger,
          signal: stop.signal,
          ...(opts.fromBackup !== undefined ? { fromBackup: opts.fromBackup } : {}),
          onProgress: (p) => {
            if (p.waitingFor) process.stderr.write(`crr reseed: waiting: ${p.waitingFor}\n`);
            if (p.step !== step) {
              if (started) bar.stop();
              step = p.step;
              bar.start(p.totalRecords ?? Math.max(p.records, 1), p.records, { step: p.step.padEnd(7) });
              started = true;
            }
            if (p.totalRecords) bar.setTotal(p.totalRecords);
            else bar.setTotal(Math.max(p.records, 1));
            bar.update(p.records, { step: p.step.padEnd(7) });
          },
        });
        if (started) bar.stop();
        const kafka = createKafka(alias, source.cluster, 'reseed', logger, 'fatal');
        const admin = kafka.admin();
        try {
          await admin.connect();
          await publishClusterState(kafka, admin, alias, result.state);
        } catch (err) {
          process.stderr.write(`crr reseed: warning: could not publish the state to ${alias}'s Kafka: ${describeError(err)}\n`);
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
        process.stdout.write(
          `reseeded ${alias} from backup ${result.backupId} of ${primary}: ${result.records} records, epoch ${result.epoch}${result.resumed ? ' (resumed with the backup of an earlier attempt)' : ''}\n`,
        );
      } catch (err) {
        if (started) bar.stop();
        if (stop.signal.aborted) {
          process.stderr.write(`crr reseed: interrupted by ${stop.received}; the live state is untouched (run it again to finish the reseed)\n`);
          process.exitCode = stop.exitCode();
          return;
        }
        process.stderr.write(`crr reseed: ${describeError(err)}\n`);
        process.exitCode =
          err instanceof CrrError && err.code === 'CRR_CONFIG_INVALID'
            ? EXIT.CONFIG
            : err instanceof CrrError && (err.code === 'CRR_BACKUP_NOT_FOUND' || err.code === 'CRR_BACKUP_INVALID') && opts.fromBackup !== undefined
              ? EXIT.DATA_ERROR
              : err instanceof CrrError && err.code === 'CRR_RESEED_IN_PROGRESS'
                ? EXIT.TEMPFAIL
                : EXIT.SOFTWARE;
      } finally {
        stop.dispose();
        await store.close().catch(() => undefined);
      }
    });
}
