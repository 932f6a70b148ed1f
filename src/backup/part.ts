import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { Transform, pipeline, type Readable } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import { CrrError } from '../errors.js';
import type { EdgeRow, VertexRow } from '../store/store.js';
import { decryptingStream, encryptingStream, partAad, type BackupKeys } from './keys.js';
import type { BackupPart, Manifest } from './manifest.js';
import type { BackupRepository } from './repository.js';

/**
 * What is wrong with a part (or the manifest) of a backup, as `crr backup verify` reports it.
 * `key`: the backup is encrypted and the key it names is not the one configured (or none is).
 */
export type PartProblem = 'missing' | 'corrupt' | 'count' | 'manifest' | 'unexpected' | 'key';

/** A CrrError CRR_BACKUP_INVALID naming the backup, the part and the problem (`backupId`, `part`, `problem` properties). */
export function partError(backupId: string, part: string, problem: PartProblem, message: string, cause?: unknown): CrrError {
  return new CrrError('CRR_BACKUP_INVALID', `backup ${backupId}: ${message}`, {
    context: { backupId, part, problem },
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * The key to decrypt the parts of backup `manifest` with, from the repository's keys: undefined
 * for a backup whose parts are not encrypted.
 * @throws CrrError CRR_BACKUP_INVALID (problem `key`, properties `backupId` and `keyId`) naming the
 *   backup and its key id, when it is encrypted and no `backup.encryption` key is configured, or
 *   one of another key id
 */
export function partKeyOf(manifest: Manifest, keys: BackupKeys | undefined): Buffer | undefined {
  const enc = manifest.encryption;
  if (enc === undefined) return undefined;
  const have = keys?.encryption;
  if (have?.keyId === enc.keyId) return have.key;
  throw new CrrError(
    'CRR_BACKUP_INVALID',
    `backup ${manifest.id}: its parts are encrypted (${enc.algorithm}) with key id ${enc.keyId}, and ${
      have === undefined ? 'no backup.encryption key is configured' : `the configured backup.encryption key is key id ${have.keyId}`
    }: configure the key of id ${enc.keyId} to read them`,
    { context: { backupId: manifest.id, part: manifest.parts[0]?.name ?? 'manifest.json', problem: 'key', keyId: enc.keyId } },
  );
}

/**
 * Writes one data part: NDJSON text in, gzip out (then AES-256-GCM with `encrypt`), streamed to
 * the repository as it is written. The SHA-256 and size of the stored bytes, the records and the
 * uncompressed size are counted on the way, so the part is never read back. Call {@link finish}
 * once, or {@link abort}.
 */
export class PartWriter {
  /** Lines written. */
  records = 0;
  /** NDJSON bytes written (before gzip). */
  uncompressedBytes = 0;
  /** Bytes handed to the repository so far (gzip; encrypted: with IV and tag). */
  bytes = 0;
  private readonly hash = createHash('sha256');
  private readonly gzip = createGzip();
  private readonly tap: Transform;
  private readonly uploaded: Promise<void>;
  private failure: { err: unknown } | undefined;

  /**
   * @param key the part's repository key, `<id>/<name>`
   * @param name the part's name, e.g. `vertices-00001.ndjson.gz` (`...ndjson.gz.enc` encrypted)
   * @param encrypt the AES-256 key and the part's associated data (keys.ts partAad); absent: stored as gzip
   */
  constructor(
    repo: BackupRepository,
    readonly key: string,
    readonly name: string,
    readonly kind: BackupPart['kind'],
    encrypt?: { key: Buffer; aad: Buffer },
  ) {
    this.tap = new Transform({
      transform: (chunk: Buffer, _enc, cb) => {
        this.hash.update(chunk);
        this.bytes += chunk.length;
        cb(null, chunk);
      },
    });
    this.gzip.on('error', (err) => this.tap.destroy(err));
    // the repository may stop listening once it failed; its error reaches us through `uploaded`
    this.tap.on('error', () => undefined);
    if (encrypt === undefined) this.gzip.pipe(this.tap);
    else {
      const cipher = encryptingStream(encrypt.key, encrypt.aad);
      cipher.on('error', (err) => this.tap.destroy(err));
      this.gzip.pipe(cipher).pipe(this.tap);
    }
    this.uploaded = repo.put(key, this.tap);
    this.uploaded.catch((err: unknown) => (this.failure ??= { err }));
  }

  /**
   * Appends `text` (whole lines, each ending in `\n`), waiting while the repository is behind.
   * @throws the repository's error once the upload failed
   */
  async write(text: string, lines: number): Promise<void> {
    if (this.failure) throw this.failure.err;
    const buf = Buffer.from(text, 'utf8');
    this.records += lines;
    this.uncompressedBytes += buf.length;
    if (!this.gzip.write(buf)) await Promise.race([once(this.gzip, 'drain'), this.uploaded]);
  }

  /** Ends the part and waits until the repository holds it. @returns the part's manifest entry */
  async finish(): Promise<BackupPart> {
    this.gzip.end();
    await this.uploaded;
    return {
      name: this.name,
      kind: this.kind,
      records: this.records,
      bytes: this.bytes,
      uncompressedBytes: this.uncompressedBytes,
      sha256: this.hash.digest('hex'),
    };
  }

  /** Stops the upload (nothing is stored under the key) and waits for it to end. Never throws. */
  async abort(reason: unknown): Promise<void> {
    this.gzip.destroy(reason instanceof Error ? reason : new Error(String(reason)));
    await this.uploaded.catch(() => undefined);
  }
}

/**
 * Longest line a part may hold, in UTF-8 bytes: 16 MiB. A line is one vertex or edge row with its
 * attributes, far shorter. {@link readPart} refuses a longer line as corrupt as soon as it has read
 * this much of it, before the part's SHA-256 can be checked (at its end), so that a corrupt or
 * hostile part cannot make a reader hold more than this of one line.
 */
export const MAX_PART_LINE_BYTES = 16 * 1024 * 1024;

/**
 * Most bytes of lines in one batch {@link readPart} yields: 64 MiB. A batch ends at `batchRows`
 * rows or once its lines reach this, whichever comes first, so the rows held at once stay bounded
 * whatever the rows' sizes.
 */
export const MAX_PART_BATCH_BYTES = 64 * 1024 * 1024;

/**
 * Reads one part of a backup, yielding its rows in batches of up to `batchRows` (and up to
 * {@link MAX_PART_BATCH_BYTES} of lines) as they are decrypted (with `decrypt`) and decompressed,
 * and checks it at its end against its manifest entry: the SHA-256 and size of the stored
 * bytes, the AES-256-GCM tag (over the part and its place: backup id, index, name), the number
 * of records and the uncompressed size. Every line must be a JSON row of the part's kind. Rows are yielded
 * before the part's checksum can be known: a consumer must discard what it read when this throws
 * (a restore writes into a staging schema).
 *
 * Memory is bounded before the checksum is known: a line longer than {@link MAX_PART_LINE_BYTES}
 * is refused when that much of it is read, and so are stored bytes past the entry's `bytes` and
 * decompressed bytes past its `uncompressedBytes` (a gzip bomb), without reading further.
 *
 * @param decrypt for an encrypted part (name ending `.enc`): the key ({@link partKeyOf}) and the
 *   part's index in the manifest's `parts`
 * @throws CrrError CRR_BACKUP_INVALID naming the part: `missing` (no such object), `corrupt`
 *   (gzip error, SHA-256 or size mismatch, an authentication tag that does not match, a line that
 *   is not a row or is too long, naming the line), `count` (another number of records than the
 *   manifest says), `key` (an encrypted part and no `decrypt`)
 * @throws CrrError CRR_REPOSITORY when the repository fails while reading
 */
export async function* readPart(
  repo: BackupRepository,
  backupId: string,
  part: BackupPart,
  batchRows: number,
  decrypt?: { key: Buffer; index: number },
): AsyncGenerator<VertexRow[] | EdgeRow[]> {
  const key = `${backupId}/${part.name}`;
  if (part.name.endsWith('.enc') && decrypt === undefined) throw partError(backupId, part.name, 'key', `part ${part.name} is encrypted: it needs its key`);
  const source = await repo.get(key);
  if (source === undefined) throw partError(backupId, part.name, 'missing', `part ${part.name} is missing from the repository (${repo.description})`);
  const corrupt = (why: string, cause?: unknown): CrrError => partError(backupId, part.name, 'corrupt', `part ${part.name} is corrupt: ${why}`, cause);
  const hash = createHash('sha256');
  let bytes = 0;
  let uncompressedBytes = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes > part.bytes) cb(corrupt(`more than the ${part.bytes} bytes stored the manifest says`));
      else cb(null, chunk);
    },
  });
  const gunzip = createGunzip();
  // the callback form: an error anywhere destroys every stream, and the iteration below throws it
  const out: Readable =
    decrypt === undefined
      ? pipeline(source, tap, gunzip, () => undefined)
      : pipeline(
          source,
          tap,
          decryptingStream(decrypt.key, partAad(backupId, decrypt.index, part.name), (why) =>
            corrupt(`${why}: it was changed, or it is another part or another backup's, or its key is not the one of the manifest's key id`),
          ),
          gunzip,
          () => undefined,
        );
  const isRow = part.kind === 'vertices' ? isVertexRow : isEdgeRow;
  // the line being read: pieces of decompressed chunks, split at '\n' bytes (never inside a UTF-8 sequence)
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let line = 0;
  let batch: Array<VertexRow | EdgeRow> = [];
  let batchBytes = 0;
  const tooLong = (): CrrError =>
    corrupt(`line ${line + 1} is longer than ${MAX_PART_LINE_BYTES} bytes (MAX_PART_LINE_BYTES), the longest line a part may hold`);
  const parse = (text: string): VertexRow | EdgeRow => {
    line++;
    let row: unknown;
    try {
      row = JSON.parse(text);
    } catch {
      throw corrupt(`line ${line} is not JSON`);
    }
    if (!isRow(row)) throw corrupt(`line ${line} is not a ${part.kind === 'vertices' ? 'vertex' : 'edge'} row`);
    return row;
  };
  try {
    for await (const chunk of out as AsyncIterable<Buffer>) {
      uncompressedBytes += chunk.length;
      if (uncompressedBytes > part.uncompressedBytes) throw corrupt(`more than the ${part.uncompressedBytes} bytes uncompressed the manifest says`);
      let start = 0;
      for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
        const piece = chunk.subarray(start, nl);
        if (pendingBytes + piece.length > MAX_PART_LINE_BYTES) throw tooLong();
        const text = (pending.length === 0 ? piece : Buffer.concat([...pending, piece])).toString('utf8');
        batchBytes += pendingBytes + piece.length;
        pending = [];
        pendingBytes = 0;
        start = nl + 1;
        batch.push(parse(text));
        if (batch.length >= batchRows || batchBytes >= MAX_PART_BATCH_BYTES) {
          yield batch as VertexRow[] | EdgeRow[];
          batch = [];
          batchBytes = 0;
        }
      }
      if (start < chunk.length) {
        pendingBytes += chunk.length - start;
        if (pendingBytes > MAX_PART_LINE_BYTES) throw tooLong();
        pending.push(chunk.subarray(start));
      }
    }
  } catch (err) {
    if (err instanceof CrrError) throw err;
    // zlib's own errors (Z_DATA_ERROR, Z_BUF_ERROR = truncated ...); a source error keeps its code
    if (/^(Z_|ERR_ZLIB)/.test(String((err as NodeJS.ErrnoException)?.code ?? ''))) {
      throw corrupt(`gzip: ${(err as Error).message}`, err);
    }
    throw new CrrError('CRR_REPOSITORY', `repository ${repo.description}: reading ${key} failed: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
      context: { repository: repo.description, key },
    });
  } finally {
    out.destroy();
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== part.sha256) throw corrupt(`SHA-256 is ${sha256}, the manifest says ${part.sha256}`);
  if (bytes !== part.bytes) throw corrupt(`${bytes} bytes stored, the manifest says ${part.bytes}`);
  if (pendingBytes > 0) throw corrupt(`the last line (${line + 1}) does not end with a newline`);
  if (line !== part.records) throw partError(backupId, part.name, 'count', `part ${part.name} holds ${line} records, the manifest says ${part.records}`);
  if (uncompressedBytes !== part.uncompressedBytes) throw corrupt(`${uncompressedBytes} bytes uncompressed, the manifest says ${part.uncompressedBytes}`);
  if (batch.length > 0) yield batch as VertexRow[] | EdgeRow[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isRef = (v: unknown): boolean => isObject(v) && typeof v.type === 'string' && typeof v.id === 'string';

function isVertexRow(v: unknown): v is VertexRow {
  return isObject(v) && typeof v.type === 'string' && typeof v.id === 'string' && isObject(v.attributes);
}

function isEdgeRow(v: unknown): v is EdgeRow {
  return isObject(v) && typeof v.type === 'string' && isRef(v.from) && isRef(v.to) && isObject(v.attributes);
}

/**
 * Checks only the stored bytes of a part against its manifest entry, SHA-256 and size, without
 * decrypting or decompressing it: what `crr backup verify` can check of an encrypted part without
 * its key.
 * @throws CrrError CRR_BACKUP_INVALID naming the part: `missing`, or `corrupt` (SHA-256 or size)
 * @throws CrrError CRR_REPOSITORY when the repository fails while reading
 */
export async function checkStoredPart(repo: BackupRepository, backupId: string, part: BackupPart): Promise<void> {
  const key = `${backupId}/${part.name}`;
  const source = await repo.get(key);
  if (source === undefined) throw partError(backupId, part.name, 'missing', `part ${part.name} is missing from the repository (${repo.description})`);
  const corrupt = (why: string): CrrError => partError(backupId, part.name, 'corrupt', `part ${part.name} is corrupt: ${why}`);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (bytes > part.bytes) throw corrupt(`more than the ${part.bytes} bytes stored the manifest says`);
    }
  } catch (err) {
    if (err instanceof CrrError) throw err;
    throw new CrrError('CRR_REPOSITORY', `repository ${repo.description}: reading ${key} failed: ${(err as Error)?.message ?? String(err)}`, {
      cause: err,
      context: { repository: repo.description, key },
    });
  } finally {
    source.destroy();
  }
  const sha256 = hash.digest('hex');
  if (sha256 !== part.sha256) throw corrupt(`SHA-256 is ${sha256}, the manifest says ${part.sha256}`);
  if (bytes !== part.bytes) throw corrupt(`${bytes} bytes stored, the manifest says ${part.bytes}`);
}
