/**
 * Secrets: the one list of what crr treats as secret, and the redaction every output goes
 * through (logs, `/status`, `crr status`, `crr config`, error messages).
 *
 * Two rules, applied together:
 * 1. **By key**: the value of any property named in {@link SECRET_KEYS} (case-insensitive), at
 *    any depth of an object, is replaced with {@link REDACTED}. In crr's config these are
 *    `clusters.<alias>.sasl.password`, `clusters.<alias>.backup.repository.secretAccessKey`
 *    (and `sessionToken`), and any `token`.
 * 2. **By value**: in any string, the password part of a URL (`postgres://user:PASSWORD@host`,
 *    so `clusters.<alias>.store.connectionString`), a libpq keyword `password=...`, and every
 *    secret value crr knows of (registered from the config at load by {@link registerConfigSecrets},
 *    or from a secret file when it is read, with {@link registerSecret}) is replaced. This is
 *    what keeps a secret out of an error message that echoes it (a driver quoting its
 *    connection string, a stack trace).
 *
 * Values shorter than {@link MIN_SECRET_LENGTH} characters are not registered (replacing every
 * `a` of a text would destroy it); rule 1 still censors them under their key.
 *
 * This module imports nothing of crr, so that errors.ts and the logger can use it.
 */

/** What a secret is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Property names whose whole value is a secret, wherever they appear (compared in lower case).
 * The source of the list: crr's config fields (SASL `password`, S3 `secretAccessKey` and
 * `sessionToken`, bearer and OAUTHBEARER `token`s), and the names drivers use for the same
 * things (`passwd`, `accessToken`, `authorization`, `passphrase`, `privateKey`, `apiKey`).
 */
export const SECRET_KEYS: ReadonlySet<string> = new Set(
  ['password', 'passwd', 'secretAccessKey', 'sessionToken', 'token', 'accessToken', 'bearerToken', 'authorization', 'passphrase', 'privateKey', 'apiKey'].map(
    (k) => k.toLowerCase(),
  ),
);

/** Secret values shorter than this are not registered for redaction by value. */
export const MIN_SECRET_LENGTH = 4;

/** `scheme://user:PASSWORD@`: group 1 is everything before the password. */
const URL_PASSWORD = /([a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^\s:/@"'?#]*:)([^\s@/"']+)@/g;
/** A libpq keyword/value pair `password=...` (also `password = '...'`). */
const KEYWORD_PASSWORD = /\b(password\s*=\s*)('[^']*'|[^\s"',;]+)/gi;

/** Every registered secret value, with its JSON-escaped and URL-decoded forms. */
const known = new Set<string>();

/** Whether a property name is in {@link SECRET_KEYS}. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEYS.has(key.toLowerCase());
}

/**
 * Registers a secret value (a password read from a file, a token) so that every later output
 * censors it wherever it appears. Values shorter than {@link MIN_SECRET_LENGTH} are ignored.
 */
export function registerSecret(value: string | undefined): void {
  if (value === undefined || value.length < MIN_SECRET_LENGTH) return;
  known.add(value);
  const escaped = JSON.stringify(value).slice(1, -1);
  if (escaped !== value) known.add(escaped);
  try {
    const decoded = decodeURIComponent(value);
    if (decoded !== value && decoded.length >= MIN_SECRET_LENGTH) known.add(decoded);
  } catch {
    // not URI-encoded
  }
}

/** Forgets every registered secret (tests). */
export function clearRegisteredSecrets(): void {
  known.clear();
}

/**
 * Registers every secret of a config object: the values under {@link SECRET_KEYS} and the
 * password part of any URL in it (a connection string). Called by the config loader.
 */
export function registerConfigSecrets(config: unknown): void {
  const visit = (node: unknown, depth: number): void => {
    if (depth > 16 || node === null || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
      if (typeof v === 'string') {
        if (isSecretKey(k)) registerSecret(v);
        for (const m of v.matchAll(URL_PASSWORD)) registerSecret(m[2]);
      } else visit(v, depth + 1);
    }
  };
  visit(config, 0);
}

/**
 * A string with every secret in it replaced by {@link REDACTED}: registered values, URL
 * passwords, libpq `password=` values. Cheap when there is nothing to replace (a few
 * `includes` and two regex scans).
 */
export function redactText(text: string): string {
  let out = text;
  for (const secret of known) if (out.includes(secret)) out = out.replaceAll(secret, REDACTED);
  if (out.includes('://')) out = out.replace(URL_PASSWORD, `$1${REDACTED}@`);
  if (/password/i.test(out)) out = out.replace(KEYWORD_PASSWORD, `$1${REDACTED}`);
  return out;
}

/**
 * An Error as a plain object, the way pino's `err` serializer shows it (type, message with the
 * messages of its causes, stack, and its own enumerable properties such as `code`), redacted.
 */
export function serializeError(err: Error, depth = 0): Record<string, unknown> {
  const messages: string[] = [];
  for (let cur: unknown = err, i = 0; cur instanceof Error && i < 5; cur = cur.cause, i++) if (!messages.includes(cur.message)) messages.push(cur.message);
  const out: Record<string, unknown> = { type: err.constructor?.name ?? err.name, message: redactText(messages.join(': ')) };
  if (err.stack) out.stack = redactText(err.stack);
  for (const [k, v] of Object.entries(err)) {
    if (k === 'cause' || k === 'message' || k === 'stack') continue;
    out[k] = isSecretKey(k) ? REDACTED : redactSecrets(v, depth + 1);
  }
  if (err.cause !== undefined) out.cause = err.cause instanceof Error ? serializeError(err.cause, depth + 1) : redactSecrets(err.cause, depth + 1);
  return out;
}

/**
 * A copy of a value with every secret censored, at any depth (rule 1 and rule 2 above): plain
 * objects and arrays are copied, strings redacted, Errors serialized ({@link serializeError}).
 * Other objects (a Buffer, a Date, class instances) are kept as they are. Past depth 12 a
 * value is replaced with `[too deep]`; a cycle with `[circular]`.
 *
 * Cost: one walk of the value; meant for log objects and status documents (small), not for
 * record payloads.
 */
export function redactSecrets<T>(value: T, depth = 0, seen: WeakSet<object> = new WeakSet()): T {
  return walk(value, depth, seen) as T;
}

function walk(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return redactText(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > 12) return '[too deep]';
  if (seen.has(value)) return '[circular]';
  const proto = Object.getPrototypeOf(value) as unknown;
  const plain = proto === Object.prototype || proto === null;
  if (!plain && !Array.isArray(value) && !(value instanceof Error)) return value;
  // `seen` holds the objects on the path from the root: a cycle, not an object shown twice
  seen.add(value);
  try {
    if (value instanceof Error) return serializeError(value, depth);
    if (Array.isArray(value)) return value.map((v) => walk(v, depth + 1, seen));
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      out[k] = isSecretKey(k) && v !== undefined && v !== null && v !== '' ? REDACTED : walk(v, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
