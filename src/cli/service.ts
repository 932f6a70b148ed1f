import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import type { CrrService } from '../service.js';
import { EXIT } from './exit-codes.js';

/**
 * Keeps a started service running until SIGTERM or SIGINT, then stops it — committing or
 * aborting open transactions and closing clients — and exits 0, or 70 when a component had
 * failed or the stop exceeded `mirror.shutdownTimeoutMs`. A second signal exits at once (130).
 */
export function stopOnSignals(service: CrrService, config: Config, logger: Logger): void {
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    logger.info({ signal }, 'stopping: finishing open transactions');
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: config.mirror.shutdownTimeoutMs }, 'shutdown timed out');
      process.exit(EXIT.SOFTWARE);
    }, config.mirror.shutdownTimeoutMs + 2000);
    timer.unref();
    service.stop().then(
      () => {
        logger.info('stopped');
        process.exit(service.failed() ? EXIT.SOFTWARE : EXIT.OK);
      },
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(EXIT.SOFTWARE);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
