// Over 450 lines: the steps of one promotion in their order (plan, fence, drain, replay, record, publish, group offsets); recovery point and daemon checks are in recovery-point.ts, fencing the old primary (Kafka, ACLs, store) in fence-old-primary.ts.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { publishClusterState, recordClusterState } from '../cluster/state.js';
import { assertTransition, promoted, promoting } from '../cluster/cluster-state.js';
import { replaySource, type ReplaySource } from '../cluster/topology.js';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { startService } from '../service.js';
import { reportFlow, type FlowReport } from '../mirror/report.js';
import { recoveryPoint, runningDaemons, type RecoveryPoint } from './recovery-point.js';
import { prepareNewPrimaryAcls, type PromotionAcls } from './promote-acls.js';
import { fenceOldPrimary, fenceOldPrimaryAcls, newPrimaryAcls, type OldPrimaryFencing } from './fence-old-primary.js';
import { unfence } from '../store/fence.js';
import { openStore } from '../store/open.js';
import { PostgresStore } from '../store/postgres.js';
import type { ClusterState, ClusterStateInput } from '../cluster/cluster-state.js';
import type { PromotionRecord, Store, StorePosition } from '../store/store.js';
import { ensureChangeTopics } from '../kafka/topics.js';
import { syncGroupOffsetsOnce } from '../checkpoint/index.js';

/** `graceful`: the old primary is fenced and the flow drained first (RPO 0); `force`: the primary is lost, promote with what has arrived. */
export type PromotionMode = 'graceful' | 'force';

/** What `crr promote` would do, and why it may not. */
export interface PromotionPlan {
  /** The replica to promote, and its primary (the source of the flow into it). */
  cluster: string;
  primary: string;
  flowId: string;
  mode: PromotionMode;
  /** The replica's recorded state. */
  state: ClusterState | undefined;
  /** Already promoted (recorded role primary): executing only re-applies the idempotent last steps. */
  alreadyPromoted: boolean;
  /** A previous promotion was interrupted (state PROMOTING): executing resumes it. */
  resuming: boolean;
  primaryReachable: boolean;
  primaryError?: string;
  /** The flow's replication as `crr status` sees it (health `unreachable` without the primary). */
  replication: FlowReport;
  rpo: RecoveryPoint;
  /** Why executing would be refused (empty: it may go ahead). */
  blockers: string[];
  /** Warnings for the summary (e.g. an OUTDATED replica promoted with --force). */
  warnings: string[];
  /** The clusters of the two whose Kafka ACLs the promotion flips (`clusters.<alias>.manageAcls`). */
  manageAcls: string[];
}

/** What a promotion did (printed by `crr promote`, kept in the store's promotion history). */
export interface PromotionSummary {
  cluster: string;
  oldPrimary: string;
  mode: PromotionMode;
  fromEpoch: number;
  toEpoch: number;
  startedAt: string;
  promotedAt: string;
  /** Seconds from the start of the promotion (the first attempt, when resumed) until the new primary was writable: the promotion's share of the RTO. */
  rtoSeconds: number;
  rpo: RecoveryPoint;
  /** How the old primary was fenced (src/failover/fence-old-primary.ts OldPrimaryFencing). */
  oldPrimaryFenced: OldPrimaryFencing;
  /**
   * The Kafka ACLs flipped, per cluster alias (the old primary as `fenced-primary`, the new one
   * as `primary`), for the clusters with `manageAcls` (src/failover/promote-acls.ts).
   */
  acls: Record<string, PromotionAcls>;
  /** Change events replay applied while draining. */
  eventsReplayed: number;
  /**
   * Consumer groups whose translated offsets (checkpoints) were committed into the new primary's
   * groups of the same names: per group, partitions `committed` and partitions left as they were
   * (an active member, already ahead, or no offset sync to translate with). `error` when the sync failed.
   */
  groups: { committed: Record<string, number>; skipped: Record<string, number>; error?: string };
  warnings: string[];
  /** Set when this run found the cluster promoted already and only re-applied the last steps. */
  alreadyPromoted?: boolean;
}

/** Progress of a promotion, for the CLI. */
export type PromotionStep = 'record' | 'fence-old-primary' | 'acls' | 'drain' | 'replay' | 'raise-epoch' | 'lift-fence' | 'publish' | 'sync-groups';

const PROMOTING_SINCE = /promote \((graceful|force)\) started at (\S+)/;

/**
 * Plans a promotion of `alias` (a replica) to primary. Read-only. Reads the replica's store, the
 * flow's replication from both clusters (`reportFlow`), the mirror's positions on the DR cluster,
 * and whether a daemon still runs the mirror or the replay (active members in the groups
 * `crr-mirror-<primary>-<alias>` on the primary and `crr-replay-<alias>` on the DR cluster).
 *
 * Blockers: a running `crr run` of the replica (its mirror or replay would race the promotion);
 * graceful mode with the primary unreachable (use `force`); a replica that is not REPLICATING
 * (OUTDATED or RESEEDING: its store predates a sync break) unless `force`.
 *
 * @throws CrrError CRR_CONFIG_INVALID when `alias` is not a replica of the config (no enabled flow into it)
 */
export async function planPromotion(config: Config, alias: string, opts: { mode: PromotionMode; log: Logger; timeoutMs?: number }): Promise<PromotionPlan> {
  const source = replaySource(config, alias, 'replica');
  const flow = source.upstream!.flow;
  const primary = flow.source;
  const flowId = `${primary}->${alias}`;
  const store = openStore(source.store);
  let state: ClusterState | undefined;
  try {
    await store.migrate();
    state = await store.clusterState();
  } finally {
    await store.close().catch(() => undefined);
  }
  const replication = await reportFlow(config, flow, opts.log, opts.timeoutMs ?? 10_000);
  const primaryReachable = replication.health !== 'unreachable' || !(replication.error ?? '').includes(`cluster ${primary} `);
  const rpo = await recoveryPoint(config, flow, replication, opts.log);
  const blockers: string[] = [];
  const warnings: string[] = [];
  const alreadyPromoted = state?.role === 'primary';
  const resuming = state?.state === 'PROMOTING';
  if (!alreadyPromoted) {
    const running = await runningDaemons(config, flow, alias, primaryReachable, opts.log);
    if (running.length > 0)
      blockers.push(`${running.join('; ')}: stop crr run --cluster ${alias} first (the promotion drains the mirror and replays by itself)`);
    if (opts.mode === 'graceful' && !primaryReachable) {
      blockers.push(
        `the primary ${primary} cannot be reached (${replication.error ?? 'unreachable'}): a graceful promotion fences and drains it; promote with --force to accept the loss of what was not mirrored`,
      );
    }
    if (state && state.role === 'replica' && state.state !== 'REPLICATING' && state.state !== 'PROMOTING') {
      const what = `${alias} is ${state.state}${state.reason ? ` (${state.reason})` : ''}: its store predates a sync break on ${primary}`;
      if (opts.mode === 'graceful') blockers.push(`${what}; reseed it first (crr reseed --execute), or promote with --force to accept that`);
      else warnings.push(what);
    }
  }
  return {
    cluster: alias,
    primary,
    flowId,
    mode: opts.mode,
    state,
    alreadyPromoted,
    resuming,
    primaryReachable,
    ...(primaryReachable ? {} : { primaryError: replication.error ?? 'unreachable' }),
    replication,
    rpo,
    blockers,
    warnings,
    manageAcls: [primary, alias].filter((a) => config.clusters[a]?.manageAcls),
  };
}

/**
 * Promotes a replica to primary (docs/architecture.md, "Promotion and failback"). Steps, each recorded or
 * idempotent so that a crash at any point is resumed by running it again:
 *
 * 1. records state `PROMOTING` (reason `promote (<mode>) started at <ISO time>`) in the replica's store;
 * 2. fences the old primary through its Kafka when it can be reached: state `FENCED` published
 *    on it (`crr-cluster-state.internal`), which its writers and its own daemon obey (the daemon
 *    records FENCED in its store and applies the store's write fence: src/replay/fence-watch.ts),
 *    and, with `clusters.<old primary>.manageAcls`, its Kafka ACLs flipped to a fenced
 *    primary's (its applications' WRITE on its change topics removed). Graceful: both required
 *    (else CRR_PROMOTE_REFUSED); force: best effort, reported. When the promoting config has the
 *    old primary's store, FENCED is also written there (best effort);
 * 3. graceful: runs the mirror of the flow in this process until replication lag is 0 on every
 *    mirrored partition but the heartbeats', then stops it (its transactional id fences any
 *    zombie mirror); at most `timeoutMs` (default 120000), else CRR_PROMOTE_TIMEOUT and the
 *    state stays PROMOTING;
 * 4. replays the remote topics to their end (replay lag 0); an OUTDATED or halted replay fails
 *    the promotion (CRR_PROMOTE_REFUSED);
 * 5. raises the epoch above every epoch the old primary wrote (recorded epoch + 1) and records
 *    role `primary`, state `ACTIVE`, with the promotion history row, in one store transaction;
 *    from then on replay refuses late events of the old epoch (stale-epoch);
 * 6. lifts the write fence (PostgreSQL store with `appRole`): applications may write;
 * 7. publishes the new state on the new primary's Kafka, so `crr write` accepts writes there.
 * 8. commits the source consumer groups' translated offsets (checkpoints) into the new primary's
 *    groups without active members, so consumers that move resume where they were (re-reading
 *    at most `offsetLagMax` records per partition, never skipping).
 *
 * 9. with `clusters.<new primary>.manageAcls`, flips its Kafka ACLs to a primary's: its
 *    applications may WRITE its change topics (crr's own grants there were added before step 5,
 *    which reads their ends); a failure is a warning of the summary (`acls`), and running
 *    `crr promote --execute` again retries it.
 *
 * A plan with `alreadyPromoted` re-runs steps 6 to 9 only (and fences the old primary if it is back).
 *
 * @throws CrrError CRR_PROMOTE_REFUSED (the plan's blockers; a replay that stops OUTDATED or
 *   halted), CRR_PROMOTE_TIMEOUT (graceful drain not done within timeoutMs), CRR_STORE, CRR_KAFKA
 */
export async function executePromotion(
  config: Config,
  plan: PromotionPlan,
  opts: { log: Logger; timeoutMs?: number; onStep?: (step: PromotionStep, detail: string) => void },
): Promise<PromotionSummary> {
  if (plan.blockers.length > 0) {
    throw new CrrError('CRR_PROMOTE_REFUSED', `cannot promote ${plan.cluster}: ${plan.blockers.join('; ')}`, { context: { cluster: plan.cluster } });
  }
  const { log } = opts;
  const step = (s: PromotionStep, detail: string): void => {
    log.info({ step: s }, detail);
    opts.onStep?.(s, detail);
  };
  const source = replaySource(config, plan.cluster, 'replica');
  let store = openStore(source.store);
  try {
    await store.migrate();
    const now = await store.clusterState();
    if (now?.role === 'primary') return await finishPromoted(config, source, store, plan, step, log);

    // 1. PROMOTING (kept from an interrupted attempt, with its start time)
    const since = PROMOTING_SINCE.exec(now?.reason ?? '');
    const startedAt = now?.state === 'PROMOTING' && since ? since[2]! : new Date().toISOString();
    const fromEpoch = now?.epoch ?? 0;
    await recordClusterState(store, plan.cluster, promoting(fromEpoch, `promote (${plan.mode}) started at ${startedAt}`));
    step('record', `${plan.cluster} is PROMOTING (${plan.mode}) since ${startedAt}`);

    // 2. fence the old primary: its published state, its ACLs
    const warnings = [...plan.warnings];
    const oldPrimaryFenced = await fenceOldPrimary(config, plan, log);
    step(
      'fence-old-primary',
      oldPrimaryFenced === 'no'
        ? `the old primary ${plan.primary} could not be fenced (unreachable): fence it before it comes back`
        : `old primary ${plan.primary} FENCED (${oldPrimaryFenced}): its writers refuse`,
    );
    const acls: Record<string, PromotionAcls> = { [plan.primary]: await fenceOldPrimaryAcls(config, plan, oldPrimaryFenced, warnings, step, log) };

    // 3 + 4. drain the mirror (graceful) and replay to the end, in this process
    // the in-process replay opens the store itself: a PGlite store admits one holder at a time
    await store.close();
    const drained = await drainAndReplay(config, plan, opts.timeoutMs ?? 120_000, step, log);
    store = openStore(source.store);
    const replication = plan.mode === 'graceful' ? await reportFlow(config, source.upstream!.flow, log) : plan.replication;
    const rpo = await recoveryPoint(config, source.upstream!.flow, replication, log);

    // 5. raise the epoch and record the promotion
    const toEpoch = fromEpoch + 1;
    const promotedAt = new Date();
    const rtoSeconds = Math.max(0, (promotedAt.getTime() - Date.parse(startedAt)) / 1000);
    const summary: PromotionSummary = {
      cluster: plan.cluster,
      oldPrimary: plan.primary,
      mode: plan.mode,
      fromEpoch,
      toEpoch,
      startedAt,
      promotedAt: promotedAt.toISOString(),
      rtoSeconds,
      rpo,
      oldPrimaryFenced,
      acls,
      eventsReplayed: drained.eventsReplayed,
      groups: { committed: {}, skipped: {} },
      warnings,
    };
    const state = promoted(fromEpoch, `promoted (${plan.mode}) from replica of ${plan.primary} at ${promotedAt.toISOString()}`);
    assertTransition(await store.clusterState(), state, plan.cluster);
    const ready = await prepareNewPrimaryAcls(config, plan.cluster, log);
    if (ready.result === 'failed') warnings.push(`crr's grants on the change topics of ${plan.cluster} not applied: ${ready.error}`);
    const ownPositions = await ownTopicEnds(source, log);
    await store.recordPromotion(state, { mode: plan.mode, fromEpoch, toEpoch, summary: summary as unknown as Record<string, unknown> }, ownPositions);
    step('raise-epoch', `${plan.cluster} is primary ACTIVE at epoch ${toEpoch} (was ${fromEpoch}); late events of epoch ${fromEpoch} are refused from now on`);

    // 6 + 7
    await liftFenceAndPublish(source, store, state, step, log);
    // 8. consumer groups: the translated offsets, for consumers that move to the new primary
    summary.groups = await syncGroups(config, plan.flowId, step, log);
    // 9. the new primary's applications may write its change topics (manageAcls)
    acls[plan.cluster] = await newPrimaryAcls(config, plan.cluster, warnings, step, log);
    return summary;
  } finally {
    await store.close().catch(() => undefined);
  }
}

/** Re-runs the idempotent last steps for a cluster promoted already, and returns its last promotion's summary. */
async function finishPromoted(
  config: Config,
  source: ReplaySource,
  store: Store,
  plan: PromotionPlan,
  step: (s: PromotionStep, d: string) => void,
  log: Logger,
): Promise<PromotionSummary> {
  const state = (await store.clusterState())!;
  const history = await store.promotions();
  const last: PromotionRecord | undefined = history[history.length - 1];
  log.info({ epoch: state.epoch, promotions: history.length }, `${plan.cluster} is primary already; lifting the write fence and publishing its state again`);
  const { updatedAt: _u, ...input } = state;
  await liftFenceAndPublish(source, store, input, step, log);
  const recorded = (last?.summary ?? {}) as Partial<PromotionSummary>;
  const warnings = [...(recorded.warnings ?? [])];
  // the old primary may be back (unplanned failover): fence it now
  const forced = { ...plan, mode: 'force' as const };
  const fenced = plan.primaryReachable ? await fenceOldPrimary(config, forced, log) : 'no';
  if (fenced !== 'no') step('fence-old-primary', `old primary ${plan.primary} FENCED (${fenced}): its writers refuse`);
  const acls: Record<string, PromotionAcls> = { [plan.primary]: await fenceOldPrimaryAcls(config, forced, fenced, warnings, step, log) };
  const groups = await syncGroups(config, plan.flowId, step, log);
  acls[plan.cluster] = await newPrimaryAcls(config, plan.cluster, warnings, step, log);
  return {
    cluster: plan.cluster,
    oldPrimary: plan.primary,
    mode: last?.mode ?? plan.mode,
    fromEpoch: last?.fromEpoch ?? state.epoch,
    toEpoch: last?.toEpoch ?? state.epoch,
    startedAt: recorded.startedAt ?? state.updatedAt.toISOString(),
    promotedAt: (last?.promotedAt ?? state.updatedAt).toISOString(),
    rtoSeconds: recorded.rtoSeconds ?? 0,
    rpo: recorded.rpo ?? plan.rpo,
    oldPrimaryFenced: fenced !== 'no' ? fenced : (recorded.oldPrimaryFenced ?? 'no'),
    acls,
    eventsReplayed: recorded.eventsReplayed ?? 0,
    groups,
    warnings,
    alreadyPromoted: true,
  };
}

async function liftFenceAndPublish(
  source: ReplaySource,
  store: Store,
  state: ClusterStateInput,
  step: (s: PromotionStep, d: string) => void,
  log: Logger,
): Promise<void> {
  const cfg = source.store;
  if (store instanceof PostgresStore && cfg.appRole) {
    await unfence(store.pool, { schema: cfg.schema, appRole: cfg.appRole, replayRole: cfg.replayRole ?? `${cfg.schema}_replay` });
    step('lift-fence', `write fence lifted: ${cfg.appRole} may write to ${cfg.schema}`);
  }
  const kafka = createKafka(source.alias, source.cluster, `promote-${randomUUID().slice(0, 8)}`, log, 'fatal');
  const admin = kafka.admin();
  try {
    await admin.connect();
    await publishClusterState(kafka, admin, source.alias, state);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  step('publish', `published ${source.alias} ${state.role} ${state.state} epoch ${state.epoch} to crr-cluster-state.internal: writers accept writes there`);
}

/**
 * Commits the source consumer groups' translated offsets into the new primary's groups without
 * active members (syncGroupOffsetsOnce, MM2's checkpoint semantics). A failure is reported in the
 * summary, not thrown: the promotion is done, and `crr checkpoints` shows the translation.
 */
async function syncGroups(config: Config, flowId: string, step: (s: PromotionStep, d: string) => void, log: Logger): Promise<PromotionSummary['groups']> {
  const result: PromotionSummary['groups'] = { committed: {}, skipped: {} };
  try {
    for (const row of await syncGroupOffsetsOnce(config, flowId, { log })) {
      const into = row.status === 'committed' ? result.committed : result.skipped;
      into[row.group] = (into[row.group] ?? 0) + 1;
    }
    const n = Object.keys(result.committed).length;
    step(
      'sync-groups',
      `consumer group offsets translated and committed for ${n} group${n === 1 ? '' : 's'}${
        Object.keys(result.skipped).length > 0
          ? ` (partitions left as they were in: ${Object.entries(result.skipped)
              .map(([g, k]) => `${g} ${k}`)
              .join(', ')})`
          : ''
      }`,
    );
  } catch (err) {
    result.error = describeError(err);
    step('sync-groups', `could not sync consumer group offsets: ${result.error}; see crr checkpoints`);
  }
  return result;
}

/** Steps 3 and 4: the mirror drained (graceful) and replay to the end, by a crr service in this process. */
async function drainAndReplay(
  config: Config,
  plan: PromotionPlan,
  timeoutMs: number,
  step: (s: PromotionStep, d: string) => void,
  log: Logger,
): Promise<{ eventsReplayed: number }> {
  const flow = config.mirror.flows.find((f) => `${f.source}->${f.target}` === plan.flowId)!;
  // no HTTP server, no automatic reseed: an OUTDATED replica fails the promotion instead
  const cfg: Config = { ...config, http: { ...config.http, enabled: false }, reseed: { ...config.reseed, mode: 'manual' } };
  const deadline = Date.now() + timeoutMs;
  const service = await startService(cfg, log, { flows: plan.mode === 'graceful' ? [flow] : [], replayCluster: plan.cluster, replayRole: 'replica' });
  try {
    const replay = service.replay!;
    if (plan.mode === 'graceful') {
      for (;;) {
        const r = await reportFlow(config, flow, log, 10_000);
        const lag = r.partitions.filter((p) => !(flow.emitHeartbeats && p.topic === flow.heartbeatsTopic)).reduce((n, p) => n + p.lagRecords, 0);
        if (r.health !== 'unreachable' && r.positionsComplete && lag === 0) break;
        if (service.failed())
          throw new CrrError(
            'CRR_PROMOTE_REFUSED',
            `the mirror of ${plan.flowId} failed while draining: ${service.flows[0]?.status.lastError ?? 'see the log'}`,
            { retriable: true },
          );
        if (Date.now() > deadline) {
          throw new CrrError(
            'CRR_PROMOTE_TIMEOUT',
            `replication lag of ${plan.flowId} did not reach 0 within ${timeoutMs} ms (${lag} records left${r.error ? `; ${r.error}` : ''}); ${plan.cluster} stays PROMOTING: run crr promote again, or with --force`,
            { context: { lagRecords: lag } },
          );
        }
        await new Promise((res) => setTimeout(res, 250));
      }
      for (const f of service.flows) await f.stop();
      step('drain', `mirror of ${plan.flowId} drained (replication lag 0) and stopped`);
    }
    const outcome = await Promise.race([
      replay.caughtUp().then(() => 'caught-up' as const),
      replay.done().then(() => 'ended' as const),
      until(() => ['outdated', 'halted'].includes(replay.status.state), deadline).then((hit) => (hit ? ('stopped' as const) : ('timeout' as const))),
    ]);
    if (outcome === 'timeout')
      throw new CrrError(
        'CRR_PROMOTE_TIMEOUT',
        `replay of ${plan.cluster} did not reach the end of its topics within ${timeoutMs} ms; ${plan.cluster} stays PROMOTING: run crr promote again`,
      );
    if (outcome !== 'caught-up') {
      throw new CrrError(
        'CRR_PROMOTE_REFUSED',
        `replay of ${plan.cluster} stopped before the end of its topics: ${replay.status.haltReason ?? replay.status.lastError ?? replay.status.state}; ${plan.cluster} stays PROMOTING`,
      );
    }
    step('replay', `replay of ${plan.cluster} reached the end of its topics (${replay.status.eventsApplied} events applied)`);
    return { eventsReplayed: replay.status.eventsApplied };
  } finally {
    await service.stop();
  }
}

/**
 * Where the new primary's replay of its OWN change topics starts: their current log end offsets
 * on its cluster (created when missing). What they hold from before the promotion (an earlier
 * time as primary, refused writes) is not part of this store's history; and the store's
 * upstream positions, kept under the old primary's topic names, must not be taken for positions
 * in topics of the same names on this cluster.
 */
async function ownTopicEnds(source: ReplaySource, log: Logger): Promise<StorePosition[]> {
  const ct = source.cluster.changeTopics;
  const kafka = createKafka(source.alias, source.cluster, `promote-${randomUUID().slice(0, 8)}`, log, 'fatal');
  const admin = kafka.admin();
  try {
    await admin.connect();
    await ensureChangeTopics(admin, ct);
    const rows: StorePosition[] = [];
    for (const topic of [ct.data, ct.metadata]) {
      for (const o of await admin.fetchTopicOffsets(topic)) rows.push({ topic, partition: o.partition, nextOffset: Number(o.high) });
    }
    return rows;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Resolves true once `check()` holds (polled every 200 ms), false at the deadline. */
async function until(check: () => boolean, deadline: number): Promise<boolean> {
  while (Date.now() < deadline) {
    if (check()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}
