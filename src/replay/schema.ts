import { z } from 'zod';
import { TopicNameSchema } from '../cluster/schema.js';

/**
 * The `replay` section: how change events are applied from a cluster's topics to its store.
 *
 * - `maxBatchEvents`: events applied (with their positions) in one store transaction at most.
 *   Default 5000.
 * - `deadLetterTopic`: topic on the replaying cluster's own Kafka that receives malformed or
 *   unknown events, with the reason in headers. Default `crr-dead-letters.internal` (the
 *   `.internal` suffix keeps it out of every mirror flow's default topic filter).
 * - `deadLetterPolicy`: after dead-lettering an event, `halt` (default: replay stops at it and
 *   says why in /status, logs and metrics; the event is not passed) or `skip` (count and go on).
 * - `lagPollIntervalMs`: how often replay lag is measured. Default 2000.
 * - `restartBackoffInitialMs` / `restartBackoffMaxMs`: a failed replay restarts after the
 *   initial delay, doubling up to the maximum. Defaults 500 and 30000.
 * - `consumerSessionTimeoutMs`: session of replay's consumer group (a second process replaying
 *   the same cluster waits as a standby and takes over this long after the active one died).
 *   Default 30000.
 */
export const ReplaySchema = z.strictObject({
  maxBatchEvents: z.number().int().min(1).max(1_000_000).default(5000),
  deadLetterTopic: TopicNameSchema.default('crr-dead-letters.internal'),
  deadLetterPolicy: z.enum(['halt', 'skip']).default('halt'),
  lagPollIntervalMs: z.number().int().min(100).default(2000),
  restartBackoffInitialMs: z.number().int().min(10).default(500),
  restartBackoffMaxMs: z.number().int().min(10).default(30_000),
  consumerSessionTimeoutMs: z.number().int().min(1000).default(30_000),
});
export type ReplayConfig = z.infer<typeof ReplaySchema>;
