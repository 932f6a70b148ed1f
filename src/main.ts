import type { Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { startHttpServer } from './http/server.js';
import { registerCodecs } from './kafka/codecs.js';
import { MirrorMetrics } from './mirror/metrics.js';
import { MirrorFlow } from './mirror/mirror-flow.js';
import { version } from './version.js';

/** A running mirror service: its flows and its HTTP server. */
export interface MirrorService {
  flows: MirrorFlow[];
  registry: Registry;
  /** The HTTP server, when enabled. */
  server: Server | undefined;
  /** Stops every flow (committing or aborting open transactions) and the HTTP server. */
  stop(): Promise<void>;
}

/**
 * Wires the mirror from a validated config and starts it: one MirrorFlow per enabled flow
 * (optionally only those whose target is `onlyTarget`), one prom-client registry with Node's
 * process metrics, and the HTTP server.
 */
export async function startMirrorService(config: Config, logger: Logger, opts: { onlyFlows?: string[] } = {}): Promise<MirrorService> {
  await registerCodecs();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = new MirrorMetrics(registry);
  const flows = config.mirror.flows
    .filter((f) => f.enabled)
    .filter((f) => !opts.onlyFlows || opts.onlyFlows.includes(`${f.source}->${f.target}`))
    .map((f) => new MirrorFlow(config, f, metrics, logger));
  logger.info({ version, flows: flows.map((f) => f.id) }, 'crr mirror starting');

  let server: Server | undefined;
  if (config.http.enabled) {
    server = await startHttpServer(
      config.http,
      registry,
      {
        problems: () =>
          flows.flatMap((f) => {
            if (f.failed) return [`flow ${f.id} failed: ${f.status.lastError ?? ''}`];
            if (f.status.state === 'backoff') return [`flow ${f.id} is restarting after a failure: ${f.status.lastError ?? ''}`];
            return [];
          }),
        ready: () => flows.every((f) => ['active', 'standby', 'idle'].includes(f.status.state)),
        status: () => ({ version, flows: flows.map((f) => ({ ...f.status, heartbeatAgeSeconds: heartbeatAge(f.status.lastHeartbeatMs) })) }),
        beforeScrape: () => {
          for (const f of flows) {
            const age = heartbeatAge(f.status.lastHeartbeatMs);
            if (age !== undefined) metrics.heartbeatAge.set({ flow: f.id }, age);
          }
        },
      },
      logger,
    );
  }
  for (const f of flows) f.start();
  return {
    flows,
    registry,
    server,
    async stop() {
      await Promise.all(flows.map((f) => f.stop()));
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server?.closeAllConnections?.();
    },
  };
}

function heartbeatAge(lastMs: number | undefined): number | undefined {
  return lastMs === undefined ? undefined : Math.max(0, (Date.now() - lastMs) / 1000);
}
