import type { Readable } from 'node:stream';
import { CrrError, describeError, isRetriable } from '../errors.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import type { EdgeRow, SnapshotHeader, SnapshotSink, Store, VertexRow } from '../store/store.js';
import { version } from '../version.js';
import { MANIFEST_NAME, ManifestSchema, newBackupId, parseBackupId, parseManifest, totalsOf, type BackupPart, type Manifest } from './manifest.js';
import { PartWriter, partError, readPart, type PartProblem } from './part.js';
import type { BackupRepository } from './repository.js';
import { DEFAULT_PART_SIZE_BYTES, type RetentionPolicy } from './schema.js';

/** Progress of {@link createBackup}, reported after every batch and every finished part. */
export interface BackupProgress {
  vertices: number;
  edges: number;
  /** Parts finished (stored). */
  parts: number;
  /** gzip bytes handed to the repository so far. */
  bytes: number;
  /** NDJSON bytes written so far (before gzip). */
  uncompressedBytes: number;
}

/** Options of {@link createBackup}. */
export interface CreateBackupOptions {
  /** Alias of the cluster whose store this is; goes into the id and the manifest. */
  cluster: string;
  /** A part is closed once its uncompressed NDJSON reaches this many bytes. Default 256 MiB; integer >= 1. */
  partSizeBytes?: number;
  /** Rows per snapshot query and per batch. Default 10,000. */
  batchRows?: number;
  onProgress?: (p: BackupProgress) => void;
  /** Aborts the backup (its objects are removed); the promise rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Clock, for tests. Default `() => new Date()`. */
  now?: () => Date;
}

/** Lines are gathered into writes of about this many bytes. */
const WRITE_CHUNK_BYTES = 1024 * 1024;

/** The repository keys of a backup's objects start with this. */
const folder = (id: string): string => `${id}/`;

/** Receives the store's snapshot and writes it as parts (see manifest.ts for the layout). */
class BackupWriter implements SnapshotSink {
  snapshot: SnapshotHeader | undefined;
  readonly parts: BackupPart[] = [];
  private current: PartWriter | undefined;
  private readonly seq = { vertices: 0, edges: 0 };
  private readonly done = { vertices: 0, edges: 0, bytes: 0, uncompressedBytes: 0 };

  constructor(
    private readonly repo: BackupRepository,
    private readonly id: string,
    private readonly partSizeBytes: number,
    private readonly onProgress: ((p: BackupProgress) => void) | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {}

  async header(h: SnapshotHeader): Promise<void> {
    this.snapshot = h;
  }

  vertices(rows: VertexRow[]): Promise<void> {
    return this.write('vertices', rows);
  }

  edges(rows: EdgeRow[]): Promise<void> {
    return this.write('edges', rows);
  }

  private async write(kind: BackupPart['kind'], rows: Array<VertexRow | EdgeRow>): Promise<void> {
    this.signal?.throwIfAborted();
    if (this.current && this.current.kind !== kind) await this.closePart();
    let chunk = '';
    let chunkBytes = 0;
    let lines = 0;
    for (const row of rows) {
      const part = (this.current ??= this.openPart(kind));
      const line = `${JSON.stringify(row)}\n`;
      chunk += line;
      chunkBytes += Buffer.byteLength(line);
      lines++;
      if (part.uncompressedBytes + chunkBytes >= this.partSizeBytes) {
        await part.write(chunk, lines);
        this.done[kind] += lines;
        chunk = '';
        chunkBytes = 0;
        lines = 0;
        await this.closePart();
      } else if (chunkBytes >= WRITE_CHUNK_BYTES) {
        await part.write(chunk, lines);
        this.done[kind] += lines;
        chunk = '';
        chunkBytes = 0;
        lines = 0;
      }
    }
    if (lines > 0) {
      await this.current!.write(chunk, lines);
      this.done[kind] += lines;
    }
    this.report();
  }

  private openPart(kind: BackupPart['kind']): PartWriter {
    const name = `${kind}-${String(++this.seq[kind]).padStart(5, '0')}.ndjson.gz`;
    return new PartWriter(this.repo, `${this.id}/${name}`, name, kind);
  }

  /** Finishes the open part, if any. */
  async closePart(): Promise<void> {
    const part = this.current;
    if (!part) return;
    this.current = undefined;
    const entry = await part.finish();
    this.parts.push(entry);
    this.done.bytes += entry.bytes;
    this.done.uncompressedBytes += entry.uncompressedBytes;
    this.report();
  }

  /** Stops the open part's upload. Never throws. */
  async abort(reason: unknown): Promise<void> {
    const part = this.current;
    this.current = undefined;
    await part?.abort(reason);
  }

  private report(): void {
    this.onProgress?.({
      vertices: this.done.vertices,
      edges: this.done.edges,
      parts: this.parts.length,
      bytes: this.done.bytes + (this.current?.bytes ?? 0),
      uncompressedBytes: this.done.uncompressedBytes + (this.current?.uncompressedBytes ?? 0),
    });
  }
}

/**
 * Takes an online full backup of `store` into `repo` (DESIGN.md, "Backups"): one snapshot
 * transaction reads positions, cluster state, catalog, vertices and edges
 * ({@link Store.exportSnapshot}), so the backup holds exactly the events below the positions it
 * records while writes go on. Rows stream into gzip NDJSON parts (`<id>/vertices-00001.ndjson.gz`,
 * ... then `<id>/edges-00001.ndjson.gz`, ...; layout in manifest.ts), a new part once the
 * uncompressed bytes reach `partSizeBytes`; SHA-256, sizes and record counts are computed while
 * streaming. The manifest `<id>/manifest.json` is written LAST: until it exists the backup is
 * incomplete and {@link listBackups} says so.
 *
 * Memory: one snapshot batch (`batchRows`) plus the repository's upload buffers.
 * On failure (or abort) the objects written so far are deleted; when that fails too, the error
 * says so and names the incomplete backup to delete.
 *
 * @returns the manifest written
 * @throws CrrError CRR_STORE (reading the store), CRR_REPOSITORY (writing the repository), or
 *   the signal's reason when aborted
 */
export async function createBackup(store: Store, repo: BackupRepository, options: CreateBackupOptions): Promise<Manifest> {
  const now = options.now ?? ((): Date => new Date());
  const partSizeBytes = options.partSizeBytes ?? DEFAULT_PART_SIZE_BYTES;
  if (!Number.isSafeInteger(partSizeBytes) || partSizeBytes < 1) throw new RangeError(`partSizeBytes must be an integer >= 1, got ${partSizeBytes}`);
  const started = now();
  const id = newBackupId(options.cluster, started);
  for await (const _ of repo.list(folder(id))) {
    // 4 random hex digits within one second: retry rather than mix two backups
    return createBackup(store, repo, options);
  }
  const writer = new BackupWriter(repo, id, partSizeBytes, options.onProgress, options.signal);
  try {
    await store.exportSnapshot(writer, options.batchRows === undefined ? {} : { batchRows: options.batchRows });
    await writer.closePart();
    options.signal?.throwIfAborted();
    const snap = writer.snapshot!;
    const manifest: Manifest = ManifestSchema.parse({
      formatVersion: 1,
      id,
      cluster: options.cluster,
      epoch: snap.clusterState?.epoch ?? 0,
      createdAt: started.toISOString(),
      createdAtMs: started.getTime(),
      completedAtMs: Math.max(started.getTime(), now().getTime()),
      crrVersion: version,
      storeSchemaVersion: SCHEMA_VERSION,
      positions: snap.positions,
      clusterState: snap.clusterState === undefined ? null : { ...snap.clusterState, updatedAt: snap.clusterState.updatedAt.toISOString() },
      catalog: snap.catalog,
      parts: writer.parts,
      totals: totalsOf(writer.parts, snap.catalog.length),
    } satisfies Manifest);
    await repo.put(`${id}/${MANIFEST_NAME}`, `${JSON.stringify(manifest, null, 2)}\n`);
    return manifest;
  } catch (err) {
    await writer.abort(err);
    try {
      await repo.delete(await keysOf(repo, id));
    } catch (cleanupErr) {
      throw new CrrError(
        err instanceof CrrError ? err.code : 'CRR_REPOSITORY',
        `backup ${id} failed: ${describeError(err)}; its objects could not be removed (${describeError(cleanupErr)}): delete the incomplete backup with \`crr backup delete ${id} --execute\``,
        { cause: err, retriable: isRetriable(err), context: { backupId: id } },
      );
    }
    throw err;
  }
}

/** Every key of a backup's folder. */
async function keysOf(repo: BackupRepository, id: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of repo.list(folder(id))) keys.push(o.key);
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
 * Reads and validates a backup's manifest.
 * @throws CrrError CRR_BACKUP_NOT_FOUND when the repository has no object of that backup
 * @throws CrrError CRR_BACKUP_INVALID when the manifest is missing (an incomplete backup),
 *   invalid, or of another format version (see {@link parseManifest})
 * @throws CrrError CRR_REPOSITORY when the repository fails
 */
export async function readManifest(repo: BackupRepository, id: string): Promise<Manifest> {
  if (parseBackupId(id) === undefined) throw new CrrError('CRR_BACKUP_NOT_FOUND', `"${id}" is not a backup id (expected YYYYMMDDTHHMMSSZ-<cluster>-<4 hex>)`, { context: { backupId: id } });
  const stream = await repo.get(`${id}/${MANIFEST_NAME}`);
  if (stream === undefined) {
    const keys = await keysOf(repo, id);
    if (keys.length === 0) throw new CrrError('CRR_BACKUP_NOT_FOUND', `no backup ${id} in ${repo.description}`, { context: { backupId: id } });
    throw partError(id, MANIFEST_NAME, 'manifest', `backup ${id} is incomplete: it has ${keys.length} objects but no ${MANIFEST_NAME} (the backup failed or is still being written)`);
  }
  let text: string;
  try {
    text = await readText(stream, MAX_MANIFEST_BYTES, `${id}/${MANIFEST_NAME}`);
  } catch (err) {
    if (err instanceof RangeError) throw partError(id, MANIFEST_NAME, 'manifest', err.message);
    throw new CrrError('CRR_REPOSITORY', `repository ${repo.description}: reading ${id}/${MANIFEST_NAME} failed: ${describeError(err)}`, { cause: err });
  }
  return parseManifest(text, id);
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
  /** Objects in the backup's folder (parts and manifest). */
  objects: number;
  /** Their total size as stored, bytes. */
  bytes: number;
  /** The newest object's write time, ms since the Unix epoch. */
  lastModifiedMs: number;
}

/**
 * Every backup in `repo`, oldest first (by creation time, then id), complete or not. Folders
 * whose name is not a backup id are not backups and are left out. Manifests are read (and
 * validated) a few at a time.
 * @param options.cluster only the backups of this cluster alias
 * @throws CrrError CRR_REPOSITORY when the repository fails (an unreadable manifest is not an
 *   error here: that backup is listed as `invalid`)
 */
export async function listBackups(repo: BackupRepository, options: { cluster?: string } = {}): Promise<BackupSummary[]> {
  const folders = new Map<string, { objects: number; bytes: number; lastModifiedMs: number; hasManifest: boolean }>();
  for await (const o of repo.list('')) {
    const slash = o.key.indexOf('/');
    if (slash < 0) continue;
    const id = o.key.slice(0, slash);
    const parsed = parseBackupId(id);
    if (parsed === undefined || (options.cluster !== undefined && parsed.cluster !== options.cluster)) continue;
    const f = folders.get(id) ?? { objects: 0, bytes: 0, lastModifiedMs: 0, hasManifest: false };
    f.objects++;
    f.bytes += o.bytes;
    f.lastModifiedMs = Math.max(f.lastModifiedMs, o.lastModified.getTime());
    if (o.key === `${id}/${MANIFEST_NAME}`) f.hasManifest = true;
    folders.set(id, f);
  }
  const summaries = await mapLimit([...folders], 8, async ([id, f]): Promise<BackupSummary> => {
    const fromId = parseBackupId(id)!;
    const base = { id, cluster: fromId.cluster, createdAtMs: fromId.time.getTime(), objects: f.objects, bytes: f.bytes, lastModifiedMs: f.lastModifiedMs };
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

/** One problem {@link verifyBackup} found, naming the part (or `manifest.json`). */
export interface VerifyProblem {
  part: string;
  problem: PartProblem;
  message: string;
}

/** The result of {@link verifyBackup}. */
export interface BackupVerification {
  id: string;
  /** True when the manifest is valid and every part checked out. */
  ok: boolean;
  /** The manifest, when it could be read. */
  manifest?: Manifest;
  /** Parts read to their end (whatever the result). */
  partsChecked: number;
  /** Records read. */
  records: number;
  /** Stored bytes read. */
  bytes: number;
  problems: VerifyProblem[];
}

/**
 * Checks a backup completely, as a restore would read it: the manifest (format version,
 * schema, totals), then every part re-read from the repository (SHA-256 and size of the stored
 * bytes, gzip integrity, one JSON row per line, record count, uncompressed size), and no object
 * in the backup's folder that the manifest does not list. Every problem is reported, naming its
 * part (`missing`, `corrupt`, `count`, `unexpected`, or `manifest` for the manifest itself).
 *
 * @param options.onPart called after each part, with the parts done and the total
 * @throws CrrError CRR_BACKUP_NOT_FOUND when the repository has no object of that backup
 * @throws CrrError CRR_REPOSITORY when the repository fails (not a problem of the backup: try again)
 */
export async function verifyBackup(repo: BackupRepository, id: string, options: { onPart?: (done: number, total: number) => void } = {}): Promise<BackupVerification> {
  const result: BackupVerification = { id, ok: false, partsChecked: 0, records: 0, bytes: 0, problems: [] };
  let manifest: Manifest;
  try {
    manifest = await readManifest(repo, id);
  } catch (err) {
    if (err instanceof CrrError && err.code === 'CRR_BACKUP_INVALID') {
      result.problems.push({ part: MANIFEST_NAME, problem: 'manifest', message: err.message });
      return result;
    }
    throw err;
  }
  result.manifest = manifest;
  for (const part of manifest.parts) {
    try {
      for await (const rows of readPart(repo, id, part, 10_000)) result.records += rows.length;
    } catch (err) {
      if (!(err instanceof CrrError && err.code === 'CRR_BACKUP_INVALID')) throw err;
      result.problems.push({ part: part.name, problem: err.problem as PartProblem, message: err.message });
    }
    result.partsChecked++;
    result.bytes += part.bytes;
    options.onPart?.(result.partsChecked, manifest.parts.length);
  }
  const listed = new Set([MANIFEST_NAME, ...manifest.parts.map((p) => p.name)]);
  for (const key of await keysOf(repo, id)) {
    const name = key.slice(folder(id).length);
    if (!listed.has(name)) result.problems.push({ part: name, problem: 'unexpected', message: `backup ${id}: ${name} is in the backup's folder but not in its manifest` });
  }
  result.ok = result.problems.length === 0;
  return result;
}

/** A batch of rows read back from a backup by {@link readBackup}. */
export type BackupBatch = { part: string; kind: 'vertices'; rows: VertexRow[] } | { part: string; kind: 'edges'; rows: EdgeRow[] };

/**
 * Reads a backup's rows for a restore: every vertices part, then every edges part, in batches
 * of up to `batchRows` (default 10,000), each part checked against the manifest as it is read
 * (see readPart in part.ts). Read the manifest first with {@link readManifest} (for positions,
 * catalog and cluster state). Rows of a part are yielded before its checksum is known: when
 * this throws, discard everything read (restore into a staging schema).
 *
 * @throws CrrError CRR_BACKUP_NOT_FOUND / CRR_BACKUP_INVALID (the manifest; a part missing,
 *   corrupt or with another record count: the part is named) / CRR_REPOSITORY
 */
export async function* readBackup(repo: BackupRepository, id: string, options: { batchRows?: number; manifest?: Manifest } = {}): AsyncGenerator<BackupBatch> {
  const manifest = options.manifest ?? (await readManifest(repo, id));
  const batchRows = options.batchRows ?? 10_000;
  for (const part of manifest.parts) {
    for await (const rows of readPart(repo, id, part, batchRows)) yield { part: part.name, kind: part.kind, rows } as BackupBatch;
  }
}

/** What {@link deleteBackup} removed. */
export interface DeletedBackup {
  id: string;
  objects: number;
  bytes: number;
}

/**
 * Deletes a backup, complete or not: its manifest FIRST (so it is never listed as complete,
 * nor restored, while half deleted), then its other objects.
 * @throws CrrError CRR_BACKUP_NOT_FOUND when the repository has no object of that backup
 * @throws CrrError CRR_REPOSITORY when the repository fails (the backup may be left incomplete: delete it again)
 */
export async function deleteBackup(repo: BackupRepository, id: string): Promise<DeletedBackup> {
  if (parseBackupId(id) === undefined) throw new CrrError('CRR_BACKUP_NOT_FOUND', `"${id}" is not a backup id (expected YYYYMMDDTHHMMSSZ-<cluster>-<4 hex>)`, { context: { backupId: id } });
  const objects: Array<{ key: string; bytes: number }> = [];
  for await (const o of repo.list(folder(id))) objects.push(o);
  if (objects.length === 0) throw new CrrError('CRR_BACKUP_NOT_FOUND', `no backup ${id} in ${repo.description}`, { context: { backupId: id } });
  const manifestKey = `${id}/${MANIFEST_NAME}`;
  if (objects.some((o) => o.key === manifestKey)) await repo.delete([manifestKey]);
  await repo.delete(objects.filter((o) => o.key !== manifestKey).map((o) => o.key));
  return { id, objects: objects.length, bytes: objects.reduce((n, o) => n + o.bytes, 0) };
}

/**
 * An incomplete backup is deleted by retention only when no object of it was written for this
 * long (so a backup being written now is never deleted under it): 1 hour, ms.
 */
export const INCOMPLETE_GRACE_MS = 60 * 60 * 1000;

/** One backup {@link planRetention} deletes, and why. */
export interface RetentionDeletion {
  backup: BackupSummary;
  reason: string;
}

/**
 * Decides which backups retention deletes (a pure function: {@link applyRetention} acts on it).
 * - A complete backup is kept when it is among the newest `keepLast` complete backups AND no
 *   older than `maxAgeMs` (each rule applies when given); the newest complete backup is always
 *   kept, whatever its age.
 * - An incomplete backup (no manifest) is deleted when a complete backup newer than it exists
 *   and nothing was written to it for {@link INCOMPLETE_GRACE_MS}: a failed backup's leftovers.
 * - An invalid backup (unreadable manifest) is never deleted here: look at it, then
 *   `crr backup delete`.
 * @param backups as {@link listBackups} returns them (one cluster's)
 * @param nowMs the current time, ms since the Unix epoch
 * @returns the deletions, oldest first
 */
export function planRetention(backups: readonly BackupSummary[], policy: RetentionPolicy, nowMs: number): RetentionDeletion[] {
  const complete = backups.filter((b) => b.status === 'complete').sort((a, b) => b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : -1)); // newest first
  const newest = complete[0];
  const out: RetentionDeletion[] = [];
  complete.forEach((b, i) => {
    if (b === newest) return;
    const reasons: string[] = [];
    if (policy.keepLast !== undefined && i >= policy.keepLast) reasons.push(`not among the newest ${policy.keepLast} complete backups`);
    if (policy.maxAgeMs !== undefined && nowMs - b.createdAtMs > policy.maxAgeMs) reasons.push(`older than maxAgeMs ${policy.maxAgeMs} (${Math.floor((nowMs - b.createdAtMs) / 1000)} s old)`);
    if (reasons.length > 0) out.push({ backup: b, reason: reasons.join('; ') });
  });
  for (const b of backups) {
    if (b.status !== 'incomplete' || newest === undefined) continue;
    if (b.createdAtMs < newest.createdAtMs && nowMs - b.lastModifiedMs > INCOMPLETE_GRACE_MS) {
      out.push({ backup: b, reason: `incomplete (no manifest), older than the complete backup ${newest.id}, untouched for ${Math.floor((nowMs - b.lastModifiedMs) / 1000)} s` });
    }
  }
  return out.sort((a, b) => a.backup.createdAtMs - b.backup.createdAtMs || (a.backup.id < b.backup.id ? -1 : 1));
}

/**
 * Applies the retention policy to one cluster's backups: lists them, plans
 * ({@link planRetention}) and, with `execute`, deletes ({@link deleteBackup}) oldest first.
 * @param options.execute false (default): only plan, delete nothing
 * @returns the planned (or done) deletions and what is kept
 * @throws CrrError CRR_REPOSITORY when the repository fails (deletions done before stay done)
 */
export async function applyRetention(
  repo: BackupRepository,
  policy: RetentionPolicy,
  options: { cluster: string; nowMs?: number; execute?: boolean },
): Promise<{ deleted: RetentionDeletion[]; kept: BackupSummary[]; executed: boolean }> {
  const backups = await listBackups(repo, { cluster: options.cluster });
  const deleted = planRetention(backups, policy, options.nowMs ?? Date.now());
  const gone = new Set(deleted.map((d) => d.backup.id));
  if (options.execute) {
    for (const d of deleted) {
      try {
        await deleteBackup(repo, d.backup.id);
      } catch (err) {
        if (!(err instanceof CrrError && err.code === 'CRR_BACKUP_NOT_FOUND')) throw err; // gone meanwhile: fine
      }
    }
  }
  return { deleted, kept: backups.filter((b) => !gone.has(b.id)), executed: options.execute === true };
}
