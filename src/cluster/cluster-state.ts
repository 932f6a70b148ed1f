import { z } from 'zod';
import { CrrError } from '../errors.js';

/**
 * The cluster state: a cluster's role, the state of that role, its epoch, why it is so and the
 * backup it refers to (docs/glossary.md, "cluster state"; docs/architecture.md, "The cluster model"). This module
 * owns its types and its transitions; src/cluster/state.ts records and publishes it.
 *
 * ```
 * primary:  ACTIVE ──(sync-breaking crr admin op: epoch + 1)──▶ ACTIVE
 *           ACTIVE ──(crr promote of its replica)──▶ FENCED ──(failback reseed)──▶ replica
 * replica:  REPLICATING ──(marker, newer epoch, retention gap, recreated topic)──▶ OUTDATED
 *           OUTDATED ──(reseed)──▶ RESEEDING ──(backup restored)──▶ REPLICATING
 *           any replica state ──(crr promote)──▶ PROMOTING ──(epoch + 1)──▶ primary ACTIVE
 * ```
 */

/** States allowed per role. */
export const PRIMARY_STATES = ['ACTIVE', 'FENCED'] as const;
export const REPLICA_STATES = ['REPLICATING', 'OUTDATED', 'RESEEDING', 'PROMOTING'] as const;

/**
 * The backup a cluster state refers to: a backup id (docs/glossary.md, "backup id",
 * `YYYYMMDDTHHMMSSZ-<cluster alias>-<4 hex>`). Checked here only for the characters of one (at
 * most 200 of `A-Z a-z 0-9 _ -`), so that it is safe in a repository key; its full form is
 * checked where it is used (src/backup/catalog.ts readManifest, which src/cluster/ cannot import).
 */
export const BackupIdRefSchema = z.string().regex(/^[A-Za-z0-9_-]{1,200}$/, 'expected a backup id (YYYYMMDDTHHMMSSZ-<cluster>-<4 hex>)');

/**
 * `backupId` of a replica's state: the backup the state refers to. `RESEEDING`: the backup this
 * reseed restores (absent while it is still taking it); `REPLICATING` after a reseed or a
 * `crr restore`: the backup restored. Absent otherwise. A resumed reseed reads it from here,
 * never from `reason` (free text, which quotes the operator's `--reason`).
 *
 * Only a replica's state has it: a primary's published state keeps the shape that writers of an
 * older crr read (the schema is strict, so they would refuse a key they do not know).
 */
const backupId = BackupIdRefSchema.optional();

/**
 * A cluster state as recorded and published: a role, a state of that role, the epoch, why, and
 * (a replica) the backup it refers to (see `backupId` above). Strict: an unknown key is an
 * error. A state without `backupId` (as crr before issue 11 item 5 published it) is valid.
 */
export const ClusterStateInputSchema = z.discriminatedUnion('role', [
  z.strictObject({
    role: z.literal('primary'),
    state: z.enum(PRIMARY_STATES),
    epoch: z.number().int().nonnegative(),
    reason: z.string().optional(),
  }),
  z.strictObject({
    role: z.literal('replica'),
    state: z.enum(REPLICA_STATES),
    epoch: z.number().int().nonnegative(),
    reason: z.string().optional(),
    backupId,
  }),
]);
export type ClusterStateInput = z.infer<typeof ClusterStateInputSchema>;
/** The recorded cluster state, with the time it was last set. */
export type ClusterState = ClusterStateInput & { updatedAt: Date };

/** A recorded state without its time: what `/status` shows and what is published. Keeps `backupId`. */
export function stateInput(state: ClusterState | ClusterStateInput): ClusterStateInput {
  const { updatedAt: _time, ...input } = state as ClusterState;
  return input as ClusterStateInput;
}

type Key = `primary.${(typeof PRIMARY_STATES)[number]}` | `replica.${(typeof REPLICA_STATES)[number]}`;

/**
 * Every allowed transition, `from` → the states it may become. Recording a state again (the
 * same role and state, e.g. a new reason or a resumed step) is always allowed.
 */
const ALLOWED: Record<Key, readonly Key[]> = {
  'primary.ACTIVE': ['primary.FENCED'],
  // a fenced old primary becomes a replica of the new one by a failback reseed or restore
  'primary.FENCED': ['replica.RESEEDING', 'replica.REPLICATING'],
  'replica.REPLICATING': ['replica.OUTDATED', 'replica.RESEEDING', 'replica.PROMOTING'],
  'replica.OUTDATED': ['replica.RESEEDING', 'replica.REPLICATING', 'replica.PROMOTING'],
  'replica.RESEEDING': ['replica.REPLICATING', 'replica.OUTDATED', 'replica.PROMOTING'],
  // a forced promotion replays to the end: a marker met there still outdates the replica
  'replica.PROMOTING': ['primary.ACTIVE', 'replica.OUTDATED'],
};

const key = (s: ClusterStateInput): Key => `${s.role}.${s.state}` as Key;

/**
 * Checks one transition of a cluster's state.
 * @param from the recorded state; `undefined` = none yet (a fresh store: any state may be first)
 * @param to the state about to be recorded
 * @throws CrrError CRR_STATE_TRANSITION when the transition is not in the table above, or when
 *   it lowers the epoch of a cluster that keeps its role
 */
export function assertTransition(from: ClusterStateInput | undefined, to: ClusterStateInput, alias = 'the cluster'): void {
  if (!from) return;
  const same = key(from) === key(to);
  if (!same && !ALLOWED[key(from)].includes(key(to))) {
    throw new CrrError(
      'CRR_STATE_TRANSITION',
      `${alias} cannot go from ${from.role} ${from.state} to ${to.role} ${to.state}${to.reason ? ` (${to.reason})` : ''}`,
    );
  }
  if (from.role === to.role && to.epoch < from.epoch && !(from.role === 'replica' && to.state === 'REPLICATING')) {
    // a replica restored from a backup takes the backup's epoch; nothing else moves an epoch back
    throw new CrrError('CRR_STATE_TRANSITION', `${alias} cannot go from epoch ${from.epoch} back to epoch ${to.epoch} (${to.role} ${to.state})`);
  }
}

/** The state a fresh store starts in: a primary is `ACTIVE`, a replica `REPLICATING`, both at epoch 0. */
export function initialClusterState(role: ClusterStateInput['role']): ClusterStateInput {
  return role === 'primary' ? { role, state: 'ACTIVE', epoch: 0 } : { role, state: 'REPLICATING', epoch: 0 };
}

/** A replica that found a sync break: OUTDATED at its epoch, with the break as reason. */
export function outdated(from: ClusterStateInput, reason: string): ClusterStateInput {
  return { role: 'replica', state: 'OUTDATED', epoch: from.epoch, reason };
}

/**
 * A replica during a reseed step: `reason` says the step for people; `backupId`, once the
 * backup is taken, is the one the reseed restores (what a resumed reseed restores).
 */
export function reseeding(epoch: number, reason: string, backupId?: string): ClusterStateInput {
  return { role: 'replica', state: 'RESEEDING', epoch, reason, ...(backupId === undefined ? {} : { backupId }) };
}

/** A replica restored from a backup: REPLICATING at the backup's epoch, naming the backup when given. */
export function reseeded(epoch: number, reason: string, backupId?: string): ClusterStateInput {
  return { role: 'replica', state: 'REPLICATING', epoch, reason, ...(backupId === undefined ? {} : { backupId }) };
}

/** A replica being promoted (kept while `crr promote` runs and if it stops half-way). */
export function promoting(epoch: number, reason: string): ClusterStateInput {
  return { role: 'replica', state: 'PROMOTING', epoch, reason };
}

/** The promoted cluster: a primary, ACTIVE, one epoch above the one it replicated. */
export function promoted(fromEpoch: number, reason: string): ClusterStateInput {
  return { role: 'primary', state: 'ACTIVE', epoch: fromEpoch + 1, reason };
}

/** An old primary fenced by a promotion: its writers refuse. */
export function fenced(epoch: number, reason: string): ClusterStateInput {
  return { role: 'primary', state: 'FENCED', epoch, reason };
}

/** A primary after a sync-breaking `crr admin` operation: ACTIVE, one epoch up. */
export function epochRaised(from: ClusterStateInput, reason: string): ClusterStateInput {
  return { role: 'primary', state: 'ACTIVE', epoch: from.epoch + 1, reason };
}

/**
 * Whether a primary must obey a `FENCED` state published on its own Kafka
 * (`crr-cluster-state.internal`): a promotion fences the old primary there, and the old
 * primary's daemon (src/replay/fence-watch.ts), `crr acls` and the writer take it from there
 * (issue 12: "the published state its own daemon obeys", not a write into its database).
 *
 * True when `published` is a `primary FENCED` state at an epoch at or above the `recorded` one
 * (none recorded: any epoch), and `recorded`, if any, is a primary's. A FENCED state of an
 * earlier epoch is an old promotion's, overtaken since (the cluster was reseeded and promoted
 * again, which raised its epoch).
 */
export function obeysPublishedFence(recorded: ClusterStateInput | undefined, published: ClusterStateInput | undefined): boolean {
  if (published?.role !== 'primary' || published.state !== 'FENCED') return false;
  if (!recorded) return true;
  return recorded.role === 'primary' && published.epoch >= recorded.epoch;
}
