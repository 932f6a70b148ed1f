import type { ClusterState } from '../cluster/cluster-state.js';
import { CrrError, describeError, isRetriable } from '../errors.js';
import { SCHEMA_VERSION } from '../store/migrations.js';
import type { EdgeRow, SnapshotHeader, SnapshotSink, Store, VertexRow } from '../store/store.js';
import { version } from '../version.js';
import { backupFolder, keysOf } from './catalog.js';
import { type BackupKey, manifestMac, partAad } from './keys.js';
import { MANIFEST_NAME, ManifestSchema, newBackupId, totalsOf, type BackupPart, type Manifest } from './manifest.js';
import { PartWriter } from './part.js';
import type { BackupRepository } from './repository.js';
import { DEFAULT_PART_SIZE_BYTES } from './schema.js';

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
    private readonly encryption: BackupKey | undefined,
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
    const name = `${kind}-${String(++this.seq[kind]).padStart(5, '0')}.ndjson.gz${this.encryption ? '.enc' : ''}`;
    // parts are written one at a time, in manifest order: this one's index is the count of those before it
    const encrypt = this.encryption ? { key: this.encryption.key, aad: partAad(this.id, this.parts.length, name) } : undefined;
    return new PartWriter(this.repo, `${this.id}/${name}`, name, kind, encrypt);
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
 * The store's cluster state as a manifest of format version 1 holds it: `updatedAt` as
 * ISO-8601, without `backupId` (the backup a replica's state refers to, which format version 1
 * does not have: a manifest stays readable by every crr that reads version 1).
 */
function manifestClusterState(state: ClusterState | undefined): Manifest['clusterState'] {
  if (state === undefined) return null;
  const { updatedAt, ...rest } = state;
  if (rest.role === 'replica') delete rest.backupId;
  return { ...rest, updatedAt: updatedAt.toISOString() };
}

/**
 * Takes an online full backup of `store` into `repo` (docs/architecture.md, "Backups, restore and reseed"): one snapshot
 * transaction reads positions, cluster state, catalog, vertices and edges
 * ({@link Store.exportSnapshot}), so the backup holds exactly the events below the positions it
 * records while writes go on. Rows stream into gzip NDJSON parts (`<id>/vertices-00001.ndjson.gz`,
 * ... then `<id>/edges-00001.ndjson.gz`, ...; layout in manifest.ts), a new part once the
 * uncompressed bytes reach `partSizeBytes`; SHA-256, sizes and record counts are computed while
 * streaming. The manifest `<id>/manifest.json` is written LAST: until it exists the backup is
 * incomplete and {@link listBackups} says so.
 *
 * With `repo.keys` (the cluster's `backup.encryption` / `backup.manifestHmac`, src/backup/keys.ts):
 * each part is encrypted with AES-256-GCM after gzip (`...ndjson.gz.enc`; a fresh random IV per
 * part; the backup id, the part's index and name authenticated with it) and the manifest records
 * `encryption: { algorithm, keyId }`; the manifest is signed (`hmac`) with the HMAC key.
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
  for await (const _ of repo.list(backupFolder(id))) {
    // 4 random hex digits within one second: retry rather than mix two backups
    return createBackup(store, repo, options);
  }
  const keys = repo.keys;
  const writer = new BackupWriter(repo, id, partSizeBytes, options.onProgress, options.signal, keys?.encryption);
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
      clusterState: manifestClusterState(snap.clusterState),
      catalog: snap.catalog,
      parts: writer.parts,
      totals: totalsOf(writer.parts, snap.catalog.length),
      ...(keys?.encryption ? { encryption: { algorithm: 'AES-256-GCM' as const, keyId: keys.encryption.keyId } } : {}),
    } satisfies Manifest);
    if (keys?.manifestHmac) {
      // over the manifest as a reader parses it back from its JSON
      const value = manifestMac(JSON.parse(JSON.stringify(manifest)) as Record<string, unknown>, keys.manifestHmac.key);
      manifest.hmac = { algorithm: 'HMAC-SHA256', keyId: keys.manifestHmac.keyId, value };
    }
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
