import { randomUUID } from 'node:crypto';
import type { Admin } from 'kafkajs';
import type { Logger } from 'pino';
import { fenced, type ClusterStateInput } from '../cluster/cluster-state.js';
import { publishClusterState, readPublishedClusterState, recordClusterState } from '../cluster/state.js';
import type { Config } from '../config/schema.js';
import { CrrError, describeError } from '../errors.js';
import { createKafka } from '../kafka/client.js';
import { openStore } from '../store/open.js';
import { PostgresStore } from '../store/postgres.js';
import type { Store } from '../store/store.js';
import { describeAcls, flipAcls, type PromotionAcls } from './promote-acls.js';

/**
 * Step 2 of `crr promote` (src/failover/promote.ts): the old primary fenced through its Kafka
 * (published FENCED, its ACLs), and in its store when the promoting config has it. Also run
 * again by a promotion re-run on a promoted cluster, when the old primary came back.
 */

/**
 * How the old primary was fenced: `kafka`, its published state (which its daemon obeys: it
 * records FENCED in its own store); `store-and-kafka`, also written into its store, when the
 * promoting config has that store (best effort); `store`, only there (its Kafka unreachable);
 * `no` (unreachable); `replica` once a failback made it the DR side (nothing to fence).
 */
export type OldPrimaryFencing = 'store-and-kafka' | 'kafka' | 'store' | 'no' | 'replica';

/** What fencing needs of a promotion's plan (src/failover/promote.ts PromotionPlan). */
export interface FencingPlan {
  /** The replica promoted. */
  cluster: string;
  /** The old primary. */
  primary: string;
  mode: 'graceful' | 'force';
  primaryReachable: boolean;
  /** The replica's recorded state (its epoch is the old primary's as last replicated). */
  state?: ClusterStateInput;
}

/**
 * Fences the old primary through its Kafka: publishes state FENCED there (when it is reachable),
 * which its writers refuse on and its own daemon obeys (src/replay/fence-watch.ts: FENCED in its
 * store, the store's write fence). The epoch published is the highest known of the old
 * primary's (its store's when the promoting config has it, its published state's, the
 * replica's), so that its daemon obeys it (src/cluster/cluster-state.ts obeysPublishedFence).
 * When the promoting config has the old primary's store, FENCED is also recorded there, best
 * effort (a store already FENCED stays as it is). Nothing is fenced when the old primary's
 * store or published state says it is a replica (a failback).
 * @throws CrrError CRR_PROMOTE_REFUSED (retriable) in graceful mode when FENCED could not be published
 */
export async function fenceOldPrimary(config: Config, plan: FencingPlan, log: Logger): Promise<OldPrimaryFencing> {
  const primary = config.clusters[plan.primary]!;
  const reason = `fenced: ${plan.cluster} was promoted (${plan.mode}) at ${new Date().toISOString()}`;
  const kafka = createKafka(
    plan.primary,
    { ...primary, connectionTimeoutMs: Math.min(primary.connectionTimeoutMs, 3000) },
    `promote-${randomUUID().slice(0, 8)}`,
    log,
    'fatal',
  );
  const admin: Admin = kafka.admin({ retry: { retries: 2 } });
  try {
    let connected = false;
    let published: ClusterStateInput | undefined;
    if (plan.primaryReachable) {
      try {
        await admin.connect();
        connected = true;
        published = await readPublishedClusterState(kafka, admin, plan.primary, 10_000);
      } catch (err) {
        log.warn({ err: describeError(err) }, `could not read the published state of ${plan.primary}`);
      }
    }
    const epochs = [plan.state?.epoch ?? 0, published?.role === 'primary' ? published.epoch : 0];
    let state: ClusterStateInput | undefined;
    let inStore = false;
    if (primary.store) {
      const store = openStore(primary.store);
      try {
        const current = await withTimeout(store.clusterState(), 10_000, `the store of ${plan.primary}`, () => abandonStore(store));
        if (current?.role === 'replica') {
          log.info(`${plan.primary} is a replica now (failback): nothing to fence`);
          return 'replica' as const;
        }
        state = fenced(current?.epoch ?? 0, current?.state === 'FENCED' ? (current.reason ?? reason) : reason);
        epochs.push(state.epoch);
        if (current?.state !== 'FENCED' || current.role !== 'primary')
          await withTimeout(recordClusterState(store, plan.primary, state), 10_000, `the store of ${plan.primary}`, () => abandonStore(store));
        inStore = true;
      } catch (err) {
        log.warn({ err: describeError(err) }, `could not record ${plan.primary} FENCED in its store`);
      } finally {
        await store.close().catch(() => undefined);
      }
    } else if (published?.role === 'replica') {
      log.info(`${plan.primary} publishes that it is a replica now (failback): nothing to fence`);
      return 'replica';
    }
    let inKafka = false;
    if (connected) {
      try {
        await publishClusterState(kafka, admin, plan.primary, fenced(Math.max(...epochs), state?.reason ?? reason));
        inKafka = true;
      } catch (err) {
        log.warn({ err: describeError(err) }, `could not publish ${plan.primary} FENCED`);
      }
    }
    if (plan.mode === 'graceful' && !inKafka) {
      throw new CrrError(
        'CRR_PROMOTE_REFUSED',
        `could not fence the old primary ${plan.primary} (its writers would keep writing): run again, or promote with --force`,
        { retriable: true },
      );
    }
    return inStore && inKafka ? 'store-and-kafka' : inKafka ? 'kafka' : inStore ? 'store' : 'no';
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Flips the old primary's Kafka ACLs to a fenced primary's (its applications' WRITE removed),
 * with `clusters.<old primary>.manageAcls`. A failure refuses a graceful promotion (as an
 * unpublished FENCED does) and is a warning of a forced one.
 * @throws CrrError CRR_PROMOTE_REFUSED (retriable) in graceful mode when the ACLs could not be applied
 */
export async function fenceOldPrimaryAcls(
  config: Config,
  plan: FencingPlan,
  fencedHow: OldPrimaryFencing,
  warnings: string[],
  step: (s: 'acls', d: string) => void,
  log: Logger,
): Promise<PromotionAcls> {
  const acls =
    fencedHow === 'replica'
      ? { role: 'fenced-primary' as const, result: 'skipped' as const, reason: 'a replica since a failback' }
      : await flipAcls(config, plan.primary, 'fenced-primary', { log, reachable: plan.primaryReachable });
  if (acls.result === 'failed' && plan.mode === 'graceful') {
    throw new CrrError(
      'CRR_PROMOTE_REFUSED',
      `could not fence the old primary ${plan.primary} in its Kafka ACLs (${acls.error}): its applications would keep writing; run again, or promote with --force`,
      { retriable: true },
    );
  }
  if (acls.result === 'failed' || acls.result === 'not-reached') warnings.push(describeAcls(plan.primary, acls));
  if (acls.result !== 'not-managed') step('acls', describeAcls(plan.primary, acls));
  return acls;
}

/** Flips the new primary's Kafka ACLs to a primary's, with `clusters.<alias>.manageAcls`; a failure is a warning. */
export async function newPrimaryAcls(
  config: Config,
  alias: string,
  warnings: string[],
  step: (s: 'acls', d: string) => void,
  log: Logger,
): Promise<PromotionAcls> {
  const acls = await flipAcls(config, alias, 'primary', { log });
  if (acls.result === 'failed') warnings.push(describeAcls(alias, acls));
  if (acls.result !== 'not-managed') step('acls', describeAcls(alias, acls));
  return acls;
}

/**
 * `work`, given at most `ms`. Past it, the work is not left running: `stop` ends what it runs
 * on (see {@link abandonStore}), then the promise rejects (CRR_STORE, retriable) naming `what`.
 */
async function withTimeout<T>(work: Promise<T>, ms: number, what: string, stop: () => Promise<void>): Promise<T> {
  work.catch(() => undefined); // once given up on, its failure is expected (stop ends it)
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(() => resolve('expired'), ms)));
  try {
    const first = await Promise.race([work.then((value) => ({ value })), expired]);
    if (first !== 'expired') return first.value;
  } finally {
    clearTimeout(timer);
  }
  await stop().catch(() => undefined);
  throw new CrrError('CRR_STORE', `${what} did not answer within ${ms} ms`, { retriable: true });
}

/**
 * Stops whatever a store is doing: a PostgreSQL store's connections are cut (its queries in
 * flight fail) and its pool ends; another store is closed.
 */
async function abandonStore(store: Store): Promise<void> {
  if (store instanceof PostgresStore) await store.terminate();
  else await store.close();
}
