import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, KafkaMessage } from 'kafkajs';

/**
 * Reads a (typically compacted, one-partition) topic from its beginning to the high watermark
 * it has when the read starts, `read_committed`, with a throwaway consumer group (nothing is
 * committed). For crr's internal state topics: positions, cluster state.
 *
 * If an open transaction holds the read back (another live writer), the read stops after
 * `timeoutMs` and says it is incomplete.
 *
 * @param onRecord called for every record in offset order per partition
 * @param timeoutMs how long to wait for the end, ms; default 30000
 * @returns `complete: false` when the end was not reached in time; a missing topic reads as empty
 * @throws the consumer's error when it crashes (KafkaJS errors; retriable ones say so)
 */
export async function readToEnd(
  kafka: Kafka,
  admin: Admin,
  topic: string,
  onRecord: (message: KafkaMessage, partition: number) => void,
  timeoutMs = 30_000,
): Promise<{ complete: boolean }> {
  if (!(await admin.listTopics()).includes(topic)) return { complete: true };
  const offsets = await admin.fetchTopicOffsets(topic);
  const remaining = new Map<number, number>();
  for (const p of offsets) if (Number(p.high) > Number(p.low)) remaining.set(p.partition, Number(p.high) - 1);
  if (remaining.size === 0) return { complete: true };

  const consumer = kafka.consumer({ groupId: `crr-reader-${randomUUID()}`, readUncommitted: false, maxWaitTimeInMs: 250 });
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const advance = (partition: number, lastOffset: number): void => {
    const end = remaining.get(partition);
    if (end !== undefined && lastOffset >= end) remaining.delete(partition);
    if (remaining.size === 0) done();
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => advance(e.payload.partition, Number(e.payload.lastOffset)));
  let failure: unknown;
  consumer.on(consumer.events.CRASH, (e) => {
    failure = e.payload.error;
    done();
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) onRecord(m, batch.partition);
      },
    });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([finished, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  if (failure) throw failure;
  return { complete: remaining.size === 0 };
}
