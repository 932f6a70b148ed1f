import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { configuredRole } from '../cluster/topology.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { createCliLogger } from '../log/logger.js';
import { ChangeLogWriter, type WriteInput } from '../writer/writer.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';

/** Events sent per producer request by `crr write`. */
const CHUNK = 5000;

/**
 * `crr write --config F --cluster ALIAS [--file F | -]`: appends change events, one JSON object
 * per line (NDJSON, envelope optional: see src/writer/writer.ts), to the cluster's own change
 * topics. Blank lines are skipped. Prints a summary on stdout.
 *
 * Exit codes: 0 written; 4 refused (a replica or a fenced primary: nothing written); 65 a line
 * that is not JSON or not a valid event (named by line number; the chunks of 5000 before it were
 * written, that chunk and the rest were not); 78 bad config; 2 usage; 70 Kafka failure.
 */
export function registerWriteCommand(program: Command): void {
  program
    .command('write')
    .description("append change events (NDJSON) to a primary cluster's change topics; refused on a replica")
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .requiredOption('--cluster <alias>', 'cluster alias to write to (must be a primary)')
    .option('-f, --file <path>', 'NDJSON file of events, or - for stdin', '-')
    .action(async (opts: { config: string; cluster: string; file: string }) => {
      const config = loadConfigOrExit(opts.config);
      const cluster = config.clusters[opts.cluster];
      if (!cluster) {
        process.stderr.write(`crr write: unknown cluster alias "${opts.cluster}"; configured: ${Object.keys(config.clusters).join(', ')}\n`);
        process.exit(EXIT.USAGE);
      }
      const logger = createCliLogger(config.log.level === 'info' ? 'warn' : config.log.level);
      const kafka = createKafka(opts.cluster, cluster, 'writer', logger, config.log.level);
      const admin = kafka.admin();
      let writer: ChangeLogWriter | undefined;
      const totals = { events: 0, data: 0, metadata: 0 };
      try {
        await admin.connect();
        writer = await ChangeLogWriter.open({
          kafka,
          admin,
          alias: opts.cluster,
          configuredRole: configuredRole(config, opts.cluster),
          changeTopics: cluster.changeTopics,
          log: logger,
        });
        const input = opts.file === '-' ? process.stdin : createReadStream(opts.file);
        const lines = createInterface({ input, crlfDelay: Infinity });
        let chunk: WriteInput[] = [];
        let chunkLines: number[] = [];
        let lineNo = 0;
        const flush = async (): Promise<void> => {
          if (chunk.length === 0) return;
          const r = await writer!.write(chunk, chunkLines);
          totals.events += r.events;
          totals.data += r.data;
          totals.metadata += r.metadata;
          chunk = [];
          chunkLines = [];
        };
        for await (const line of lines) {
          lineNo += 1;
          if (line.trim() === '') continue;
          try {
            chunk.push(JSON.parse(line) as WriteInput);
            chunkLines.push(lineNo);
          } catch (err) {
            throw new CrrError('CRR_EVENT_INVALID', `line ${lineNo} is not JSON: ${(err as Error).message}`);
          }
          if (chunk.length >= CHUNK) await flush();
        }
        await flush();
        process.stdout.write(
          `wrote ${totals.events} events (data ${totals.data}, metadata ${totals.metadata}) to cluster ${opts.cluster} at epoch ${writer.state.epoch}\n`,
        );
      } catch (err) {
        const code =
          err instanceof CrrError
            ? err.code === 'CRR_WRITE_REFUSED'
              ? EXIT.WRITE_REFUSED
              : err.code === 'CRR_EVENT_INVALID'
                ? EXIT.DATA_ERROR
                : EXIT.SOFTWARE
            : EXIT.SOFTWARE;
        process.stderr.write(`crr write: ${describeError(err)}${totals.events > 0 ? ` (${totals.events} events before it were written)` : ''}\n`);
        process.exitCode = code;
      } finally {
        await writer?.close();
        await admin.disconnect().catch(() => undefined);
      }
    });
}
