import type { FlowStatus } from '../mirror/status.js';
import type { ReplayStatus } from '../replay/status.js';

/**
 * The service's event-loop heartbeat (a 1 s timer, see startService) may be this late before
 * /healthz calls the process wedged, ms.
 */
export const EVENT_LOOP_STALL_MS = 10_000;

/** A component as the health endpoints see it: its status, and the error it gave up on, if any. */
export interface HealthComponent<S> {
  status: S;
  failed: Error | undefined;
}

/** What {@link livenessProblems} and {@link readinessReasons} look at. */
export interface HealthInput {
  flows: Array<HealthComponent<FlowStatus> & { id: string }>;
  replay: (HealthComponent<ReplayStatus> & { alias: string }) | undefined;
  /** ms since the service's event-loop heartbeat last ran. */
  heartbeatAgeMs: number;
}

/** Flow states in which the mirror runs (`idle`: no source topic passes the filter yet). */
const FLOW_RUNNING: ReadonlySet<FlowStatus['state']> = new Set(['active', 'standby', 'idle']);
/**
 * Replay states in which replay runs. `halted` (a dead letter under policy halt) and
 * `outdated` / `reseeding` are deliberate stops that a restart would not change: they show on
 * /status and in `crr_replay_halted` / `crr_cluster_state`, not here.
 */
const REPLAY_RUNNING: ReadonlySet<ReplayStatus['state']> = new Set(['active', 'standby', 'waiting', 'halted', 'outdated', 'reseeding']);

/**
 * Liveness (/healthz): what makes the process wedged, so that only restarting it helps. Two
 * things count:
 * - the event loop blocked: the service's 1 s heartbeat last ran more than
 *   {@link EVENT_LOOP_STALL_MS} ago (while the loop is blocked nothing answers at all, which a
 *   probe's `timeoutSeconds` counts as a failure too);
 * - a supervisor that gave up: a flow or replay stopped on an error it does not retry (a
 *   programming error, a non-retriable CrrError); nothing in the process restarts it.
 * A cluster unreachable, a flow or replay in its restart backoff, is NOT a liveness problem:
 * the supervisors retry by themselves, and a restarted process would find the same outage.
 */
export function livenessProblems(h: HealthInput): string[] {
  const problems: string[] = [];
  if (h.heartbeatAgeMs > EVENT_LOOP_STALL_MS) {
    problems.push(`the event loop is blocked: the service's 1 s heartbeat last ran ${(h.heartbeatAgeMs / 1000).toFixed(1)} s ago`);
  }
  for (const f of h.flows) if (f.failed) problems.push(`flow ${f.id} stopped on an error it does not retry: ${f.status.lastError ?? f.failed.message}`);
  if (h.replay?.failed)
    problems.push(`replay of ${h.replay.alias} stopped on an error it does not retry: ${h.replay.status.lastError ?? h.replay.failed.message}`);
  return problems;
}

/**
 * Readiness (/readyz): why some component does not run, one line each: starting, restarting
 * after a failure (in its backoff: a cluster unreachable, a broker restart; with the failure),
 * or stopped. Empty once every flow is active, standby or idle and replay runs (active, standby,
 * waiting for its topics, or deliberately halted / outdated / reseeding).
 */
export function readinessReasons(h: HealthInput): string[] {
  const reasons: string[] = [];
  for (const f of h.flows) {
    if (FLOW_RUNNING.has(f.status.state)) continue;
    reasons.push(`flow ${f.id} ${describeState(f.status.state, f.status.lastError, f.failed)}`);
  }
  const r = h.replay;
  if (r && !REPLAY_RUNNING.has(r.status.state)) reasons.push(`replay of ${r.alias} ${describeState(r.status.state, r.status.lastError, r.failed)}`);
  return reasons;
}

function describeState(state: string, lastError: string | undefined, failed: Error | undefined): string {
  if (failed) return `failed: ${lastError ?? failed.message}`;
  if (state === 'backoff') return `is restarting after a failure: ${lastError ?? 'unknown error'}`;
  if (state === 'starting') return lastError ? `is starting (last failure: ${lastError})` : 'is starting';
  return `is ${state}`;
}
