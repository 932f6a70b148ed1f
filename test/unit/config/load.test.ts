import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configuredRole, replaySource } from '../../../src/cluster/topology.js';
import { applyEnvOverrides, loadConfig, parseConfig } from '../../../src/config/load.js';
import { CrrError } from '../../../src/errors.js';

const good = {
  clusters: { primary: { bootstrapServers: ['127.0.0.1:19092'] }, dr: { bootstrapServers: ['127.0.0.1:29092'] } },
  mirror: { flows: [{ source: 'primary', target: 'dr' }] },
};

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw);
  } catch (err) {
    expect(err).toBeInstanceOf(CrrError);
    expect((err as CrrError).code).toBe('CRR_CONFIG_INVALID');
    return ((err as CrrError).issues as Array<{ path: string; message: string }>).map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected the config to be rejected');
}

describe('config validation', () => {
  it('fills in every default of a minimal config', () => {
    const c = parseConfig(good);
    const f = c.mirror.flows[0]!;
    expect(f.replicationPolicy).toEqual({ type: 'prefix', separator: '.' });
    expect(f.topics.exclude).toContain('__.*');
    expect(f.heartbeatIntervalMs).toBe(1000);
    expect(c.http.port).toBe(9464);
    expect(c.log.level).toBe('info');
  });

  it('loads the documented example file', () => {
    const c = loadConfig(new URL('../../../config/crr.example.yaml', import.meta.url).pathname);
    expect(c.mirror.flows).toHaveLength(1);
    expect(c.clusters.dr!.store).toMatchObject({ type: 'postgres', appRole: 'crr_app' });
    expect(c.replay.deadLetterPolicy).toBe('halt');
  });

  it('derives roles and what replay reads: own topics on a primary, remote topics on the replica', () => {
    const c = parseConfig({
      clusters: {
        primary: { bootstrapServers: ['h:1'], store: { type: 'pglite' }, changeTopics: { data: 'g.data', metadata: 'g.meta' } },
        dr: { bootstrapServers: ['h:2'], store: { type: 'pglite' } },
        other: { bootstrapServers: ['h:3'] },
      },
      mirror: { flows: [{ source: 'primary', target: 'dr' }] },
    });
    expect([configuredRole(c, 'primary'), configuredRole(c, 'dr'), configuredRole(c, 'other')]).toEqual(['primary', 'replica', 'primary']);
    expect(replaySource(c, 'primary')).toMatchObject({ dataTopic: 'g.data', metadataTopic: 'g.meta' });
    const dr = replaySource(c, 'dr');
    expect(dr).toMatchObject({
      dataTopic: 'primary.g.data',
      metadataTopic: 'primary.g.meta',
      upstream: { alias: 'primary', topicOf: { 'primary.g.data': 'g.data', 'primary.g.meta': 'g.meta' } },
    });
    expect(() => replaySource(c, 'other')).toThrow(/clusters\.other\.store: required to replay/);
    expect(() => replaySource(c, 'nope')).toThrow(/unknown cluster alias "nope"/);
  });

  it.each([
    ['an unknown key', { ...good, bogus: 1 }, '(root): unknown key "bogus"'],
    ['an unknown nested key', { ...good, clusters: { ...good.clusters, dr: { bootstrapServers: ['h:1'], port: 1 } } }, 'clusters.dr: unknown key "port"'],
    ['a wrong type', { ...good, http: { port: 'eighty' } }, 'http.port:'],
    ['an out-of-range number', { ...good, http: { port: 70000 } }, 'http.port:'],
    [
      'a malformed broker address',
      { ...good, clusters: { ...good.clusters, dr: { bootstrapServers: ['nohost'] } } },
      'clusters.dr.bootstrapServers[0]: expected "host:port"',
    ],
    ['a missing section', { mirror: good.mirror }, 'clusters:'],
    [
      'a replica no flow feeds',
      { ...good, clusters: { ...good.clusters, dr: { ...good.clusters.dr, role: 'replica' } }, mirror: { flows: [] } },
      'clusters.dr.role: a replica needs an enabled mirror flow',
    ],
    [
      'a store of type postgres without a connection string',
      { ...good, clusters: { ...good.clusters, dr: { ...good.clusters.dr, store: { type: 'postgres' } } } },
      'clusters.dr.store.connectionString: required when type is postgres',
    ],
    ['an invalid dead-letter policy', { ...good, replay: { deadLetterPolicy: 'drop' } }, 'replay.deadLetterPolicy:'],
    [
      'an unknown cluster alias in a flow',
      { ...good, mirror: { flows: [{ source: 'primary', target: 'backup' }] } },
      'mirror.flows[0].target: unknown cluster alias "backup"',
    ],
    ['a flow to itself', { ...good, mirror: { flows: [{ source: 'dr', target: 'dr' }] } }, 'mirror.flows[0].target: target must differ from source'],
    [
      'a duplicated flow',
      {
        ...good,
        mirror: {
          flows: [
            { source: 'primary', target: 'dr' },
            { source: 'primary', target: 'dr' },
          ],
        },
      },
      'mirror.flows[1]: flow primary->dr is configured twice',
    ],
    [
      'an invalid regex',
      { ...good, mirror: { flows: [{ source: 'primary', target: 'dr', topics: { include: ['(['] } }] } },
      'mirror.flows[0].topics.include[0]: expected a valid regular expression',
    ],
    [
      'an unknown enum value',
      { ...good, mirror: { flows: [{ source: 'primary', target: 'dr', targetCompression: 'brotli' }] } },
      'mirror.flows[0].targetCompression:',
    ],
    [
      'a separator made of alias characters',
      { ...good, mirror: { flows: [{ source: 'primary', target: 'dr', replicationPolicy: { separator: '_' } }] } },
      'mirror.flows[0].replicationPolicy.separator:',
    ],
    ['a cluster alias with a dot', { ...good, clusters: { ...good.clusters, 'us.east': { bootstrapServers: ['h:1'] } } }, 'clusters.us.east:'],
  ])('rejects %s, naming the path', (_name, raw, expected) => {
    expect(
      problems(raw).some((p) => p.startsWith(expected)),
      problems(raw).join('\n'),
    ).toBe(true);
  });

  it('rejects a file that is not YAML, naming the line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'crr-config-'));
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, 'clusters:\n  primary: [\n');
    expect(() => loadConfig(file)).toThrow(/bad\.yaml: not valid YAML at line/);
  });

  it('rejects a missing file with its path', () => {
    expect(() => loadConfig('/nonexistent/crr.yaml')).toThrow(/cannot read config file \/nonexistent\/crr.yaml/);
  });

  it('applies CRR__ environment overrides, typed as YAML scalars', () => {
    const raw = applyEnvOverrides(good, {
      CRR__clusters__primary__sasl__password: 's3cret',
      CRR__http__port: '9999',
      CRR__mirror__flows__0__enabled: 'false',
      CRR__clusters__dr__bootstrapServers: '["a:1", "b:2"]',
      OTHER: 'x',
    }) as typeof good & { http: { port: number } };
    expect((raw.clusters.primary as Record<string, unknown>).sasl).toEqual({ password: 's3cret' });
    expect(raw.http.port).toBe(9999);
    expect(raw.clusters.dr.bootstrapServers).toEqual(['a:1', 'b:2']);
    expect(parseConfig({ ...raw, clusters: { ...raw.clusters, primary: { bootstrapServers: ['h:1'] } } }).mirror.flows[0]!.enabled).toBe(false);
  });
});
