// Over 450 lines: one audit (snapshot, scratch schema, the scratch replay by classify.ts and apply-accepted.ts, the comparison and the cleanup on signals); next split: the scratch replay (class ScratchReplay) into its own file.
import { randomBytes, randomUUID } from 'node:crypto';
import type { Admin, Batch, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { readManifest } from '../backup/catalog.js';
import { openRepository } from '../backup/open-repository.js';
import { restoreBackup } from '../backup/restore.js';
import { EXIT } from '../cli/exit-codes.js';
import { CliUsageError } from '../cli/usage-error.js';
import type { Role } from '../cluster/schema.js';
import { configuredRole, replaySource, type ReplaySource } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { isMarkerOp } from '../protocol/schema.js';
import { type Accepted, applyAccepted } from '../replay/apply-accepted.js';
import { classifyRecord } from '../replay/classify.js';
import { tpKey } from '../replication/topic-partition.js';
import type { StoreConfig } from '../store/schema.js';
import type { EntityDifference, SchemaComparison, Store, StoreCounts, StorePosition } from '../store/store.js';

// `crr verify --against-log`: an audit of one cluster's store against its own change log
// (docs/architecture.md, "Audit against the change log"). crr verify compares two stores, so a
// loss both share (a primary whose replay skipped events, then a DR reseeded from its backup)
// is invisible to it; this replays the log into a scratch schema by replay's own rules and
// compares the store with that.

/** What {@link resolveAuditTarget} found: the cluster, its store, and where its backups are. */
export interface AuditTarget {
  alias: string;
  store: StoreConfig;
}

/**
 * Checks the cluster `crr verify --against-log` audits.
 * @throws CliUsageError exit {@link EXIT.USAGE} for an unknown alias; {@link EXIT.CONFIG} when
 *   the cluster has no `store`, or an in-memory PGlite one (naming `clusters.<alias>.store`)
 */
export function resolveAuditTarget(config: Config, alias: string): AuditTarget {
  const cluster = config.clusters[alias];
  if (!cluster) throw new CliUsageError(`unknown cluster alias "${alias}"; known: ${Object.keys(config.clusters).join(', ')}`, EXIT.USAGE);
  const store = cluster.store;
  if (!store) throw new CliUsageError(`clusters.${alias}.store: required by crr verify --against-log (the store to audit)`, EXIT.CONFIG);
  if (store.type === 'pglite' && (store.dataDir === undefined || store.dataDir.startsWith('memory://'))) {
    throw new CliUsageError(
      `clusters.${alias}.store.dataDir: crr verify --against-log needs a store it can open; an in-memory PGlite store exists only inside the crr process that runs it`,
      EXIT.CONFIG,
    );
  }
  return { alias, store };
}

/**
 * Options of {@link auditAgainstLog}.
 * - `fromBackup`: a backup id. The backup (of the cluster itself on a primary, of the source of
 *   the flow into it on a replica, from that cluster's `backup.repository`) is restored into the
 *   scratch schema first, and the log is replayed from its positions instead of the log start.
 * - `timeoutMs`: how long to follow a store that is written during the audit, ms: the log is
 *   replayed to the store's positions, then store and scratch are compared in one snapshot; if
 *   the store moved meanwhile, the scratch follows it, until this time has passed (then the
 *   outcome is `not-comparable`). Replaying the log the first time is not limited by it.
 * - `stallTimeoutMs`: the longest the read of the log may make no progress, ms; default 60000.
 * - `maxBatchEvents`: events per scratch transaction; default 5000 (`replay.maxBatchEvents`).
 * - `signal`: aborts the audit (the scratch schema is dropped); it rejects with the signal's reason.
 */
export interface AuditOptions {
  fromBackup?: string;
  timeoutMs: number;
  stallTimeoutMs?: number;
  maxBatchEvents?: number;
  signal?: AbortSignal;
  log: Logger;
}

/** What the scratch replay did with the records it read, by replay's verdicts (src/replay/classify.ts). */
export interface ReplayedCounts {
  /** Records read from the log within the audited range. */
  read: number;
  /** Events applied to the scratch schema. */
  applied: number;
  /** Records skipped as replay skips them: below the (upstream) position a backup restored, or of an older epoch. */
  skipped: number;
  /** Records replay dead-letters (not a valid event, no upstream offset, or refused by the store) and that the store's position passed. */
  deadLettered: number;
  /** Markers passed: their effect was in the backup the scratch started from. */
  markersPassed: number;
}

/**
 * The outcome of {@link auditAgainstLog}:
 * - `equal`: at the store's positions, the store holds exactly what its log says (same digest);
 * - `different`: it does not; `comparison` has the counts of both, how many rows differ and the first one;
 * - `cannot-audit`: the log does not explain the store from where the audit starts (`refusal`
 *   says where and why); nothing was compared. Never an EQUAL by default;
 * - `not-comparable`: the store kept being written (or went back) so no snapshot matched the
 *   replayed positions within `timeoutMs` (`message` says which).
 */
export interface AuditResult {
  outcome: 'equal' | 'different' | 'cannot-audit' | 'not-comparable';
  cluster: string;
  /** The role replayed in: the one recorded in the store, else the configured one. */
  role: Role;
  /** The topics replayed: the cluster's own change topics on a primary, the remote topics on a replica. */
  topics: string[];
  /** Where the replay started: the log start, or a backup (its id and epoch). */
  from: { backup?: string; epoch: number };
  /** The scratch schema the log was replayed into (dropped by the time the result is returned). */
  scratchSchema: string;
  /** The store's positions of `topics` the comparison was made at (or, when none was, the last targeted). */
  positions: StorePosition[];
  replayed: ReplayedCounts;
  /** Replay rounds: 1, plus one per time the store moved between the replay and the comparison. */
  rounds: number;
  /** `cannot-audit`: the first record (or the store state) the log cannot explain, and the whole sentence. */
  refusal?: { at: string; why: string; message: string };
  /** `equal`, `different`: what the one snapshot of store and scratch held. */
  comparison?: {
    epoch: number | undefined;
    counts: { store: StoreCounts; log: StoreCounts };
    digests: { store: string; log: string };
    differing: SchemaComparison['differing'];
    first?: EntityDifference;
  };
  /** `not-comparable`: why. */
  message?: string;
}

/** Default of {@link AuditOptions.stallTimeoutMs}, ms. */
export const DEFAULT_STALL_TIMEOUT_MS = 60_000;

/**
 * Audits cluster `alias`'s store against its change log: reads the store's positions, replays
 * the topics replay reads for the cluster (its own change topics on a primary, the remote topics
 * on a replica: {@link replaySource}) from their log start, or from a backup's positions after
 * restoring that backup, up to exactly those positions into a scratch schema beside the
 * store's (`<schema>_audit_<8 hex>`, in the same database), then compares store and scratch in
 * one snapshot ({@link Store.compareWithSchema}: positions, counts, digests, the first differing
 * row). Records are handled by replay's rules ({@link classifyRecord}, {@link Store.applyBatch});
 * where replay would stop (a marker on a replica, an event of a higher epoch) or could not start
 * (the log start above the audit's start), and when the store's epoch is above the epoch the log
 * reaches, the log does not explain the store and the outcome is `cannot-audit`.
 *
 * The store is only read; the scratch schema is dropped at the end, on failure and on abort
 * (a SIGKILL leaves it: drop `<schema>_audit_*` by hand). The Kafka reads use a throwaway
 * consumer group and commit nothing.
 *
 * @param store the cluster's store, open (its tables must exist)
 * @throws CliUsageError exit {@link EXIT.CONFIG} when `fromBackup` is given and the cluster
 *   holding the backups has no `backup`
 * @throws CrrError CRR_CONFIG_INVALID (a replica without an enabled flow into it),
 *   CRR_BACKUP_NOT_FOUND / CRR_BACKUP_INVALID / CRR_REPOSITORY (the backup), CRR_KAFKA (the log
 *   cannot be read, or its read made no progress for `stallTimeoutMs`), CRR_STORE
 * @throws the signal's reason when aborted
 */
export async function auditAgainstLog(config: Config, alias: string, store: Store, kafka: Kafka, opts: AuditOptions): Promise<AuditResult> {
  const state = await store.clusterState();
  const role = state?.role ?? configuredRole(config, alias);
  const source = replaySource(config, alias, role);
  const topics = [source.dataTopic, source.metadataTopic];
  const storeSchema = config.clusters[alias]!.store!.schema;
  const suffix = `_audit_${randomBytes(4).toString('hex')}`;
  const scratchSchema = `${storeSchema.slice(0, 63 - suffix.length)}${suffix}`;
  const result: AuditResult = {
    outcome: 'not-comparable',
    cluster: alias,
    role,
    topics,
    from: { epoch: 0 },
    scratchSchema,
    positions: [],
    replayed: { read: 0, applied: 0, skipped: 0, deadLettered: 0, markersPassed: 0 },
    rounds: 0,
  };
  const admin = kafka.admin();
  let created = false;
  try {
    await admin.connect();
    const initial = await store.positions();
    if (opts.fromBackup !== undefined) {
      const holder = source.upstream?.alias ?? alias;
      const repoConfig = config.clusters[holder]!.backup;
      if (!repoConfig)
        throw new CliUsageError(`clusters.${holder}.backup: required by --from-backup (the repository the backups of ${holder} are in)`, EXIT.CONFIG);
      const repo = await openRepository(repoConfig, `clusters.${holder}.backup`);
      try {
        const manifest = await readManifest(repo, opts.fromBackup);
        result.from = { backup: opts.fromBackup, epoch: manifest.epoch };
        // a backup of a later state than the store's cannot be replayed forward to it
        const newer = manifest.positions.find((b) => {
          const s = initial.find((p) => p.topic === b.topic && p.partition === b.partition);
          return s !== undefined && b.nextOffset > s.nextOffset;
        });
        const refusal =
          newer !== undefined
            ? `backup ${opts.fromBackup} is at ${newer.topic}[${newer.partition}]@${newer.nextOffset}, past the store's position there`
            : state !== undefined && manifest.epoch > state.epoch
              ? `backup ${opts.fromBackup} is at epoch ${manifest.epoch}, above the store's epoch ${state.epoch}`
              : undefined;
        if (refusal !== undefined) {
          result.outcome = 'cannot-audit';
          const at = newer ? `${newer.topic}[${newer.partition}]@${newer.nextOffset}` : `epoch ${manifest.epoch}`;
          result.refusal = {
            at,
            why: refusal,
            message: `cannot audit from backup ${opts.fromBackup}: ${refusal}; use a backup taken before the store's state`,
          };
          result.positions = initial.filter((p) => topics.includes(p.topic));
          return result;
        }
        created = true;
        await restoreBackup(store, repo, opts.fromBackup, { as: scratchSchema, ...(opts.signal ? { signal: opts.signal } : {}) });
      } finally {
        repo.close();
      }
    }
    const scratch = store.besideSchema(scratchSchema);
    if (!created) {
      created = true;
      await scratch.migrate();
    }
    const replay = new ScratchReplay(source, scratch, kafka, admin, result, opts);
    await replay.load();
    const startWhere = opts.fromBackup === undefined ? 'the log start' : `backup ${opts.fromBackup}`;
    const refuse = (at: string, why: string): AuditResult => {
      result.outcome = 'cannot-audit';
      result.refusal = { at, why, message: `cannot audit from ${startWhere} past ${at}: ${why}; use --from-backup with a backup taken after it` };
      return result;
    };

    let targets = initial.filter((p) => topics.includes(p.topic));
    const deadline = Date.now() + opts.timeoutMs;
    for (;;) {
      opts.signal?.throwIfAborted();
      result.rounds++;
      result.positions = targets;
      const refusal = await replay.replayTo(targets);
      if (refusal) return refuse(refusal.at, refusal.why);
      const cmp = await store.compareWithSchema(scratchSchema);
      const now = cmp.positions.filter((p) => topics.includes(p.topic));
      if (samePositions(now, targets)) {
        const epoch = cmp.clusterState?.epoch;
        if (epoch !== undefined && epoch > replay.epoch) {
          const meta = now.find((p) => p.topic === source.metadataTopic);
          return refuse(
            `${source.metadataTopic}[0]@${meta?.nextOffset ?? 0}`,
            `the store is at epoch ${epoch}, but its log up to its positions reaches epoch ${replay.epoch} only (a sync-breaking operation whose marker comes later, or a promotion, raised it outside the log)`,
          );
        }
        // on a replica, the store's upstream positions say which records of the primary it holds:
        // more than the replayed range carries means they came from elsewhere (a restored backup)
        const ahead = replay.upstreamAhead(cmp.positions);
        if (ahead) return refuse(ahead.at, ahead.why);
        result.outcome = cmp.digests.here === cmp.digests.other ? 'equal' : 'different';
        result.comparison = {
          epoch,
          counts: { store: cmp.counts.here, log: cmp.counts.other },
          digests: { store: cmp.digests.here, log: cmp.digests.other },
          differing: cmp.differing,
          ...(cmp.first ? { first: cmp.first } : {}),
        };
        return result;
      }
      const back = now.find((p) => p.nextOffset < (targets.find((t) => t.topic === p.topic && t.partition === p.partition)?.nextOffset ?? 0));
      if (back !== undefined) {
        result.message = `the store's position of ${back.topic}[${back.partition}] went back to ${back.nextOffset} during the audit (a restore, a reseed or a RESET): audit again`;
        return result;
      }
      if (Date.now() >= deadline) {
        result.message = `the store kept being written: its positions moved on after each replay for ${opts.timeoutMs} ms (audit when writes pause, or with a longer --timeout-ms)`;
        return result;
      }
      opts.log.info({ positions: now }, 'the store moved during the audit; replaying the log on to its new positions');
      targets = now;
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
    if (created) {
      try {
        await store.dropSchema(scratchSchema);
      } catch (err) {
        opts.log.error({ err: describeError(err) }, `could not drop the scratch schema ${scratchSchema}: drop it by hand`);
      }
    }
  }
}

/** Same partitions, same next offsets (a missing row is 0). */
function samePositions(a: readonly StorePosition[], b: readonly StorePosition[]): boolean {
  const key = (p: StorePosition): string => `${p.topic}\u0000${p.partition}`;
  const m = new Map<string, number>();
  for (const p of a) m.set(key(p), p.nextOffset);
  for (const p of b) if ((m.get(key(p)) ?? 0) !== p.nextOffset) return false;
  const inB = new Set(b.map(key));
  return a.every((p) => inB.has(key(p)) || p.nextOffset === 0);
}

/**
 * The scratch schema's replay: reads partition ranges of the replayed topics with a throwaway
 * consumer group and handles each record by replay's verdicts ({@link classifyRecord}), applying
 * with {@link Store.applyBatch} and the same position rows replay writes (the read topic's, and on
 * a replica the upstream topic's). What it adds to replay's rules is only where it stops: a
 * verdict that makes replay stop (a marker on a replica, an event of a higher epoch) is a point
 * the log cannot explain, and so is a log start above where the audit starts.
 */
class ScratchReplay {
  /** Next offset per read-topic partition. */
  private readonly next = new Map<string, number>();
  /** Next upstream offset per upstream-topic partition (replica only). */
  private readonly upstreamNext = new Map<string, number>();
  /** The epoch the scratch replays at: 0 from the log start, the backup's from a backup. */
  epoch = 0;

  constructor(
    private readonly source: ReplaySource,
    private readonly scratch: Store,
    private readonly kafka: Kafka,
    private readonly admin: Admin,
    private readonly result: AuditResult,
    private readonly opts: AuditOptions,
  ) {}

  /** Loads the scratch's positions (a restored backup's, or none) and the starting epoch. */
  async load(): Promise<void> {
    this.epoch = this.result.from.epoch;
    const upstreamTopics = new Set(Object.values(this.source.upstream?.topicOf ?? {}));
    for (const p of await this.scratch.positions()) {
      if (upstreamTopics.has(p.topic)) this.upstreamNext.set(tpKey(p.topic, p.partition), p.nextOffset);
      else this.next.set(tpKey(p.topic, p.partition), p.nextOffset);
    }
  }

  /**
   * On a replica: the first upstream position of `storePositions` (the store's rows under the
   * upstream topics' names) above the scratch's, as a refusal naming the remote topic partition.
   * The store then holds records of the primary that the replayed range does not carry: it was
   * restored from a backup (a reseed) after them.
   */
  upstreamAhead(storePositions: readonly StorePosition[]): { at: string; why: string } | undefined {
    const upstream = this.source.upstream;
    if (!upstream) return undefined;
    for (const [remote, topic] of Object.entries(upstream.topicOf)) {
      for (const p of storePositions.filter((x) => x.topic === topic)) {
        const mine = this.upstreamNext.get(tpKey(topic, p.partition)) ?? 0;
        if (p.nextOffset <= mine) continue;
        const at = `${remote}[${p.partition}]@${this.next.get(tpKey(remote, p.partition)) ?? 0}`;
        return {
          at,
          why: `the store holds ${upstream.alias}'s records of ${topic}[${p.partition}] below upstream offset ${p.nextOffset}, but its log up to its position carries them to ${mine} only (the store was restored from a backup)`,
        };
      }
    }
    return undefined;
  }

  /**
   * Replays every partition of the read topics from the scratch's position up to `targets`
   * (exclusive; a partition without a target is not read).
   * @returns where and why the log cannot explain the store, or undefined when the targets were reached
   */
  async replayTo(targets: readonly StorePosition[]): Promise<{ at: string; why: string } | undefined> {
    const ranges = new Map<string, { topic: string; partition: number; from: number; to: number; low: number; checkFirst: boolean }>();
    for (const t of targets) {
      const from = this.next.get(tpKey(t.topic, t.partition)) ?? 0;
      if (t.nextOffset <= from) continue;
      ranges.set(tpKey(t.topic, t.partition), { topic: t.topic, partition: t.partition, from, to: t.nextOffset, low: 0, checkFirst: false });
    }
    if (ranges.size === 0) return undefined;
    for (const topic of new Set([...ranges.values()].map((r) => r.topic))) {
      const offsets = await this.admin.fetchTopicOffsets(topic).catch((err: unknown) => {
        throw new CrrError('CRR_KAFKA', `cannot read the offsets of ${topic} on cluster ${this.source.alias} for the audit: ${describeError(err)}`, {
          cause: err,
          retriable: true,
        });
      });
      for (const r of [...ranges.values()].filter((x) => x.topic === topic)) {
        const o = offsets.find((x) => x.partition === r.partition);
        const low = Number(o?.low ?? 0);
        const high = Number(o?.high ?? 0);
        const at = `${topic}[${r.partition}]@${r.from}`;
        if (r.to > high) return { at, why: `the store is at offset ${r.to} there, past the log end ${high} (the topic was deleted or recreated)` };
        r.low = low;
        if (low > r.from) {
          const upstreamTopic = this.source.upstream?.topicOf[topic];
          const upstreamNext = upstreamTopic === undefined ? undefined : this.upstreamNext.get(tpKey(upstreamTopic, r.partition));
          // on a replica restored from a backup, what retention deleted may all be below the backup's upstream position
          if (upstreamNext === undefined) return { at, why: `retention deleted offsets ${r.from} to ${low - 1} there (the log start is ${low})` };
          r.checkFirst = true;
        }
      }
    }
    return this.read(ranges);
  }

  private async read(
    ranges: Map<string, { topic: string; partition: number; from: number; to: number; low: number; checkFirst: boolean }>,
  ): Promise<{ at: string; why: string } | undefined> {
    const { source, opts } = this;
    const consumer = this.kafka.consumer({
      groupId: `crr-audit-${source.alias}-${randomUUID()}`,
      readUncommitted: false,
      maxBytesPerPartition: 4 * 1024 * 1024,
      maxWaitTimeInMs: 250,
      retry: { retries: 3, restartOnFailure: async () => false },
    });
    const remaining = new Set(ranges.keys());
    // a partition the log cannot be followed past stops there; the others are read on, so that the
    // answer names the marker (on the metadata topic) rather than whichever epoch-1 event came first
    const refusals: Array<{ at: string; why: string; marker: boolean }> = [];
    let failure: unknown;
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    let lastProgress = Date.now();
    // a partition read to its target, or not to be read, is paused: its fetches would be thrown away
    const pause = (topic: string, partition: number): void => consumer.pause([{ topic, partitions: [partition] }]);
    const reached = (key: string, offset: number): void => {
      const r = ranges.get(key);
      if (!r || offset < r.to - 1 || !remaining.delete(key)) return;
      pause(r.topic, r.partition);
      if (remaining.size === 0) finish();
    };
    consumer.on(consumer.events.GROUP_JOIN, (e) => {
      for (const [topic, partitions] of Object.entries(e.payload.memberAssignment)) {
        for (const partition of partitions) {
          const r = ranges.get(tpKey(topic, partition));
          if (!r || !remaining.has(tpKey(topic, partition))) pause(topic, partition);
          else if (Math.max(r.from, r.low) > 0) consumer.seek({ topic, partition, offset: String(Math.max(r.from, r.low)) });
        }
      }
    });
    // a batch of control records only (transaction markers of the mirror) moves the read past them
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
      lastProgress = Date.now();
      reached(tpKey(e.payload.topic, e.payload.partition), Number(e.payload.lastOffset));
    });
    consumer.on(consumer.events.CRASH, (e) => {
      failure = new CrrError('CRR_KAFKA', `reading ${source.alias}'s change log for the audit: ${describeError(e.payload.error)}`, { cause: e.payload.error });
      finish();
    });
    const onAbort = (): void => finish();
    opts.signal?.throwIfAborted();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const stall = setInterval(() => {
      if (Date.now() - lastProgress < (opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS)) return;
      const where = [...remaining].map((k) => {
        const r = ranges.get(k)!;
        return `${r.topic}[${r.partition}] to offset ${r.to}`;
      });
      failure = new CrrError(
        'CRR_KAFKA',
        `reading ${source.alias}'s change log for the audit made no progress for ${opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS} ms; still to read: ${where.join(', ')}`,
        {
          retriable: true,
        },
      );
      finish();
    }, 1000);
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [...new Set([...ranges.values()].map((r) => r.topic))], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatch: async ({ batch }) => {
          if (failure || remaining.size === 0) return;
          lastProgress = Date.now();
          const key = tpKey(batch.topic, batch.partition);
          const r = ranges.get(key);
          if (!r || !remaining.has(key)) return;
          try {
            const stop = await this.onBatch(batch, r);
            if (stop) {
              refusals.push(stop);
              pause(r.topic, r.partition);
              if (remaining.delete(key) && remaining.size === 0) finish();
            }
          } catch (err) {
            failure = err;
            finish();
          }
        },
      });
      await finished;
    } finally {
      clearInterval(stall);
      opts.signal?.removeEventListener('abort', onAbort);
      await consumer.disconnect().catch(() => undefined);
    }
    opts.signal?.throwIfAborted();
    if (failure) throw failure;
    return refusals.find((x) => x.marker) ?? refusals[0];
  }

  /** Handles the records of one batch below the partition's target; returns a refusal when the log cannot be followed past a record. */
  private async onBatch(
    batch: Batch,
    r: { topic: string; partition: number; from: number; to: number; low: number; checkFirst: boolean },
  ): Promise<{ at: string; why: string; marker: boolean } | undefined> {
    const { source, result } = this;
    const key = tpKey(batch.topic, batch.partition);
    const upstreamTopic = source.upstream?.topicOf[batch.topic];
    const upKey = upstreamTopic === undefined ? undefined : tpKey(upstreamTopic, batch.partition);
    const accepted: Accepted[] = [];
    let handled: number | undefined;
    let upHandled: number | undefined;
    const flush = async (): Promise<void> => {
      if (handled === undefined) return;
      await this.apply(batch.topic, batch.partition, upstreamTopic, accepted, handled, upHandled);
      accepted.length = 0;
      handled = undefined;
      upHandled = undefined;
    };
    for (const m of batch.messages) {
      const offset = Number(m.offset);
      if (offset >= r.to) break;
      const at = `${batch.topic}[${batch.partition}]@${offset}`;
      const verdict = classifyRecord(m, {
        next: this.next.get(key),
        replica: upKey !== undefined,
        upstreamNext: upKey === undefined ? undefined : this.upstreamNext.get(upKey),
        epoch: this.epoch,
      });
      if (verdict.kind === 'below-position') continue;
      result.replayed.read++;
      if (r.checkFirst) {
        // the first record after what retention deleted must be one the backup holds, or follow it directly
        r.checkFirst = false;
        const up = 'upstreamOffset' in verdict ? verdict.upstreamOffset : undefined;
        const upNext = upKey === undefined ? undefined : this.upstreamNext.get(upKey);
        if (up === undefined || upNext === undefined || up > upNext) {
          return {
            at: `${batch.topic}[${batch.partition}]@${r.from}`,
            marker: false,
            why: `retention deleted offsets ${r.from} to ${r.low - 1} there (the log start is ${r.low}), and the first record left (upstream offset ${up ?? 'unknown'}) is past the backup's upstream position ${upNext ?? 'none'}`,
          };
        }
      }
      switch (verdict.kind) {
        case 'below-upstream-position':
          result.replayed.skipped++;
          handled = offset;
          continue;
        case 'no-upstream-offset':
        case 'invalid':
          // replay dead-letters it; the store's position passed it, so replay passed it (policy skip, or a restart with skip)
          result.replayed.deadLettered++;
          handled = offset;
          if (verdict.kind === 'invalid' && verdict.upstreamOffset !== undefined) upHandled = verdict.upstreamOffset;
          continue;
        case 'stale-epoch':
          result.replayed.skipped++;
          handled = offset;
          if (verdict.upstreamOffset !== undefined) upHandled = verdict.upstreamOffset;
          continue;
        case 'sync-breaking-marker':
          await flush();
          return {
            at,
            marker: true,
            why: `a ${verdict.event.op} marker (epoch ${verdict.event.epoch}): replay stops there on a replica, and the operation's effect is not in the log`,
          };
        case 'higher-epoch': {
          await flush();
          const { event } = verdict;
          return {
            at,
            marker: isMarkerOp(event.op),
            why: isMarkerOp(event.op)
              ? `a ${event.op} marker (epoch ${event.epoch}) whose effect is not in the log`
              : `event ${event.id} (${event.op}) has epoch ${event.epoch}, above the epoch ${this.epoch} the log reached: a sync-breaking operation or a promotion raised it outside the log`,
          };
        }
        case 'marker-done':
          // its epoch is the backup's: the backup was taken after the operation made its effect
          result.replayed.markersPassed++;
          handled = offset;
          continue;
        case 'apply':
          accepted.push({ event: verdict.event, offset, upstreamOffset: verdict.upstreamOffset });
          handled = offset;
          if (verdict.upstreamOffset !== undefined) upHandled = verdict.upstreamOffset;
          if (accepted.length >= (this.opts.maxBatchEvents ?? 5000)) await flush();
          continue;
      }
    }
    await flush();
    return undefined;
  }

  /**
   * Applies the accepted events with the positions after `handled`, as replay does
   * (src/replay/apply-accepted.ts): passing each event the store refuses, which replay
   * dead-letters and passes (the store's position passed it).
   */
  private async apply(
    topic: string,
    partition: number,
    upstreamTopic: string | undefined,
    accepted: Accepted[],
    handled: number,
    upHandled: number | undefined,
  ): Promise<void> {
    await applyAccepted(this.scratch, { topic, partition, upstreamTopic }, accepted, handled, upHandled, {
      applied: (events) => {
        this.result.replayed.applied += events.length;
      },
      refused: async () => {
        this.result.replayed.deadLettered++;
        return true;
      },
    });
    this.next.set(tpKey(topic, partition), handled + 1);
    if (upstreamTopic !== undefined && upHandled !== undefined) this.upstreamNext.set(tpKey(upstreamTopic, partition), upHandled + 1);
  }
}
