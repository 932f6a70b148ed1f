import { describe, expect, it } from 'vitest';
import { IdentityReplicationPolicy, PrefixReplicationPolicy, createReplicationPolicy } from '../../../src/replication/policy.js';
import { TopicFilter } from '../../../src/replication/topic-filter.js';
import { DEFAULT_TOPIC_EXCLUDES } from '../../../src/config/flow.js';

const aliases = new Set(['primary', 'dr', 'backup']);

describe('PrefixReplicationPolicy', () => {
  const policy = new PrefixReplicationPolicy(aliases, '.');

  it('round-trips a topic through its remote name', () => {
    const remote = policy.formatRemoteTopic('primary', 'orders');
    expect(remote).toBe('primary.orders');
    expect(policy.topicSource(remote)).toBe('primary');
    expect(policy.upstreamTopic(remote)).toBe('orders');
    expect(policy.isRemoteTopic(remote)).toBe(true);
  });

  it('keeps dots inside the upstream topic name', () => {
    expect(policy.upstreamTopic('primary.orders.v2')).toBe('orders.v2');
  });

  it('does not take a local dotted topic for a remote one', () => {
    expect(policy.isRemoteTopic('orders.v2')).toBe(false);
    expect(policy.topicSource('orders.v2')).toBeUndefined();
    expect(policy.upstreamTopic('orders.v2')).toBeUndefined();
  });

  it('honours a custom separator', () => {
    const p = new PrefixReplicationPolicy(aliases, '__');
    expect(p.formatRemoteTopic('dr', 'a.b')).toBe('dr__a.b');
    expect(p.upstreamTopic('dr__a.b')).toBe('a.b');
    expect(p.isRemoteTopic('dr.a')).toBe(false);
  });
});

describe('IdentityReplicationPolicy', () => {
  it('keeps the name and never calls a topic remote', () => {
    const p = new IdentityReplicationPolicy();
    expect(p.formatRemoteTopic('primary', 'orders')).toBe('orders');
    expect(p.isRemoteTopic('primary.orders')).toBe(false);
  });
  it('is what the factory builds for type identity', () => {
    expect(createReplicationPolicy({ type: 'identity', separator: '.' }, aliases).type).toBe('identity');
  });
});

describe('TopicFilter', () => {
  const policy = new PrefixReplicationPolicy(aliases, '.');
  const filter = new TopicFilter({ include: ['.*'], exclude: [...DEFAULT_TOPIC_EXCLUDES] }, policy, 'dr');

  it('mirrors ordinary topics', () => {
    expect(filter.shouldMirror('orders')).toBe(true);
    expect(filter.shouldMirror('heartbeats')).toBe(true);
  });

  it("applies MM2's default excludes", () => {
    for (const t of [
      '__consumer_offsets',
      '__transaction_state',
      'mm2-offsets.dr.internal',
      'crr-offsets.primary.internal',
      'connect-internal',
      'orders.replica',
    ]) {
      expect(filter.shouldMirror(t), t).toBe(false);
    }
  });

  it('never mirrors a remote topic back to its source, at any depth (cycle detection)', () => {
    expect(filter.shouldMirror('dr.orders')).toBe(false);
    expect(filter.shouldMirror('primary.dr.orders')).toBe(false);
    expect(filter.shouldMirror('backup.orders')).toBe(true);
    expect(filter.isCycle('backup.primary.orders')).toBe(false);
  });

  it('matches whole names only', () => {
    const f = new TopicFilter({ include: ['orders'], exclude: [] }, policy, 'dr');
    expect(f.shouldMirror('orders')).toBe(true);
    expect(f.shouldMirror('orders2')).toBe(false);
    expect(f.shouldMirror('my-orders')).toBe(false);
  });
});
