import type { Server } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';
import type { Logger } from 'pino';
import type { Role } from './cluster/schema.js';
import type { Config } from './config/schema.js';
import { livenessProblems, readinessReasons, type HealthInput } from './http/health.js';
import { startHttpServer } from './http/server.js';
import { registerCodecs } from './kafka/codecs.js';
import { MirrorMetrics } from './mirror/metrics.js';
import { MirrorFlow } from './mirror/mirror-flow.js';
import type { FlowConfig } from './config/flow.js';
import { ReplayService } from './replay/replay-service.js';
import { BackupResponder } from './reseed/backup-responder.js';
import { version } from './version.js';

/** A running crr service: its mirror flows, its replay (if any) and its HTTP server. */
export interface CrrService {
  flows: MirrorFlow[];
  replay: ReplayService | undefined;
  /** A primary's answering of its replicas' backup requests (src/reseed/backup-responder.ts), when it runs. */
  backupResponder: BackupResponder | undefined;
  registry: Registry;
  /** The HTTP server, when enabled. */
  server: Server | undefined;
  /** Whether a component gave up on an error it does not retry (the process should exit non-zero). */
  failed(): boolean;
  /** Stops every flow (committing or aborting open transactions), replay, and the HTTP server. */
  stop(): Promise<void>;
}

/** What one process runs: the mirror of some flows and/or the replay of one cluster. */
export interface ServiceParts {
  /** Flows to mirror (enabled ones only are run). */
  flows: FlowConfig[];
  /** Alias of the cluster whose change log this process replays into its store. */
  replayCluster?: string;
  /** The role replay runs in (see effectiveRole in src/cluster/topology.ts); default the configured role. */
  replayRole?: Role;
}

/**
 * Wires and starts crr from a validated config: one MirrorFlow per flow, the replay of one
 * cluster, one prom-client registry with Node's process metrics, and the HTTP server
 * (/metrics, /healthz, /readyz, /status), and, for a primary's replay with a backup config, the
 * answering of its replicas' backup requests (src/reseed/backup-responder.ts; `/status`
 * `backupRequests`). `crr mirror`, `crr replay` and `crr run` are this with different parts.
 *
 * /healthz is liveness (src/http/health.ts, livenessProblems): 503 only when the process is
 * wedged — its event loop blocked (a 1 s heartbeat timer of the service more than 10 s late) or
 * a component that gave up on an error it does not retry. /readyz is readiness
 * (readinessReasons): 503 while a flow or replay is starting or in its restart backoff (a
 * cluster unreachable), naming each and its last failure. A replay halted at a dead letter or
 * an OUTDATED cluster is neither (restarting would not cure it): it shows in /status and in
 * `crr_replay_halted` / `crr_cluster_state`.
 *
 * @throws what ReplayService.start throws (a store that cannot be opened)
 */
export async function startService(config: Config, logger: Logger, parts: ServiceParts): Promise<CrrService> {
  await registerCodecs();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const enabled = parts.flows.filter((f) => f.enabled);
  const mirrorMetrics = enabled.length > 0 ? new MirrorMetrics(registry) : undefined;
  const flows = mirrorMetrics ? enabled.map((f) => new MirrorFlow(config, f, mirrorMetrics, logger)) : [];
  const replay = parts.replayCluster === undefined ? undefined : new ReplayService(config, parts.replayCluster, registry, logger, parts.replayRole);
  // a primary's daemon answers its replicas' backup requests (reseed backupSource primary-daemon)
  const backupResponder =
    replay && !replay.source.upstream && BackupResponder.wanted(config, replay.alias)
      ? new BackupResponder(config, replay.alias, registry, logger, () => replay.caughtUp())
      : undefined;
  logger.info({ version, flows: flows.map((f) => f.id), replay: parts.replayCluster }, 'crr starting');

  let server: Server | undefined;
  // the liveness heartbeat: a timer that only runs while the event loop does
  let lastBeat = Date.now();
  const beat = setInterval(() => (lastBeat = Date.now()), 1000);
  beat.unref();
  const health = (): HealthInput => ({ flows, replay, heartbeatAgeMs: Date.now() - lastBeat });
  if (config.http.enabled) {
    server = await startHttpServer(
      config.http,
      registry,
      {
        liveness: () => livenessProblems(health()),
        readiness: () => readinessReasons(health()),
        status: () => ({
          version,
          flows: flows.map((f) => ({ ...f.status, heartbeatAgeSeconds: heartbeatAge(f.status.lastHeartbeatMs) })),
          ...(replay ? { replay: replay.status } : {}),
          ...(backupResponder ? { backupRequests: backupResponder.status } : {}),
        }),
        beforeScrape: () => {
          for (const f of flows) {
            const age = heartbeatAge(f.status.lastHeartbeatMs);
            if (age !== undefined) mirrorMetrics?.heartbeatAge.set({ flow: f.id }, age);
          }
        },
      },
      logger,
    );
  }
  try {
    await replay?.start();
  } catch (err) {
    clearInterval(beat);
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    throw err;
  }
  for (const f of flows) f.start();
  backupResponder?.start();
  return {
    flows,
    replay,
    backupResponder,
    registry,
    server,
    failed: () => flows.some((f) => f.failed) || Boolean(replay?.failed),
    async stop() {
      await Promise.all([...flows.map((f) => f.stop()), replay?.stop(), backupResponder?.stop()]);
      clearInterval(beat);
      await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
      server?.closeAllConnections?.();
    },
  };
}

/**
 * The mirror alone (`crr mirror`): every enabled flow, or only those named `source->target` in
 * `onlyFlows`.
 */
export async function startMirrorService(config: Config, logger: Logger, opts: { onlyFlows?: string[] } = {}): Promise<CrrService> {
  const flows = config.mirror.flows.filter((f) => !opts.onlyFlows || opts.onlyFlows.includes(`${f.source}->${f.target}`));
  return startService(config, logger, { flows });
}

function heartbeatAge(lastMs: number | undefined): number | undefined {
  return lastMs === undefined ? undefined : Math.max(0, (Date.now() - lastMs) / 1000);
}
