import type { Admin, Kafka } from 'kafkajs';
import { decodePosition, type Position } from '../replication/positions.js';
import { tpKey } from '../replication/topic-partition.js';
import { readToEnd } from './read-to-end.js';
import { ensureTopic } from './topics.js';

/**
 * I/O of a flow's positions topic on the target cluster (`crr-offsets.<source>.internal`; the
 * record format is src/replication/positions.ts): created by the mirror, read by the mirror on
 * activation, by replay of a reseeded replica (where a recreated topic's partition resumes) and
 * by `crr promote` (the recovery point).
 */

/**
 * Creates the positions topic on the target if it is missing: one partition,
 * `cleanup.policy=compact`.
 *
 * @param replicationFactor -1 for the broker default
 */
export async function ensurePositionsTopic(admin: Admin, topic: string, replicationFactor: number): Promise<void> {
  await ensureTopic(admin, topic, 1, replicationFactor, [{ name: 'cleanup.policy', value: 'compact' }]);
}

/**
 * Reads every committed position of a flow from the positions topic, to its end.
 *
 * "End" is the topic's high watermark when the read starts. Call it after the flow's
 * transactional producer has been initialised (which aborts a zombie's open transaction), so
 * that no open transaction holds the read back. If one does (another live instance), the read
 * stops after `timeoutMs` and says it is incomplete.
 *
 * @param kafka client of the target cluster
 * @param flow `source->target`
 * @param timeoutMs how long to wait for the end, ms; default 30000
 * @returns positions by {@link tpKey}, and `complete: false` when the end was not reached
 */
export async function readPositions(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  flow: string,
  timeoutMs = 30_000,
): Promise<{ positions: Map<string, Position>; complete: boolean }> {
  const positions = new Map<string, Position>();
  const { complete } = await readToEnd(
    kafka,
    admin,
    topic,
    (m) => {
      const decoded = decodePosition(flow, m.key, m.value);
      if (!decoded) return;
      const key = tpKey(decoded.topic, decoded.partition);
      if (decoded.position) positions.set(key, decoded.position);
      else positions.delete(key);
    },
    timeoutMs,
  );
  return { positions, complete };
}
