// Over 450 lines: one mirror task run (activation with the topic-incarnation check, buffering, sync-break markers, the commit loop, lag polling) whose parts share its mutable state; next split: the incarnation and gap checks into their own module, and a consumer-task base shared with replay-task.ts.
import type { Admin, Batch, Consumer, IHeaders, Kafka, Message, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { CrrError, describeError } from '../errors.js';
import { compressionType } from '../kafka/codecs.js';
import { TaskRun } from '../util/task-run.js';
import { singleOwnerAssigner } from '../kafka/assigner.js';
import { decodeHeartbeat } from './heartbeat.js';
import type { MirrorMetrics } from './metrics.js';
import { encodePosition, type Position } from '../replication/positions.js';
import { ensurePositionsTopic, readPositions } from '../kafka/positions-topic.js';
import { positionsTopicName } from '../replication/internal-topics.js';
import { tpKey } from '../replication/topic-partition.js';
import { HEADER_ORIGIN_ALIAS, HEADER_SOURCE_ALIAS, HEADER_UPSTREAM_OFFSET } from '../replication/headers.js';
import { chunkBudget, chunks, DEFAULT_MAX_MESSAGE_BYTES, downstreamOffsets, encodedRecordBound, headerBytes, type Pending } from './pending.js';
import { splitKey } from '../replication/topic-partition.js';
import { type SyncBreakReason, syncBreakMessage } from '../replication/sync-break.js';
import { TopicIdReader } from '../kafka/topic-ids.js';
import { ensureOffsetSyncsTopic, OffsetSyncWriter } from './offset-sync-writer.js';
import { offsetSyncsTopicName } from '../replication/internal-topics.js';
import type { FlowConfig } from '../config/flow.js';
import type { FlowStatus } from './status.js';
import type { MirroredTopic, TopicSync } from './topic-sync.js';

/** How often the chunk budget may be halved after MESSAGE_TOO_LARGE before the task fails (1/64 of the limit). */
const MAX_BUDGET_DIVISOR = 64;

/** Whether a KafkaJS error (or one of its causes) is the broker's MESSAGE_TOO_LARGE (error code 10). */
function isMessageTooLarge(err: unknown): boolean {
  const seen = new Set<unknown>();
  const stack: unknown[] = [err];
  while (stack.length > 0) {
    const e = stack.pop() as { type?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown } | undefined;
    if (!e || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    if (e.type === 'MESSAGE_TOO_LARGE') return true;
    stack.push(e.cause, e.originalError);
    if (Array.isArray(e.errors)) stack.push(...(e.errors as unknown[]));
  }
  return false;
}

/** How a task run ended: stopped on request, or to be started again at once (topics changed). */
export type TaskOutcome = 'stopped' | 'restart';

/** The clients and collaborators a task runs with; owned by the caller. */
export interface MirrorTaskDeps {
  flow: FlowConfig;
  /** `source->target`. */
  flowId: string;
  source: Kafka;
  target: Kafka;
  sourceAdmin: Admin;
  targetAdmin: Admin;
  topicSync: TopicSync;
  metrics: MirrorMetrics;
  status: FlowStatus;
  log: Logger;
  lagPollIntervalMs: number;
  shutdownTimeoutMs: number;
}

export type { SyncBreakReason };

/**
 * One run of the mirror of a flow `source->target`, from joining the source consumer group to
 * stopping. The supervisor (MirrorFlow) starts a new run after a failure; a run keeps no state
 * worth saving, because the truth — which source offsets are mirrored — lives on the target.
 *
 * Exactly once on the target (KIP-618's pattern, see positions.ts):
 * 1. the source is read `read_committed` by a consumer group whose single-owner assignor makes
 *    one process active and the others standbys;
 * 2. on assignment, the transactional producer `crr-mirror-<source>-<target>` is initialised,
 *    which fences any older instance and aborts its open transaction; only then are the
 *    committed positions read from the target;
 * 3. records below a partition's position are dropped, the others are buffered and written with
 *    their new positions in one target transaction (linger `transactionLingerMs`, size
 *    `transactionMaxBytes`); any failure aborts, and the next run starts again from step 1.
 *
 * Positions belong to one incarnation of a source topic: each carries the topic's id (KIP-516,
 * src/kafka/topic-ids.ts). A new id on activation, or a log end below the position, is a sync
 * break: the partition is mirrored from the new log start, behind a `topic-recreated` marker
 * written in the same transaction as the reset position; a retention gap gets a `retention-gap`
 * marker before the first record after it (src/replication/sync-break.ts). Replay on the
 * replica meets the marker in order and records the replica OUTDATED. A batch that starts below
 * the position (KafkaJS resets a fetch that is out of range to the log start) never moves the
 * mirror silently: the topic's id and log end are checked, and a change restarts the run.
 */
export class MirrorTask extends TaskRun<TaskOutcome> {
  private readonly positionsTopic: string;
  private readonly offsetSyncsTopic: string;
  /** Decides which mirrored records get an offset sync (this run only: a new run starts afresh). */
  private readonly offsetSyncs: OffsetSyncWriter;
  private readonly transactionalId: string;
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private active = false;
  private activation: Promise<void> | undefined;
  private readonly next = new Map<string, number>();
  private readonly committed = new Map<string, Position>();
  /** Partitions found below their position by a lag poll (the run restarts once for them). */
  private readonly recreated = new Set<string>();
  /** Reads source topic ids (KIP-516); closed with the run. */
  private readonly topicIds: TopicIdReader;
  /** Source topic → its id when this run activated (`undefined`: unknown); written with every position. */
  private readonly topicIdOf = new Map<string, string | undefined>();
  private dirty = new Set<string>();
  private pending: Pending[] = [];
  private pendingBytes = 0;
  private lastTimestamp = new Map<string, number>();
  private topics: MirroredTopic[] = [];
  private readonly remoteOf = new Map<string, string>();
  /** Wakes the commit loop when it waits for work. */
  private idleWake: (() => void) | undefined;
  /** Cuts the commit loop's linger short (the buffer is full, or the task ends). */
  private lingerWake: (() => void) | undefined;
  private spaceWaiters: Array<() => void> = [];
  private timers: NodeJS.Timeout[] = [];
  private commitLoop: Promise<void> | undefined;
  /** Remote topic → its effective `max.message.bytes` on the target, read at start. */
  private readonly maxMessageBytes = new Map<string, number>();
  /**
   * Divides every chunk budget: doubled each time the broker still answers MESSAGE_TOO_LARGE
   * (a limit crr could not read, a proxy's own cap), so the transaction is retried in smaller
   * record batches instead of restarting the task.
   */
  private budgetDivisor = 1;
  /** A lag poll is running (see pollLag). */
  private polling = false;
  /** The close ran out of time (see close): what it left running must not commit any more. */
  private abandoned = false;
  /** Resolved after each committed target transaction (see nextCommit). */
  private readonly commitWaiters: Array<() => void> = [];

  constructor(private readonly d: MirrorTaskDeps) {
    super('stopped');
    this.positionsTopic = positionsTopicName(d.flow.source);
    this.offsetSyncsTopic = offsetSyncsTopicName(d.flow.source);
    this.offsetSyncs = new OffsetSyncWriter(d.flowId, d.flow.offsetLagMax);
    this.transactionalId = `crr-mirror-${d.flow.source}-${d.flow.target}`;
    this.topicIds = new TopicIdReader(d.source);
  }

  /** Wakes the commit loop and every waiter once the run is ending. */
  protected override onEnding(): void {
    this.idleWake?.();
    this.lingerWake?.();
    for (const w of this.spaceWaiters.splice(0)) w();
    for (const w of this.commitWaiters.slice()) w();
  }

  protected async start(): Promise<undefined> {
    const { flow, log } = this.d;
    this.d.status.state = 'starting';
    this.topics = await this.d.topicSync.sync();
    for (const t of this.topics) this.remoteOf.set(t.topic, t.remoteTopic);
    this.d.status.topics = this.topics;
    for (const [topic, bytes] of await this.d.topicSync.maxMessageBytes(
      'target',
      this.topics.map((t) => t.remoteTopic),
    ))
      this.maxMessageBytes.set(topic, bytes);
    await ensurePositionsTopic(this.d.targetAdmin, this.positionsTopic, flow.remoteTopicReplicationFactor);
    if (flow.emitOffsetSyncs) await ensureOffsetSyncsTopic(this.d.targetAdmin, this.offsetSyncsTopic, flow.remoteTopicReplicationFactor);
    this.d.metrics.clusterUp.set({ cluster: flow.source }, 1);
    this.d.metrics.clusterUp.set({ cluster: flow.target }, 1);

    this.timers.push(setInterval(() => void this.checkTopics(), flow.topicRefreshIntervalMs));
    if (this.topics.length === 0) {
      log.info('no source topic passes the topic filter yet; waiting for one');
      this.d.status.state = 'idle';
      return;
    }

    const consumer = this.d.source.consumer({
      groupId: this.transactionalId,
      readUncommitted: false,
      partitionAssigners: [singleOwnerAssigner(() => this.active)],
      maxBytesPerPartition: flow.fetchMaxBytesPerPartition,
      maxBytes: Math.max(flow.fetchMaxBytesPerPartition * 4, 16 * 1024 * 1024),
      maxWaitTimeInMs: 250,
      sessionTimeout: flow.consumerSessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(flow.consumerSessionTimeoutMs / 10)),
      retry: { retries: 3, restartOnFailure: async () => false },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (e) =>
      this.end(new CrrError('CRR_KAFKA', `source consumer crashed: ${describeError(e.payload.error)}`, { cause: e.payload.error, retriable: true })),
    );
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => this.onBatchEnd(e.payload.topic, e.payload.partition, Number(e.payload.lastOffset)));
    await consumer.connect();
    await consumer.subscribe({ topics: this.topics.map((t) => t.topic), fromBeginning: true });
    this.d.status.state = 'standby';
    await consumer.run({
      // Never commit to the source group: the positions on the target are the only truth, and a
      // source commit ahead of them would make the next run skip records.
      autoCommit: false,
      partitionsConsumedConcurrently: Math.min(
        16,
        this.topics.reduce((n, t) => n + t.partitions, 0),
      ),
      eachBatch: async ({ batch, heartbeat }) => this.onBatch(batch, heartbeat),
    });
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const count = Object.values(assignment).reduce((n, p) => n + p.length, 0);
    if (count > 0 && !this.active && !this.activation) {
      this.activation = this.activate(assignment).catch((err) => this.end(err as Error));
    } else if (count === 0 && this.active) {
      this.d.metrics.restarts.inc({ flow: this.d.flowId, reason: 'lost-assignment' });
      this.end(new CrrError('CRR_KAFKA', 'this instance lost the flow to another instance', { retriable: true }));
    } else if (count === 0) {
      this.d.log.info('another instance mirrors this flow; waiting as standby');
      this.d.status.state = 'standby';
    }
  }

  /** Fences older instances, loads the committed positions, seeks, and starts committing. */
  private async activate(assignment: Record<string, number[]>): Promise<void> {
    const { log } = this.d;
    log.info({ partitions: Object.values(assignment).reduce((n, p) => n + p.length, 0) }, 'assigned the flow; fencing older instances');
    this.active = true;
    await this.openProducer();
    const { positions, complete } = await readPositions(this.d.target, this.d.targetAdmin, this.positionsTopic, this.d.flowId, 60_000);
    if (!complete) throw new CrrError('CRR_KAFKA', `could not read ${this.positionsTopic} to its end`, { retriable: true });
    for (const [key, pos] of positions) {
      this.committed.set(key, pos);
      this.next.set(key, pos.offset);
    }
    const ids = await this.readTopicIds(Object.keys(assignment));
    for (const [topic, partitions] of Object.entries(assignment)) {
      const id = ids.get(topic);
      this.topicIdOf.set(topic, id);
      const offsets = await this.d.sourceAdmin.fetchTopicOffsets(topic);
      for (const partition of partitions) {
        const pos = positions.get(tpKey(topic, partition));
        if (!pos) continue;
        const o = offsets.find((x) => x.partition === partition);
        const low = Number(o?.low ?? 0);
        const high = Number(o?.high ?? 0);
        if (pos.topicId !== undefined && id !== undefined && pos.topicId !== id) {
          this.newIncarnation(
            topic,
            partition,
            low,
            `source topic ${topic} was recreated (topic id ${pos.topicId} is now ${id}): partition ${partition} is mirrored again from its log start ${low}; the mirrored position ${pos.offset} belonged to the old topic`,
          );
        } else if (high < pos.offset) {
          this.newIncarnation(
            topic,
            partition,
            low,
            `source topic ${topic} was recreated: partition ${partition} ends at offset ${high}, below the mirrored position ${pos.offset}; it is mirrored again from its log start ${low}`,
          );
        } else {
          this.consumer?.seek({ topic, partition, offset: String(pos.offset) });
        }
      }
    }
    log.info({ positions: positions.size }, 'resuming from the positions stored on the target');
    this.d.metrics.active.set({ flow: this.d.flowId }, 1);
    this.d.status.state = 'active';
    this.d.status.activeSince = new Date().toISOString();
    this.commitLoop = this.runCommitLoop().catch((err) => this.end(err as Error));
    this.timers.push(setInterval(() => void this.pollLag(), this.d.lagPollIntervalMs));
    void this.pollLag();
  }

  /**
   * The ids of `topics` on the source, by name; empty when the broker cannot say (a broker
   * older than Kafka 2.8): positions then carry no id and only a log end below the position
   * shows a recreated topic.
   * @throws CrrError CRR_KAFKA (retriable) when the source cannot be reached
   */
  private async readTopicIds(topics: string[]): Promise<Map<string, string | undefined>> {
    try {
      return new Map([...(await this.topicIds.topicIds(topics))].map(([t, e]) => [t, e.topicId]));
    } catch (err) {
      if (err instanceof CrrError && !err.retriable) {
        this.d.log.warn({ err: describeError(err) }, 'source topic ids are unknown; a recreated topic is found only when its log end falls below the position');
        return new Map();
      }
      throw err;
    }
  }

  /**
   * A partition's source topic is a new incarnation: mirror it from `low`, behind a
   * `topic-recreated` marker written with the reset position in the next transaction.
   */
  private newIncarnation(topic: string, partition: number, low: number, detail: string): void {
    const key = tpKey(topic, partition);
    const remoteTopic = this.remoteOf.get(topic)!;
    this.d.log.error({ topic, partition, logStartOffset: low }, detail);
    this.d.metrics.syncBreaks.inc({ flow: this.d.flowId, reason: 'topic-recreated' });
    const topicId = this.topicIdOf.get(topic);
    this.pushMarker(topic, partition, remoteTopic, 'topic-recreated', detail, low, topicId);
    this.next.set(key, low);
    const before = this.committed.get(key);
    this.committed.set(key, { offset: low, timestampMs: 0, committedAtMs: before?.committedAtMs ?? 0, ...(topicId ? { topicId } : {}) });
    this.dirty.add(key);
    this.consumer?.seek({ topic, partition, offset: String(low) });
  }

  /** Buffers a sync-break marker for the remote partition, before any record buffered after it. */
  private pushMarker(
    topic: string,
    partition: number,
    remoteTopic: string,
    reason: SyncBreakReason,
    detail: string,
    resumeAt: number,
    topicId: string | undefined,
  ): void {
    const message = syncBreakMessage(this.d.flow.source, { syncBreak: reason, detail, topic, partition, ...(topicId ? { topicId } : {}), resumeAt });
    this.pending.push({
      topic,
      upstreamOffset: resumeAt,
      remoteTopic,
      partition,
      message,
      bytes: 0,
      encodedBytes: encodedRecordBound(message),
      timestampMs: 0,
      heartbeatMs: undefined,
      marker: reason,
    });
  }

  /**
   * Opens the transactional producer `crr-mirror-<source>-<target>`: InitProducerId fences any
   * older instance (or this instance's previous producer) and aborts its open transaction,
   * and the new producer epoch starts every partition's sequence afresh.
   */
  private async openProducer(): Promise<void> {
    const producer = this.d.target.producer({
      transactionalId: this.transactionalId,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: this.d.flow.transactionTimeoutMs,
      allowAutoTopicCreation: false,
    });
    this.producer = producer;
    await producer.connect();
    // KafkaJS sends InitProducerId at the first transaction(), not at connect()
    const fence = await producer.transaction();
    await fence.abort();
  }

  private async onBatch(batch: Batch, heartbeat: () => Promise<void>): Promise<void> {
    await this.activation;
    if (this.ending || !this.active) return;
    const { flow } = this.d;
    const key = tpKey(batch.topic, batch.partition);
    const remoteTopic = this.remoteOf.get(batch.topic);
    if (remoteTopic === undefined) return;
    const expected = this.next.get(key);
    const first = batch.messages[0];
    if (expected !== undefined && first && Number(first.offset) < expected && (await this.movedBack(batch.topic, batch.partition, expected))) return;
    if (expected !== undefined && first && Number(first.offset) > expected)
      await this.checkGap(batch.topic, batch.partition, remoteTopic, expected, Number(first.offset));
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (expected !== undefined && offset < expected) continue;
      const headers: IHeaders = { ...(m.headers ?? {}) };
      const origin = headers[HEADER_ORIGIN_ALIAS];
      const originAlias = origin === undefined ? undefined : String(Array.isArray(origin) ? origin[0] : origin);
      if (originAlias === flow.target) {
        this.d.metrics.skipped.inc({ flow: this.d.flowId, reason: 'cycle' });
        continue;
      }
      // the origin header only matters where topic names cannot tell a cycle (identity policy)
      if (originAlias === undefined && flow.replicationPolicy.type === 'identity') headers[HEADER_ORIGIN_ALIAS] = flow.source;
      headers[HEADER_SOURCE_ALIAS] = flow.source;
      headers[HEADER_UPSTREAM_OFFSET] = m.offset;
      const bytes = (m.key?.length ?? 0) + (m.value?.length ?? 0) + headerBytes(m.headers);
      const timestampMs = Number(m.timestamp);
      const message: Message = { key: m.key, value: m.value, headers, timestamp: m.timestamp, partition: batch.partition };
      this.pending.push({
        topic: batch.topic,
        upstreamOffset: offset,
        remoteTopic,
        partition: batch.partition,
        message,
        bytes,
        encodedBytes: encodedRecordBound(message),
        timestampMs,
        heartbeatMs: batch.topic === flow.heartbeatsTopic ? decodeHeartbeat(m.value) : undefined,
      });
      this.pendingBytes += bytes;
      this.lastTimestamp.set(key, timestampMs);
    }
    this.advance(key, Number(batch.lastOffset()) + 1);
    if (this.pendingBytes >= flow.transactionMaxBytes) this.lingerWake?.();
    while (this.pendingBytes > flow.maxBufferedBytes && !this.ending) {
      await new Promise<void>((resolve) => {
        this.spaceWaiters.push(resolve);
        setTimeout(resolve, 1000);
      });
      await heartbeat().catch(() => undefined);
    }
  }

  /**
   * A batch starts below the partition's position: a re-fetch (skipped as usual), or KafkaJS
   * reset a fetch that was out of range to the log start, which happens when the topic was
   * recreated or truncated. Checks the topic's id and log end; when either shows a change, ends
   * the run (its next activation mirrors the new incarnation from its start) and returns true.
   */
  private async movedBack(topic: string, partition: number, expected: number): Promise<boolean> {
    const ids = await this.readTopicIds([topic]);
    const was = this.topicIdOf.get(topic);
    const now = ids.get(topic);
    const high = Number((await this.d.sourceAdmin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.high ?? 0);
    if ((was !== undefined && now !== undefined && was !== now) || high < expected) {
      this.d.log.error(
        { topic, partition, position: expected, logEndOffset: high, topicId: now, previousTopicId: was },
        'the source consumer moved below the mirrored position and the source topic changed; restarting the run to mirror its new incarnation',
      );
      this.d.metrics.restarts.inc({ flow: this.d.flowId, reason: 'topic-recreated' });
      this.end('restart');
      return true;
    }
    return false;
  }

  /**
   * The first record fetched lies past the partition's position. Compaction removes offsets
   * legitimately; only a log start offset above the position means records were deleted
   * (retention, DeleteRecords) before they were mirrored — a retention gap, counted, logged and
   * marked on the remote partition (a `retention-gap` marker before the first record after it).
   */
  private async checkGap(topic: string, partition: number, remoteTopic: string, expected: number, first: number): Promise<void> {
    try {
      const low = Number((await this.d.sourceAdmin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.low ?? 0);
      if (low <= expected) return;
      const lost = Math.min(first, low) - expected;
      this.d.metrics.retentionGapRecords.inc({ flow: this.d.flowId, topic: remoteTopic }, lost);
      this.d.log.error(
        { topic, partition, position: expected, logStartOffset: low, lost },
        'retention gap: source records were deleted before they were mirrored',
      );
      this.d.metrics.syncBreaks.inc({ flow: this.d.flowId, reason: 'retention-gap' });
      // durable: the marker goes in the transaction that moves the position past the gap
      this.pushMarker(
        topic,
        partition,
        remoteTopic,
        'retention-gap',
        `retention gap on ${topic}[${partition}]: ${lost} records were deleted on ${this.d.flow.source} before they were mirrored (position ${expected}, log start ${low})`,
        first,
        this.topicIdOf.get(topic),
      );
    } catch (err) {
      this.d.log.warn({ err: describeError(err), topic, partition }, 'cannot check the source log start offset');
    }
  }

  /**
   * A batch ended. For a batch that held only control records or aborted records, eachBatch
   * is not called; its end still moves the position past them, so lag can reach 0 on a
   * transactional source.
   */
  private onBatchEnd(topic: string, partition: number, lastOffset: number): void {
    if (!this.active || this.ending) return;
    const key = tpKey(topic, partition);
    const cur = this.next.get(key);
    if (cur === undefined || lastOffset + 1 > cur) this.advance(key, lastOffset + 1);
  }

  private advance(key: string, offset: number): void {
    const cur = this.next.get(key);
    if (cur !== undefined && offset <= cur) return;
    this.next.set(key, offset);
    this.dirty.add(key);
    this.idleWake?.();
  }

  private async runCommitLoop(): Promise<void> {
    const { flow } = this.d;
    while (!this.ending) {
      if (this.dirty.size === 0) {
        await new Promise<void>((resolve) => (this.idleWake = resolve));
        this.idleWake = undefined;
        continue;
      }
      if (this.pendingBytes < flow.transactionMaxBytes && flow.transactionLingerMs > 0) {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, flow.transactionLingerMs);
          this.lingerWake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        this.lingerWake = undefined;
        if (this.ending) break;
      }
      await this.commitOnce();
    }
  }

  /** Takes everything buffered and the positions it advances, and writes them in one transaction. */
  private async commitOnce(): Promise<void> {
    const producer = this.producer;
    if (!producer || this.dirty.size === 0) return;
    const batch = this.pending;
    const batchBytes = this.pendingBytes;
    const dirty = this.dirty;
    this.pending = [];
    this.dirty = new Set();
    const byMessage = this.d.flow.emitOffsetSyncs ? new Map(batch.filter((p) => !p.marker).map((p) => [p.message, p])) : undefined;
    // topic-recreated markers: their downstream offset + 1 is where a reseeded replica replays the partition from
    const markers = new Map(batch.filter((p) => p.marker === 'topic-recreated').map((p) => [p.message, tpKey(p.topic, p.partition)]));
    const resumeDownstream = new Map<string, number>();
    let positions: Array<{ key: string; pos: Position; message: Message }> = [];
    const tx = await producer.transaction();
    try {
      const syncs: Message[] = [];
      for (const chunk of chunks(batch, (topic) => this.chunkBudget(topic))) {
        const metadata = await tx.sendBatch({ topicMessages: chunk, acks: -1, compression: compressionType(this.d.flow.targetCompression) });
        const written = byMessage || markers.size > 0 ? downstreamOffsets(chunk, metadata) : [];
        if (byMessage) syncs.push(...this.offsetSyncs.due(written, byMessage));
        for (const w of written) {
          const key = markers.get(w.message);
          if (key !== undefined) resumeDownstream.set(key, w.downstreamOffset + 1);
        }
      }
      const now = Date.now();
      positions = [...dirty].map((key) => {
        const [topic, partition] = splitKey(key);
        const topicId = this.topicIdOf.get(topic);
        const resume = resumeDownstream.get(key) ?? this.committed.get(key)?.resumeDownstream;
        const pos: Position = {
          offset: this.next.get(key)!,
          timestampMs: this.lastTimestamp.get(key) ?? this.committed.get(key)?.timestampMs ?? 0,
          committedAtMs: now,
          ...(topicId !== undefined ? { topicId } : {}),
          ...(resume !== undefined ? { resumeDownstream: resume } : {}),
        };
        return { key, pos, message: encodePosition(this.d.flowId, topic, partition, pos) };
      });
      // the offset syncs go in the same transaction as their records: a sync never points at an aborted record
      if (syncs.length > 0) await tx.send({ topic: this.offsetSyncsTopic, acks: -1, messages: syncs });
      await tx.send({ topic: this.positionsTopic, acks: -1, messages: positions.map((p) => p.message) });
      await tx.commit();
    } catch (err) {
      await tx.abort().catch(() => undefined);
      this.d.metrics.transactions.inc({ flow: this.d.flowId, result: 'aborted' });
      if (err instanceof CrrError && err.code === 'CRR_RECORD_TOO_LARGE') throw err;
      if (isMessageTooLarge(err) && this.budgetDivisor < MAX_BUDGET_DIVISOR) {
        // nothing of the aborted transaction is visible: put its records back and retry them in smaller batches
        this.budgetDivisor *= 2;
        this.pending = batch.concat(this.pending);
        for (const key of dirty) this.dirty.add(key);
        // offset-sync states were advanced for records that were aborted: start them afresh, as a new run would
        this.offsetSyncs.reset();
        this.d.log.warn({ budgetDivisor: this.budgetDivisor }, 'the target answered MESSAGE_TOO_LARGE; retrying the transaction in smaller record batches');
        // the partitions of the same request that were written moved the broker's sequence numbers, which
        // KafkaJS rolled back: a new producer epoch starts them afresh (what Java's producer does by bumping the epoch)
        await producer.disconnect().catch(() => undefined);
        await this.openProducer();
        return;
      }
      const fenced = /fenced|INVALID_PRODUCER_EPOCH|PRODUCER_FENCED/i.test(`${(err as { type?: string }).type ?? ''} ${describeError(err)}`);
      throw fenced
        ? new CrrError('CRR_PRODUCER_FENCED', `another instance took over ${this.transactionalId}`, { cause: err, retriable: true })
        : new CrrError('CRR_KAFKA', `target transaction failed: ${describeError(err)}`, { cause: err, retriable: true });
    }
    const committedAt = Date.now();
    this.pendingBytes -= batchBytes;
    for (const w of this.spaceWaiters.splice(0)) w();
    for (const p of positions) this.committed.set(p.key, p.pos);
    for (const w of this.commitWaiters.slice()) w();
    this.record(batch, committedAt);
    this.d.metrics.transactions.inc({ flow: this.d.flowId, result: 'committed' });
    this.d.status.lastCommitAt = new Date(committedAt).toISOString();
  }

  /** Bytes of records one partition of `remoteTopic` may get in one send call (see chunkBudget). */
  private chunkBudget(remoteTopic: string): number {
    const limit = this.maxMessageBytes.get(remoteTopic) ?? DEFAULT_MAX_MESSAGE_BYTES;
    const budget = chunkBudget(limit, this.d.flow.targetCompression !== 'none');
    return this.budgetDivisor === 1 ? budget : Math.max(1, Math.floor(budget / this.budgetDivisor));
  }

  private record(batch: Pending[], committedAt: number): void {
    const { metrics, flowId, status } = this.d;
    const perTopic = new Map<string, { records: number; bytes: number }>();
    for (const p of batch) {
      if (p.marker) continue;
      const t = perTopic.get(p.remoteTopic) ?? { records: 0, bytes: 0 };
      t.records += 1;
      t.bytes += p.bytes;
      perTopic.set(p.remoteTopic, t);
      if (p.timestampMs > 0) metrics.latency.observe({ flow: flowId }, Math.max(0, committedAt - p.timestampMs) / 1000);
      if (p.heartbeatMs !== undefined && p.heartbeatMs > (status.lastHeartbeatMs ?? 0)) status.lastHeartbeatMs = p.heartbeatMs;
    }
    for (const [topic, t] of perTopic) {
      metrics.records.inc({ flow: flowId, topic }, t.records);
      metrics.bytes.inc({ flow: flowId, topic }, t.bytes);
    }
    status.recordsMirrored += batch.filter((p) => !p.marker).length;
    const last = batch[batch.length - 1];
    if (last && last.timestampMs > 0) status.lastLatencyMs = committedAt - last.timestampMs;
  }

  /**
   * Reads source log-end offsets and publishes replication lag per remote topic partition: the
   * records readable on the source when the poll read its log ends that are not mirrored once
   * the mirror had {@link lagSettleMs} to copy them. Comparing with the log end at one instant
   * instead would count the heartbeat (or record) written just before it as lag whenever the
   * poll and the heartbeat timers are in step, so lag would never reach 0 on a flow that is
   * fully caught up. One poll at a time: a tick that finds the previous poll running is skipped.
   */
  private async pollLag(): Promise<void> {
    if (!this.active || this.ending || this.polling) return;
    this.polling = true;
    try {
      // positions committed BEFORE the log ends are read: a log end below one of them means the
      // topic went back (recreated). Positions committed during the settle wait below may pass the
      // log ends read here on a busy topic; comparing with them took steady writes for a recreation.
      const committedBefore = new Map([...this.committed].map(([key, pos]) => [key, pos.offset]));
      const ends: Array<{ t: MirroredTopic; partition: number; low: number; high: number }> = [];
      for (const t of this.topics) {
        for (const o of await this.d.sourceAdmin.fetchTopicOffsets(t.topic)) ends.push({ t, partition: o.partition, low: Number(o.low), high: Number(o.high) });
      }
      const behind = (): boolean => ends.some((e) => (this.committed.get(tpKey(e.t.topic, e.partition))?.offset ?? e.low) < e.high);
      const deadline = Date.now() + this.lagSettleMs();
      while (!this.ending && behind() && Date.now() < deadline) await this.nextCommit(deadline - Date.now());
      const rows: FlowStatus['partitions'] = [];
      for (const { t, partition, low, high } of ends) {
        const key = tpKey(t.topic, partition);
        const position = this.committed.get(key)?.offset ?? low;
        const before = committedBefore.get(key);
        if (before !== undefined && high < before && !this.recreated.has(key)) {
          // the next run's activation marks it and mirrors the partition again from its log start
          this.recreated.add(key);
          this.d.log.error(
            { topic: t.topic, partition, position: before, logEndOffset: high },
            'the source log end is below the mirrored position: the source topic was recreated; restarting the run',
          );
          this.d.metrics.restarts.inc({ flow: this.d.flowId, reason: 'topic-recreated' });
          this.end('restart');
        }
        const lag = Math.max(0, high - position);
        this.d.metrics.lagRecords.set({ topic: t.remoteTopic, partition: String(partition) }, lag);
        rows.push({ topic: t.topic, remoteTopic: t.remoteTopic, partition, logEndOffset: high, position, lagRecords: lag });
      }
      this.d.status.partitions = rows;
      this.d.metrics.clusterUp.set({ cluster: this.d.flow.source }, 1);
    } catch (err) {
      this.d.metrics.clusterUp.set({ cluster: this.d.flow.source }, 0);
      this.d.log.warn({ err: describeError(err) }, 'cannot read source log-end offsets');
    } finally {
      this.polling = false;
    }
  }

  /**
   * How long a lag poll lets the mirror copy what was readable when it read the log ends, ms:
   * a fetch wait (250), the transaction linger, and a second for the target transaction.
   */
  private lagSettleMs(): number {
    return 250 + this.d.flow.transactionLingerMs + 1000;
  }

  /** Resolves after the next committed target transaction, the end of the task, or `timeoutMs`. */
  private nextCommit(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, Math.max(0, timeoutMs));
      const waiters = this.commitWaiters;
      function done(): void {
        clearTimeout(timer);
        const i = waiters.indexOf(done);
        if (i >= 0) waiters.splice(i, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  /** Periodic discovery: new topics or partitions end this run so the next one subscribes to them. */
  private async checkTopics(): Promise<void> {
    if (this.ending) return;
    try {
      const now = await this.d.topicSync.sync();
      const before = JSON.stringify(this.topics.map((t) => [t.topic, t.partitions]));
      const after = JSON.stringify(now.map((t) => [t.topic, t.partitions]));
      if (this.active && this.topicIdOf.size > 0) {
        const ids = await this.readTopicIds([...this.topicIdOf.keys()]);
        for (const [topic, was] of this.topicIdOf) {
          const id = ids.get(topic);
          if (was === undefined || id === undefined || id === was) continue;
          this.d.log.error(
            { topic, topicId: id, previousTopicId: was },
            `source topic ${topic} was recreated (new topic id); restarting the run to mirror its new incarnation`,
          );
          this.d.metrics.restarts.inc({ flow: this.d.flowId, reason: 'topic-recreated' });
          this.end('restart');
          return;
        }
      }
      if (before !== after) {
        this.d.log.info(
          { before: this.topics.map((t) => `${t.topic}/${t.partitions}`), after: now.map((t) => `${t.topic}/${t.partitions}`) },
          'mirrored topics changed; restarting the task',
        );
        this.d.metrics.restarts.inc({ flow: this.d.flowId, reason: 'topics-changed' });
        this.end('restart');
      }
    } catch (err) {
      this.d.log.warn({ err: describeError(err) }, 'topic discovery failed; will try again');
    }
  }

  /**
   * Stops the consumer, then commits what is buffered (`graceful`) or aborts it, and closes
   * the producer, within `shutdownTimeoutMs`. Past it, the close stops waiting AND stops the
   * work: no final commit any more, and both clients are disconnected (a transaction in flight
   * fails; the broker aborts it), waiting at most 5 s more for that, so nothing of this run
   * goes on writing to the target once the next run started.
   */
  protected async close(outcome: TaskOutcome | Error): Promise<void> {
    const graceful = outcome === 'stopped' || outcome === 'restart';
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.ending = true;
    this.idleWake?.();
    this.lingerWake?.();
    for (const w of this.spaceWaiters.splice(0)) w();
    const work = (async () => {
      await this.consumer?.disconnect().catch((err) => this.d.log.warn({ err: describeError(err) }, 'source consumer did not close cleanly'));
      await this.commitLoop;
      if (graceful && this.active && !this.abandoned) {
        try {
          await this.commitOnce();
        } catch (err) {
          this.d.log.warn({ err: describeError(err) }, 'final commit failed; buffered records will be mirrored again by the next run');
        }
      }
      await this.producer?.disconnect().catch(() => undefined);
      await this.topicIds.close();
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([work.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), this.d.shutdownTimeoutMs)))]);
    clearTimeout(timer);
    if (timedOut) {
      this.abandoned = true;
      this.d.log.warn(
        { timeoutMs: this.d.shutdownTimeoutMs },
        'mirror task did not close in time; disconnecting its clients: the open transaction will be aborted by the broker',
      );
      const forced = Promise.allSettled([this.producer?.disconnect(), this.consumer?.disconnect()]);
      await Promise.race([forced, new Promise<void>((r) => (timer = setTimeout(r, Math.min(5000, this.d.shutdownTimeoutMs))))]);
      clearTimeout(timer);
    }
    this.active = false;
    this.d.metrics.active.set({ flow: this.d.flowId }, 0);
    this.d.status.state = 'stopped';
  }
}
