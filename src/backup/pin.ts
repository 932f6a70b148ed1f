import type { Readable } from 'node:stream';
import { z } from 'zod';
import { CrrError, describeError } from '../errors.js';
import { BACKUP_ID } from './manifest.js';
import type { BackupRepository } from './repository.js';

// Pins: a backup in use by a reseed or a restore, marked in the repository itself, so that
// `crr backup prune` and `crr backup delete`, which run with the repository alone, keep it
// (docs/architecture.md, "Backups, restore and reseed"; docs/glossary.md, "pin").

/** The folder of a backup's pins: `<id>/pins/`. Pins are not part of the backup's data. */
export const pinFolder = (id: string): string => `${id}/pins/`;

/** The key of the pin cluster `cluster` holds on backup `id`: `<id>/pins/<cluster>.json`. */
export const pinKey = (id: string, cluster: string): string => `${pinFolder(id)}${cluster}.json`;

/** `<id>/pins/<cluster>.json`: the backup id and the pinning cluster's alias, or undefined for any other key. */
export function parsePinKey(key: string): { backupId: string; cluster: string } | undefined {
  const m = /^([^/]+)\/pins\/([A-Za-z0-9_-]+)\.json$/.exec(key);
  return m && BACKUP_ID.test(m[1]!) ? { backupId: m[1]!, cluster: m[2]! } : undefined;
}

/** Whether a key of a backup's folder is one of its pins (not part of its data). */
export const isPinKey = (key: string): boolean => /^[^/]+\/pins\//.test(key);

/** The body of a pin object (JSON). */
export const PinSchema = z.strictObject({
  /** The backup pinned. */
  backupId: z.string().regex(BACKUP_ID),
  /** Alias of the cluster whose reseed or restore uses it (also the pin's file name). */
  cluster: z.string().regex(/^[A-Za-z0-9_-]+$/),
  /** What uses it: a reseed (kept until it completes, across restarts) or a `crr restore` (kept while it runs). */
  purpose: z.enum(['reseed', 'restore']),
  /** Who pinned it, for people: `crr run --cluster dr pid 123 on host`. */
  holder: z.string(),
  /** When it was pinned (written last), ISO-8601 UTC. */
  pinnedAt: z.iso.datetime(),
});
export type Pin = z.infer<typeof PinSchema>;

/** A pin as found in a repository: its cluster (from the key), and its body when it could be read. */
export interface FoundPin {
  cluster: string;
  /** The pin's body; absent when the object is not a valid pin (still a pin: the backup is kept). */
  pin?: Pin;
  /** Why the body could not be used, when it could not. */
  problem?: string;
  /** The object's write time, ms since the Unix epoch. */
  lastModifiedMs: number;
}

/** A one-line description of a pin, for people: `dr (reseed, crr run ... since 2026-12-02T05:00:00Z)`. */
export function describePin(p: FoundPin): string {
  if (!p.pin) return `${p.cluster} (unreadable pin: ${p.problem ?? 'unknown'}; since ${new Date(p.lastModifiedMs).toISOString()})`;
  return `${p.cluster} (${p.pin.purpose}, ${p.pin.holder}, since ${p.pin.pinnedAt})`;
}

/**
 * Pins backup `id` for cluster `cluster` (writes `<id>/pins/<cluster>.json`, replacing that
 * cluster's pin there: writing it again refreshes it). Call it before the backup is read for a
 * restore. It does not check that the backup exists (read its manifest after pinning it).
 * @throws CrrError CRR_BACKUP_NOT_FOUND when `id` is not a backup id (nothing written)
 * @throws CrrError CRR_REPOSITORY when the repository fails
 */
export async function pinBackup(repo: BackupRepository, id: string, pin: Omit<Pin, 'backupId' | 'pinnedAt'>, now = new Date()): Promise<Pin> {
  if (!BACKUP_ID.test(id))
    throw new CrrError('CRR_BACKUP_NOT_FOUND', `"${id}" is not a backup id (expected YYYYMMDDTHHMMSSZ-<cluster>-<4 hex>)`, { context: { backupId: id } });
  const body = PinSchema.parse({ ...pin, backupId: id, pinnedAt: now.toISOString().replace(/\.\d{3}Z$/, 'Z') });
  await repo.put(pinKey(id, pin.cluster), `${JSON.stringify(body, null, 2)}\n`);
  return body;
}

/**
 * Removes the pin `cluster` holds on backup `id` (nothing when there is none).
 * @throws CrrError CRR_REPOSITORY when the repository fails
 */
export async function unpinBackup(repo: BackupRepository, id: string, cluster: string): Promise<void> {
  await repo.delete([pinKey(id, cluster)]);
}

/**
 * Removes every pin `cluster` holds in the repository, on any backup but `keep`: what a
 * completed reseed or restore of that cluster does, since its state no longer refers to any
 * other backup (a pin left by a killed or abandoned attempt is stale). Lists the whole repository.
 * @returns the ids of the backups unpinned
 * @throws CrrError CRR_REPOSITORY when the repository fails (pins removed before stay removed)
 */
export async function unpinAll(repo: BackupRepository, cluster: string, keep?: string): Promise<string[]> {
  return unpinWhere(repo, cluster, (backupId) => backupId !== keep);
}

/**
 * Removes the pins `cluster` holds on backup `backupId` and on older backups of the same cluster
 * (ids sort by their UTC time): what the primary's daemon does when a replica's reseed releases
 * the backup it restored (src/reseed/backup-responder.ts), keeping a pin on a newer backup that
 * a reseed started since may be using. Lists the whole repository.
 * @returns the ids of the backups unpinned
 * @throws CrrError CRR_REPOSITORY when the repository fails (pins removed before stay removed)
 */
export async function unpinThrough(repo: BackupRepository, cluster: string, backupId: string): Promise<string[]> {
  return unpinWhere(repo, cluster, (id) => id <= backupId);
}

/** Removes the pins `cluster` holds on the backups `which` selects. */
async function unpinWhere(repo: BackupRepository, cluster: string, which: (backupId: string) => boolean): Promise<string[]> {
  const stale: Array<{ key: string; backupId: string }> = [];
  for await (const o of repo.list('')) {
    const k = parsePinKey(o.key);
    if (k && k.cluster === cluster && which(k.backupId)) stale.push({ key: o.key, backupId: k.backupId });
  }
  if (stale.length > 0) await repo.delete(stale.map((s) => s.key));
  return stale.map((s) => s.backupId);
}

/** A pin object is never larger than this: 64 KiB. */
const MAX_PIN_BYTES = 64 * 1024;

/**
 * Every pin of backup `id`, by cluster alias. A pin object that cannot be read as a pin is
 * still returned (with `problem`): whoever wrote it meant to keep the backup.
 * @throws CrrError CRR_REPOSITORY when the repository fails
 */
export async function readPins(repo: BackupRepository, id: string): Promise<FoundPin[]> {
  const out: FoundPin[] = [];
  for await (const o of repo.list(pinFolder(id))) {
    const k = parsePinKey(o.key);
    if (!k) continue;
    const found: FoundPin = { cluster: k.cluster, lastModifiedMs: o.lastModified.getTime() };
    try {
      const stream = await repo.get(o.key);
      if (stream === undefined) continue; // removed meanwhile
      const parsed = PinSchema.safeParse(JSON.parse(await readSmall(stream, MAX_PIN_BYTES)));
      if (parsed.success) found.pin = parsed.data;
      else found.problem = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    } catch (err) {
      if (err instanceof CrrError && err.code === 'CRR_REPOSITORY') throw err;
      found.problem = describeError(err);
    }
    out.push(found);
  }
  return out;
}

async function readSmall(stream: Readable, maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of stream as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > maxBytes) {
      stream.destroy();
      throw new RangeError(`larger than ${maxBytes} bytes`);
    }
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString('utf8');
}
