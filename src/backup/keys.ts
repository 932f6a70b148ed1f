import { createCipheriv, createDecipheriv, createHash, createHmac, type DecipherGCM, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Transform } from 'node:stream';
import { registerSecret } from '../config/secrets.js';
import { CrrError } from '../errors.js';
import type { BackupConfig } from './schema.js';

// The keys of a cluster's backups (`backup.encryption`, `backup.manifestHmac`) and what is done
// with them: AES-256-GCM on every part, HMAC-SHA256 on the manifest (docs/architecture.md,
// "Backups, restore and reseed"; README "Security").

/** Length of every backup key, bytes: AES-256 takes 32; the manifest HMAC key is made the same length. */
export const BACKUP_KEY_BYTES = 32;
/** Length of a part's random AES-GCM initialisation vector, bytes (NIST SP 800-38D's recommended 96 bits); the first bytes of an encrypted part. */
export const PART_IV_BYTES = 12;
/** Length of a part's AES-GCM authentication tag, bytes; the last bytes of an encrypted part. */
export const PART_TAG_BYTES = 16;
/** The cipher of encrypted parts, as the manifest names it. */
export const PART_CIPHER = 'AES-256-GCM';
/** The MAC of signed manifests, as the manifest names it. */
export const MANIFEST_MAC = 'HMAC-SHA256';
/** HKDF-SHA256 `info` deriving the manifest HMAC key from the encryption key when `backup.manifestHmac` is not given. */
const HMAC_KEY_INFO = 'crr backup manifest HMAC-SHA256 v1';

/** One key: its bytes (never logged, never written) and its id (written in manifests, to name it). */
export interface BackupKey {
  /** {@link BACKUP_KEY_BYTES} bytes. */
  key: Buffer;
  /** The config's `keyId`, else {@link defaultKeyId}. */
  keyId: string;
}

/**
 * The keys of one cluster's backups, as {@link loadBackupKeys} reads them from its `backup` config.
 * A repository opened by openRepository carries them (`BackupRepository.keys`): createBackup
 * encrypts and signs with them, readManifest / restore / verify decrypt and check with them.
 */
export interface BackupKeys {
  /** `backup.encryption`: parts are encrypted with it. Absent: parts are written in the clear. */
  encryption?: BackupKey;
  /**
   * The manifest HMAC key: `backup.manifestHmac`, else (with `encryption`) derived from the
   * encryption key with HKDF-SHA256 (`derived` true; its keyId is the encryption key's).
   * Absent: manifests are not signed, and their HMAC, if any, is not checked.
   */
  manifestHmac?: BackupKey & { derived: boolean };
}

/**
 * A key's default id: the first 16 hex digits of the SHA-256 of the key's bytes. It names the key
 * in manifests and messages without giving anything of it away (a 256-bit random key cannot be
 * found from 64 bits of its hash).
 */
export function defaultKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

/**
 * Reads a key file. Accepted forms: exactly 32 raw bytes; 64 hex digits; or the base64 (standard
 * or URL-safe, padded or not) of 32 bytes; the text forms may end with a newline (what
 * `openssl rand -hex 32 > key` or `openssl rand -base64 32 > key` write). The text form is
 * registered as a secret (src/config/secrets.ts), so no output shows it.
 *
 * @param file path of the key file
 * @param configPath the config path naming it, for messages (`clusters.primary.backup.encryption.keyFile`)
 * @throws CrrError CRR_CONFIG_INVALID naming `configPath` and the file: unreadable, or not one of
 *   the accepted forms (its length is given, never its content)
 */
export function readKeyFile(file: string, configPath: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (cause) {
    throw new CrrError('CRR_CONFIG_INVALID', `${configPath}: cannot read ${file}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, {
      cause,
      context: { path: configPath },
    });
  }
  if (raw.length === BACKUP_KEY_BYTES) return raw;
  const text = raw.toString('latin1').replace(/\r?\n$/, '');
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) key = Buffer.from(text, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) key = Buffer.from(text, 'base64');
  if (key?.length !== BACKUP_KEY_BYTES) {
    throw new CrrError(
      'CRR_CONFIG_INVALID',
      `${configPath}: ${file} is not a ${BACKUP_KEY_BYTES}-byte key: expected ${BACKUP_KEY_BYTES} raw bytes, 64 hex digits or the base64 of ${BACKUP_KEY_BYTES} bytes (e.g. \`openssl rand -hex 32\`), found ${raw.length} bytes`,
      { context: { path: configPath } },
    );
  }
  registerSecret(text);
  return key;
}

/**
 * Reads the keys a cluster's `backup` config names ({@link readKeyFile} for each file).
 * @param configPath the path of that `backup` config, for messages (`clusters.primary.backup`)
 * @returns no key when neither `encryption` nor `manifestHmac` is set
 * @throws CrrError CRR_CONFIG_INVALID naming the key file's config path
 */
export function loadBackupKeys(config: Pick<BackupConfig, 'encryption' | 'manifestHmac'>, configPath: string): BackupKeys {
  const keys: BackupKeys = {};
  if (config.encryption) {
    const key = readKeyFile(config.encryption.keyFile, `${configPath}.encryption.keyFile`);
    keys.encryption = { key, keyId: config.encryption.keyId ?? defaultKeyId(key) };
  }
  if (config.manifestHmac) {
    const key = readKeyFile(config.manifestHmac.keyFile, `${configPath}.manifestHmac.keyFile`);
    keys.manifestHmac = { key, keyId: config.manifestHmac.keyId ?? defaultKeyId(key), derived: false };
  } else if (keys.encryption) {
    // a key of its own for the MAC (never the cipher's key for two algorithms), from the one secret given
    const key = Buffer.from(hkdfSync('sha256', keys.encryption.key, Buffer.alloc(0), HMAC_KEY_INFO, BACKUP_KEY_BYTES));
    keys.manifestHmac = { key, keyId: keys.encryption.keyId, derived: true };
  }
  return keys;
}

/**
 * The associated data of part number `index` (0-based, in the manifest's `parts` order) of backup
 * `backupId`: AES-GCM authenticates it with the part, so a part decrypts only as the part it was
 * written as (another backup's part, or another part of this one, in its place is refused).
 */
export function partAad(backupId: string, index: number, name: string): Buffer {
  return Buffer.from(`crr backup part v1\n${backupId}\n${index}\n${name}`, 'utf8');
}

/**
 * A stream encrypting what goes through it with AES-256-GCM under a fresh random
 * {@link PART_IV_BYTES}-byte IV: out comes `IV || ciphertext || tag` ({@link PART_TAG_BYTES} bytes).
 */
export function encryptingStream(key: Buffer, aad: Buffer): Transform {
  const iv = randomBytes(PART_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad);
  let started = false;
  const start = (t: Transform): void => {
    if (!started) t.push(iv);
    started = true;
  };
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      start(this);
      cb(null, cipher.update(chunk));
    },
    flush(cb) {
      start(this);
      this.push(cipher.final());
      cb(null, cipher.getAuthTag());
    },
  });
}

/**
 * A stream decrypting `IV || ciphertext || tag` ({@link encryptingStream}). Plaintext comes out
 * before the tag is checked (at the end): a reader must discard what it read when the stream
 * fails. The stream fails with `onAuthFailure()`'s error when the tag does not match (the bytes,
 * the associated data or the key differ from the writer's), or when it is shorter than IV and tag.
 */
export function decryptingStream(key: Buffer, aad: Buffer, onAuthFailure: (why: string) => Error): Transform {
  let head = Buffer.alloc(0);
  let decipher: DecipherGCM | undefined;
  // the last PART_TAG_BYTES bytes seen: the tag once the input ends
  let tail = Buffer.alloc(0);
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      let data = chunk;
      if (decipher === undefined) {
        head = Buffer.concat([head, data]);
        if (head.length < PART_IV_BYTES) return cb();
        decipher = createDecipheriv('aes-256-gcm', key, head.subarray(0, PART_IV_BYTES)).setAAD(aad);
        data = head.subarray(PART_IV_BYTES);
        head = Buffer.alloc(0);
      }
      const all = tail.length === 0 ? data : Buffer.concat([tail, data]);
      const cut = Math.max(0, all.length - PART_TAG_BYTES);
      tail = Buffer.from(all.subarray(cut));
      cb(null, cut === 0 ? undefined : decipher.update(all.subarray(0, cut)));
    },
    flush(cb) {
      if (decipher === undefined || tail.length < PART_TAG_BYTES) return cb(onAuthFailure('shorter than its IV and authentication tag'));
      try {
        decipher.setAuthTag(tail);
        cb(null, decipher.final());
      } catch {
        cb(onAuthFailure('its AES-256-GCM authentication tag does not match'));
      }
    },
  });
}

/**
 * A canonical serialization of a JSON value: object keys sorted (by UTF-16 code units), no
 * whitespace, strings and numbers as JSON.stringify writes them. For the JSON values of a
 * manifest this is RFC 8785 (JSON Canonicalization Scheme): the same value always gives the same
 * bytes, however the file was indented or its keys ordered.
 * @throws TypeError on a value JSON cannot hold (undefined, a function, a non-finite number)
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`not a JSON number: ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`not a JSON value: ${typeof value}`);
}

/**
 * The HMAC-SHA256 of a manifest, lower-case hex: over {@link canonicalJson} of the manifest
 * without its `hmac` field.
 */
export function manifestMac(manifest: Record<string, unknown>, key: Buffer): string {
  const { hmac: _hmac, ...rest } = manifest;
  return createHmac('sha256', key).update(canonicalJson(rest), 'utf8').digest('hex');
}

/** Whether two hex MACs are equal, compared in constant time. */
export function macEquals(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
