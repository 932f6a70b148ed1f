import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { S3_ENDPOINT } from '../support/s3-helpers.js';
import { http, PG_URL, runCrr, uniq, useCrrProcesses, usePairs, waitFor } from '../support/helpers.js';

/** `PG_URL` with a password (trust auth ignores it). */
function withPassword(url: string, password: string): string {
  const u = new URL(url);
  u.password = password;
  return u.toString();
}

/**
 * Secrets are never echoed (issue 12, item 4): a primary/replica pair runs with secret values
 * that are unique strings — the PostgreSQL password in both stores' connection strings, an S3
 * secret key, a SASL password given in the file and another by environment override, on a
 * cluster that is not used — and no log line, HTTP body or CLI output may contain one.
 * The S3 repository is the primary's, which the replica's daemon does not open unless it
 * reseeds (S3Proxy here accepts only its fixed credentials, scripts/s3.sh).
 */
describe('secrets are never echoed', () => {
  const pair = usePairs();
  const start = useCrrProcesses();

  it('crr run, /status, /metrics, /readyz, crr status, crr config and error messages censor every secret', async () => {
    const p = pair();
    const secrets = {
      pgPrimary: `pgpwP${uniq()}`,
      pgDr: `pgpwD${uniq()}`,
      s3: `s3secret${uniq()}`,
      sasl: `saslpw${uniq()}`,
      saslEnv: `saslenv${uniq()}`,
    };
    const unused = `u${uniq()}`;
    const config = parseYaml(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    config.clusters[p.source].store.connectionString = withPassword(PG_URL, secrets.pgPrimary);
    config.clusters[p.source].backup = {
      repository: { type: 's3', bucket: 'crr-never-used', endpoint: S3_ENDPOINT, forcePathStyle: true, accessKeyId: 'crr', secretAccessKey: secrets.s3 },
    };
    config.clusters[p.target].store.connectionString = withPassword(PG_URL, secrets.pgDr);
    config.clusters[unused] = { bootstrapServers: ['127.0.0.1:1'], ssl: true, sasl: { mechanism: 'plain', username: 'app', password: secrets.sasl } };
    config.clusters[`${unused}e`] = {
      bootstrapServers: ['127.0.0.1:1'],
      ssl: true,
      sasl: { mechanism: 'scram-sha-512', username: 'app', password: 'set-by-env' },
    };
    config.log = { level: 'debug' };
    writeFileSync(p.configPath, stringify(config));
    const env = { [`CRR__clusters__${unused}e__sasl__password`]: secrets.saslEnv };

    const outputs: Array<{ what: string; text: string }> = [];
    const primary = start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)], env);
    const replica = start(['run', '--config', p.configPath, '--cluster', p.target], env);
    for (const port of [p.primaryHttpPort, p.httpPort]) {
      await waitFor(`crr run on port ${port} to be ready`, async () => (await http(port, '/readyz').catch(() => ({ status: 0 }))).status === 200, 90_000);
      for (const path of ['/status', '/metrics', '/readyz', '/healthz']) outputs.push({ what: `GET :${port}${path}`, text: (await http(port, path)).body });
    }

    // a store that cannot be reached: replay waits and says why, in its log and on /readyz
    const bad = structuredClone(config);
    bad.clusters[p.target].store.connectionString = withPassword('postgres://postgres@127.0.0.1:1/postgres', secrets.pgDr);
    const badPath = join(tmpdir(), 'crr-tests', `bad-${uniq()}.yaml`);
    writeFileSync(badPath, stringify(bad));
    const badPort = p.httpPort + 1000;
    const waiting = start(['replay', '--config', badPath, '--cluster', p.target, '--http-port', String(badPort)], env);
    await waitFor('replay to report the store unreachable', () => waiting.log().includes('the store cannot be reached'), 60_000);
    outputs.push({ what: 'GET /readyz of a replay without its store', text: (await http(badPort, '/readyz').catch((e: Error) => ({ body: e.message }))).body });

    for (const args of [
      ['status', '--config', p.configPath],
      ['status', '--config', p.configPath, '--json'],
      ['config', '--config', p.configPath],
      ['config', '--config', p.configPath, '--json'],
    ]) {
      const r = await runCrr(args, env);
      outputs.push({ what: `crr ${args.join(' ')} (exit ${r.code})`, text: r.stdout + r.stderr });
    }
    // an invalid config: the error names paths, never values
    const invalid = structuredClone(config);
    invalid.clusters[unused].sasl.passwrd = secrets.sasl;
    const invalidPath = join(tmpdir(), 'crr-tests', `invalid-${uniq()}.yaml`);
    writeFileSync(invalidPath, stringify(invalid));
    const rejected = await runCrr(['run', '--config', invalidPath, '--cluster', p.target], env);
    expect(rejected.code).toBe(78);
    outputs.push({ what: 'crr run with an invalid config', text: rejected.stdout + rejected.stderr });

    for (const proc of [primary, replica, waiting]) proc.child.kill('SIGTERM');
    await Promise.all([primary.exited, replica.exited, waiting.exited]);
    outputs.push(
      { what: 'log of the primary', text: primary.log() },
      { what: 'log of the replica', text: replica.log() },
      { what: 'log of the waiting replay', text: waiting.log() },
    );

    // the outputs do show the fields, censored
    const shown = outputs.find((o) => o.what.startsWith('crr config --config'))!.text;
    expect(shown).toContain(`postgres:[redacted]@`);
    expect(shown).toMatch(/password: "?\[redacted\]"?/);
    expect(shown).toMatch(/secretAccessKey: "?\[redacted\]"?/);
    expect(replica.log()).toContain('"msg":"write fence on');
    for (const o of outputs) {
      for (const [name, secret] of Object.entries(secrets)) {
        expect(o.text.includes(secret), `${o.what} contains the ${name} secret:\n${o.text.slice(0, 4000)}`).toBe(false);
      }
    }
  }, 240_000);
});
