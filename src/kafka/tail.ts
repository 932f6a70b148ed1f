import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';

/** A running {@link tailTopic}. */
export interface TopicTail {
  /** Stops reading (the consumer leaves its throwaway group). */
  stop(): Promise<void>;
  /** Rejects when the consumer crashes (KafkaJS gave up: a non-retriable error, or retries exhausted). */
  readonly crashed: Promise<never>;
}

/**
 * Reads one partition of a topic from `fromOffset` on, as records arrive, with a throwaway
 * consumer group (`crr-reader-<uuid>`, nothing committed: the caller keeps its own position).
 * For crr's control topic (src/replication/control-topic.ts), where a requester waits for the
 * answers to its request and the primary's daemon for requests.
 *
 * @param fromOffset the first offset to deliver (a log end offset read before sending a request)
 * @param onRecord called for each record in offset order; an exception thrown there crashes the tail
 * @param opts.maxWaitTimeInMs how long a fetch waits for new records, ms; default 500
 * @throws the consumer's connect / subscribe errors (KafkaJS errors; retriable ones say so)
 */
export async function tailTopic(
  kafka: Kafka,
  topic: string,
  partition: number,
  fromOffset: string,
  onRecord: (message: KafkaMessage) => void | Promise<void>,
  opts: { maxWaitTimeInMs?: number } = {},
): Promise<TopicTail> {
  const consumer: Consumer = kafka.consumer({ groupId: `crr-reader-${randomUUID()}`, maxWaitTimeInMs: opts.maxWaitTimeInMs ?? 500 });
  let fail!: (err: unknown) => void;
  const crashed = new Promise<never>((_, reject) => (fail = reject));
  crashed.catch(() => undefined);
  consumer.on(consumer.events.CRASH, (e) => fail(e.payload.error));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message, partition: p }) => {
        if (p === partition) await onRecord(message);
      },
    });
    consumer.seek({ topic, partition, offset: fromOffset });
  } catch (err) {
    await consumer.disconnect().catch(() => undefined);
    throw err;
  }
  return { stop: () => consumer.disconnect().catch(() => undefined), crashed };
}
