import { describe, expect, it } from 'vitest';
import { aclFailure, formatAclStatus } from '../../../src/acls/apply.js';
import { type AclBinding, desiredAcls, formatBinding, patternsOverlap, planAcls } from '../../../src/acls/plan.js';
import { ConfigSchema } from '../../../src/config/schema.js';
import { CONTROL_TOPIC } from '../../../src/replication/control-topic.js';

const config = (over: Record<string, unknown> = {}) =>
  ConfigSchema.parse({
    clusters: {
      primary: { bootstrapServers: ['p:9092'], applicationPrincipals: ['User:app'] },
      dr: { bootstrapServers: ['d:9092'], applicationPrincipals: ['User:app'] },
    },
    mirror: {
      flows: [
        { source: 'primary', target: 'dr' },
        { source: 'dr', target: 'primary', enabled: false },
      ],
    },
    ...over,
  });
const principals = { crr: 'User:crr', applications: ['User:app'] };
const lines = (bs: AclBinding[]) => bs.map(formatBinding).sort();
const allow = (
  principal: string,
  operation: AclBinding['operation'],
  resourceName: string,
  patternType: AclBinding['patternType'] = 'LITERAL',
): AclBinding => ({
  resourceType: 'TOPIC',
  resourceName,
  patternType,
  principal,
  host: '*',
  operation,
  permission: 'ALLOW',
});

describe('desiredAcls', () => {
  it('on a replica: only crr writes the remote topics, internal topics and its transactional id; applications read and are denied WRITE', () => {
    const d = desiredAcls(config(), 'dr', 'replica', principals);
    const l = lines(d.bindings);
    expect(l).toContain('ALLOW User:crr ALL TOPIC PREFIXED primary.');
    for (const t of ['crr-offsets.primary.internal', 'crr-offset-syncs.primary.internal', 'primary.checkpoints.internal', 'crr-cluster-state.internal'])
      expect(l).toContain(`ALLOW User:crr ALL TOPIC LITERAL ${t}`);
    expect(l).toContain('ALLOW User:crr WRITE TRANSACTIONAL_ID LITERAL crr-mirror-primary-dr');
    expect(l).toContain('ALLOW User:app READ TOPIC PREFIXED primary.');
    expect(l).toContain('DENY User:app WRITE TOPIC PREFIXED primary.');
    // MM2's rule: no ALLOW WRITE (or ALL) for anyone but crr on a replica
    expect(d.bindings.filter((b) => b.permission === 'ALLOW' && (b.operation === 'WRITE' || b.operation === 'ALL') && b.principal !== 'User:crr')).toEqual([]);
  });

  it('on a primary: applications WRITE its change topics; crr reads every topic as the source of the flow', () => {
    const l = lines(desiredAcls(config(), 'primary', 'primary', principals).bindings);
    expect(l).toContain('ALLOW User:app WRITE TOPIC LITERAL graph.data');
    expect(l).toContain('ALLOW User:app WRITE TOPIC LITERAL graph.metadata');
    expect(l).toContain('ALLOW User:crr READ TOPIC LITERAL *');
    expect(l).toContain('ALLOW User:crr ALL TOPIC LITERAL heartbeats');
    expect(l).not.toContain('ALLOW User:app WRITE TOPIC LITERAL crr-cluster-state.internal');
  });

  it('under the identity policy names the remote topics literally', () => {
    const c = config({ mirror: { flows: [{ source: 'primary', target: 'dr', replicationPolicy: { type: 'identity' } }] } });
    const l = lines(desiredAcls(c, 'dr', 'replica', principals).bindings);
    expect(l).toContain('DENY User:app WRITE TOPIC LITERAL graph.data');
    expect(l).toContain('DENY User:app WRITE TOPIC LITERAL heartbeats');
  });

  it("refuses crr's own principal or a wildcard among the applications (their DENY WRITE would stop crr)", () => {
    expect(() => desiredAcls(config(), 'dr', 'replica', { crr: 'User:crr', applications: ['User:crr'] })).toThrow(
      /clusters.dr.applicationPrincipals: "User:crr" is crr's own principal/,
    );
    expect(() => desiredAcls(config(), 'dr', 'replica', { crr: 'User:crr', applications: ['User:*'] })).toThrow(/"User:\*" is a wildcard/);
  });

  it('with sourceAuth: the source-side grants go to the read-only source principal; crr keeps DESCRIBE (crr status) and ALL on the control topic', () => {
    const sourceAuth = { ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'crr-src', password: 'src-secret' } };
    const c = config({ mirror: { flows: [{ source: 'primary', target: 'dr', sourceAuth }] } });
    const d = desiredAcls(c, 'primary', 'primary', principals);
    const l = lines(d.bindings);
    for (const op of ['READ', 'DESCRIBE', 'DESCRIBE_CONFIGS']) expect(l).toContain(`ALLOW User:crr-src ${op} TOPIC LITERAL *`);
    expect(l).toContain('ALLOW User:crr-src DESCRIBE GROUP LITERAL *');
    expect(l).toContain('ALLOW User:crr-src ALL TOPIC LITERAL heartbeats');
    expect(l).toContain('ALLOW User:crr-src READ GROUP LITERAL crr-mirror-primary-dr');
    expect(l).toContain('ALLOW User:crr-src DESCRIBE GROUP LITERAL crr-mirror-primary-dr');
    for (const op of ['WRITE', 'READ', 'DESCRIBE']) expect(l).toContain(`ALLOW User:crr-src ${op} TOPIC LITERAL ${CONTROL_TOPIC}`);
    expect(l).toContain(`ALLOW User:crr ALL TOPIC LITERAL ${CONTROL_TOPIC}`);
    expect(l).toContain('ALLOW User:crr DESCRIBE TOPIC LITERAL *');
    // crr's principal no longer reads every topic, nor owns the heartbeats topic
    expect(l).not.toContain('ALLOW User:crr READ TOPIC LITERAL *');
    expect(l).not.toContain('ALLOW User:crr ALL TOPIC LITERAL heartbeats');
    // the source principal writes nothing but the heartbeats and the control topic
    const srcWrites = d.bindings.filter((b) => b.principal === 'User:crr-src' && (b.operation === 'WRITE' || b.operation === 'ALL'));
    expect(lines(srcWrites)).toEqual([`ALLOW User:crr-src ALL TOPIC LITERAL heartbeats`, `ALLOW User:crr-src WRITE TOPIC LITERAL ${CONTROL_TOPIC}`]);
    expect(d.principals.mirrorSources).toEqual(['User:crr-src']);
    // the replica's side is untouched: crr writes it
    expect(lines(desiredAcls(c, 'dr', 'replica', principals).bindings).join('\n')).not.toContain('crr-src');

    // moving from crr's principal to the source principal removes crr's old source grants
    const before = desiredAcls(config(), 'primary', 'primary', principals).bindings;
    const plan = planAcls(d, before);
    expect(lines(plan.remove)).toEqual(
      [
        'ALLOW User:crr ALL TOPIC LITERAL heartbeats',
        'ALLOW User:crr DESCRIBE GROUP LITERAL *',
        'ALLOW User:crr DESCRIBE_CONFIGS TOPIC LITERAL *',
        'ALLOW User:crr READ TOPIC LITERAL *',
      ].sort(),
    );
    // and disabling the flow removes the source principal's
    const disabled = config({
      mirror: {
        flows: [
          { source: 'primary', target: 'dr', sourceAuth, enabled: false },
          { source: 'dr', target: 'primary' },
        ],
      },
    });
    const off = planAcls(desiredAcls(disabled, 'primary', 'primary', principals), d.bindings);
    expect(off.remove.filter((b) => b.principal === 'User:crr-src')).toHaveLength(d.bindings.filter((b) => b.principal === 'User:crr-src').length);
  });

  it('without sourceAuth: crr is the source principal, with ALL on the control topic and no repeated grants', () => {
    const l = lines(desiredAcls(config(), 'primary', 'primary', principals).bindings);
    expect(l).toContain(`ALLOW User:crr ALL TOPIC LITERAL ${CONTROL_TOPIC}`);
    expect(l.filter((x) => x.includes(CONTROL_TOPIC))).toHaveLength(1);
    expect(l.filter((x) => x.includes('crr-mirror-primary-dr'))).toEqual([]); // crr's ALL on groups prefixed crr- covers it
    expect(desiredAcls(config(), 'primary', 'primary', principals).principals.mirrorSources).toEqual([]);
  });

  it('an OAUTHBEARER sourceAuth: refused, naming the path (the principal is in the token)', () => {
    const c = config({
      mirror: { flows: [{ source: 'primary', target: 'dr', sourceAuth: { ssl: true, sasl: { mechanism: 'oauthbearer', tokenFile: '/t' } } }] },
    });
    expect(() => desiredAcls(c, 'primary', 'primary', principals)).toThrow(
      /mirror\.flows\[0\]\.sourceAuth\.sasl: the source principal of flow primary->dr is in its OAUTHBEARER token/,
    );
  });

  it('refuses a replica no enabled flow targets, naming the path', () => {
    expect(() => desiredAcls(config(), 'primary', 'replica', principals)).toThrow(/no enabled flow in mirror.flows targets it/);
  });
});

describe('planAcls', () => {
  it('adds what is missing, and nothing the second time', () => {
    const d = desiredAcls(config(), 'dr', 'replica', principals);
    const first = planAcls(d, []);
    expect(first.add).toHaveLength(d.bindings.length);
    expect(first.remove).toEqual([]);
    const second = planAcls(d, first.add);
    expect(second.add).toEqual([]);
    expect(second.remove).toEqual([]);
  });

  it('removes any ALLOW WRITE reaching a fenced resource on a replica, wildcards included, and leaves unrelated ACLs alone', () => {
    const d = desiredAcls(config(), 'dr', 'replica', principals);
    const stray = [
      allow('User:*', 'WRITE', '*'),
      allow('User:other', 'ALL', 'primary.', 'PREFIXED'),
      allow('User:other', 'WRITE', 'primary.graph.data'),
      allow('User:other', 'WRITE', 'crr-offsets.primary.internal'),
      { ...allow('User:other', 'WRITE', 'crr-mirror-primary-dr'), resourceType: 'TRANSACTIONAL_ID' as const },
    ];
    const unrelated = [allow('User:other', 'WRITE', 'orders'), allow('User:other', 'READ', 'primary.graph.data')];
    const plan = planAcls(d, [...d.bindings, ...stray, ...unrelated]);
    expect(lines(plan.remove)).toEqual(lines(stray));
    expect(plan.add).toEqual([]);
  });

  it("flips on promotion: the new replica loses the applications' WRITE on its change topics, the new primary their DENY", () => {
    const c = config();
    const asPrimary = desiredAcls(c, 'primary', 'primary', principals);
    const asReplica = desiredAcls(ConfigSchema.parse({ ...c, mirror: { flows: [{ source: 'dr', target: 'primary' }] } }), 'primary', 'replica', principals);
    const plan = planAcls(asReplica, asPrimary.bindings);
    expect(lines(plan.remove)).toContain('ALLOW User:app WRITE TOPIC LITERAL graph.data');
    const drBack = planAcls(desiredAcls(c, 'dr', 'primary', principals), desiredAcls(c, 'dr', 'replica', principals).bindings);
    expect(lines(drBack.remove)).toContain('DENY User:app WRITE TOPIC PREFIXED primary.');
    expect(lines(drBack.add)).toContain('ALLOW User:app WRITE TOPIC LITERAL graph.data');
  });
});

describe('patternsOverlap', () => {
  const t = (resourceName: string, patternType: 'LITERAL' | 'PREFIXED' = 'LITERAL') => ({ resourceType: 'TOPIC' as const, resourceName, patternType });
  it.each([
    [t('*'), t('x'), true],
    [t('a.b'), t('a.', 'PREFIXED'), true],
    [t('a', 'PREFIXED'), t('a.', 'PREFIXED'), true],
    [t('b.c'), t('a.', 'PREFIXED'), false],
    [t('a.b'), t('a.c'), false],
  ])('%o and %o: %s', (a, b, want) => {
    expect(patternsOverlap(a, b)).toBe(want);
    expect(patternsOverlap(b, a)).toBe(want);
  });
});

describe('crr status: the ACL fence of a cluster', () => {
  it('names each state, and what to run when the plan is not empty', () => {
    expect(formatAclStatus({ cluster: 'dr', role: 'replica', state: 'in-place' })).toBe('acls: in place');
    expect(formatAclStatus({ cluster: 'dr', role: 'replica', state: 'to-change', add: 3, remove: 1 })).toBe(
      'acls: 3 to add, 1 to remove (run crr acls apply --cluster dr --execute)',
    );
    expect(formatAclStatus({ cluster: 'dr', role: 'replica', state: 'no-authorizer' })).toBe('acls: no authorizer');
  });

  it('reads a failure: SECURITY_DISABLED is no authorizer, an authorization failure cannot check, anything else cannot check with its message', () => {
    const broker = (type: string) => Object.assign(new Error(type), { type });
    expect(aclFailure(new Error('wrapped', { cause: broker('SECURITY_DISABLED') }))).toEqual({ state: 'no-authorizer' });
    expect(aclFailure(broker('CLUSTER_AUTHORIZATION_FAILED'))).toEqual({
      state: 'cannot-check',
      reason: 'not authorized to DESCRIBE ACLs (CLUSTER_AUTHORIZATION_FAILED)',
    });
    expect(aclFailure(new Error('Connection timeout'))).toEqual({ state: 'cannot-check', reason: 'Connection timeout' });
  });
});
