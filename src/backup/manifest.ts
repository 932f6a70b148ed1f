import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { CrrError } from '../errors.js';
import { PRIMARY_STATES, REPLICA_STATES } from '../cluster/cluster-state.js';
import { type BackupKeys, MANIFEST_MAC, macEquals, manifestMac, PART_CIPHER } from './keys.js';

/**
 * The backup manifest (docs/architecture.md, "Backups, restore and reseed"): `<id>/manifest.json` in the repository, written
 * LAST, so a backup without one is incomplete (crashed or still being written). It says what
 * the backup holds and what it is consistent with; every part is named with its record count,
 * sizes and SHA-256, so `crr backup verify` and a restore can check each part on its own.
 *
 * Layout of one backup in a repository:
 * ```
 * <id>/vertices-00001.ndjson.gz   gzip NDJSON, one vertex per line: {"type","id","attributes"}
 * <id>/vertices-00002.ndjson.gz   ... a new part once the uncompressed bytes reach partSizeBytes
 * <id>/edges-00001.ndjson.gz      one edge per line: {"type","from":{"type","id"},"to":{"type","id"},"attributes"}
 * <id>/manifest.json              this document (pretty-printed JSON)
 * ```
 * With `backup.encryption` (src/backup/keys.ts) each part is encrypted after gzip and named
 * `...ndjson.gz.enc`: `IV (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)`, the backup id
 * and the part's place authenticated with it; its `sha256` and `bytes` stay those of the stored
 * bytes, so `sha256sum` and `crr backup verify` check them without the key. With a manifest HMAC
 * key, the manifest carries `hmac` over its canonical JSON without that field.
 * Vertices and edges are never mixed in one part; each kind's parts are numbered from 00001 in
 * primary-key order. The catalog (types, users, queries, UDFs, loading jobs) is small and lives
 * in the manifest itself.
 */

/** The manifest format this crr writes and the only one it reads. */
export const MANIFEST_FORMAT_VERSION = 1;

/** Name of the manifest inside a backup's folder. */
export const MANIFEST_NAME = 'manifest.json';

/**
 * A backup id: `YYYYMMDDTHHMMSSZ-<cluster alias>-<4 hex>` (UTC creation time to the second,
 * then the alias, then 4 random hex digits against collisions), e.g.
 * `20261123T134501Z-primary-3fa9`. Ids sort by creation time (to the second) as plain strings,
 * as InfluxDB's `20060102T150405Z` backup names do.
 */
export const BACKUP_ID = /^(\d{8}T\d{6}Z)-([A-Za-z0-9_-]+)-([0-9a-f]{4})$/;

const count = z.number().int().nonnegative();
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected 64 lower-case hex digits');

/** One data part of a backup. */
export const PartSchema = z.strictObject({
  /** File name inside the backup's folder, e.g. `vertices-00001.ndjson.gz`. */
  name: z.string().regex(/^(vertices|edges)-\d{5,}\.ndjson\.gz(\.enc)?$/),
  /** What its lines are: `vertices` or `edges`. */
  kind: z.enum(['vertices', 'edges']),
  /** Lines (rows) in the part, >= 1. */
  records: z.number().int().positive(),
  /** Size of the part as stored (gzip; encrypted: IV, ciphertext and tag), bytes. */
  bytes: count,
  /** Size of the NDJSON before gzip, bytes (what partSizeBytes bounds). */
  uncompressedBytes: count,
  /** SHA-256 of the stored bytes (gzip, or encrypted gzip), lower-case hex: `sha256sum <part>` prints the same. */
  sha256,
});
export type BackupPart = z.infer<typeof PartSchema>;

/** The store's cluster state at the snapshot (src/store/store.ts), `updatedAt` as ISO-8601. */
const ClusterStateSchema = z.discriminatedUnion('role', [
  z.strictObject({ role: z.literal('primary'), state: z.enum(PRIMARY_STATES), epoch: count, reason: z.string().optional(), updatedAt: z.iso.datetime() }),
  z.strictObject({ role: z.literal('replica'), state: z.enum(REPLICA_STATES), epoch: count, reason: z.string().optional(), updatedAt: z.iso.datetime() }),
]);

/** A key id as a manifest names it (src/backup/schema.ts `keyId`, or the default: 16 hex digits). */
const keyId = z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/);

/** Manifest of format version 1. Strict: an unknown key is an error (a crr older than `encryption` and `hmac` refuses a manifest that has them). */
export const ManifestSchema = z.strictObject({
  /** Always {@link MANIFEST_FORMAT_VERSION}; checked first, by {@link parseManifest}. */
  formatVersion: z.literal(MANIFEST_FORMAT_VERSION),
  /** The backup id ({@link BACKUP_ID}); equals the name of the backup's folder. */
  id: z.string().regex(BACKUP_ID),
  /** Alias of the cluster whose store was backed up. */
  cluster: z.string().regex(/^[A-Za-z0-9_-]+$/),
  /** The store's epoch at the snapshot (its cluster state's epoch; 0 when none was recorded). */
  epoch: count,
  /** When the backup started (the snapshot was taken just after), ISO-8601 UTC. */
  createdAt: z.iso.datetime(),
  /** The same instant, ms since the Unix epoch. */
  createdAtMs: count,
  /** When the last part was written, ms since the Unix epoch (>= createdAtMs). */
  completedAtMs: count,
  /** Version of crr that wrote it. */
  crrVersion: z.string(),
  /** Schema version of the store's tables (src/store/migrations.ts SCHEMA_VERSION). */
  storeSchemaVersion: z.number().int().positive(),
  /**
   * Applied positions of the store at the snapshot, sorted by topic and partition: the backup
   * holds exactly the effect of every event below them, so replay resumes from here.
   */
  positions: z.array(z.strictObject({ topic: z.string().min(1), partition: count, nextOffset: count })),
  /** The store's cluster state at the snapshot; null for a store that never recorded one. */
  clusterState: ClusterStateSchema.nullable(),
  /** Every catalog entry (schema, users, queries, UDFs, loading jobs), sorted by kind and name. */
  catalog: z.array(z.strictObject({ kind: z.string().min(1), name: z.string().min(1), body: z.unknown() })),
  /** Data parts in write order: every vertices part, then every edges part. */
  parts: z.array(PartSchema),
  /** Sums over `parts` (and the catalog's length); checked against them on parse. */
  totals: z.strictObject({
    vertices: count,
    edges: count,
    catalog: count,
    parts: count,
    /** Sum of the parts' stored bytes. */
    bytes: count,
    /** Sum of the parts' uncompressed bytes. */
    uncompressedBytes: count,
  }),
  /** Present when the parts are encrypted (then every part's name ends in `.enc`, else none does): the cipher and the id of its key. */
  encryption: z.strictObject({ algorithm: z.literal(PART_CIPHER), keyId }).optional(),
  /**
   * Present when the manifest is signed: HMAC-SHA256, lower-case hex, of the canonical JSON
   * (src/backup/keys.ts canonicalJson: sorted keys, no whitespace) of the manifest without this
   * field, under the key named `keyId`.
   */
  hmac: z.strictObject({ algorithm: z.literal(MANIFEST_MAC), keyId, value: sha256 }).optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

/** The totals a manifest must carry for its parts and catalog. */
export function totalsOf(parts: readonly BackupPart[], catalogEntries: number): Manifest['totals'] {
  const sum = (f: (p: BackupPart) => number, kind?: BackupPart['kind']): number =>
    parts.filter((p) => kind === undefined || p.kind === kind).reduce((n, p) => n + f(p), 0);
  return {
    vertices: sum((p) => p.records, 'vertices'),
    edges: sum((p) => p.records, 'edges'),
    catalog: catalogEntries,
    parts: parts.length,
    bytes: sum((p) => p.bytes),
    uncompressedBytes: sum((p) => p.uncompressedBytes),
  };
}

/**
 * Parses and validates a manifest's text.
 * @param text the content of `<id>/manifest.json`
 * @param id the backup id it was read for: the manifest must name the same one
 * @throws CrrError CRR_BACKUP_INVALID naming the backup: not JSON; a `formatVersion` other than
 *   {@link MANIFEST_FORMAT_VERSION} (named: "format version 2 ... this crr reads 1"); a field
 *   that does not match the schema (its path named); another id; totals that are not the sums
 *   of the parts; two parts with one name; parts encrypted and not (by their names) against
 *   `encryption`; with `keys.manifestHmac`: no `hmac`, an `hmac` under another key id, or one that
 *   does not match (the manifest was changed after it was written)
 * @param keys the repository's keys: with a manifest HMAC key, the manifest's HMAC must be valid
 *   under it. Without one, an `hmac` is not checked (there is nothing to check it with).
 */
export function parseManifest(text: string, id: string, keys?: BackupKeys): Manifest {
  const invalid = (why: string): CrrError =>
    new CrrError('CRR_BACKUP_INVALID', `backup ${id}: manifest ${MANIFEST_NAME} ${why}`, { context: { backupId: id } });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw invalid(`is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('is not a JSON object');
  const version = (raw as { formatVersion?: unknown }).formatVersion;
  if (version !== MANIFEST_FORMAT_VERSION) {
    throw invalid(
      version === undefined
        ? 'has no formatVersion: not a crr backup manifest'
        : `has format version ${JSON.stringify(version)}, which this crr cannot read (it reads format version ${MANIFEST_FORMAT_VERSION}); use the crr release that wrote it`,
    );
  }
  const parsed = ManifestSchema.safeParse(raw);
  if (!parsed.success) throw invalid(`is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  const m = parsed.data;
  if (m.id !== id) throw invalid(`names backup ${m.id}, not ${id} (was the folder renamed?)`);
  const mac = keys?.manifestHmac;
  if (mac !== undefined) {
    const which = `key id ${mac.keyId}${mac.derived ? ', derived from backup.encryption' : ''}`;
    if (m.hmac === undefined)
      throw invalid(`has no HMAC, and a manifest HMAC key is configured (${which}): refused, since anyone who can write the repository could have written it`);
    if (m.hmac.keyId !== mac.keyId) throw invalid(`is signed with key id ${m.hmac.keyId}, not the configured one (${which}): its HMAC cannot be checked`);
    if (!macEquals(manifestMac(raw as Record<string, unknown>, mac.key), m.hmac.value))
      throw invalid(`has an HMAC that does not match (${which}): the manifest was changed after it was written, or signed with another key of that id`);
  }
  const names = new Set<string>();
  for (const p of m.parts) {
    if (names.has(p.name)) throw invalid(`lists part ${p.name} twice`);
    names.add(p.name);
    if (!p.name.startsWith(`${p.kind}-`)) throw invalid(`part ${p.name} has kind ${p.kind}`);
    if (p.name.endsWith('.enc') !== (m.encryption !== undefined))
      throw invalid(`part ${p.name} is ${m.encryption ? 'not encrypted, though the backup is' : 'encrypted, though the backup has no encryption'}`);
  }
  const expected = totalsOf(m.parts, m.catalog.length);
  for (const k of Object.keys(expected) as Array<keyof typeof expected>) {
    if (m.totals[k] !== expected[k]) throw invalid(`totals.${k} is ${m.totals[k]}, but the parts add up to ${expected[k]}`);
  }
  return m;
}

/**
 * A new backup id for `cluster` at `now` ({@link BACKUP_ID}).
 * @param random4Hex 4 lower-case hex digits (default: random)
 */
export function newBackupId(cluster: string, now: Date, random4Hex?: string): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  const rnd = random4Hex ?? randomBytes(2).toString('hex');
  const id = `${stamp}-${cluster}-${rnd}`;
  if (!BACKUP_ID.test(id)) throw new RangeError(`cannot make a backup id from cluster alias "${cluster}"`);
  return id;
}

/** The parts of a backup id, or undefined when `id` is not one. `time` is the creation time, to the second. */
export function parseBackupId(id: string): { time: Date; cluster: string } | undefined {
  const m = BACKUP_ID.exec(id);
  if (!m) return undefined;
  const s = m[1]!;
  const time = new Date(`${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)}T${s.slice(9, 11)}:${s.slice(11, 13)}:${s.slice(13, 15)}Z`);
  if (Number.isNaN(time.getTime())) return undefined;
  return { time, cluster: m[2]! };
}
