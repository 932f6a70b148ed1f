import type { Readable } from 'node:stream';
import { CrrError, describeError } from '../errors.js';
import type { EdgeRow, VertexRow } from '../store/store.js';
import { MANIFEST_NAME, parseBackupId, parseManifest, type Manifest } from './manifest.js';
import { partError, partKeyOf, readPart } from './part.js';
import { isPinKey, readPins, type FoundPin } from './pin.js';
import type { BackupRepository } from './repository.js';

// Finding and reading the backups of a repository: their folders, manifests and rows.

/** The repository keys of a backup's objects start with this: `<id>/`. */
export const backupFolder = (id: string): string => `${id}/`;

/**
 * Every key of a backup's data (manifest and parts) in its folder, in the repository's listing
 * order (`[]` when there is none). Its pins (`<id>/pins/`, src/backup/pin.ts) are not its data
 * and are left out.
 * @throws CrrError CRR_REPOSITORY when the repository fails
 */
export async function keysOf(repo: BackupRepository, id: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of repo.list(backupFolder(id))) if (!isPinKey(o.key)) keys.push(o.key);
  return keys;
}

/** The text of a stream, refusing more than `maxBytes`. */
async function readText(stream: Readable, maxBytes: number, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) {
      stream.destroy();
      throw new RangeError(`${what} is larger than ${maxBytes} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A manifest is never larger than this: 256 MiB (the catalog is in it). */
const MAX_MANIFEST_BYTES = 256 * 1024 * 1024;

/**
 * Reads and validates a backup's manifest; with a manifest HMAC key in `repo.keys`, checks its
 * HMAC (see {@link parseManifest}). Its parts' encryption key is not needed here (listing works
 * without it): {@link readBackup} and the restore ask for it.
 * @throws CrrError CRR_BACKUP_NOT_FOUND when the repository has no object of that backup
 * @throws CrrError CRR_BACKUP_INVALID when the manifest is missing (an incomplete backup),
 *   invalid, of another format version, or its HMAC is missing or wrong while a manifest HMAC
 *   key is configured (see {@link parseManifest})
 * @throws CrrError CRR_REPOSITORY when the repository fails
 */
export async function readManifest(repo: BackupRepository, id: string): Promise<Manifest> {
  if (parseBackupId(id) === undefined)
    throw new CrrError('CRR_BACKUP_NOT_FOUND', `"${id}" is not a backup id (expected YYYYMMDDTHHMMSSZ-<cluster>-<4 hex>)`, { context: { backupId: id } });
  const stream = await repo.get(`${id}/${MANIFEST_NAME}`);
  if (stream === undefined) {
    const keys = await keysOf(repo, id);
    if (keys.length === 0) throw new CrrError('CRR_BACKUP_NOT_FOUND', `no backup ${id} in ${repo.description}`, { context: { backupId: id } });
    throw partError(
      id,
      MANIFEST_NAME,
      'manifest',
      `backup ${id} is incomplete: it has ${keys.length} objects but no ${MANIFEST_NAME} (the backup failed or is still being written)`,
    );
  }
  let text: string;
  try {
    text = await readText(stream, MAX_MANIFEST_BYTES, `${id}/${MANIFEST_NAME}`);
  } catch (err) {
    if (err instanceof RangeError) throw partError(id, MANIFEST_NAME, 'manifest', err.message);
    throw new CrrError('CRR_REPOSITORY', `repository ${repo.description}: reading ${id}/${MANIFEST_NAME} failed: ${describeError(err)}`, { cause: err });
  }
  return parseManifest(text, id, repo.keys);
}

/** One backup as {@link listBackups} finds it. */
export interface BackupSummary {
  id: string;
  /** Cluster alias (from the manifest, else from the id). */
  cluster: string;
  /**
   * `complete`: a valid manifest; `incomplete`: objects but no manifest (failed, or being
   * written); `invalid`: a manifest that cannot be read (see `problem`).
   */
  status: 'complete' | 'incomplete' | 'invalid';
  /** Creation time, ms since the Unix epoch: the manifest's `createdAtMs`, else the id's time (to the second). */
  createdAtMs: number;
  /** The manifest of a complete backup. */
  manifest?: Manifest;
  /** Why an invalid backup is invalid. */
  problem?: string;
  /** Objects of the backup's data in its folder (parts and manifest; pins are not counted). */
  objects: number;
  /** Their total size as stored, bytes. */
  bytes: number;
  /** The newest of those objects' write time, ms since the Unix epoch. */
  lastModifiedMs: number;
  /** The pins on it (src/backup/pin.ts): reseeds or restores using it; prune and delete keep it while there is one. */
  pins: FoundPin[];
}

/**
 * Every backup in `repo`, oldest first (by creation time, then id), complete or not, with its
 * pins. Folders whose name is not a backup id are not backups and are left out, and so are
 * folders that hold nothing but pins (a backup deleted by hand, whose pin a reseed removes).
 * Manifests and pins are read (and validated) a few at a time.
 * @param options.cluster only the backups of this cluster alias
 * @throws CrrError CRR_REPOSITORY when the repository fails (an unreadable manifest is not an
 *   error here: that backup is listed as `invalid`)
 */
export async function listBackups(repo: BackupRepository, options: { cluster?: string } = {}): Promise<BackupSummary[]> {
  const folders = new Map<string, { objects: number; bytes: number; lastModifiedMs: number; hasManifest: boolean; hasPins: boolean }>();
  for await (const o of repo.list('')) {
    const slash = o.key.indexOf('/');
    if (slash < 0) continue;
    const id = o.key.slice(0, slash);
    const parsed = parseBackupId(id);
    if (parsed === undefined || (options.cluster !== undefined && parsed.cluster !== options.cluster)) continue;
    const f = folders.get(id) ?? { objects: 0, bytes: 0, lastModifiedMs: 0, hasManifest: false, hasPins: false };
    folders.set(id, f);
    if (isPinKey(o.key)) {
      f.hasPins = true;
      continue;
    }
    f.objects++;
    f.bytes += o.bytes;
    f.lastModifiedMs = Math.max(f.lastModifiedMs, o.lastModified.getTime());
    if (o.key === `${id}/${MANIFEST_NAME}`) f.hasManifest = true;
  }
  const backups = [...folders].filter(([, f]) => f.objects > 0);
  const summaries = await mapLimit(backups, 8, async ([id, f]): Promise<BackupSummary> => {
    const fromId = parseBackupId(id)!;
    const pins = f.hasPins ? await readPins(repo, id) : [];
    const base = {
      id,
      cluster: fromId.cluster,
      createdAtMs: fromId.time.getTime(),
      objects: f.objects,
      bytes: f.bytes,
      lastModifiedMs: f.lastModifiedMs,
      pins,
    };
    if (!f.hasManifest) return { ...base, status: 'incomplete' };
    try {
      const manifest = await readManifest(repo, id);
      return { ...base, status: 'complete', cluster: manifest.cluster, createdAtMs: manifest.createdAtMs, manifest };
    } catch (err) {
      if (err instanceof CrrError && err.code === 'CRR_BACKUP_INVALID') return { ...base, status: 'invalid', problem: err.message };
      if (err instanceof CrrError && err.code === 'CRR_BACKUP_NOT_FOUND') return { ...base, status: 'incomplete' }; // deleted meanwhile
      throw err;
    }
  });
  return summaries.sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** `fn` over `items`, at most `limit` at a time, results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** A batch of rows read back from a backup by {@link readBackup}. */
export type BackupBatch = { part: string; kind: 'vertices'; rows: VertexRow[] } | { part: string; kind: 'edges'; rows: EdgeRow[] };

/**
 * Reads a backup's rows for a restore: every vertices part, then every edges part, in batches
 * of up to `batchRows` (default 10,000), each part checked against the manifest as it is read
 * (see readPart in part.ts). Read the manifest first with {@link readManifest} (for positions,
 * catalog and cluster state). Rows of a part are yielded before its checksum is known: when
 * this throws, discard everything read (restore into a staging schema). Encrypted parts are
 * decrypted with `repo.keys.encryption`, which must be the key the manifest names.
 *
 * @throws CrrError CRR_BACKUP_NOT_FOUND / CRR_BACKUP_INVALID (the manifest; the key, before any
 *   part is read: see partKeyOf in part.ts; a part missing, corrupt or with another record
 *   count: the part is named) / CRR_REPOSITORY
 */
export async function* readBackup(repo: BackupRepository, id: string, options: { batchRows?: number; manifest?: Manifest } = {}): AsyncGenerator<BackupBatch> {
  const manifest = options.manifest ?? (await readManifest(repo, id));
  const batchRows = options.batchRows ?? 10_000;
  const key = partKeyOf(manifest, repo.keys);
  for (const [index, part] of manifest.parts.entries()) {
    for await (const rows of readPart(repo, id, part, batchRows, key === undefined ? undefined : { key, index }))
      yield { part: part.name, kind: part.kind, rows } as BackupBatch;
  }
}
