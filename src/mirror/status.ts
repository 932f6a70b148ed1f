import type { MirroredTopic } from './topic-sync.js';

/**
 * What one flow's mirror reports on `/status` and in `crr status`. Mutated in place by the
 * running task; read by the HTTP server.
 */
export interface FlowStatus {
  /** `source->target`. */
  flow: string;
  /** `starting`, `idle` (no topic to mirror), `standby` (another instance is active), `active`, `backoff` (restarting after a failure), `stopped`. */
  state: 'starting' | 'idle' | 'standby' | 'active' | 'backoff' | 'stopped';
  activeSince?: string;
  lastCommitAt?: string;
  /** The last failure, while the task is restarting after it. */
  lastError?: string;
  restarts: number;
  recordsMirrored: number;
  /** Emit time of the newest heartbeat mirrored, ms since the epoch. */
  lastHeartbeatMs?: number;
  /** Replication latency of the newest record committed, ms. */
  lastLatencyMs?: number;
  topics: MirroredTopic[];
  partitions: Array<{ topic: string; remoteTopic: string; partition: number; logEndOffset: number; position: number; lagRecords: number }>;
}

/** A fresh status for a flow that has not started. */
export function newFlowStatus(flow: string): FlowStatus {
  return { flow, state: 'starting', restarts: 0, recordsMirrored: 0, topics: [], partitions: [] };
}
