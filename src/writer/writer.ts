import { randomUUID } from 'node:crypto';
import type { Admin, Kafka, Message, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { ChangeTopicsConfig, Role } from '../cluster/schema.js';
import { initialClusterState } from '../cluster/cluster-state.js';
import { CLUSTER_STATE_TOPIC, readPublishedClusterState } from '../cluster/state.js';
import { CrrError } from '../errors.js';
import { Partitioners } from '../kafka/kafkajs.js';
import { ensureChangeTopics } from '../kafka/topics.js';
import { eventKey, parseEvent } from '../protocol/codec.js';
import { isMarkerOp, isMetadataOp, PROTOCOL_VERSION, type ChangeEvent } from '../protocol/schema.js';
import type { ClusterStateInput } from '../cluster/cluster-state.js';

/** The envelope fields the writer stamps. */
export type EnvelopeField = 'v' | 'id' | 'ts' | 'epoch' | 'origin';
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/**
 * What a writer accepts: a change event of protocol v1 (docs/protocol.md) without its envelope,
 * which the writer stamps. `id` and `ts` may be given (a loader keeping its own ids); `v`,
 * `epoch` and `origin` may be given only with the values the writer would stamp.
 */
export type WriteInput = DistributiveOmit<ChangeEvent, EnvelopeField> & Partial<Pick<ChangeEvent, EnvelopeField>>;

/** Counts of one {@link ChangeLogWriter.write} call. */
export interface WriteResult {
  /** Events appended in all. */
  events: number;
  /** ...of which to the data topic. */
  data: number;
  /** ...of which to the metadata topic. */
  metadata: number;
}

/** What {@link ChangeLogWriter.open} needs; the clients are owned by the caller. */
export interface ChangeLogWriterOptions {
  kafka: Kafka;
  admin: Admin;
  /** Cluster alias of the cluster written to (stamped as `origin`). */
  alias: string;
  /** Role the config gives the cluster (src/cluster/topology.ts `configuredRole`). */
  configuredRole: Role;
  changeTopics: ChangeTopicsConfig;
  log: Logger;
  /** How long to wait for the published cluster state, ms. Default 30000. */
  stateTimeoutMs?: number;
}

/**
 * Appends change events to a cluster's own change topics — log-first writes (docs/architecture.md, "The
 * cluster model"): the cluster's replay then materializes them into its store.
 *
 * - Refuses (CrrError `CRR_WRITE_REFUSED`, nothing written) on a replica — by the role published
 *   in `crr-cluster-state.internal`, or the config's role when none is published (a promoted
 *   replica publishes `primary` and takes writes before its config is updated) — and on a
 *   `FENCED` primary. The state is read at open and again before a batch whenever a new one
 *   was published (checkState): a writer kept open across a failover refuses (exit 4), and one
 *   kept open across a `crr admin` operation stamps the new epoch.
 * - Stamps `v`, `id` (a UUID unless given), `ts` (now unless given), `epoch` (the cluster's
 *   current epoch from its published state; 0 for a cluster crr never ran on) and `origin`.
 * - Validates every event of a call before sending any (CRR_EVENT_INVALID naming the event's
 *   index and field); refuses sync-breaking markers, which only `crr admin` operations write
 *   together with an epoch raise.
 * - Data operations go to the data topic, metadata operations to the metadata topic (one
 *   partition), keyed by {@link eventKey}; an idempotent producer (acks=all, one request in
 *   flight) keeps each partition in call order without duplicates on retries. The topics are
 *   created on open when missing (`changeTopics.dataPartitions` and 1 partition).
 */
export class ChangeLogWriter {
  private constructor(
    private readonly opts: ChangeLogWriterOptions,
    private readonly producer: Producer,
    /** The cluster state the writer stamps from (re-read whenever a new state is published). */
    public state: ClusterStateInput,
    /** High watermark of the cluster-state topic when {@link state} was read; -1 = no topic yet. */
    private stateHighWatermark: number,
  ) {}

  /** High watermark of the cluster-state topic, -1 when it does not exist yet. */
  private static async stateTopicEnd(admin: Admin, known: boolean): Promise<number> {
    // asked until the topic exists: KafkaJS retries a missing topic's ListOffsets for ~10 s before it fails
    if (!known && !(await admin.listTopics()).includes(CLUSTER_STATE_TOPIC)) return -1;
    try {
      const offsets = await admin.fetchTopicOffsets(CLUSTER_STATE_TOPIC);
      return Number(offsets[0]?.high ?? -1);
    } catch (err) {
      const e = err as { type?: string; cause?: { type?: string } };
      if (e.type === 'UNKNOWN_TOPIC_OR_PARTITION' || e.cause?.type === 'UNKNOWN_TOPIC_OR_PARTITION') return -1;
      throw err;
    }
  }

  /**
   * Refuses a replica or a fenced primary (at open and before every batch). The published role
   * wins over the config's: a promoted replica takes writes before its config is updated.
   * @throws CrrError CRR_WRITE_REFUSED
   */
  private static refuseUnlessWritable(alias: string, state: ClusterStateInput): void {
    if (state.role === 'replica') {
      throw new CrrError(
        'CRR_WRITE_REFUSED',
        `cluster ${alias} is a replica (${state.state}): it is read-only and only replay writes to it; write to the primary instead`,
        { context: { cluster: alias } },
      );
    }
    if (state.state === 'FENCED') {
      throw new CrrError(
        'CRR_WRITE_REFUSED',
        `cluster ${alias} is a fenced primary (an old primary after a failover${state.reason ? `: ${state.reason}` : ''}); write to the new primary`,
        { context: { cluster: alias } },
      );
    }
  }

  /**
   * Before each batch: one ListOffsets request on the cluster-state topic. When its high
   * watermark moved since the state was read, a new state was published (a promotion fenced
   * this primary, a `crr admin` operation raised its epoch): the writer re-reads it, refuses if
   * the cluster is no longer a writable primary, and stamps the new epoch otherwise. So a writer
   * kept open across a failover refuses instead of appending events that replay would refuse as
   * stale-epoch. (A state published while a batch is in flight is not seen by that batch; the
   * broker-side fence is Kafka ACLs, docs/architecture.md "Trust boundaries".)
   * @throws CrrError CRR_WRITE_REFUSED (nothing of the batch written)
   */
  private async checkState(): Promise<void> {
    const { admin, kafka, alias, log } = this.opts;
    const end = await ChangeLogWriter.stateTopicEnd(admin, this.stateHighWatermark >= 0);
    if (end === this.stateHighWatermark) return;
    const published = await readPublishedClusterState(kafka, admin, alias, this.opts.stateTimeoutMs ?? 30_000);
    this.stateHighWatermark = end;
    if (!published) return;
    const { updatedAtMs: _updatedAtMs, ...recorded } = published;
    if (recorded.role !== this.state.role || recorded.state !== this.state.state || recorded.epoch !== this.state.epoch) {
      log.warn(
        { cluster: alias, from: this.state, to: recorded },
        `the published state of ${alias} changed: ${recorded.role} ${recorded.state} epoch ${recorded.epoch}`,
      );
    }
    this.state = recorded;
    ChangeLogWriter.refuseUnlessWritable(alias, recorded);
  }

  /**
   * Checks the cluster's role, creates the change topics if missing and connects the producer.
   * @throws CrrError CRR_WRITE_REFUSED on a replica or a fenced primary; CRR_KAFKA / KafkaJS
   *   errors when the cluster cannot be reached
   */
  static async open(opts: ChangeLogWriterOptions): Promise<ChangeLogWriter> {
    const stateEnd = await ChangeLogWriter.stateTopicEnd(opts.admin, false);
    const published = await readPublishedClusterState(opts.kafka, opts.admin, opts.alias, opts.stateTimeoutMs ?? 30_000);
    let state: ClusterStateInput = initialClusterState(opts.configuredRole);
    if (published) {
      const { updatedAtMs: _updatedAtMs, ...recorded } = published;
      state = recorded;
    }
    ChangeLogWriter.refuseUnlessWritable(opts.alias, state);
    const { changeTopics } = opts;
    await ensureChangeTopics(opts.admin, changeTopics);
    const producer = opts.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    await producer.connect();
    opts.log.info({ cluster: opts.alias, epoch: state.epoch }, 'writer ready');
    return new ChangeLogWriter(opts, producer, state, stateEnd);
  }

  /**
   * Stamps and validates an input.
   * @param index where the event is in its input (a line number), for error messages
   * @throws CrrError CRR_EVENT_INVALID naming the field; CRR_WRITE_REFUSED for a marker
   */
  stamp(input: WriteInput, index?: number): ChangeEvent {
    const where = index === undefined ? '' : ` (line ${index})`;
    const { alias } = this.opts;
    if (input.epoch !== undefined && input.epoch !== this.state.epoch) {
      throw new CrrError(
        'CRR_EVENT_INVALID',
        `epoch${where}: ${input.epoch} is not the current epoch ${this.state.epoch} of cluster ${alias}; leave it out and the writer stamps it`,
      );
    }
    if (input.origin !== undefined && input.origin !== alias) {
      throw new CrrError('CRR_EVENT_INVALID', `origin${where}: "${input.origin}" is not the cluster written to ("${alias}")`);
    }
    let event: ChangeEvent;
    try {
      event = parseEvent({
        ...input,
        v: input.v ?? PROTOCOL_VERSION,
        id: input.id ?? randomUUID(),
        ts: input.ts ?? Date.now(),
        epoch: this.state.epoch,
        origin: alias,
      });
    } catch (err) {
      if (err instanceof CrrError && where) err.message = err.message.replace('invalid change event', `invalid change event${where}`);
      throw err;
    }
    if (isMarkerOp(event.op)) {
      throw new CrrError(
        'CRR_WRITE_REFUSED',
        `${event.op}${where}: sync-breaking markers are written by the crr admin operations, which raise the epoch with them`,
      );
    }
    return event;
  }

  /**
   * Stamps, validates and appends events, in order. All are validated before any is sent.
   * @param lineNumbers where each input is in the caller's input, for error messages; default
   *   the 1-based index in `inputs`
   * @throws as {@link stamp}; KafkaJS errors when the send fails (after its retries)
   */
  async write(inputs: readonly WriteInput[], lineNumbers?: readonly number[]): Promise<WriteResult> {
    await this.checkState();
    const events = inputs.map((input, i) => this.stamp(input, lineNumbers?.[i] ?? i + 1));
    const data: Message[] = [];
    const metadata: Message[] = [];
    for (const e of events) {
      const message: Message = { key: eventKey(e), value: JSON.stringify(e), timestamp: String(e.ts) };
      (isMetadataOp(e.op) ? metadata : data).push(message);
    }
    const topicMessages = [];
    if (data.length > 0) topicMessages.push({ topic: this.opts.changeTopics.data, messages: data });
    if (metadata.length > 0) topicMessages.push({ topic: this.opts.changeTopics.metadata, messages: metadata });
    if (topicMessages.length > 0) await this.producer.sendBatch({ topicMessages, acks: -1 });
    return { events: events.length, data: data.length, metadata: metadata.length };
  }

  /** Disconnects the producer. */
  async close(): Promise<void> {
    await this.producer.disconnect().catch(() => undefined);
  }
}
