import type { Admin } from 'kafkajs';

/**
 * Creates a topic if it is missing (an existing one is left as it is, whatever its config).
 * @param replicationFactor -1 for the broker default
 * @param configEntries topic configs, e.g. `cleanup.policy=compact`
 * @returns whether this call created it
 */
export async function ensureTopic(
  admin: Admin,
  topic: string,
  numPartitions: number,
  replicationFactor: number,
  configEntries: Array<{ name: string; value: string }> = [],
): Promise<boolean> {
  if ((await admin.listTopics()).includes(topic)) {
    // created by another process a moment ago: a producer sending before its leaders are known gets UNKNOWN_TOPIC_OR_PARTITION
    await waitForLeaders(admin, topic);
    return false;
  }
  try {
    return await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions, replicationFactor, configEntries }] });
  } catch (err) {
    if ((err as { type?: string }).type === 'TOPIC_ALREADY_EXISTS') return false;
    throw err;
  }
}

/**
 * Waits until every partition of an existing topic has a leader, polling its metadata every
 * 100 ms for up to `timeoutMs` (then returns, leaving the client's own retries to cope).
 */
export async function waitForLeaders(admin: Admin, topic: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = topics[0]?.partitions ?? [];
      if (partitions.length > 0 && partitions.every((p) => p.leader >= 0)) return;
    } catch {
      // UNKNOWN_TOPIC_OR_PARTITION until the metadata reaches this broker
    }
    if (Date.now() >= deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Creates a cluster's change topics when missing: the data topic with `dataPartitions`
 * partitions and the metadata topic with one (its total order). Existing topics are left as they are.
 * Used by the writer, `crr admin`, replay of a primary and `crr promote`.
 */
export async function ensureChangeTopics(
  admin: Admin,
  changeTopics: { data: string; metadata: string; dataPartitions: number; replicationFactor: number },
): Promise<void> {
  await ensureTopic(admin, changeTopics.data, changeTopics.dataPartitions, changeTopics.replicationFactor);
  await ensureTopic(admin, changeTopics.metadata, 1, changeTopics.replicationFactor);
}
