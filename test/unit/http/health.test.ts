import { describe, expect, it } from 'vitest';
import { EVENT_LOOP_STALL_MS, livenessProblems, readinessReasons, type HealthInput } from '../../../src/http/health.js';
import { newFlowStatus, type FlowStatus } from '../../../src/mirror/status.js';
import { newReplayStatus, type ReplayStatus } from '../../../src/replay/status.js';

function input(
  flowState: FlowStatus['state'],
  replayState: ReplayStatus['state'],
  opts: { lastError?: string; failed?: Error; heartbeatAgeMs?: number } = {},
): HealthInput {
  const flow = { ...newFlowStatus('primary->dr'), state: flowState, ...(opts.lastError ? { lastError: opts.lastError } : {}) };
  const replay = { ...newReplayStatus('dr', 'replica', ['primary.graph.data']), state: replayState };
  return {
    flows: [{ id: 'primary->dr', status: flow, failed: opts.failed }],
    replay: { alias: 'dr', status: replay, failed: undefined },
    heartbeatAgeMs: opts.heartbeatAgeMs ?? 0,
  };
}

describe('liveness (/healthz) and readiness (/readyz)', () => {
  it('a flow in its restart backoff (a broker unreachable) is alive but not ready, and /readyz names the failure', () => {
    const h = input('backoff', 'active', { lastError: 'KafkaJSConnectionError: connect ECONNREFUSED 127.0.0.1:1' });
    expect(livenessProblems(h)).toEqual([]);
    expect(readinessReasons(h)).toEqual(['flow primary->dr is restarting after a failure: KafkaJSConnectionError: connect ECONNREFUSED 127.0.0.1:1']);
  });

  it('ready once every flow is active, standby or idle and replay runs (halted, outdated and reseeding included)', () => {
    for (const f of ['active', 'standby', 'idle'] as const) {
      for (const r of ['active', 'standby', 'waiting', 'halted', 'outdated', 'reseeding'] as const) {
        expect(readinessReasons(input(f, r)), `${f}/${r}`).toEqual([]);
        expect(livenessProblems(input(f, r)), `${f}/${r}`).toEqual([]);
      }
    }
    expect(readinessReasons(input('starting', 'backoff'))).toEqual([
      'flow primary->dr is starting',
      'replay of dr is restarting after a failure: unknown error',
    ]);
  });

  it('wedged: a component that gave up on an error it does not retry, or the event loop blocked', () => {
    const failed = input('stopped', 'active', { lastError: 'TypeError: x is undefined', failed: new TypeError('x is undefined') });
    expect(livenessProblems(failed)).toEqual(['flow primary->dr stopped on an error it does not retry: TypeError: x is undefined']);
    expect(readinessReasons(failed)).toEqual(['flow primary->dr failed: TypeError: x is undefined']);
    expect(livenessProblems(input('active', 'active', { heartbeatAgeMs: EVENT_LOOP_STALL_MS }))).toEqual([]);
    expect(livenessProblems(input('active', 'active', { heartbeatAgeMs: 12_345 }))).toEqual([
      "the event loop is blocked: the service's 1 s heartbeat last ran 12.3 s ago",
    ]);
  });
});
