// Over 450 lines: one replay task run (activation, apply, dead letters, lag polling) whose parts share its mutable state; the per-record rules are in classify.ts.
import { hostname } from 'node:os';
import type { Admin, Batch, Consumer, IHeaders, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { ReplaySource } from '../cluster/topology.js';
import { CrrError, describeError } from '../errors.js';
import { ensureChangeTopics, ensureTopic } from '../kafka/topics.js';
import { singleOwnerAssigner } from '../kafka/assigner.js';
import { HEADER_UPSTREAM_OFFSET } from '../replication/headers.js';
import { classifyRecord, type ClassifyContext } from './classify.js';
import { type Accepted, applyAccepted } from './apply-accepted.js';
import { tpKey } from '../replication/topic-partition.js';
import { positionsTopicName } from '../replication/internal-topics.js';
import { readPositions } from '../kafka/positions-topic.js';
import { TaskRun } from '../util/task-run.js';
import { outdated, stateInput } from '../cluster/cluster-state.js';
import { recordClusterState } from '../cluster/state.js';
import type { ChangeEvent } from '../protocol/schema.js';
import type { ClusterStateInput } from '../cluster/cluster-state.js';
import type { Store } from '../store/store.js';
import type { ReplayFence } from '../store/apply.js';
import type { ReplayMetrics } from './metrics.js';
import type { ReplayConfig } from './schema.js';
import type { ReplayStatus } from './status.js';

/** How a replay run ended: stopped on request; halted at an event it will not pass; the cluster became (or was) OUTDATED. */
export type ReplayOutcome = 'stopped' | 'halted' | 'outdated';

/** Headers a dead letter carries beside the original record's own headers. */
export const DEAD_LETTER_HEADERS = {
  reason: 'crr.dlq.reason',
  error: 'crr.dlq.error',
  cluster: 'crr.dlq.cluster',
  topic: 'crr.dlq.topic',
  partition: 'crr.dlq.partition',
  offset: 'crr.dlq.offset',
  /** The SQLSTATE of an `unapplicable` record the database refused (a data error: class 22, 23 or 54). */
  sqlState: 'crr.dlq.sqlstate',
} as const;

/** The clients and collaborators of a replay run; owned by the caller. */
export interface ReplayTaskDeps {
  source: ReplaySource;
  replay: ReplayConfig;
  kafka: Kafka;
  admin: Admin;
  store: Store;
  metrics: ReplayMetrics;
  status: ReplayStatus;
  log: Logger;
  /** Publishes a state the task recorded in the store (src/cluster/state.ts). */
  onStateChange(state: ClusterStateInput): Promise<void>;
}

/**
 * One run of replay for one cluster: reads its change topics (own topics on a primary, remote
 * topics on a replica) and applies them to its store, exactly once, in partition order.
 *
 * - Positions live in the store, written in the transaction of the events they cover
 *   (Store.applyBatch). A read topic's row holds the next offset to read; on a replica a
 *   second row under the upstream topic's name holds the next UPSTREAM offset (from the
 *   `crr.upstream.offset` header), which is what a backup's positions and `crr verify` compare.
 *   A record below either position is skipped (`below-position`).
 * - One process replays a cluster: the consumer group `crr-replay-<alias>` with the single-owner
 *   assignor; others wait as standbys. Nothing is committed to Kafka.
 * - Epochs (docs/glossary.md, "epoch"): an event whose epoch is above the store's stops replay and,
 *   on a replica, records the cluster `OUTDATED` with the reason; an event whose epoch is below
 *   the store's (a late event of an old primary) is counted as `stale-epoch` and never applied.
 * - A sync-breaking marker on a replica records `OUTDATED` (its effect cannot be replayed); on a
 *   primary its effect was made by the operation that wrote it, so replay passes it.
 * - A record that is not a valid event (`invalid`), or that the store refuses (`unapplicable`),
 *   goes to the dead-letter topic with the reason in headers; then replay halts there (policy
 *   `halt`) or passes it (`skip`).
 */
export class ReplayTask extends TaskRun<ReplayOutcome> {
  /** This activation's replay fence token (Store.activateReplay); every batch carries it. */
  private fence: (ReplayFence & { generation: number }) | undefined;
  private consumer: Consumer | undefined;
  private dlqProducer: Producer | undefined;
  private active = false;
  private activation: Promise<void> | undefined;
  /** Next offset to read per read-topic partition (applied, skipped or control records). */
  private readonly next = new Map<string, number>();
  /** Next upstream offset per upstream topic partition (replica only). */
  private readonly upstreamNext = new Map<string, number>();
  private epoch = 0;
  private lastAppliedTimestampMs: number | undefined;
  private activeSinceMs = 0;
  private timers: NodeJS.Timeout[] = [];
  /** A lag poll is running (see pollLag). */
  private polling = false;
  /** Called once whenever replay lag is measured at 0 on every partition. */
  onCaughtUp: (() => void) | undefined;

  constructor(private readonly d: ReplayTaskDeps) {
    super('stopped');
  }

  protected async start(signal: AbortSignal): Promise<ReplayOutcome | undefined> {
    const { source, store, status, log, metrics } = this.d;
    status.state = 'starting';
    const state = await store.clusterState();
    if (!state)
      throw new CrrError('CRR_STORE', `the store of cluster ${source.alias} has no cluster state; it must be initialised before replay`, { retriable: false });
    this.epoch = state.epoch;
    status.clusterState = stateInput(state);
    metrics.setState(source.alias, state.state, state.epoch);
    // a PROMOTING replica replays to the end of its topics (crr promote, src/failover/promote.ts)
    if (state.role === 'replica' && state.state !== 'REPLICATING' && state.state !== 'PROMOTING') {
      status.state = 'outdated';
      status.haltReason = `cluster ${source.alias} is ${state.state}${state.reason ? `: ${state.reason}` : ''}; replay resumes after a reseed`;
      metrics.halted.set({ cluster: source.alias }, 1);
      log.warn({ state: state.state, reason: state.reason }, 'cluster is not REPLICATING; replay waits for a reseed');
      return 'outdated';
    }
    metrics.halted.set({ cluster: source.alias }, 0);
    const topics = [source.dataTopic, source.metadataTopic];
    if (!source.upstream) {
      const ct = source.cluster.changeTopics;
      await ensureChangeTopics(this.d.admin, ct);
    } else {
      // remote topics appear when the mirror first sees the primary's topics
      for (;;) {
        const existing = new Set(await this.d.admin.listTopics());
        const missing = topics.filter((t) => !existing.has(t));
        if (missing.length === 0) break;
        if (status.state !== 'waiting') log.info({ missing }, 'waiting for the remote topics to be created by the mirror');
        status.state = 'waiting';
        await new Promise((r) => setTimeout(r, 1000));
        if (signal.aborted) return 'stopped';
      }
    }
    await ensureTopic(this.d.admin, this.d.replay.deadLetterTopic, 1, source.cluster.changeTopics.replicationFactor);
    const producer = this.d.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    this.dlqProducer = producer;

    const consumer = this.d.kafka.consumer({
      groupId: `crr-replay-${source.alias}`,
      readUncommitted: false,
      partitionAssigners: [singleOwnerAssigner(() => this.active)],
      maxBytesPerPartition: 4 * 1024 * 1024,
      maxBytes: 32 * 1024 * 1024,
      maxWaitTimeInMs: 250,
      sessionTimeout: this.d.replay.consumerSessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.d.replay.consumerSessionTimeoutMs / 10)),
      retry: { retries: 3, restartOnFailure: async () => false },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.onAssignment(e.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (e) =>
      this.end(new CrrError('CRR_KAFKA', `replay consumer crashed: ${describeError(e.payload.error)}`, { cause: e.payload.error, retriable: true })),
    );
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => this.onBatchEnd(e.payload.topic, e.payload.partition, Number(e.payload.lastOffset)));
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    status.state = 'standby';
    await consumer.run({
      autoCommit: false,
      // Partitions are applied concurrently: each holds its own entities (the key is the entity)
      // and its own positions rows, so their transactions touch disjoint rows; decoding one
      // partition's batch overlaps another's store transaction.
      partitionsConsumedConcurrently: 4,
      eachBatch: async ({ batch, heartbeat }) => this.onBatch(batch, heartbeat),
    });
    return undefined;
  }

  private onAssignment(assignment: Record<string, number[]>): void {
    const count = Object.values(assignment).reduce((n, p) => n + p.length, 0);
    if (count > 0 && !this.active && !this.activation) {
      this.activation = this.activate(assignment).catch((err) => this.end(err as Error));
    } else if (count === 0 && this.active) {
      this.end(new CrrError('CRR_KAFKA', 'this instance lost the replay of the cluster to another instance', { retriable: true }));
    } else if (count === 0) {
      this.d.log.info('another instance replays this cluster; waiting as standby');
      this.d.status.state = 'standby';
    }
  }

  /** Loads the store's positions (only now: a previous owner may have advanced them) and seeks. */
  private async activate(assignment: Record<string, number[]>): Promise<void> {
    const { source, store, log } = this.d;
    this.active = true;
    // the replay fence first: from now on a batch of an earlier activation (a stalled owner) is refused
    this.fence = await store.activateReplay(`replay of ${source.alias}, pid ${process.pid} on ${hostname()}`);
    log.info({ generation: this.fence.generation }, 'replay activated: earlier activations are fenced');
    const positions = await store.positions();
    const upstreamTopics = new Set(Object.values(source.upstream?.topicOf ?? {}));
    for (const p of positions) {
      if (upstreamTopics.has(p.topic)) this.upstreamNext.set(tpKey(p.topic, p.partition), p.nextOffset);
      else this.next.set(tpKey(p.topic, p.partition), p.nextOffset);
    }
    await this.resumePastRecreatedTopics(assignment);
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const partition of partitions) {
        const offset = this.next.get(tpKey(topic, partition));
        if (offset !== undefined) this.consumer?.seek({ topic, partition, offset: String(offset) });
      }
    }
    log.info({ positions: positions.length, epoch: this.epoch }, 'replaying from the positions in the store');
    this.activeSinceMs = Date.now();
    this.d.status.state = 'active';
    this.timers.push(setInterval(() => void this.pollLag(), this.d.replay.lagPollIntervalMs));
    void this.pollLag();
  }

  /**
   * On a replica restored from a backup (upstream positions in the store, no read position for a
   * remote partition yet): a partition whose source topic was recreated is replayed from past the
   * mirror's `topic-recreated` marker (the position's `resumeDownstream`), because the records
   * before it belong to the old incarnation, whose upstream offsets the backup's positions do not
   * describe. A replica that never held a position replays from the start and meets the marker.
   */
  private async resumePastRecreatedTopics(assignment: Record<string, number[]>): Promise<void> {
    const { source, admin, kafka, log } = this.d;
    if (!source.upstream) return;
    const topic = positionsTopicName(source.upstream.alias);
    if (!(await admin.listTopics()).includes(topic)) return;
    const { positions, complete } = await readPositions(kafka, admin, topic, `${source.upstream.alias}->${source.alias}`, 30_000);
    if (!complete) throw new CrrError('CRR_KAFKA', `could not read ${topic} to its end`, { retriable: true });
    for (const [remote, partitions] of Object.entries(assignment)) {
      const upstream = source.upstream.topicOf[remote];
      if (upstream === undefined) continue;
      for (const partition of partitions) {
        if (this.next.has(tpKey(remote, partition)) || !this.upstreamNext.has(tpKey(upstream, partition))) continue;
        const resume = positions.get(tpKey(upstream, partition))?.resumeDownstream;
        if (resume === undefined) continue;
        this.next.set(tpKey(remote, partition), resume);
        log.warn(
          { topic: remote, partition, offset: resume },
          'the source topic was recreated before this reseed: replaying the partition from past its sync-break marker',
        );
      }
    }
  }

  /**
   * A batch starts below the partition's position: a re-fetch (skipped as usual), or KafkaJS reset
   * a fetch that was out of range to the log start (the topic was recreated, e.g. by `crr admin
   * reset`). When the topic now ends below the position, or the store's positions moved back,
   * ends the run to reload them (CRR_REPLAY_RELOAD) instead of skipping what lies below.
   */
  private async movedBack(topic: string, partition: number, next: number): Promise<void> {
    const high = Number((await this.d.admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.high ?? 0);
    const stored = (await this.d.store.positions()).find((p) => p.topic === topic && p.partition === partition)?.nextOffset;
    if (high >= next && (stored === undefined || stored >= next)) return;
    throw new CrrError(
      'CRR_REPLAY_RELOAD',
      high < next
        ? `${topic}[${partition}] ends at ${high}, below replay's position ${next}: the topic was recreated; reloading the store's positions`
        : `the store's position of ${topic}[${partition}] moved back to ${stored} (from ${next} in this run: crr admin reset); reloading the store's positions`,
      { retriable: true },
    );
  }

  /**
   * A batch starts past the partition's position. Offsets of transaction markers and compacted
   * records are missing legitimately; only a log start above the position means events were
   * deleted (retention, DeleteRecords) before replay applied them: a replica becomes OUTDATED, a
   * primary halts, naming the offsets — never a silent skip. Returns true when the run ends.
   */
  private async retentionGap(topic: string, partition: number, position: number): Promise<boolean> {
    const low = Number((await this.d.admin.fetchTopicOffsets(topic)).find((o) => o.partition === partition)?.low ?? 0);
    if (low <= position) return false;
    await this.outdated(
      'retention-gap',
      `retention gap on ${topic}[${partition}]: offsets ${position} to ${low - 1} were deleted before replay applied them (position ${position}, log start ${low})`,
    );
    return true;
  }

  private async onBatch(batch: Batch, heartbeat: () => Promise<void>): Promise<void> {
    await this.activation;
    if (this.ending || !this.active) return;
    const { source } = this.d;
    const key = tpKey(batch.topic, batch.partition);
    const first = batch.messages[0];
    const position = this.next.get(key);
    if (first && position !== undefined && Number(first.offset) < position) {
      try {
        await this.movedBack(batch.topic, batch.partition, position);
      } catch (err) {
        this.end(err as Error);
        return;
      }
    }
    if (first && position !== undefined && Number(first.offset) > position && (await this.retentionGap(batch.topic, batch.partition, position))) return;
    const upstreamTopic = source.upstream?.topicOf[batch.topic];
    const upKey = upstreamTopic === undefined ? undefined : tpKey(upstreamTopic, batch.partition);
    const accepted: Accepted[] = [];
    // offsets handled so far in this batch (applied, skipped or dead-lettered and passed)
    let handled: number | undefined;
    let upHandled: number | undefined;

    const flush = async (): Promise<boolean> => {
      if (handled === undefined) return true;
      const ok = await this.apply(batch.topic, batch.partition, upstreamTopic, accepted, handled, upHandled);
      accepted.length = 0;
      handled = undefined;
      upHandled = undefined;
      await heartbeat().catch(() => undefined);
      return ok;
    };

    for (const m of batch.messages) {
      if (this.ending) return;
      const offset = Number(m.offset);
      const ctx = (): ClassifyContext => ({
        next: this.next.get(key),
        replica: upKey !== undefined,
        upstreamNext: upKey === undefined ? undefined : this.upstreamNext.get(upKey),
        epoch: this.epoch,
      });
      let verdict = classifyRecord(m, ctx());
      // on a primary, a crr admin sync-breaking operation may have raised the store's epoch while replay ran
      if (verdict.kind === 'higher-epoch' && !source.upstream) {
        try {
          await this.adoptStoreEpoch();
        } catch (err) {
          this.end(err as Error); // positions moved back (crr admin reset): the next run reloads them
          return;
        }
        verdict = classifyRecord(m, ctx());
      }
      const at = (up: number | undefined): string => `${batch.topic}[${batch.partition}]@${offset}${up === undefined ? '' : ` (upstream offset ${up})`}`;
      switch (verdict.kind) {
        case 'below-position':
          continue;
        case 'below-upstream-position':
          this.d.metrics.skipped.inc({ cluster: source.alias, reason: 'below-position' });
          handled = offset;
          continue;
        case 'mirror-sync-break':
          if (!(await flush())) return;
          await this.outdated(verdict.reason, `${verdict.detail} (sync-break marker at ${at(verdict.upstreamOffset)})`);
          return;
        case 'no-upstream-offset':
          if (
            !(await flush()) ||
            !(await this.deadLetter(batch.topic, batch.partition, m, 'invalid', `no ${HEADER_UPSTREAM_OFFSET} header: not written by the mirror`))
          )
            return;
          handled = offset;
          continue;
        case 'invalid':
          if (!(await flush()) || !(await this.deadLetter(batch.topic, batch.partition, m, 'invalid', verdict.error))) return;
          handled = offset;
          if (verdict.upstreamOffset !== undefined) upHandled = verdict.upstreamOffset;
          continue;
        case 'stale-epoch': {
          const { event } = verdict;
          this.d.metrics.skipped.inc({ cluster: source.alias, reason: 'stale-epoch' });
          this.d.log.warn(
            { id: event.id, op: event.op, epoch: event.epoch, storeEpoch: this.epoch, at: at(verdict.upstreamOffset) },
            'refused an event of an older epoch (a late event of an old primary); not applied',
          );
          handled = offset;
          if (verdict.upstreamOffset !== undefined) upHandled = verdict.upstreamOffset;
          continue;
        }
        case 'sync-breaking-marker': {
          const { event } = verdict;
          if (!(await flush())) return;
          const reason = 'reason' in event ? event.reason : '';
          await this.outdated(
            event.op.toLowerCase().replace(/_/g, '-'),
            `sync-breaking ${event.op} at ${at(verdict.upstreamOffset)}${reason ? `: ${reason}` : ''}`,
          );
          return;
        }
        case 'higher-epoch': {
          const { event } = verdict;
          if (!(await flush())) return;
          await this.outdated(
            'epoch',
            `event ${event.id} (${event.op}) at ${at(verdict.upstreamOffset)} has epoch ${event.epoch}, above the store's epoch ${this.epoch}`,
          );
          return;
        }
        case 'marker-done':
          handled = offset; // on a primary, the operation that wrote the marker made its effect
          continue;
        case 'apply':
          break;
      }
      const { event, upstreamOffset } = verdict;
      accepted.push({ event, offset, upstreamOffset });
      handled = offset;
      if (upstreamOffset !== undefined) upHandled = upstreamOffset;
      if (accepted.length >= this.d.replay.maxBatchEvents && !(await flush())) return;
      if (Number(m.timestamp) > 0) this.lastAppliedTimestampMs = Number(m.timestamp);
    }
    await flush();
  }

  /**
   * On a primary: re-reads the store's epoch, which a `crr admin` sync-breaking operation raises
   * while replay runs (src/admin/admin.ts), and adopts it when it is higher than the one this run started with.
   * @throws CrrError CRR_REPLAY_RELOAD when the store's positions moved back with the epoch (`crr admin reset`)
   */
  private async adoptStoreEpoch(): Promise<void> {
    const state = await this.d.store.clusterState();
    if (!state || state.epoch <= this.epoch) return;
    const { source, status, metrics, log } = this.d;
    log.warn(
      { from: this.epoch, to: state.epoch, reason: state.reason },
      `the store's epoch rose to ${state.epoch}${state.reason ? ` (${state.reason})` : ''}; replaying at the new epoch`,
    );
    this.epoch = state.epoch;
    status.clusterState = stateInput(state);
    metrics.setState(source.alias, state.state, state.epoch);
    // crr admin reset sets the positions of the recreated topics back with the epoch: this run's are stale
    const moved = (await this.d.store.positions()).filter((p) => {
      const mine = this.next.get(tpKey(p.topic, p.partition));
      return mine !== undefined && p.nextOffset < mine;
    });
    if (moved.length > 0) {
      throw new CrrError(
        'CRR_REPLAY_RELOAD',
        `the store's epoch rose to ${state.epoch} and its positions moved back (${moved.map((p) => `${p.topic}[${p.partition}] to ${p.nextOffset}`).join(', ')}): reloading them`,
        { retriable: true },
      );
    }
  }

  /**
   * Applies accepted events with the positions up to `handled` in one store transaction. When
   * the store refuses the batch (CRR_STORE_APPLY: an event that contradicts the store, or one the
   * database refuses with a data error, SQLSTATE class 22, 23 or 54), applies event by event to
   * find the one it refuses and dead-letters it. Returns false when replay must stop (halted).
   */
  private async apply(
    topic: string,
    partition: number,
    upstreamTopic: string | undefined,
    accepted: Accepted[],
    handled: number,
    upHandled: number | undefined,
  ): Promise<boolean> {
    const failed = (): void => this.d.metrics.batches.inc({ cluster: this.d.source.alias, result: 'failed' });
    try {
      return await applyAccepted(this.d.store, { topic, partition, upstreamTopic }, accepted, handled, upHandled, {
        fence: this.fence,
        applied: (events, offset, upstreamOffset) => this.applied(topic, partition, upstreamTopic, events, offset, upstreamOffset),
        batchRefused: failed,
        refused: async (a, err) => {
          const m = {
            offset: String(a.offset),
            key: null,
            value: Buffer.from(JSON.stringify(a.event)),
            timestamp: String(a.event.ts),
            headers: {},
            attributes: 0,
          } as unknown as KafkaMessage;
          // a data error of the database (SQLSTATE class 22, 23 or 54, src/store/pg-errors.ts) carries its SQLSTATE
          const sqlState = typeof err.sqlState === 'string' ? err.sqlState : undefined;
          return this.deadLetter(topic, partition, m, 'unapplicable', err.message, sqlState);
        },
      });
    } catch (err) {
      failed();
      throw err;
    }
  }

  private applied(
    topic: string,
    partition: number,
    upstreamTopic: string | undefined,
    events: ChangeEvent[],
    handled: number,
    upHandled: number | undefined,
  ): void {
    const { metrics, status, source } = this.d;
    this.next.set(tpKey(topic, partition), handled + 1);
    if (upstreamTopic !== undefined && upHandled !== undefined) this.upstreamNext.set(tpKey(upstreamTopic, partition), upHandled + 1);
    metrics.batches.inc({ cluster: source.alias, result: 'committed' });
    const byOp = new Map<string, number>();
    for (const e of events) byOp.set(e.op, (byOp.get(e.op) ?? 0) + 1);
    for (const [op, n] of byOp) metrics.events.inc({ cluster: source.alias, op }, n);
    status.eventsApplied += events.length;
    status.lastAppliedAt = new Date().toISOString();
  }

  /**
   * Sends a record to the dead-letter topic with the reason (and the SQLSTATE of a data error), then applies the policy.
   * @returns true when replay passes the record (policy `skip`), false when it halts here
   */
  private async deadLetter(
    topic: string,
    partition: number,
    m: KafkaMessage,
    reason: 'invalid' | 'unapplicable',
    error: string,
    sqlState?: string,
  ): Promise<boolean> {
    const { replay, source, metrics, status, log } = this.d;
    const headers: IHeaders = {
      ...(m.headers ?? {}),
      [DEAD_LETTER_HEADERS.reason]: reason,
      [DEAD_LETTER_HEADERS.error]: error.slice(0, 2000),
      [DEAD_LETTER_HEADERS.cluster]: source.alias,
      [DEAD_LETTER_HEADERS.topic]: topic,
      [DEAD_LETTER_HEADERS.partition]: String(partition),
      [DEAD_LETTER_HEADERS.offset]: String(m.offset),
      ...(sqlState === undefined ? {} : { [DEAD_LETTER_HEADERS.sqlState]: sqlState }),
    };
    await this.dlqProducer!.send({ topic: replay.deadLetterTopic, acks: -1, messages: [{ key: m.key, value: m.value, headers, timestamp: m.timestamp }] });
    metrics.deadLetters.inc({ cluster: source.alias, reason });
    status.deadLetters += 1;
    const where = `${topic}[${partition}]@${m.offset}`;
    if (replay.deadLetterPolicy === 'skip') {
      log.error(
        { at: where, reason, error },
        `dead-lettered the record at ${where} (${reason}: ${error}) to ${replay.deadLetterTopic}; passing it (deadLetterPolicy skip)`,
      );
      return true;
    }
    const why = `record at ${where} is ${reason === 'invalid' ? 'not a valid change event' : 'refused by the store'} (${error}); it was sent to ${replay.deadLetterTopic} and replay stops here (replay.deadLetterPolicy: halt)`;
    log.error({ at: where, reason, error }, why);
    status.state = 'halted';
    status.haltReason = why;
    metrics.halted.set({ cluster: source.alias }, 1);
    this.end('halted');
    return false;
  }

  /**
   * Records the replica OUTDATED (or, on a primary, halts) and ends the run.
   * @param kind the `reason` label of `crr_sync_breaks_total`
   */
  private async outdated(kind: string, reason: string): Promise<void> {
    const { source, store, status, metrics, log } = this.d;
    status.haltReason = reason; // before any await: /status never shows the state without its reason
    if (source.upstream) {
      metrics.syncBreaks.inc({ cluster: source.alias, reason: kind });
      status.syncBreak = kind;
      const state = outdated({ role: 'replica', state: 'REPLICATING', epoch: this.epoch }, reason);
      await recordClusterState(store, source.alias, state);
      // the state, its gauges and /status change together, before the publication is awaited
      metrics.halted.set({ cluster: source.alias }, 1);
      status.clusterState = state;
      status.state = 'outdated';
      metrics.setState(source.alias, 'OUTDATED', this.epoch);
      log.error({ reason }, `cluster ${source.alias} is OUTDATED: ${reason}`);
      await this.d.onStateChange(state).catch((err) => log.warn({ err: describeError(err) }, 'could not publish the cluster state'));
    } else {
      metrics.halted.set({ cluster: source.alias }, 1);
      status.state = 'halted';
      log.error({ reason }, `replay halted: ${reason}`);
    }
    this.end(source.upstream ? 'outdated' : 'halted');
  }

  /** Moves the read position past control records (transaction markers) that carry no event. */
  private onBatchEnd(topic: string, partition: number, lastOffset: number): void {
    if (!this.active || this.ending) return;
    const key = tpKey(topic, partition);
    const cur = this.next.get(key);
    if (cur === undefined || lastOffset + 1 > cur) this.next.set(key, lastOffset + 1);
  }

  /**
   * Measures replay lag per read partition; calls {@link onCaughtUp} when it is 0 everywhere.
   * One poll at a time: a tick that finds the previous poll running (a slow broker) is skipped.
   */
  private async pollLag(): Promise<void> {
    if (!this.active || this.ending || this.polling) return;
    this.polling = true;
    const { source, metrics, status } = this.d;
    try {
      const rows: ReplayStatus['partitions'] = [];
      for (const topic of [source.dataTopic, source.metadataTopic]) {
        for (const o of await this.d.admin.fetchTopicOffsets(topic)) {
          const position = this.next.get(tpKey(topic, o.partition)) ?? Number(o.low);
          const lag = Math.max(0, Number(o.high) - position);
          metrics.lagRecords.set({ cluster: source.alias, topic, partition: String(o.partition) }, lag);
          rows.push({ topic, partition: o.partition, logEndOffset: Number(o.high), position, lagRecords: lag });
        }
      }
      const total = rows.reduce((n, r) => n + r.lagRecords, 0);
      const seconds = total === 0 ? 0 : Math.max(0, (Date.now() - (this.lastAppliedTimestampMs ?? this.activeSinceMs)) / 1000);
      metrics.lagSeconds.set({ cluster: source.alias }, seconds);
      status.partitions = rows;
      status.lagRecords = total;
      status.lagSeconds = seconds;
      if (total === 0) this.onCaughtUp?.();
    } catch (err) {
      this.d.log.warn({ err: describeError(err) }, 'cannot read log-end offsets for replay lag');
    } finally {
      this.polling = false;
    }
  }

  protected async close(): Promise<void> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.ending = true;
    await this.consumer?.disconnect().catch((err) => this.d.log.warn({ err: describeError(err) }, 'replay consumer did not close cleanly'));
    await this.dlqProducer?.disconnect().catch(() => undefined);
    this.active = false;
  }
}
