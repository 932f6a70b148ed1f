import pino, { type Logger } from 'pino';

/**
 * Paths pino replaces with `[redacted]` wherever they appear in a log line: SASL passwords,
 * S3 secret keys, tokens. The config is never logged whole, but errors and KafkaJS log extras
 * may carry pieces of it.
 */
export const REDACT_PATHS = [
  'password',
  '*.password',
  '*.*.password',
  'sasl.password',
  '*.sasl.password',
  'secretAccessKey',
  '*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  'token',
  '*.token',
];

/**
 * Creates the root logger: pino JSON on stdout (or `destination`), secrets redacted.
 * Components take a child with `logger.child({ component: 'mirror' })`.
 *
 * @param level pino level; default `info`
 * @param destination a pino destination; default stdout (fd 1), written synchronously so
 *   that lines logged just before an exit are not lost
 */
export function createLogger(level = 'info', destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'crr' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

export type { Logger };
