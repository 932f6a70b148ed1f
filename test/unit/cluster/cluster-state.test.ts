import { describe, expect, it } from 'vitest';
import {
  ClusterStateInputSchema,
  assertTransition,
  epochRaised,
  obeysPublishedFence,
  fenced,
  initialClusterState,
  outdated,
  promoted,
  promoting,
  reseeded,
  reseeding,
  type ClusterStateInput,
} from '../../../src/cluster/cluster-state.js';
import { decodePublishedClusterState } from '../../../src/cluster/state.js';
import type { CrrError } from '../../../src/errors.js';

const replica = initialClusterState('replica');
const primary = initialClusterState('primary');
const ok = (from: ClusterStateInput | undefined, to: ClusterStateInput): void => assertTransition(from, to, 'dr');
const refused = (from: ClusterStateInput, to: ClusterStateInput): CrrError => {
  try {
    assertTransition(from, to, 'dr');
  } catch (err) {
    return err as CrrError;
  }
  throw new Error(`${from.role} ${from.state} → ${to.role} ${to.state} was allowed`);
};

describe('cluster state transitions (one state machine)', () => {
  it('walks a replica through a sync break, a reseed and a promotion, and a primary through an admin op and a fence', () => {
    const out = outdated(replica, 'sync-breaking IMPORT');
    ok(replica, out);
    ok(out, reseeding(0, 'reseed: taking a backup'));
    ok(reseeding(0, 'a'), reseeding(0, 'reseed: restoring backup X'));
    ok(reseeding(0, 'b'), reseeded(3, 'reseeded from backup X'));
    ok(reseeded(3, 'r'), promoting(3, 'promote started'));
    expect(promoted(3, 'promoted')).toEqual({ role: 'primary', state: 'ACTIVE', epoch: 4, reason: 'promoted' });
    ok(promoting(3, 'p'), promoted(3, 'promoted'));
    ok(primary, epochRaised(primary, 'DROP_ALL: start over'));
    ok(primary, fenced(0, 'fenced'));
    ok(fenced(0, 'fenced'), reseeding(0, 'failback'));
    ok(undefined, promoted(7, 'a fresh store may start anywhere'));
  });

  it('refuses a primary becoming OUTDATED, a replica jumping to ACTIVE, and an epoch moving back', () => {
    expect(refused(primary, outdated(primary, 'x')).code).toBe('CRR_STATE_TRANSITION');
    expect(refused(replica, promoted(0, 'skipped PROMOTING')).message).toContain('dr cannot go from replica REPLICATING to primary ACTIVE');
    expect(refused(fenced(0, 'f'), { role: 'primary', state: 'ACTIVE', epoch: 0 }).message).toContain('primary FENCED to primary ACTIVE');
    expect(refused(epochRaised(primary, 'a'), primary).message).toContain('from epoch 1 back to epoch 0');
  });

  it('lets a restore bring a replica to the epoch of its backup, even a lower one', () => {
    ok(reseeding(5, 'restoring'), reseeded(2, 'restored an older backup by hand'));
  });
});

describe('the backup a cluster state refers to (backupId, issue 11 item 5)', () => {
  const id = '20261202T055552Z-primary-874b';

  it('is a field of the state, set by the reseed helpers, never read from the reason', () => {
    expect(reseeding(0, 'reseed (x): taking a backup of primary')).not.toHaveProperty('backupId');
    expect(reseeding(0, 'reseed (x: restoring backup 20200101T000000Z-primary-0000): restoring', id)).toMatchObject({ backupId: id });
    expect(reseeded(2, 'reseeded', id)).toEqual({ role: 'replica', state: 'REPLICATING', epoch: 2, reason: 'reseeded', backupId: id });
    // a sync break forgets it: an OUTDATED replica refers to no backup
    expect(outdated(reseeded(2, 'r', id), 'marker')).not.toHaveProperty('backupId');
    expect(ClusterStateInputSchema.parse(reseeded(2, 'r', id))).toEqual(reseeded(2, 'r', id));
  });

  it('is a replica’s only: a primary’s published state keeps the shape older writers read', () => {
    expect(ClusterStateInputSchema.safeParse({ role: 'primary', state: 'ACTIVE', epoch: 1, backupId: id }).success).toBe(false);
  });

  it('refuses what cannot be a backup id, naming the field', () => {
    for (const bad of ['', '../etc/passwd', 'a b', 'x'.repeat(201)]) {
      const parsed = ClusterStateInputSchema.safeParse({ role: 'replica', state: 'RESEEDING', epoch: 0, backupId: bad });
      expect(parsed.success, bad).toBe(false);
      expect(parsed.error!.issues[0]!.path).toEqual(['backupId']);
    }
  });

  it('a published state without it (crr before this field) still decodes; one with it decodes to itself', () => {
    const old = { role: 'replica', state: 'REPLICATING', epoch: 1, reason: 'reseeded from backup X (y)', updatedAtMs: 1_700_000_000_000 };
    expect(decodePublishedClusterState('dr', Buffer.from(JSON.stringify(old)))).toEqual(old);
    const now = { ...old, backupId: id };
    expect(decodePublishedClusterState('dr', Buffer.from(JSON.stringify(now)))).toEqual(now);
    expect(() => decodePublishedClusterState('dr', Buffer.from(JSON.stringify({ ...old, backupId: 7 })))).toThrow(/backupId: /);
  });
});

describe('obeysPublishedFence', () => {
  const active = (epoch: number): ClusterStateInput => ({ role: 'primary', state: 'ACTIVE', epoch });
  it('a primary obeys a published primary FENCED at its epoch or above, not below; nothing else', () => {
    expect(obeysPublishedFence(active(2), fenced(2, 'promoted'))).toBe(true);
    expect(obeysPublishedFence(active(2), fenced(3, 'promoted'))).toBe(true);
    expect(obeysPublishedFence(undefined, fenced(0, 'promoted'))).toBe(true);
    expect(obeysPublishedFence(active(3), fenced(2, 'an old promotion'))).toBe(false);
    expect(obeysPublishedFence(active(2), active(2))).toBe(false);
    expect(obeysPublishedFence(active(2), undefined)).toBe(false);
    expect(obeysPublishedFence(replica, fenced(5, 'promoted'))).toBe(false);
  });
});
