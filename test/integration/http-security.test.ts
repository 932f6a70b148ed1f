import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import type { HttpConfig } from '../../src/http/schema.js';
import { startHttpServer, type HealthSource } from '../../src/http/server.js';
import { CrrError } from '../../src/errors.js';
import { http, PRIMARY, runCrr, uniq, useCrrProcesses, waitFor } from '../support/helpers.js';
import { makePki, type TestPki } from '../support/pki.js';

/** GET over HTTPS trusting only `ca` (Node's https: the real TLS handshake and verification). */
function httpsGet(
  port: number,
  path: string,
  opts: { ca?: string; token?: string } = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        ca: opts.ca === undefined ? undefined : readFileSync(opts.ca),
        headers: opts.token === undefined ? {} : { authorization: `Bearer ${opts.token}` },
      },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const health: HealthSource = { liveness: () => [], readiness: () => [], status: () => ({ flows: [] }) };
const silent = pino({ level: 'silent' });

describe('HTTP endpoints, secure by default (issue 12 item 5)', () => {
  let pki: TestPki;
  const servers: Server[] = [];
  const serve = async (http: Partial<HttpConfig>): Promise<number> => {
    const s = await startHttpServer({ ...parseConfig({ clusters: {} }).http, port: 0, ...http }, new Registry(), health, silent);
    servers.push(s);
    return (s.address() as AddressInfo).port;
  };
  beforeAll(() => {
    pki = makePki();
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
  });

  it('binds 127.0.0.1 by default', async () => {
    expect(parseConfig({ clusters: {} }).http.host).toBe('127.0.0.1');
    await serve({});
    expect((servers[0]!.address() as AddressInfo).address).toBe('127.0.0.1');
  });

  it('TLS with a bearer token: /status and /metrics need the token, /healthz and /readyz stay open; a rotated token applies at once', async () => {
    const tokenFile = join(pki.dir, `token-${uniq()}`);
    writeFileSync(tokenFile, 'first-token-value\n');
    const port = await serve({ tls: { certFile: pki.cert, keyFile: pki.key }, bearerTokenFile: tokenFile });
    const ca = pki.caCert;
    expect(await httpsGet(port, '/healthz', { ca })).toMatchObject({ status: 200, body: 'ok\n' });
    expect(await httpsGet(port, '/readyz', { ca })).toMatchObject({ status: 200, body: 'ready\n' });
    for (const path of ['/status', '/metrics']) {
      const anonymous = await httpsGet(port, path, { ca });
      expect(anonymous.status, path).toBe(401);
      expect(anonymous.headers['www-authenticate']).toBe('Bearer realm="crr"');
      expect((await httpsGet(port, path, { ca, token: 'wrong-token' })).status, path).toBe(401);
      expect((await httpsGet(port, path, { ca, token: 'first-token-value' })).status, path).toBe(200);
    }
    writeFileSync(tokenFile, 'second-token-value');
    expect((await httpsGet(port, '/status', { ca, token: 'first-token-value' })).status).toBe(401);
    expect(await httpsGet(port, '/status', { ca, token: 'second-token-value' })).toMatchObject({ status: 200, body: '{\n  "flows": []\n}\n' });
    // a client that does not trust the test CA refuses the server
    await expect(httpsGet(port, '/healthz')).rejects.toThrow(/certificate/);
    // plain HTTP to the TLS port gets nothing useful
    await expect(http(port, '/healthz')).rejects.toThrow();
  });

  it('a missing certificate, a key of another certificate or an empty token file: CRR_CONFIG_INVALID naming the path', async () => {
    const empty = join(pki.dir, 'empty-token');
    writeFileSync(empty, '  \n');
    const cases: Array<[Partial<HttpConfig>, RegExp]> = [
      [{ tls: { certFile: join(pki.dir, 'missing.crt'), keyFile: pki.key } }, /^http\.tls\.certFile: cannot read .*missing\.crt/],
      [{ tls: { certFile: pki.cert, keyFile: join(pki.dir, 'missing.key') } }, /^http\.tls\.keyFile: cannot read/],
      [{ tls: { certFile: pki.cert, keyFile: pki.otherKey } }, /^http\.tls: cannot use .*server\.crt with .*other\.key/],
      [{ bearerTokenFile: empty }, /^http\.bearerTokenFile: .*empty-token is empty/],
      [{ bearerTokenFile: join(pki.dir, 'no-token') }, /^http\.bearerTokenFile: cannot read/],
    ];
    for (const [cfg, message] of cases) {
      const err = await serve(cfg).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, JSON.stringify(cfg)).toBeInstanceOf(CrrError);
      expect((err as CrrError).code).toBe('CRR_CONFIG_INVALID');
      expect((err as CrrError).message).toMatch(message);
    }
  });

  describe('crr run', () => {
    const start = useCrrProcesses();
    const configFor = (http: Record<string, unknown>): { path: string; alias: string } => {
      const id = uniq();
      const path = join(tmpdir(), 'crr-tests', `http-${id}.yaml`);
      const config = {
        clusters: {
          [`p${id}`]: {
            bootstrapServers: [PRIMARY],
            changeTopics: { data: `t${id}.data`, metadata: `t${id}.metadata`, dataPartitions: 1 },
            store: { type: 'pglite', dataDir: join(pki.dir, `pglite-${id}`) },
          },
        },
        http,
      };
      writeFileSync(path, stringify(config));
      return { path, alias: `p${id}` };
    };

    it('serves HTTPS with the token; an unreadable certificate stops it with exit 78 naming http.tls.certFile', async () => {
      const tokenFile = join(pki.dir, `token-${uniq()}`);
      writeFileSync(tokenFile, 'run-token-value');
      const port = 20_000 + Math.floor(Math.random() * 5000);
      const { path, alias } = configFor({ port, tls: { certFile: pki.cert, keyFile: pki.key }, bearerTokenFile: tokenFile });
      const p = start(['run', '--config', path, '--cluster', alias]);
      await waitFor(
        'crr run to serve /readyz over HTTPS',
        async () => (await httpsGet(port, '/readyz', { ca: pki.caCert }).catch(() => ({ status: 0 }))).status === 200,
        60_000,
      );
      expect((await httpsGet(port, '/status', { ca: pki.caCert })).status).toBe(401);
      expect((await httpsGet(port, '/status', { ca: pki.caCert, token: 'run-token-value' })).status).toBe(200);
      expect(p.log()).toContain(`serving /metrics /healthz /readyz /status on https://127.0.0.1:${port} (/metrics and /status need the bearer token)`);
      expect(p.log()).not.toContain('run-token-value');

      const bad = configFor({ port: 0, tls: { certFile: join(pki.dir, 'nope.crt'), keyFile: pki.key } });
      const r = await runCrr(['run', '--config', bad.path, '--cluster', bad.alias]);
      expect(r.code, r.stderr).toBe(78);
      expect(r.stderr).toContain('http.tls.certFile: cannot read');
    }, 120_000);
  });
});
