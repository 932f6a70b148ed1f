import { Gauge, Histogram, type Registry } from 'prom-client';

/** The checkpoint task's metrics (the `flow` label is `source->target`). */
export class CheckpointMetrics {
  /** Seconds from reading a source group's committed offsets to its checkpoint written on the target (MM2's `checkpoint-latency-ms`). */
  readonly latency: Histogram<'flow'>;
  /** Group partitions of mirrored topics at the last checkpoint run, by translation status: `translated`, `unknown`, `too-old`. */
  readonly partitions: Gauge<'flow' | 'status'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.latency = new Histogram({
      name: 'crr_checkpoint_latency_seconds',
      help: "Checkpoint latency: from reading a source consumer group's committed offsets to its checkpoint written on the target.",
      labelNames: ['flow'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.partitions = new Gauge({
      name: 'crr_checkpoint_group_partitions',
      help: 'Consumer group partitions of mirrored topics at the last checkpoint run, by translation status (translated, unknown, too-old).',
      labelNames: ['flow', 'status'],
      registers,
    });
  }
}
