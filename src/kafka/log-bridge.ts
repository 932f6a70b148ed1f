import type { logCreator, logLevel as LogLevel } from 'kafkajs';
import { logLevel } from './kafkajs.js';
import type { Logger } from 'pino';

/**
 * Bridges KafkaJS's own log into pino, as a child logger `{component: 'kafkajs', ...}`.
 *
 * Levels: KafkaJS ERROR → pino `warn` (KafkaJS logs every retried request failure as an error
 * although it then retries; crr logs the failures that matter itself, at `error`), WARN → `warn`,
 * INFO → `debug` (group joins and connection chatter would drown crr's own info lines),
 * DEBUG → `trace`.
 *
 * @param logger the parent pino logger
 * @param clientLabel names the KafkaJS client in each line (e.g. `primary->dr source consumer`)
 */
export function kafkaLogCreator(logger: Logger, clientLabel: string): logCreator {
  const child = logger.child({ component: 'kafkajs', client: clientLabel });
  return () =>
    ({ level, log }) => {
      const { message, timestamp: _ts, logger: _l, ...extra } = log as Record<string, unknown> & { message: string };
      const line = { namespace: log.namespace, ...extra };
      // crr aborts a failed transaction and resumes from the positions on the target, so
      // KafkaJS's warning about bounded retries of an idempotent producer does not apply.
      if (message.startsWith('Limiting retries for the idempotent producer')) return;
      switch (level) {
        case logLevel.ERROR:
        case logLevel.WARN:
          child.warn(line, message);
          break;
        case logLevel.INFO:
          child.debug(line, message);
          break;
        default:
          child.trace(line, message);
      }
    };
}

/** The KafkaJS log level that lets through what the pino level will print. */
export function kafkaLevelFor(pinoLevel: string): LogLevel {
  switch (pinoLevel) {
    case 'trace':
      return logLevel.DEBUG;
    case 'debug':
      return logLevel.INFO;
    case 'silent':
    case 'fatal':
    case 'error':
      return logLevel.NOTHING;
    default:
      return logLevel.WARN;
  }
}
