/**
 * The one key of a topic partition in crr's maps: `<topic>:<partition>`. Kafka topic names hold
 * only `[a-zA-Z0-9._-]` (the protocol's rule), so `:` never occurs in a topic and the key splits
 * back unambiguously.
 */
export const tpKey = (topic: string, partition: number): string => `${topic}:${partition}`;

/** `topic:partition` → `[topic, partition]`, the inverse of {@link tpKey}. */
export function splitKey(key: string): [string, number] {
  const i = key.lastIndexOf(':');
  return [key.slice(0, i), Number(key.slice(i + 1))];
}
