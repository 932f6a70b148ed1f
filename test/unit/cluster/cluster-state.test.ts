import { describe, expect, it } from 'vitest';
import {
  assertTransition,
  epochRaised,
  fenced,
  initialClusterState,
  outdated,
  promoted,
  promoting,
  reseeded,
  reseeding,
  type ClusterStateInput,
} from '../../../src/cluster/cluster-state.js';
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
