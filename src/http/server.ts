import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from 'pino';

/** What the HTTP server asks of the running service. */
export interface HealthSource {
  /** Problems that make the service unhealthy (empty when healthy): a flow failed or restarting after a failure. */
  problems(): string[];
  /** Whether every component has started (mirror flows active, standby or idle). */
  ready(): boolean;
  /** The JSON document served on /status. */
  status(): unknown;
  /** Called before each /metrics scrape, to refresh gauges computed from time (heartbeat age). */
  beforeScrape?(): void;
}

/**
 * Serves, on `host:port`:
 * - `GET /metrics`: crr's own prom-client registry (Prometheus text format);
 * - `GET /healthz`: 200 `ok`, or 503 with one problem per line (a cluster unreachable, a flow
 *   failed) — for alerting and liveness;
 * - `GET /readyz`: 200 once every flow has started, else 503;
 * - `GET /status`: JSON status of every component.
 *
 * @returns the server, listening; its bound port is `address().port` (useful with port 0)
 */
export async function startHttpServer(opts: { host: string; port: number }, registry: Registry, health: HealthSource, log: Logger): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
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
        const problems = health.problems();
        return problems.length === 0 ? send(200, 'text/plain', 'ok\n') : send(503, 'text/plain', `${problems.join('\n')}\n`);
      }
      case '/readyz':
        return health.ready() ? send(200, 'text/plain', 'ready\n') : send(503, 'text/plain', 'not ready\n');
      case '/status':
        return send(200, 'application/json', `${JSON.stringify(health.status(), null, 2)}\n`);
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
