import { describe, expect, it } from 'vitest';
import { desiredAclsFor } from '../../../src/acls/fence.js';
import { type AclBinding, formatBinding, planAcls } from '../../../src/acls/plan.js';
import { ConfigSchema } from '../../../src/config/schema.js';

const sasl = { mechanism: 'scram-sha-512', username: 'crr', password: 'secret' };
const config = (manageAcls = false) =>
  ConfigSchema.parse({
    clusters: {
      primary: { bootstrapServers: ['p:9092'], ssl: true, sasl, applicationPrincipals: ['User:app'], manageAcls },
      dr: { bootstrapServers: ['d:9092'], ssl: true, sasl, applicationPrincipals: ['User:app'], manageAcls },
    },
    mirror: { flows: [{ source: 'primary', target: 'dr' }] },
  });
const principals = { crr: 'User:crr', applications: ['User:app'] };
const lines = (bs: AclBinding[]) => bs.map(formatBinding).sort();

describe('desiredAclsFor (src/acls/fence.ts)', () => {
  it('fenced-primary: the primary ACLs without the applications WRITE on the change topics, which are DENIED instead; crr keeps ALL', () => {
    const d = lines(desiredAclsFor(config(), 'primary', 'fenced-primary', principals).bindings);
    const p = lines(desiredAclsFor(config(), 'primary', 'primary', principals).bindings);
    for (const t of ['graph.data', 'graph.metadata']) {
      expect(p).toContain(`ALLOW User:app WRITE TOPIC LITERAL ${t}`);
      expect(d).not.toContain(`ALLOW User:app WRITE TOPIC LITERAL ${t}`);
      expect(d).toContain(`DENY User:app WRITE TOPIC LITERAL ${t}`);
      expect(d).toContain(`ALLOW User:app READ TOPIC LITERAL ${t}`);
      expect(d).toContain(`ALLOW User:crr ALL TOPIC LITERAL ${t}`);
    }
    // what stays the same: everything but the applications' WRITE
    expect(d.filter((l) => !/User:app WRITE TOPIC LITERAL graph\./.test(l))).toEqual(p.filter((l) => !/User:app WRITE TOPIC LITERAL graph\./.test(l)));
  });

  it('fenced-primary: the plan from a primary removes the applications WRITE and any other ALLOW WRITE reaching the change topics', () => {
    const primary = desiredAclsFor(config(), 'primary', 'primary', principals).bindings;
    const wildcard: AclBinding = {
      resourceType: 'TOPIC',
      resourceName: 'graph.',
      patternType: 'PREFIXED',
      principal: 'User:other',
      host: '*',
      operation: 'ALL',
      permission: 'ALLOW',
    };
    const plan = planAcls(desiredAclsFor(config(), 'primary', 'fenced-primary', principals), [...primary, wildcard]);
    expect(lines(plan.remove)).toEqual(
      [
        'ALLOW User:app WRITE TOPIC LITERAL graph.data',
        'ALLOW User:app WRITE TOPIC LITERAL graph.metadata',
        'ALLOW User:other ALL TOPIC PREFIXED graph.',
      ].sort(),
    );
    expect(lines(plan.add)).toEqual(['DENY User:app WRITE TOPIC LITERAL graph.data', 'DENY User:app WRITE TOPIC LITERAL graph.metadata']);
    // and back: promoted again (a primary), the DENY goes and the WRITE comes back
    const back = planAcls(desiredAclsFor(config(), 'primary', 'primary', principals), [
      ...desiredAclsFor(config(), 'primary', 'fenced-primary', principals).bindings,
    ]);
    expect(lines(back.remove)).toEqual(['DENY User:app WRITE TOPIC LITERAL graph.data', 'DENY User:app WRITE TOPIC LITERAL graph.metadata']);
    expect(lines(back.add)).toEqual(['ALLOW User:app WRITE TOPIC LITERAL graph.data', 'ALLOW User:app WRITE TOPIC LITERAL graph.metadata']);
  });

  it('manageAcls: crr gets ALTER on the cluster (to change ACLs) in every role; without it, an ALTER of crr is removed', () => {
    for (const [alias, role] of [
      ['primary', 'primary'],
      ['primary', 'fenced-primary'],
      ['dr', 'replica'],
      ['dr', 'primary'],
    ] as const) {
      expect(lines(desiredAclsFor(config(true), alias, role, principals).bindings)).toContain('ALLOW User:crr ALTER CLUSTER LITERAL kafka-cluster');
      expect(lines(desiredAclsFor(config(false), alias, role, principals).bindings)).not.toContain('ALLOW User:crr ALTER CLUSTER LITERAL kafka-cluster');
    }
    const alter = desiredAclsFor(config(true), 'dr', 'replica', principals).bindings.filter((b) => b.operation === 'ALTER');
    expect(lines(planAcls(desiredAclsFor(config(false), 'dr', 'replica', principals), alter).remove)).toEqual([
      'ALLOW User:crr ALTER CLUSTER LITERAL kafka-cluster',
    ]);
  });

  it("every role: crr may create and write replay's dead-letter topic (replay of a secured cluster needs it)", () => {
    for (const [alias, role] of [
      ['primary', 'primary'],
      ['primary', 'fenced-primary'],
      ['dr', 'replica'],
    ] as const)
      expect(lines(desiredAclsFor(config(), alias, role, principals).bindings)).toContain('ALLOW User:crr ALL TOPIC LITERAL crr-dead-letters.internal');
  });

  it('manageAcls without a SASL user name is a config error naming the path', () => {
    const r = ConfigSchema.safeParse({ clusters: { primary: { bootstrapServers: ['p:9092'], manageAcls: true } } });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['clusters', 'primary', 'manageAcls']);
  });
});
