import { createHash, randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import type { ChangeTopicsConfig } from '../cluster/schema.js';
import { epochRaised, initialClusterState } from '../cluster/cluster-state.js';
import { publishClusterState } from '../cluster/state.js';
import type { Role } from '../cluster/schema.js';
import { CrrError, describeError } from '../errors.js';
import { ensureChangeTopics } from '../kafka/topics.js';
import { MARKER_KEY, encodeEvent, parseEvent } from '../protocol/codec.js';
import { isMarkerOp, PROTOCOL_VERSION, type ChangeEvent, type MarkerOp } from '../protocol/schema.js';
import type { ClusterStateInput } from '../cluster/cluster-state.js';
import type { Store, SyncBreakResult } from '../store/store.js';

/** Events per batch of an import (parsed, validated and applied together, inside the one transaction). */
export const IMPORT_BATCH_EVENTS = 5000;

/** The CLI name of each sync-breaking operation (`crr admin <name>`) and the marker it writes. */
export const ADMIN_OPERATIONS = {
  import: 'IMPORT',
  'drop-all': 'DROP_ALL',
  'clear-graph-store': 'CLEAR_GRAPH_STORE',
  reset: 'RESET',
} as const satisfies Record<string, MarkerOp>;
export type AdminOperationName = keyof typeof ADMIN_OPERATIONS;

/** The clients and collaborators of a sync-breaking operation; owned by the caller. */
export interface AdminContext {
  /** Alias of the primary acted on (the marker's `origin`). */
  alias: string;
  /** Its role in the config (src/cluster/topology.ts `configuredRole`). */
  configuredRole: Role;
  changeTopics: ChangeTopicsConfig;
  /** Clients of the cluster's own Kafka. */
  kafka: Kafka;
  admin: Admin;
  /** The cluster's store, migrated. */
  store: Store;
  log: Logger;
}

/** What the operator asked for. */
export interface SyncBreakRequest {
  op: MarkerOp;
  /** Why, for operators: the marker's `reason` (non-empty). */
  reason: string;
  /** IMPORT: the NDJSON file to load. */
  file?: string;
  /** Act although the cluster's replay has not caught up (see {@link planSyncBreak}). */
  force?: boolean;
}

/** Replay lag of one partition of the cluster's own change topics, as the store has applied it. */
export interface PartitionLag {
  topic: string;
  partition: number;
  /** The topic's end offset (high watermark). */
  logEndOffset: number;
  /** The store's applied position (next offset); the partition's start offset when it has none. */
  position: number;
  lagRecords: number;
}

/** What an import file holds, read and validated in full. */
export interface ImportFileSummary {
  file: string;
  /** Change events in it (blank lines skipped). */
  events: number;
  data: number;
  metadata: number;
  /** SHA-256 (hex) of the file's bytes. */
  sha256: string;
  /** The marker's `source`: `<basename> sha256:<hex>`. */
  source: string;
}

/** What an operation would do; printed without `--execute`. */
export interface SyncBreakPlan {
  op: MarkerOp;
  cluster: string;
  reason: string;
  /** The store's recorded state now (the initial one when nothing was recorded yet). */
  current: ClusterStateInput;
  oldEpoch: number;
  newEpoch: number;
  /** The state recorded (and published) by the operation. */
  newState: ClusterStateInput;
  /** What changes in the store, in words. */
  effect: string;
  /** The store's rows now. */
  rows: { vertices: number; edges: number; catalog: number };
  marker: { op: MarkerOp; topic: string; key: string };
  /** RESET: the topics deleted and recreated, with their partition counts. */
  resetTopics?: Array<{ topic: string; partitions: number }>;
  import?: ImportFileSummary;
  /** Replay lag of the cluster's own change topics (all 0 = caught up). */
  lag: PartitionLag[];
  lagRecords: number;
  warnings: string[];
}

/** What an executed operation did. */
export interface SyncBreakOutcome {
  plan: SyncBreakPlan;
  rows: SyncBreakResult;
  marker: { id: string; topic: string; partition: number; offset: string; epoch: number };
  published: boolean;
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);

/**
 * Refuses a sync-breaking operation on anything but an ACTIVE primary.
 * @throws CrrError CRR_WRITE_REFUSED on a replica (by the config's role or the recorded one) or a fenced primary
 */
export function checkPrimary(alias: string, configuredRole: Role, state: ClusterStateInput, op: MarkerOp): void {
  if (configuredRole === 'replica' || state.role === 'replica') {
    throw new CrrError(
      'CRR_WRITE_REFUSED',
      `cluster ${alias} is a replica (${state.state}): ${op} is an operation of the primary; a replica is read-only, and a sync break on the primary makes it OUTDATED and reseeds it`,
      { context: { cluster: alias } },
    );
  }
  if (state.state === 'FENCED') {
    throw new CrrError(
      'CRR_WRITE_REFUSED',
      `cluster ${alias} is a fenced primary (an old primary after a failover${state.reason ? `: ${state.reason}` : ''}); run ${op} on the new primary`,
      {
        context: { cluster: alias },
      },
    );
  }
}

/**
 * Replay lag of a primary's own change topics: each partition's end offset against the store's
 * applied position. A missing topic has no lag.
 */
export async function replayLag(admin: Admin, store: Store, topics: readonly string[]): Promise<PartitionLag[]> {
  const positions = new Map((await store.positions()).map((p) => [`${p.topic}\u0000${p.partition}`, p.nextOffset]));
  const existing = new Set(await admin.listTopics());
  const rows: PartitionLag[] = [];
  for (const topic of topics) {
    if (!existing.has(topic)) continue;
    for (const o of await admin.fetchTopicOffsets(topic)) {
      const position = positions.get(`${topic}\u0000${o.partition}`) ?? Number(o.low);
      rows.push({ topic, partition: o.partition, logEndOffset: Number(o.high), position, lagRecords: Math.max(0, Number(o.high) - position) });
    }
  }
  return rows;
}

/**
 * Reads an NDJSON import file in batches of {@link IMPORT_BATCH_EVENTS} validated events,
 * hashing its bytes on the way. Each line is what `crr write` accepts: a vertex, edge or metadata
 * operation, envelope optional; markers are refused. `v`, `epoch` and `origin` are stamped
 * (replacing any given), `id` and `ts` kept when given (else a UUID and now).
 * @param onDone receives the file's SHA-256 and counts once the last batch was yielded
 * @throws CrrError CRR_EVENT_INVALID naming the line
 */
export async function* readImportFile(
  file: string,
  stamp: { epoch: number; origin: string },
  onDone?: (summary: Omit<ImportFileSummary, 'source'>) => void,
): AsyncGenerator<ChangeEvent[]> {
  const hash = createHash('sha256');
  const input = createReadStream(file);
  input.on('data', (chunk) => hash.update(chunk));
  const lines = createInterface({ input, crlfDelay: Infinity });
  let batch: ChangeEvent[] = [];
  let lineNo = 0;
  const counts = { events: 0, data: 0, metadata: 0 };
  for await (const line of lines) {
    lineNo += 1;
    if (line.trim() === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch (err) {
      throw new CrrError('CRR_EVENT_INVALID', `${file} line ${lineNo} is not JSON: ${(err as Error).message}`);
    }
    if (!raw || typeof raw !== 'object' || Array.isArray(raw))
      throw new CrrError('CRR_EVENT_INVALID', `${file} line ${lineNo}: expected a JSON object (a change event)`);
    const input = raw as Record<string, unknown>;
    let event: ChangeEvent;
    try {
      event = parseEvent({
        ...input,
        v: PROTOCOL_VERSION,
        id: typeof input.id === 'string' ? input.id : randomUUID(),
        ts: typeof input.ts === 'number' ? input.ts : Date.now(),
        epoch: stamp.epoch,
        origin: stamp.origin,
      });
    } catch (err) {
      if (err instanceof CrrError) err.message = err.message.replace('invalid change event', `${file} line ${lineNo}: invalid change event`);
      throw err;
    }
    if (isMarkerOp(event.op))
      throw new CrrError(
        'CRR_EVENT_INVALID',
        `${file} line ${lineNo}: ${event.op} is a sync-breaking marker; an import loads vertex, edge and metadata operations only`,
      );
    counts.events += 1;
    if (event.op === 'UPSERT_VERTEX' || event.op === 'DELETE_VERTEX' || event.op === 'UPSERT_EDGE' || event.op === 'DELETE_EDGE') counts.data += 1;
    else counts.metadata += 1;
    batch.push(event);
    if (batch.length >= IMPORT_BATCH_EVENTS) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length > 0) yield batch;
  onDone?.({ file, ...counts, sha256: hash.digest('hex') });
}

/** Reads and validates a whole import file (nothing applied): counts and SHA-256. */
export async function summarizeImportFile(file: string, alias: string): Promise<ImportFileSummary> {
  let summary: Omit<ImportFileSummary, 'source'> | undefined;
  for await (const _batch of readImportFile(file, { epoch: 0, origin: alias }, (s) => (summary = s))) {
    // validation only
  }
  return { ...summary!, source: `${basename(file)} sha256:${summary!.sha256}` };
}

/**
 * Plans a sync-breaking operation of a primary (nothing is changed): reads the store's state
 * and rows, the replay lag of the cluster's own change topics and, for IMPORT, the whole file.
 * @throws CrrError CRR_WRITE_REFUSED on a replica or a fenced primary; CRR_EVENT_INVALID for an
 *   import file with an invalid line; CRR_STORE / KafkaJS errors when the store or Kafka fails
 */
export async function planSyncBreak(ctx: AdminContext, req: SyncBreakRequest): Promise<SyncBreakPlan> {
  const { alias, store, changeTopics } = ctx;
  const recorded = await store.clusterState();
  let current: ClusterStateInput = initialClusterState(ctx.configuredRole);
  if (recorded) {
    const { updatedAt: _u, ...rest } = recorded;
    current = rest;
  }
  checkPrimary(alias, ctx.configuredRole, current, req.op);
  if (req.op === 'IMPORT' && !req.file) throw new CrrError('CRR_CONFIG_INVALID', 'import: --file is required (the NDJSON file to load)');
  const counts = await store.counts();
  const rows = { vertices: sum(counts.vertices), edges: sum(counts.edges), catalog: sum(counts.catalog) };
  const lag = await replayLag(ctx.admin, store, [changeTopics.data, changeTopics.metadata]);
  const lagRecords = lag.reduce((n, r) => n + r.lagRecords, 0);
  const newEpoch = current.epoch + 1;
  const newState = epochRaised(current, `${req.op}: ${req.reason}`);
  let effect: string;
  let importSummary: ImportFileSummary | undefined;
  let resetTopics: SyncBreakPlan['resetTopics'];
  switch (req.op) {
    case 'DROP_ALL':
      effect = `delete all ${rows.vertices} vertices, ${rows.edges} edges and ${rows.catalog} catalog entries (schema, users, queries, UDFs, loading jobs)`;
      break;
    case 'CLEAR_GRAPH_STORE':
      effect = `delete all ${rows.vertices} vertices and ${rows.edges} edges; keep the ${rows.catalog} catalog entries`;
      break;
    case 'IMPORT':
      importSummary = await summarizeImportFile(req.file!, alias);
      effect = `apply ${importSummary.events} events of ${importSummary.file} (data ${importSummary.data}, metadata ${importSummary.metadata}) directly to the store, bypassing the change log, in one transaction`;
      break;
    case 'RESET':
      resetTopics = [
        { topic: changeTopics.data, partitions: changeTopics.dataPartitions },
        { topic: changeTopics.metadata, partitions: 1 },
      ];
      effect = `delete and recreate the change topics ${resetTopics.map((t) => `${t.topic} (${t.partitions} partitions)`).join(' and ')}, every record in them is lost; set the store's positions for them back to 0; keep the store's ${rows.vertices} vertices, ${rows.edges} edges and ${rows.catalog} catalog entries`;
      break;
  }
  const warnings = [
    `every replica of ${alias} will become OUTDATED when it reads the ${req.op} marker (or any event of epoch ${newEpoch}) and must be reseeded from a fresh backup of ${alias}`,
    `stop writers while it runs: events stamped with epoch ${current.epoch} that ${alias}'s replay has not applied when the epoch rises are refused by replay as stale-epoch`,
  ];
  if (lagRecords > 0) {
    warnings.push(
      `${alias}'s replay has not caught up: ${lagRecords} records of its change topics are not applied to its store; once the epoch rises they would be refused as stale (epoch ${current.epoch} < ${newEpoch})${req.op === 'RESET' ? ' or lost with the deleted topics' : ''}; wait for crr run to catch up${req.force ? ' (--force given: acting anyway)' : ', or pass --force'}`,
    );
  }
  return {
    op: req.op,
    cluster: alias,
    reason: req.reason,
    current,
    oldEpoch: current.epoch,
    newEpoch,
    newState,
    effect,
    rows,
    marker: { op: req.op, topic: changeTopics.metadata, key: MARKER_KEY },
    ...(resetTopics ? { resetTopics } : {}),
    ...(importSummary ? { import: importSummary } : {}),
    lag,
    lagRecords,
    warnings,
  };
}

/**
 * Carries out a planned sync-breaking operation on a primary, in this order, so that a crash
 * at any point leaves a state that replay understands:
 *
 * 0. The change topics are created when missing (as `crr write` does), so that the first data of
 *    a fresh primary may be an import.
 * 1. ONE store transaction (Store.applySyncBreak): the operation's effect on the store and the
 *    raised epoch (`newEpoch` = old + 1, state `ACTIVE`, reason `<OP>: <reason>`). It refuses
 *    when the recorded state is no longer the planned one (a concurrent operation or promotion).
 *    A crash before the commit changes nothing.
 * 2. RESET only: the change topics are deleted and recreated (`dataPartitions` and 1
 *    partitions). A crash before this leaves the old topics with positions 0 in the store: the
 *    primary's replay re-reads them and refuses every old event as stale-epoch (its epoch is
 *    below the store's), so nothing is applied twice; run `crr admin reset` again to recreate
 *    them (it raises the epoch once more, which is harmless).
 * 3. The marker (envelope: a UUID, now, the new epoch, `origin` = alias; key `marker`) is
 *    appended to the metadata topic by an idempotent producer, acks=all. A crash between 1 and 3
 *    leaves the epoch raised without a marker: the store's change is made, and the next event the
 *    primary writes carries the new epoch, so a replica still finds itself OUTDATED by replay's
 *    epoch check (an event above its store's epoch); only the marker's reason is missing. On
 *    the primary, replay passes a marker of its own epoch (the effect is already made).
 * 4. The new state is published (publishClusterState) for writers. Until then (or after a crash
 *    before it) `crr write` stamps the OLD epoch, and the primary's replay refuses those events
 *    as stale-epoch: writers must be stopped during the operation; `crr run` republishes the
 *    store's state when it starts, which repairs a missed publication.
 *
 * @throws CrrError CRR_NOT_CAUGHT_UP when the plan found replay lag and `force` is not set;
 *   CRR_WRITE_REFUSED (from step 1) when the state changed since the plan; CRR_EVENT_INVALID /
 *   CRR_STORE_APPLY when an import's events cannot be applied (nothing applied); CRR_STORE and
 *   KafkaJS errors otherwise (see the steps for what a failure after step 1 leaves)
 */
export async function executeSyncBreak(ctx: AdminContext, plan: SyncBreakPlan, req: SyncBreakRequest): Promise<SyncBreakOutcome> {
  const { alias, store, log, changeTopics } = ctx;
  if (plan.lagRecords > 0 && !req.force) {
    const parts = plan.lag
      .filter((l) => l.lagRecords > 0)
      .map((l) => `${l.topic}[${l.partition}] ${l.lagRecords} (applied ${l.position} of ${l.logEndOffset})`);
    throw new CrrError(
      'CRR_NOT_CAUGHT_UP',
      `${alias}'s replay has not caught up: ${plan.lagRecords} records are not applied to its store (${parts.join(', ')}); once ${plan.op} raises the epoch to ${plan.newEpoch} they would be refused as stale-epoch${plan.op === 'RESET' ? ' (or lost with the deleted topics)' : ''}. Let crr run --cluster ${alias} catch up and run again, or pass --force to act anyway`,
      { context: { cluster: alias, lagRecords: plan.lagRecords } },
    );
  }
  // 0. the change topics, created when missing (a fresh primary whose first data is an import):
  //    before the store changes, so that a broker refusing to create them leaves nothing changed
  await ensureChangeTopics(ctx.admin, changeTopics);
  // 1. the effect and the raised epoch, in one store transaction
  let importSummary: Omit<ImportFileSummary, 'source'> | undefined;
  const rows = await store.applySyncBreak(plan.op, {
    newState: plan.newState,
    expectedEpoch: plan.oldEpoch,
    ...(plan.op === 'IMPORT' ? { events: readImportFile(req.file!, { epoch: plan.newEpoch, origin: alias }, (s) => (importSummary = s)) } : {}),
    ...(plan.op === 'RESET' ? { resetTopics: plan.resetTopics!.map((t) => t.topic) } : {}),
  });
  log.info({ op: plan.op, epoch: plan.newEpoch, rows }, `${plan.op}: store changed and epoch raised ${plan.oldEpoch} -> ${plan.newEpoch}`);
  // 2. RESET: recreate the change topics
  if (plan.op === 'RESET') await recreateTopics(ctx.admin, plan.resetTopics!, changeTopics.replicationFactor);
  // 3. the marker
  const marker = parseEvent({
    v: PROTOCOL_VERSION,
    id: randomUUID(),
    ts: Date.now(),
    epoch: plan.newEpoch,
    origin: alias,
    op: plan.op,
    reason: plan.reason,
    ...(plan.op === 'IMPORT' ? { source: `${basename(req.file!)} sha256:${importSummary?.sha256 ?? plan.import!.sha256}` } : {}),
  });
  const producer = ctx.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  let meta;
  try {
    [meta] = await producer.send({
      topic: changeTopics.metadata,
      acks: -1,
      messages: [{ key: MARKER_KEY, value: encodeEvent(marker), timestamp: String(marker.ts) }],
    });
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
  // 4. publish the new state for writers
  let published = true;
  try {
    await publishClusterState(ctx.kafka, ctx.admin, alias, plan.newState);
  } catch (err) {
    published = false;
    log.error({ err: describeError(err) }, `could not publish the state of ${alias} (epoch ${plan.newEpoch}); crr run republishes it when it starts`);
  }
  return {
    plan: importSummary ? { ...plan, import: { ...importSummary, source: (marker as { source: string }).source } } : plan,
    rows,
    marker: {
      id: marker.id,
      topic: changeTopics.metadata,
      partition: meta?.partition ?? 0,
      offset: meta?.baseOffset ?? meta?.offset ?? '?',
      epoch: plan.newEpoch,
    },
    published,
  };
}

/**
 * Deletes topics and creates them again, empty, with the given partition counts. Waits for the
 * deletion to finish (Kafka deletes asynchronously) and for the new leaders.
 * @throws CrrError CRR_KAFKA when a topic is still there after 60 s
 */
async function recreateTopics(admin: Admin, topics: ReadonlyArray<{ topic: string; partitions: number }>, replicationFactor: number): Promise<void> {
  const names = topics.map((t) => t.topic);
  const existing = new Set(await admin.listTopics());
  const toDelete = names.filter((t) => existing.has(t));
  if (toDelete.length > 0) await admin.deleteTopics({ topics: toDelete, timeout: 30_000 });
  const deadline = Date.now() + 60_000;
  for (;;) {
    const left = new Set(await admin.listTopics());
    if (!names.some((t) => left.has(t))) break;
    if (Date.now() > deadline) throw new CrrError('CRR_KAFKA', `topics ${names.join(', ')} were not deleted within 60 s`, { retriable: true });
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const t of topics) {
    for (;;) {
      try {
        await admin.createTopics({ waitForLeaders: true, topics: [{ topic: t.topic, numPartitions: t.partitions, replicationFactor }] });
        break;
      } catch (err) {
        // another process (a writer, crr run) may have created it first; the broker may still be finishing the deletion
        if ((err as { type?: string }).type === 'TOPIC_ALREADY_EXISTS' && (await admin.listTopics()).includes(t.topic)) break;
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 300));
      }
    }
  }
}
