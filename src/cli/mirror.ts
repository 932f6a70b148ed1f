import type { Command } from 'commander';
import { createLogger } from '../log/logger.js';
import { startMirrorService } from '../service.js';
import { loadConfigOrExit } from './common.js';
import { EXIT } from './exit-codes.js';
import { port } from './run.js';
import { stopOnSignals } from './service.js';

/**
 * `crr mirror --config F [--flow source->target ...] [--http-port N]`: runs the mirror of every enabled flow
 * (or only the named ones) until SIGTERM or SIGINT, then commits or aborts the open
 * transactions, closes the clients and exits 0 — within `mirror.shutdownTimeoutMs`, or exits
 * 70 if that is exceeded. A second signal exits at once (130).
 */
export function registerMirrorCommand(program: Command): void {
  program
    .command('mirror')
    .description('mirror the topics of each configured flow source->target, exactly once')
    .requiredOption('-c, --config <file>', 'YAML configuration file')
    .option('--flow <source->target...>', 'run only these flows (default: every enabled flow)')
    .option('--http-port <port>', 'override http.port (beside a `crr replay` on one host)', port)
    .action(async (opts: { config: string; flow?: string[]; httpPort?: number }) => {
      const config = loadConfigOrExit(opts.config);
      if (opts.httpPort !== undefined) config.http.port = opts.httpPort;
      const known = config.mirror.flows.map((f) => `${f.source}->${f.target}`);
      if (known.length === 0) {
        process.stderr.write(`crr mirror: ${opts.config} configures no flow (mirror.flows)\n`);
        process.exit(EXIT.CONFIG);
      }
      const unknown = (opts.flow ?? []).filter((f) => !known.includes(f));
      if (unknown.length > 0) {
        process.stderr.write(`crr mirror: unknown flow ${unknown.join(', ')}; configured: ${known.join(', ')}\n`);
        process.exit(EXIT.USAGE);
      }
      const logger = createLogger(config.log.level);
      const service = await startMirrorService(config, logger, { onlyFlows: opts.flow });
      stopOnSignals(service, config, logger);
    });
}
