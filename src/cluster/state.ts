import type { Admin, Kafka } from 'kafkajs';
import { CrrError } from '../errors.js';
import { ensureTopic } from '../kafka/topics.js';
import { readToEnd } from '../kafka/read-to-end.js';
import type { Store } from '../store/store.js';
import type { Role } from './schema.js';
import { assertTransition, ClusterStateInputSchema, initialClusterState, type ClusterStateInput } from './cluster-state.js';

/**
 * The compacted topic, on each cluster's own Kafka, where crr publishes that cluster's state
 * (role, state, epoch, reason, a replica's backupId) for processes that cannot read its store:
 * the writer (which must refuse on a replica and stamp the primary's epoch) and operators'
 * tools. One partition; key =
 * the cluster alias; value = JSON {@link PublishedClusterState}. The `.internal` suffix keeps it
 * out of every mirror flow's default topic filter.
 *
 * The store's own record (Store.clusterState) is the truth, written in the same transaction as
 * the data; this topic is a copy, published right after each change.
 */
export const CLUSTER_STATE_TOPIC = 'crr-cluster-state.internal';

/** A cluster state as published: the store's record with the time it was set (ms since the epoch). */
export type PublishedClusterState = ClusterStateInput & { updatedAtMs: number };

/**
 * Returns the store's recorded state, recording {@link initialClusterState} of `configuredRole`
 * first when the store has none (a fresh store). The recorded role wins over the config's.
 */
export async function ensureClusterState(store: Store, configuredRole: Role): Promise<ClusterStateInput> {
  const current = await store.clusterState();
  if (current) {
    const { updatedAt: _updatedAt, ...state } = current;
    return state;
  }
  const initial = initialClusterState(configuredRole);
  await store.setClusterState(initial);
  return initial;
}

/**
 * Records a new state of a cluster in its store, after checking the transition from the state
 * recorded there (src/cluster/cluster-state.ts). The store is the truth; publish it next
 * ({@link publishClusterState}) for processes that cannot read the store.
 * @throws CrrError CRR_STATE_TRANSITION (nothing recorded) when the state machine forbids it;
 *   the store's errors when it cannot be read or written
 */
export async function recordClusterState(store: Store, alias: string, next: ClusterStateInput): Promise<void> {
  const current = await store.clusterState();
  assertTransition(current, next, alias);
  await store.setClusterState(next);
}

/** How long publishing a cluster state may take before it fails, ms. */
export const PUBLISH_TIMEOUT_MS = 20_000;

/**
 * Publishes a cluster's state to {@link CLUSTER_STATE_TOPIC} on its own Kafka (creating the
 * topic when missing), acks=all, within {@link PUBLISH_TIMEOUT_MS}; on a timeout its producer is
 * disconnected, so nothing is left sending.
 * @throws CrrError CRR_KAFKA (retriable) on a timeout; KafkaJS errors when the cluster refuses
 */
export async function publishClusterState(kafka: Kafka, admin: Admin, alias: string, state: ClusterStateInput): Promise<void> {
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  const work = (async () => {
    await ensureTopic(admin, CLUSTER_STATE_TOPIC, 1, -1, [{ name: 'cleanup.policy', value: 'compact' }]);
    await producer.connect();
    const value: PublishedClusterState = { ...state, updatedAtMs: Date.now() };
    await producer.send({ topic: CLUSTER_STATE_TOPIC, acks: -1, messages: [{ key: alias, value: JSON.stringify(value) }] });
  })();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new CrrError('CRR_KAFKA', `the Kafka of ${alias} did not take its cluster state within ${PUBLISH_TIMEOUT_MS} ms`, { retriable: true })),
          PUBLISH_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await producer.disconnect().catch(() => undefined);
    work.catch(() => undefined);
  }
}

/**
 * Reads the newest published state of a cluster.
 * @returns `undefined` when none was ever published (crr never ran on that cluster)
 * @throws CrrError CRR_KAFKA when the topic cannot be read to its end within `timeoutMs`;
 *   CRR_STATE_CORRUPT when the newest record is not a valid state
 */
export async function readPublishedClusterState(kafka: Kafka, admin: Admin, alias: string, timeoutMs = 30_000): Promise<PublishedClusterState | undefined> {
  let latest: Buffer | null | undefined;
  const { complete } = await readToEnd(
    kafka,
    admin,
    CLUSTER_STATE_TOPIC,
    (m) => {
      if (m.key?.toString('utf8') === alias) latest = m.value;
    },
    timeoutMs,
  );
  if (!complete) throw new CrrError('CRR_KAFKA', `could not read ${CLUSTER_STATE_TOPIC} to its end within ${timeoutMs} ms`, { retriable: true });
  if (!latest) return undefined;
  return decodePublishedClusterState(alias, latest);
}

/**
 * Decodes the value of a record of {@link CLUSTER_STATE_TOPIC}: JSON {@link PublishedClusterState}.
 * `updatedAtMs` is 0 when it is absent or not a time a Date can hold. A record without
 * `backupId` (every record of a crr before it, and every primary's) is valid.
 * @param alias the cluster the record is keyed by, for messages
 * @throws CrrError CRR_STATE_CORRUPT naming the cluster and each invalid field (`epoch: ...`)
 */
export function decodePublishedClusterState(alias: string, value: Buffer): PublishedClusterState {
  const invalid = (why: string, cause?: unknown): CrrError =>
    new CrrError('CRR_STATE_CORRUPT', `the state of cluster ${alias} in ${CLUSTER_STATE_TOPIC} is invalid: ${why}`, cause === undefined ? {} : { cause });
  let raw: unknown;
  try {
    raw = JSON.parse(value.toString('utf8'));
  } catch (cause) {
    throw invalid(`not JSON (${(cause as Error).message.slice(0, 200)})`, cause);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('not a JSON object');
  const { updatedAtMs, ...rest } = raw as { updatedAtMs?: unknown };
  const parsed = ClusterStateInputSchema.safeParse(rest);
  if (!parsed.success) {
    throw invalid(parsed.error.issues.map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`).join('; '), parsed.error);
  }
  // a Date holds ±8.64e15 ms; beyond (or 1e400 = Infinity) `crr status` could not print it
  return { ...parsed.data, updatedAtMs: Number.isSafeInteger(updatedAtMs) && Math.abs(updatedAtMs as number) <= 8.64e15 ? (updatedAtMs as number) : 0 };
}
