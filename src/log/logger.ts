import pino, { type Logger } from 'pino';
import { redactSecrets, redactText, serializeError } from '../config/secrets.js';

/**
 * The `err` serializer: an Error as pino shows it (type, message with its causes', stack, own
 * properties), secrets censored (src/config/secrets.ts). A value that is no Error (already
 * serialized by the log formatter) is kept.
 */
function errSerializer(err: unknown): unknown {
  return err instanceof Error ? serializeError(err) : err;
}

/**
 * Creates the root logger: pino JSON on stdout (or `destination`), secrets redacted at any
 * depth (src/config/secrets.ts): every log object and child binding is walked (a property in
 * SECRET_KEYS is censored, Errors anywhere are serialized with their causes), and every line is
 * scanned as text for URL passwords, `password=` values and the secret values registered from
 * the config. Components take a child with `logger.child({ component: 'mirror' })`.
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
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { err: errSerializer },
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => redactSecrets(bindings),
        log: (obj) => redactSecrets(obj),
      },
      // the last net: the message, a stack or any text a walk could not see
      hooks: { streamWrite: (line) => redactText(line) },
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
