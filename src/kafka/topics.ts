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
  if ((await admin.listTopics()).includes(topic)) return false;
  try {
    return await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions, replicationFactor, configEntries }] });
  } catch (err) {
    if ((err as { type?: string }).type === 'TOPIC_ALREADY_EXISTS') return false;
    throw err;
  }
}

/**
 * Creates a cluster's change topics when missing: the data topic with `dataPartitions`
 * partitions and the metadata topic with one (its total order). Existing topics are left as they are.
 * Used by the writer, `crr admin`, replay of a primary and `crr promote`.
 */
export async function ensureChangeTopics(admin: Admin, changeTopics: { data: string; metadata: string; dataPartitions: number; replicationFactor: number }): Promise<void> {
  await ensureTopic(admin, changeTopics.data, changeTopics.dataPartitions, changeTopics.replicationFactor);
  await ensureTopic(admin, changeTopics.metadata, 1, changeTopics.replicationFactor);
}
