import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Admin, IHeaders, Kafka as KafkaClient, Message } from 'kafkajs';
import pg from 'pg';
import { afterAll, afterEach } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { registerCodecs } from '../../src/kafka/codecs.js';
import { Kafka, logLevel } from '../../src/kafka/kafkajs.js';

/** Bootstrap address of the real `primary` cluster started by test/support/global-setup.ts. */
export const PRIMARY = process.env.CRR_TEST_PRIMARY ?? `127.0.0.1:${process.env.CRR_PRIMARY_PORT ?? 19092}`;
/** Bootstrap address of the real `dr` cluster. */
export const DR = process.env.CRR_TEST_DR ?? `127.0.0.1:${process.env.CRR_DR_PORT ?? 29092}`;

export const ROOT = new URL('../..', import.meta.url).pathname;
export const CRR_BIN = join(ROOT, 'bin', 'crr.js');
export const KAFKA_SH = join(ROOT, 'scripts', 'kafka.sh');

/** A short unique suffix: every test makes its own aliases, topics and groups. */
export const uniq = (): string => randomUUID().replace(/-/g, '').slice(0, 10);

/** A KafkaJS client for test data, quiet, with every codec registered. */
export async function client(bootstrap: string): Promise<KafkaClient> {
  await registerCodecs();
  return new Kafka({ clientId: `crr-test-${uniq()}`, brokers: [bootstrap], logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 200 } });
}

/** Connects an admin client; the caller disconnects it. */
export async function admin(bootstrap: string): Promise<Admin> {
  const a = (await client(bootstrap)).admin();
  await a.connect();
  return a;
}

/** Creates topics and waits for their leaders. */
export async function createTopic(
  bootstrap: string,
  topic: string,
  partitions: number,
  configEntries: Array<{ name: string; value: string }> = [],
): Promise<void> {
  const a = await admin(bootstrap);
  try {
    await a.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions, configEntries }] });
  } finally {
    await a.disconnect();
  }
}

/** One record as a user compares it: where it is, and what it holds. */
export interface SeenRecord {
  partition: number;
  offset: number;
  key: string | null;
  value: string | null;
  timestamp: string;
  /** Headers as `name=value` strings in order, crr's provenance headers (`crr.*`) apart. */
  headers: string[];
  provenance: Record<string, string>;
}

function flattenHeaders(h: IHeaders | undefined): { headers: string[]; provenance: Record<string, string> } {
  const headers: string[] = [];
  const provenance: Record<string, string> = {};
  for (const [k, v] of Object.entries(h ?? {})) {
    for (const x of Array.isArray(v) ? v : [v]) {
      if (x === undefined) continue;
      if (k.startsWith('crr.')) provenance[k] = x.toString();
      else headers.push(`${k}=${x.toString()}`);
    }
  }
  return { headers, provenance };
}

/**
 * Log-end offsets of every partition of a topic as a `read_committed` reader sees them (the
 * admin client's ListOffsets is `read_committed`: the last stable offset), with each partition's
 * log start offset.
 */
export async function endOffsets(bootstrap: string, topic: string): Promise<Array<{ partition: number; low: number; high: number }>> {
  const a = await admin(bootstrap);
  try {
    return (await a.fetchTopicOffsets(topic)).map((o) => ({ partition: o.partition, low: Number(o.low), high: Number(o.high) }));
  } finally {
    await a.disconnect();
  }
}

/**
 * Reads a topic from the beginning with isolation `read_committed` (what a downstream user of
 * the target sees): until at least `expected` records arrived (or `timeoutMs` passed), then on to
 * the log end every partition has at that moment (fetched with the admin client), so whatever was
 * written before that moment, an extra (duplicated) record included, is in the result.
 * `expected` 0 reads the topic as it is now, to its end.
 * @throws when the reader does not get past the log end in time (say, a transaction left open)
 */
export async function readTopic(bootstrap: string, topic: string, expected: number, timeoutMs = 60_000): Promise<SeenRecord[]> {
  const deadline = Date.now() + timeoutMs;
  const a = await admin(bootstrap);
  try {
    await waitFor(`topic ${topic} to exist`, async () => (await a.listTopics()).includes(topic), timeoutMs, 200);
  } finally {
    await a.disconnect();
  }
  const consumer = (await client(bootstrap)).consumer({ groupId: `crr-test-reader-${uniq()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  const seen: SeenRecord[] = [];
  const offsetsRead = new Set<string>();
  /** Per partition, the offset the reader is past: the end of its last batch, control and aborted records included. */
  const past = new Map<number, number>();
  let crashed: unknown;
  const wakers: Array<() => void> = [];
  const wake = (): void => {
    for (const w of wakers.splice(0)) w();
  };
  /** Resolves true once `cond` holds (checked after every batch), false at `until`. */
  const reached = async (cond: () => boolean, until: number): Promise<boolean> => {
    while (!cond()) {
      if (crashed) throw crashed;
      const left = until - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        wakers.push(resolve);
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return true;
  };
  consumer.on(consumer.events.END_BATCH_PROCESS, (e) => {
    const next = Number(e.payload.lastOffset) + 1;
    if (next > (past.get(e.payload.partition) ?? 0)) past.set(e.payload.partition, next);
    wake();
  });
  consumer.on(consumer.events.CRASH, (e) => {
    crashed = e.payload.error;
    wake();
  });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) {
          // a rebalance of this reader (a broker just restarted) re-delivers what it read: the same offset
          // is the same record, while a duplicate in the topic has an offset of its own
          const at = `${batch.partition}:${m.offset}`;
          if (offsetsRead.has(at)) continue;
          offsetsRead.add(at);
          seen.push({
            partition: batch.partition,
            offset: Number(m.offset),
            key: m.key ? m.key.toString() : null,
            value: m.value ? m.value.toString() : null,
            timestamp: m.timestamp,
            ...flattenHeaders(m.headers),
          });
        }
      },
    });
    await reached(() => seen.length >= expected, deadline);
    // read to the log end as it is now: a record written before this moment, a duplicate included, is read
    const ends = (await endOffsets(bootstrap, topic)).filter((o) => o.high > o.low);
    const atEnd = (): boolean => ends.every((o) => (past.get(o.partition) ?? 0) >= o.high);
    if (!(await reached(atEnd, Math.max(deadline, Date.now() + 15_000)))) {
      const where = ends.map((o) => `[${o.partition}] at ${past.get(o.partition) ?? 0} of ${o.high}`).join(', ');
      throw new Error(`reading ${topic}: ${seen.length} records read, but the log end was not reached in time: ${where}`);
    }
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

/** Produces messages (non-transactional, acks=all) to one topic with a codec. */
export async function produce(bootstrap: string, topic: string, messages: Message[], compression = 0): Promise<void> {
  const p = (await client(bootstrap)).producer({ idempotent: true, maxInFlightRequests: 1 });
  await p.connect();
  try {
    for (let i = 0; i < messages.length; i += 500) await p.send({ topic, acks: -1, compression, messages: messages.slice(i, i + 500) });
  } finally {
    await p.disconnect();
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns a truthy value, or fails after `timeoutMs` with `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 60_000, everyMs = 250): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

/** A test flow: its own aliases (so its own positions topic, group and transactional id). */
export interface TestFlow {
  id: string;
  source: string;
  target: string;
  /** Topic name prefix of this test's topics; the flow mirrors only those and its heartbeats. */
  prefix: string;
  heartbeatsTopic: string;
  remote(topic: string): string;
  configPath: string;
  httpPort: number;
}

let nextPort = 19500 + Math.floor(Math.random() * 400);

/**
 * Writes a config for a flow between the real clusters under fresh aliases.
 * @param overrides merged into the flow's config
 */
export function testFlow(overrides: Record<string, unknown> = {}, root: Record<string, unknown> = {}): TestFlow {
  const id = uniq();
  const source = `p${id}`;
  const target = `d${id}`;
  const prefix = `t${id}`;
  const heartbeatsTopic = `${prefix}-heartbeats`;
  const dir = join(tmpdir(), 'crr-tests');
  mkdirSync(dir, { recursive: true });
  const configPath = join(dir, `${id}.yaml`);
  const httpPort = nextPort++;
  const config = {
    clusters: { [source]: { bootstrapServers: [PRIMARY] }, [target]: { bootstrapServers: [DR] } },
    mirror: {
      flows: [{ source, target, topics: { include: [`${prefix}.*`] }, heartbeatsTopic, topicRefreshIntervalMs: 1000, transactionLingerMs: 20, ...overrides }],
      shutdownTimeoutMs: 15_000,
      restartBackoffInitialMs: 200,
      restartBackoffMaxMs: 2000,
      lagPollIntervalMs: 500,
      ...((root.mirror as object) ?? {}),
    },
    http: { host: '127.0.0.1', port: httpPort },
    log: { level: 'info' },
    ...Object.fromEntries(Object.entries(root).filter(([k]) => k !== 'mirror')),
  };
  writeFileSync(configPath, stringify(config));
  return { id, source, target, prefix, heartbeatsTopic, remote: (t) => `${source}.${t}`, configPath, httpPort };
}

/** A `crr` child process. */
export interface CrrProcess {
  child: ChildProcess;
  logPath: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log(): string;
}

/** Starts `node bin/crr.js ARGS`, its output in a log file. */
export function startCrr(args: string[], env: NodeJS.ProcessEnv = {}): CrrProcess {
  const logPath = join(tmpdir(), 'crr-tests', `crr-${uniq()}.log`);
  mkdirSync(join(tmpdir(), 'crr-tests'), { recursive: true });
  const out = createWriteStream(logPath);
  const child = spawn(process.execPath, [CRR_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.pipe(out);
  child.stderr!.pipe(out);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { child, logPath, exited, log: () => readFileSync(logPath, 'utf8') };
}

/** Runs `node bin/crr.js ARGS` to completion. */
export async function runCrr(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CRR_BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  return { code, stdout, stderr };
}

/** Fetches a path of a crr process's HTTP server. */
export async function http(port: number, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, body: await res.text() };
}

/** The value of a Prometheus sample line `name{labels} value` (labels matched as a substring). */
export function metricValue(text: string, name: string, labelSubstring = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      if (labelSubstring && !line.includes(labelSubstring)) continue;
      return Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return undefined;
}

/** One flow of a crr process's `/status` (src/mirror/status.ts), the fields tests read. */
export interface FlowStatusView {
  /** `source->target`. */
  flow: string;
  state: 'starting' | 'idle' | 'standby' | 'active' | 'backoff' | 'stopped';
  restarts: number;
  recordsMirrored: number;
  lastError?: string;
  partitions: Array<{ topic: string; remoteTopic: string; partition: number; logEndOffset: number; position: number; lagRecords: number }>;
}

/** The flows of the `/status` of the crr process serving HTTP on `port`. */
export async function flowStatuses(port: number): Promise<FlowStatusView[]> {
  return (JSON.parse((await http(port, '/status')).body) as { flows?: FlowStatusView[] }).flows ?? [];
}

/**
 * Waits until a flow of the crr process on `httpPort` (the one named `flow`, `source->target`, or
 * else its first) has committed positions at the log end every partition of source topic `topic`
 * has now: every record written to it so far is on the target, and the mirror will write nothing
 * more for them, so a read of the target to its end afterwards sees any duplicate.
 */
export async function waitForMirrored(
  httpPort: number,
  sourceBootstrap: string,
  topic: string,
  opts: { flow?: string; timeoutMs?: number } = {},
): Promise<void> {
  const ends = await endOffsets(sourceBootstrap, topic);
  await waitFor(
    `${opts.flow ?? 'the flow'} to commit positions at the log end of ${topic} (${ends.map((o) => `[${o.partition}] ${o.high}`).join(', ')})`,
    async () => {
      const flows = await flowStatuses(httpPort);
      const f = opts.flow === undefined ? flows[0] : flows.find((x) => x.flow === opts.flow);
      return ends.every((o) => o.high === o.low || (f?.partitions.find((p) => p.topic === topic && p.partition === o.partition)?.position ?? -1) >= o.high);
    },
    opts.timeoutMs ?? 120_000,
    250,
  );
}

/** Groups records by partition, each in offset order, as comparable strings. */
export function byPartition(records: SeenRecord[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const r of [...records].sort((a, b) => a.partition - b.partition || a.offset - b.offset)) {
    const list = out.get(r.partition) ?? [];
    list.push(JSON.stringify([r.key, r.value, r.timestamp, r.headers]));
    out.set(r.partition, list);
  }
  return out;
}

/**
 * For a test file that starts `crr mirror` processes: returns `mirror(configPath, env?)`, which
 * starts one, and kills (SIGKILL) whatever is still running after each test.
 */
export function useMirrorProcesses(): (configPath: string, env?: NodeJS.ProcessEnv) => CrrProcess {
  const start = useCrrProcesses();
  return (configPath, env = {}) => start(['mirror', '--config', configPath], env);
}

/** PostgreSQL of the machine (trust auth), for stores in tests. */
export const PG_URL = process.env.CRR_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A primary and a replica under fresh aliases, each with a store, and the flow between them. */
export interface TestPair extends TestFlow {
  /** Change topics of the primary (the replica reads `<source>.<topic>`). */
  dataTopic: string;
  metadataTopic: string;
  /** PostgreSQL schemas of the stores (a PGlite primary has a dataDir instead). */
  primarySchema: string;
  drSchema: string;
  /** Application and replay roles of the replica's write fence. */
  appRole: string;
  replayRole: string;
  /** HTTP port of the primary's daemon (`httpPort` is the replica's). */
  primaryHttpPort: number;
}

/**
 * Writes a config for a primary/replica pair between the real clusters: change topics named
 * after the test, stores in fresh PostgreSQL schemas (or PGlite for the primary with
 * `primaryStore: 'pglite'`), a fenced replica, fast replay and mirror settings.
 * @param replay merged into the `replay` section
 */
export function testPair(opts: { primaryStore?: 'pglite' | 'postgres'; replay?: Record<string, unknown>; dataPartitions?: number } = {}): TestPair {
  const flow = testFlow({ emitHeartbeats: false });
  const dataTopic = `${flow.prefix}.data`;
  const metadataTopic = `${flow.prefix}.metadata`;
  const primarySchema = `crr_t_${flow.id}_p`;
  const drSchema = `crr_t_${flow.id}_d`;
  const appRole = `crr_t_${flow.id}_app`;
  const replayRole = `crr_t_${flow.id}_replay`;
  const primaryHttpPort = nextPort++;
  const config = JSON.parse(JSON.stringify(parseYaml(readFileSync(flow.configPath, 'utf8')))) as Record<string, any>;
  const changeTopics = { data: dataTopic, metadata: metadataTopic, dataPartitions: opts.dataPartitions ?? 3 };
  config.clusters[flow.source].changeTopics = changeTopics;
  config.clusters[flow.source].store =
    opts.primaryStore === 'pglite'
      ? { type: 'pglite', dataDir: join(tmpdir(), 'crr-tests', `pglite-${flow.id}`) }
      : { type: 'postgres', connectionString: PG_URL, schema: primarySchema };
  config.clusters[flow.target].changeTopics = changeTopics;
  config.clusters[flow.target].store = { type: 'postgres', connectionString: PG_URL, schema: drSchema, appRole, replayRole };
  config.replay = { lagPollIntervalMs: 300, restartBackoffInitialMs: 200, restartBackoffMaxMs: 2000, consumerSessionTimeoutMs: 6000, ...(opts.replay ?? {}) };
  writeFileSync(flow.configPath, stringify(config));
  return { ...flow, dataTopic, metadataTopic, primarySchema, drSchema, appRole, replayRole, primaryHttpPort };
}

/**
 * For a test file that starts long-running `crr` processes: returns `start(args, env?)`, which
 * starts one, and kills (SIGKILL) whatever is still running after each test.
 */
export function useCrrProcesses(): (args: string[], env?: NodeJS.ProcessEnv) => CrrProcess {
  const running: CrrProcess[] = [];
  afterEach(async () => {
    for (const p of running.splice(0)) {
      if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
      await p.exited;
    }
  });
  return (args, env = {}) => {
    const p = startCrr(args, env);
    running.push(p);
    return p;
  };
}

/**
 * For a test file that makes primary/replica pairs: returns `pair(opts?)`, which makes one with
 * testPair, and drops every pair's PostgreSQL schemas and fence roles after the file's tests.
 */
export function usePairs(): (opts?: Parameters<typeof testPair>[0]) => TestPair {
  const schemas: string[] = [];
  const roles: string[] = [];
  afterAll(async () => {
    const db = new pg.Client({ connectionString: PG_URL });
    await db.connect();
    try {
      for (const s of schemas) await db.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      for (const r of roles) {
        await db.query(
          `DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${r}') THEN EXECUTE 'DROP OWNED BY ${r}'; EXECUTE 'DROP ROLE ${r}'; END IF; END $$`,
        );
      }
    } finally {
      await db.end();
    }
  });
  return (opts = {}) => {
    const p = testPair(opts);
    schemas.push(p.primarySchema, p.drSchema);
    roles.push(p.appRole, p.replayRole);
    return p;
  };
}
