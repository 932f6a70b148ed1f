import type { Admin, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { obeysPublishedFence, type ClusterStateInput } from '../cluster/cluster-state.js';
import { CLUSTER_STATE_TOPIC, decodePublishedClusterState, readPublishedClusterState } from '../cluster/state.js';
import { CrrError, describeError } from '../errors.js';
import { readToEnd } from '../kafka/read-to-end.js';

/** How often a primary's daemon looks for a FENCED state published on its Kafka, ms. */
export const FENCE_WATCH_INTERVAL_MS = 2000;

/** What {@link PublishedFenceWatch} needs. */
export interface FenceWatchDeps {
  /** The cluster watched (the key of its record in `crr-cluster-state.internal`). */
  alias: string;
  /** A client of the cluster's own Kafka; the watch makes and closes its own admin client on it. */
  kafka: Kafka;
  log: Logger;
  /** The state recorded in the cluster's store now (the truth the published one is compared with). */
  recorded: () => Promise<ClusterStateInput | undefined>;
  /** Records and applies the fence (the replay service: store state FENCED, store write fence, /status, metrics). */
  obey: (published: ClusterStateInput) => Promise<void>;
  /** Poll interval, ms. Default {@link FENCE_WATCH_INTERVAL_MS}. */
  intervalMs?: number;
}

/**
 * Makes a primary's daemon obey the `FENCED` state that `crr promote` publishes on the old
 * primary's own Kafka (issue 12: "promotion fences the old primary through Kafka ... the
 * published state its own daemon obeys", not a write into its database, which the DR region
 * need not be able to reach). Used by the replay service of a cluster running as primary
 * (src/replay/replay-service.ts), at start before it publishes its own state, then every
 * {@link FENCE_WATCH_INTERVAL_MS}.
 *
 * Each check costs one ListOffsets request on `crr-cluster-state.internal`; the topic is read
 * only when its high watermark moved since the last read. The first check looks at the newest
 * state published; a later one at every state published since the one before, so that a FENCED
 * state overwritten at once by a stale one (this daemon starting in the same seconds as the
 * promotion publishes its own older state right after it: a topic has no compare-and-set) is
 * still obeyed — a primary never goes from FENCED back to ACTIVE. A published state obeyed is
 * the rule of {@link obeysPublishedFence}: `primary FENCED` at an epoch at or above the store's.
 */
export class PublishedFenceWatch {
  private admin: Admin | undefined;
  /** High watermark of the topic at the last read; -2 = never read, -1 = no topic. */
  private highWatermark = -2;
  /** Set once the fence was obeyed (the store recorded FENCED): nothing more to watch. */
  fenced = false;

  constructor(private readonly d: FenceWatchDeps) {}

  /**
   * One check: when a new state was published, reads it and obeys a FENCED one.
   * A record that is not a valid state is logged and ignored (the writer refuses it anyway).
   * @returns whether the cluster is fenced (now or before)
   * @throws KafkaJS errors and CrrError CRR_KAFKA (retriable) when the Kafka cannot be read;
   *   what `obey` throws (the store)
   */
  async check(): Promise<boolean> {
    if (this.fenced) return true;
    const { kafka } = this.d;
    if (!this.admin) {
      const admin = kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    const end = await topicEnd(this.admin);
    if (end === this.highWatermark) return false;
    const published = this.highWatermark < 0 ? await this.newest() : await this.since(this.highWatermark);
    this.highWatermark = end;
    const recorded = await this.d.recorded();
    if (recorded?.role === 'primary' && recorded.state === 'FENCED') {
      this.fenced = true;
      return true;
    }
    const fence = published.find((p) => obeysPublishedFence(recorded, p));
    if (!fence) return false;
    await this.d.obey(fence);
    this.fenced = true;
    return true;
  }

  /** The newest state published for the cluster (none, or an invalid one: empty). */
  private async newest(): Promise<ClusterStateInput[]> {
    try {
      const p = await readPublishedClusterState(this.d.kafka, this.admin!, this.d.alias, 10_000);
      return p ? [withoutTime(p)] : [];
    } catch (err) {
      if (!(err instanceof CrrError && err.code === 'CRR_STATE_CORRUPT')) throw err;
      this.d.log.error({ err: describeError(err) }, `ignoring an invalid record of ${this.d.alias} in ${CLUSTER_STATE_TOPIC}`);
      return [];
    }
  }

  /** Every state published for the cluster at or after `offset`, in order (invalid records logged and left out). */
  private async since(offset: number): Promise<ClusterStateInput[]> {
    const { alias, kafka, log } = this.d;
    const out: ClusterStateInput[] = [];
    const { complete } = await readToEnd(
      kafka,
      this.admin!,
      CLUSTER_STATE_TOPIC,
      (m) => {
        if (Number(m.offset) < offset || m.key?.toString('utf8') !== alias || !m.value) return;
        try {
          out.push(withoutTime(decodePublishedClusterState(alias, m.value)));
        } catch (err) {
          log.error({ err: describeError(err) }, `ignoring an invalid record of ${alias} in ${CLUSTER_STATE_TOPIC}`);
        }
      },
      10_000,
    );
    if (!complete) throw new CrrError('CRR_KAFKA', `could not read ${CLUSTER_STATE_TOPIC} to its end within 10000 ms`, { retriable: true });
    return out;
  }

  /**
   * Checks every `intervalMs` until the fence is obeyed or `signal` aborts; a failed check is
   * logged and tried again at the next one. Closes its admin client before resolving.
   */
  async run(signal: AbortSignal): Promise<void> {
    const every = this.d.intervalMs ?? FENCE_WATCH_INTERVAL_MS;
    try {
      while (!signal.aborted && !this.fenced) {
        await sleep(every, signal);
        if (signal.aborted) break;
        await this.check().catch((err) => this.d.log.warn({ err: describeError(err) }, `could not check the published state of ${this.d.alias}`));
      }
    } finally {
      await this.close();
    }
  }

  /** Closes the admin client (a later check opens a new one). */
  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    await admin?.disconnect().catch(() => undefined);
  }
}

function withoutTime(p: ClusterStateInput & { updatedAtMs: number }): ClusterStateInput {
  const { updatedAtMs: _t, ...state } = p;
  return state;
}

/** High watermark of the cluster-state topic; -1 when it does not exist. */
async function topicEnd(admin: Admin): Promise<number> {
  if (!(await admin.listTopics()).includes(CLUSTER_STATE_TOPIC)) return -1;
  return Number((await admin.fetchTopicOffsets(CLUSTER_STATE_TOPIC))[0]?.high ?? -1);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
