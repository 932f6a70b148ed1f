import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';
import { redactSecrets, redactText } from '../config/secrets.js';

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

/**
 * Serves, on `host:port`:
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
 * @returns the server, listening; its bound port is `address().port` (useful with port 0)
 */
export async function startHttpServer(opts: { host: string; port: number }, registry: Registry, health: HealthSource, log: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      // an error message in a reason or a label may quote a secret (src/config/secrets.ts)
      res.end(redactText(body));
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
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
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  log.info({ component: 'http', host: addr.address, port: addr.port }, `serving /metrics /healthz /readyz /status on port ${addr.port}`);
  return server;
}
