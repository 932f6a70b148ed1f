import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Logger } from 'pino';

/**
 * A heartbeat record: emitted to the source cluster's heartbeats topic every interval and
 * mirrored like any record, so that replication latency is known when no data moves
 * (MM2's MirrorHeartbeatConnector). Key: JSON `{"sourceClusterAlias","targetClusterAlias"}`;
 * value: JSON `{"timestampMs"}` (emit time, ms since the epoch).
 */
export interface Heartbeat {
  sourceClusterAlias: string;
  targetClusterAlias: string;
  timestampMs: number;
}

/** Decodes a heartbeat value; `undefined` when the record is not one. */
export function decodeHeartbeat(value: Buffer | null): number | undefined {
  if (!value) return undefined;
  try {
    const v = JSON.parse(value.toString('utf8')) as { timestampMs?: unknown };
    return typeof v.timestampMs === 'number' ? v.timestampMs : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Emits heartbeats to the source cluster. Creates the heartbeats topic (one partition,
 * compacted, as MM2 does) when it is missing.
 */
export class HeartbeatEmitter {
  private timer: NodeJS.Timeout | undefined;
  private producer: Producer | undefined;
  private sending = false;

  /**
   * @param intervalMs time between heartbeats, ms (MM2 default: 1 s)
   */
  constructor(
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly opts: { topic: string; sourceAlias: string; targetAlias: string; intervalMs: number },
    private readonly log: Logger,
  ) {}

  /** Creates the topic if needed and starts emitting. */
  async start(): Promise<void> {
    const topics = await this.admin.listTopics();
    if (!topics.includes(this.opts.topic)) {
      try {
        await this.admin.createTopics({
          waitForLeaders: true,
          topics: [{ topic: this.opts.topic, numPartitions: 1, configEntries: [{ name: 'cleanup.policy', value: 'compact' }] }],
        });
      } catch (err) {
        if ((err as { type?: string }).type !== 'TOPIC_ALREADY_EXISTS') throw err;
      }
    }
    this.producer = this.kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
    await this.producer.connect();
    const key = Buffer.from(JSON.stringify({ sourceClusterAlias: this.opts.sourceAlias, targetClusterAlias: this.opts.targetAlias }));
    const beat = async (): Promise<void> => {
      if (this.sending || !this.producer) return;
      this.sending = true;
      try {
        const now = Date.now();
        await this.producer.send({
          topic: this.opts.topic,
          acks: 1,
          messages: [{ key, value: Buffer.from(JSON.stringify({ timestampMs: now })), timestamp: String(now) }],
        });
      } catch (err) {
        this.log.warn({ err }, 'heartbeat not emitted');
      } finally {
        this.sending = false;
      }
    };
    await beat();
    this.timer = setInterval(() => void beat(), this.opts.intervalMs);
  }

  /** Stops emitting and closes the producer. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.producer?.disconnect().catch(() => undefined);
    this.producer = undefined;
  }
}
