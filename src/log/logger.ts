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

/**
 * The logger of a one-shot CLI command (`crr status`, `crr promote`, `crr backup` ...): as
 * {@link createLogger}, on stderr. A command's stdout holds only what it prints for the
 * operator — with `--json`, exactly one JSON document — so `crr ... --json | jq` always works,
 * whatever KafkaJS or crr logs meanwhile. Daemons (`crr run`, `crr mirror`) log on stdout.
 *
 * @param level pino level; default `info`
 */
export function createCliLogger(level = 'info'): Logger {
  return createLogger(level, pino.destination({ fd: 2, sync: true }));
}

export type { Logger };
