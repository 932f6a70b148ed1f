import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CheckpointMetrics } from '../checkpoint/metrics.js';

/**
 * The mirror's metrics, registered once per process on crr's own registry and shared by every
 * flow (the `flow` label is `source->target`). No keys or offsets are used as labels.
 */
export class MirrorMetrics {
  /** Records written to the target (committed transactions only), by remote topic. */
  readonly records: Counter<'flow' | 'topic'>;
  /** Bytes of keys, values and headers written to the target, by remote topic. */
  readonly bytes: Counter<'flow' | 'topic'>;
  /** Records read but not written: `cycle` (identity policy, origin is the target). */
  readonly skipped: Counter<'flow' | 'reason'>;
  /** Records lost on the source before they could be mirrored (the source log start passed the mirror's position). */
  readonly retentionGapRecords: Counter<'flow' | 'topic'>;
  /** Sync breaks the mirror found and marked on the target (src/replication/sync-break.ts), by reason. */
  readonly syncBreaks: Counter<'flow' | 'reason'>;
  /** Source log end offset minus the next offset to mirror, per remote topic and partition. */
  readonly lagRecords: Gauge<'topic' | 'partition'>;
  /** Commit time on the target minus the source record's timestamp, seconds. */
  readonly latency: Histogram<'flow'>;
  /** Seconds since the newest mirrored heartbeat was emitted on the source. */
  readonly heartbeatAge: Gauge<'flow'>;
  /** Target transactions by result: `committed`, `aborted`. */
  readonly transactions: Counter<'flow' | 'result'>;
  /** Mirror task restarts after a failure or a topic change, by reason. */
  readonly restarts: Counter<'flow' | 'reason'>;
  /** 1 when this process is the active mirror of the flow, 0 when standby or stopped. */
  readonly active: Gauge<'flow'>;
  /** 1 when the cluster answered its last request, 0 when unreachable. */
  readonly clusterUp: Gauge<'cluster'>;
  /** The checkpoint task's metrics (registered with the mirror's: checkpoints run where the mirror runs). */
  readonly checkpoint: CheckpointMetrics;

  constructor(registry: Registry) {
    const registers = [registry];
    this.records = new Counter({
      name: 'crr_mirror_records_total',
      help: 'Records mirrored to the target cluster (committed).',
      labelNames: ['flow', 'topic'],
      registers,
    });
    this.bytes = new Counter({
      name: 'crr_mirror_bytes_total',
      help: 'Bytes of keys, values and headers mirrored to the target cluster (committed).',
      labelNames: ['flow', 'topic'],
      registers,
    });
    this.skipped = new Counter({
      name: 'crr_mirror_records_skipped_total',
      help: 'Source records not mirrored, by reason (cycle: the record originated on the target).',
      labelNames: ['flow', 'reason'],
      registers,
    });
    this.retentionGapRecords = new Counter({
      name: 'crr_mirror_retention_gap_records_total',
      help: 'Source records deleted by retention before they were mirrored.',
      labelNames: ['flow', 'topic'],
      registers,
    });
    this.syncBreaks = new Counter({
      name: 'crr_mirror_sync_breaks_total',
      help: 'Sync breaks the mirror found and wrote a sync-break marker for (retention-gap, topic-recreated).',
      labelNames: ['flow', 'reason'],
      registers,
    });
    this.lagRecords = new Gauge({
      name: 'crr_replication_lag_records',
      help: 'Replication lag: source log end offset minus the next offset to mirror.',
      labelNames: ['topic', 'partition'],
      registers,
    });
    this.latency = new Histogram({
      name: 'crr_replication_latency_seconds',
      help: 'Replication latency: commit time on the target minus the source record timestamp.',
      labelNames: ['flow'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers,
    });
    this.heartbeatAge = new Gauge({
      name: 'crr_heartbeat_age_seconds',
      help: 'Seconds since the newest heartbeat that reached the target was emitted on the source.',
      labelNames: ['flow'],
      registers,
    });
    this.transactions = new Counter({
      name: 'crr_mirror_transactions_total',
      help: 'Target transactions by result.',
      labelNames: ['flow', 'result'],
      registers,
    });
    this.restarts = new Counter({
      name: 'crr_mirror_task_restarts_total',
      help: 'Mirror task restarts, by reason (failure, topics-changed, lost-assignment).',
      labelNames: ['flow', 'reason'],
      registers,
    });
    this.active = new Gauge({ name: 'crr_mirror_active', help: '1 when this process is the active mirror of the flow.', labelNames: ['flow'], registers });
    this.checkpoint = new CheckpointMetrics(registry);
    this.clusterUp = new Gauge({
      name: 'crr_cluster_up',
      help: '1 when the cluster answered its last request, 0 when it did not.',
      labelNames: ['cluster'],
      registers,
    });
  }
}
