import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { redactSecrets, redactText, registerSecret } from '../config/secrets.js';
import { CrrError } from '../errors.js';
import type { HttpConfig } from './schema.js';

/** What the HTTP server asks of the running service. */
export interface HealthSource {
  /**
   * Why the process is not alive, one line each (empty while it is): the event loop blocked, or
   * a component that gave up on an error it does not retry, so that only a restart of the
   * process can bring it back. Served on /healthz (a liveness probe).
   */
  liveness(): string[];
  /**
   * Why the service is not ready, one line each (empty when it is): a component starting, or
   * restarting after a failure (its backoff), with the failure. Served on /readyz.
   */
  readiness(): string[];
  /** The JSON document served on /status. */
  status(): unknown;
  /** Called before each /metrics scrape, to refresh gauges computed from time (heartbeat age). */
  beforeScrape?(): void;
}

/** Paths that need the bearer token when `http.bearerTokenFile` is set; /healthz and /readyz stay open for probes. */
export const PROTECTED_PATHS: ReadonlySet<string> = new Set(['/metrics', '/status']);

/**
 * Reads a file the config names (a certificate, a key, a token).
 * @throws CrrError CRR_CONFIG_INVALID naming the config path and the file
 */
function readConfigFile(path: string, configPath: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    throw new CrrError('CRR_CONFIG_INVALID', `${configPath}: cannot read ${path}: ${(cause as Error).message}`, { cause, context: { path: configPath } });
  }
}

/**
 * The bearer token of `http.bearerTokenFile`: read at start, and again at each check so that a
 * rotated token applies at once; when a later read fails the last token read stays in force.
 */
class BearerToken {
  private digest: Buffer;

  constructor(
    private readonly file: string,
    private readonly log: Logger,
  ) {
    this.digest = this.read(true)!;
  }

  private read(atStart: boolean): Buffer | undefined {
    try {
      const token = readConfigFile(this.file, 'http.bearerTokenFile').trim();
      if (token === '') throw new CrrError('CRR_CONFIG_INVALID', `http.bearerTokenFile: ${this.file} is empty`, { context: { path: 'http.bearerTokenFile' } });
      registerSecret(token);
      return createHash('sha256').update(token).digest();
    } catch (err) {
      if (atStart) throw err;
      this.log.error({ component: 'http', err }, 'cannot re-read http.bearerTokenFile; the last token read stays in force');
      return undefined;
    }
  }

  /** Whether the request carries `Authorization: Bearer <the token>` (compared in constant time). */
  accepts(req: IncomingMessage): boolean {
    this.digest = this.read(false) ?? this.digest;
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (!m) return false;
    return timingSafeEqual(createHash('sha256').update(m[1]!).digest(), this.digest);
  }
}

/**
 * Serves, on `host:port` (HTTPS with `tls`):
 * - `GET /metrics`: crr's own prom-client registry (Prometheus text format);
 * - `GET /healthz` (liveness): 200 `ok` while the process is alive, else 503 with one problem
 *   per line (see {@link HealthSource.liveness}). A broker outage is NOT a liveness problem:
 *   restarting the process would not cure it;
 * - `GET /readyz` (readiness): 200 `ready` once every component runs, else 503 with one reason
 *   per line (a flow or replay starting, or in its restart backoff: a cluster unreachable);
 * - `GET /status`: JSON status of every component.
 *
 * No body echoes a secret: each goes through the redaction of src/config/secrets.ts.
 *
 * With `bearerTokenFile`, /metrics and /status answer 401 (with `WWW-Authenticate: Bearer`)
 * unless the request carries `Authorization: Bearer <token>`; /healthz and /readyz stay open.
 *
 * @param opts `http` of the config: host (default 127.0.0.1), port, optional `tls` (cert and key
 *   files, PEM) and `bearerTokenFile`
 * @returns the server, listening; its bound port is `address().port` (useful with port 0)
 * @throws CrrError CRR_CONFIG_INVALID when a certificate, key or token file cannot be read (or
 *   the token file is empty, or the key does not match the certificate), naming the config path;
 *   the `listen` error (EADDRINUSE) as it is
 */
export async function startHttpServer(
  opts: Pick<HttpConfig, 'host' | 'port'> & Partial<Pick<HttpConfig, 'tls' | 'bearerTokenFile'>>,
  registry: Registry,
  health: HealthSource,
  log: Logger,
): Promise<Server> {
  const token = opts.bearerTokenFile === undefined ? undefined : new BearerToken(opts.bearerTokenFile, log);
  const handler: RequestListener = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      // an error message in a reason or a label may quote a secret (src/config/secrets.ts)
      res.end(redactText(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    if (token && PROTECTED_PATHS.has(path ?? '') && !token.accepts(req)) {
      res.setHeader('www-authenticate', 'Bearer realm="crr"');
      return send(401, 'text/plain', `${path} needs the bearer token of http.bearerTokenFile: Authorization: Bearer <token>\n`);
    }
    switch (path) {
      case '/metrics':
        health.beforeScrape?.();
        registry.metrics().then(
          (text) => send(200, registry.contentType, text),
          (err: unknown) => send(500, 'text/plain', `${String(err)}\n`),
        );
        return;
      case '/healthz': {
        const problems = health.liveness();
        return problems.length === 0 ? send(200, 'text/plain', 'ok\n') : send(503, 'text/plain', `${problems.join('\n')}\n`);
      }
      case '/readyz': {
        const reasons = health.readiness();
        return reasons.length === 0 ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', `${reasons.join('\n')}\n`);
      }
      case '/status':
        return send(200, 'application/json', `${JSON.stringify(redactSecrets(health.status()), null, 2)}\n`);
      default:
        return send(404, 'text/plain', 'not found: try /metrics, /healthz, /readyz or /status\n');
    }
  };
  let server: Server;
  if (opts.tls) {
    const cert = readConfigFile(opts.tls.certFile, 'http.tls.certFile');
    const key = readConfigFile(opts.tls.keyFile, 'http.tls.keyFile');
    try {
      server = createHttpsServer({ cert, key }, handler);
    } catch (cause) {
      throw new CrrError('CRR_CONFIG_INVALID', `http.tls: cannot use ${opts.tls.certFile} with ${opts.tls.keyFile}: ${(cause as Error).message}`, {
        cause,
        context: { path: 'http.tls' },
      });
    }
  } else {
    server = createServer(handler);
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const scheme = opts.tls ? 'https' : 'http';
  log.info(
    { component: 'http', host: addr.address, port: addr.port, tls: Boolean(opts.tls), auth: token ? 'bearer' : 'none' },
    `serving /metrics /healthz /readyz /status on ${scheme}://${addr.address}:${addr.port}${token ? ' (/metrics and /status need the bearer token)' : ''}`,
  );
  return server;
}
