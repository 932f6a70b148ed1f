/**
 * The fault-injection soak (issue 11; `npm run soak`, scripts/soak.sh; a shortened run in
 * test/integration/soak.test.ts).
 *
 * Runs both regions' daemons (`crr run`, two processes per region: one active, one standby) on
 * two real Kafka clusters, PostgreSQL stores and S3Proxy backups, every crr connection going
 * through a TCP proxy (test/support/tcp-proxy.ts): Kafka's through the brokers' PROXIED listener,
 * advertised at the proxy's port (scripts/kafka.sh, CRR_<NAME>_ADVERTISED_PORT). It writes a steady
 * stream of change events with `crr write` and injects seeded random faults (see {@link FAULT_KINDS})
 * one at a time, each followed by a check that the system makes progress again ("survived").
 * At the end, faults stopped, it waits for `crr verify` EQUAL and checks from the stores and
 * the topics, not from crr's counters:
 * - the DR store (and the primary's) holds, for every entity, the effect of its last
 *   acknowledged write (an older one means a lost or a re-applied event), counted against a model
 *   of what was acknowledged: the primary's store as a sync-breaking operation left it (the
 *   writer pauses around it), then every acknowledged event after it;
 * - every acknowledged event id is on the DR's remote data topic exactly once (and no event
 *   id is there twice);
 * - positions never moved backwards: the DR and primary stores' `positions` tables sampled every
 *   second, and every committed mirror position read from the positions topic on DR (a decrease
 *   is allowed, and recorded with its reason, only across a reseed or a sync break).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Consumer, Kafka as KafkaClient } from 'kafkajs';
import pg from 'pg';
import { stringify } from 'yaml';
import { registerCodecs } from '../../src/kafka/codecs.js';
import { Kafka, logLevel } from '../../src/kafka/kafkajs.js';
import { decodePosition } from '../../src/replication/positions.js';
import { positionsTopicName } from '../../src/replication/internal-topics.js';
import { mulberry32 } from '../../src/util/prng.js';
import { TcpProxy } from '../../test/support/tcp-proxy.js';

/** Every fault kind the soak injects. `*-reseed` kinds are injected while a reseed runs (after a sync break). */
export const FAULT_KINDS = [
  'kill-mirror',
  'kill-replay',
  'kill-reseed',
  'stop-mirror',
  'stop-replay',
  'stop-reseed',
  'restart-broker',
  'net-cut-kafka',
  'net-blackhole-kafka',
  'net-slow-kafka',
  'net-cut-pg',
  'net-blackhole-pg',
  'net-slow-pg',
  'net-cut-s3',
  'net-blackhole-s3',
  'net-slow-s3',
  'drop-all',
  'import',
  'reset',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];
const SYNC_BREAKS: readonly FaultKind[] = ['drop-all', 'import', 'reset'];
const RESEED_FAULTS: readonly FaultKind[] = ['kill-reseed', 'stop-reseed', 'net-cut-s3', 'net-blackhole-s3', 'net-slow-s3', 'net-cut-pg'];

/**
 * Parses SOAK_FAULTS: comma-separated kinds or prefixes (`net-`, `kill-`), `all`, and exclusions
 * with a leading `-` (`all,-reset`); empty means all.
 * @throws Error naming an entry that matches no kind
 */
export function parseFaultKinds(spec: string | undefined): Set<FaultKind> {
  const out = new Set<FaultKind>();
  const entries = (spec ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (entries.length === 0 || entries.every((e) => e.startsWith('-') && !FAULT_KINDS.includes(e as FaultKind))) for (const k of FAULT_KINDS) out.add(k);
  for (const e of entries) {
    const exclude = e.startsWith('-') && !FAULT_KINDS.includes(e as FaultKind);
    const name = exclude ? e.slice(1) : e;
    const matched = name === 'all' ? [...FAULT_KINDS] : FAULT_KINDS.filter((k) => k === name || k.startsWith(name));
    if (matched.length === 0) throw new Error(`SOAK_FAULTS: "${e}" matches no fault kind (kinds: ${FAULT_KINDS.join(', ')})`);
    for (const k of matched) exclude ? out.delete(k) : out.add(k);
  }
  return out;
}

/** What a soak run needs. Ports are on 127.0.0.1. */
export interface SoakOptions {
  /** Fault phase length, s. */
  seconds: number;
  /** Seed of every random choice (faults, timings, events). */
  seed: number;
  faults: Set<FaultKind>;
  /** The brokers' plain ports (tools, the soak's own checks) and their PROXIED listeners' ports (port + 2). */
  primaryPort: number;
  drPort: number;
  /** The ports the PROXIED listeners advertise: the soak's Kafka proxies listen there. */
  primaryAdvertisedPort: number;
  drAdvertisedPort: number;
  /** S3Proxy's port. */
  s3Port: number;
  /** PostgreSQL of the stores (trust auth), e.g. postgres://postgres@127.0.0.1:5432/postgres. */
  pgUrl: string;
  /** Repository root (bin/crr.js, scripts/kafka.sh). */
  root: string;
  /** Where logs and configs go. */
  workDir: string;
  /** Bound on the time from the end of the faults to `crr verify` EQUAL, s. Default 300. */
  equalTimeoutSeconds?: number;
  /** Events per `crr write` batch. Default 40. */
  batchEvents?: number;
  /** One progress line. */
  log: (line: string) => void;
}

/** The outcome: the figures, the checks and every fault. */
export interface SoakReport {
  seed: number;
  seconds: number;
  faultKinds: FaultKind[];
  ok: boolean;
  failures: string[];
  /**
   * Every fault: when it ended (s since the start), what it did, whether the system made progress
   * again within 240 s, and how many daemons exited by themselves meanwhile (each restarted).
   */
  faults: Array<{ at: number; kind: FaultKind; detail: string; survived: boolean; recoverySeconds?: number; daemonExits: number }>;
  table: Array<{ kind: FaultKind; injected: number; survived: number; daemonExits: number }>;
  events: { written: number; acknowledged: number; unacknowledged: number; writeBatches: number; failedBatches: number; acknowledgedPerSecond: number };
  checks: {
    dr: StoreCheck;
    primary: StoreCheck;
    topic: { acknowledgedChecked: number; missing: number; duplicated: number; duplicatedAny: number; examples: string[] };
    positions: { samples: number; decreases: number; allowedDecreases: number; allowedReasons: Record<string, number>; violations: string[] };
  };
  equal: { verified: boolean; secondsToEqual: number | null; output: string };
  daemonCrashes: number;
  syncBreaks: number;
}

interface StoreCheck {
  entitiesChecked: number;
  /** Entities whose last acknowledged upsert is missing (absent), or older than it (stale). */
  lost: number;
  stale: number;
  /** Deleted by an acknowledged delete, yet present. */
  resurrected: number;
  unexpected: number;
  examples: string[];
}

/** A seeded PRNG: floats in [0, 1) (src/util/prng.ts). */
const prng = mulberry32;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

/** One `crr run` process slot: a region and a number; a killed process is replaced in its slot. */
class Daemon {
  proc: ChildProcess | undefined;
  stopped = false;
  /** Set when the soak itself kills it (an exit then is no crash). */
  killing = false;
  crashes = 0;
  private generation = 0;

  constructor(
    readonly region: 'primary' | 'dr',
    readonly slot: number,
    readonly httpPort: number,
    private readonly o: { root: string; workDir: string; configPath: string; alias: string; log: (l: string) => void; env: NodeJS.ProcessEnv },
  ) {}

  get name(): string {
    return `${this.region}#${this.slot}`;
  }

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  alive(): boolean {
    return !!this.proc && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  start(): void {
    this.generation += 1;
    this.killing = false;
    this.stopped = false;
    const out = createWriteStream(join(this.o.workDir, `${this.region}-${this.slot}.log`), { flags: 'a' });
    out.write(`\n==== start ${this.generation} at ${new Date().toISOString()}\n`);
    const proc = spawn(
      process.execPath,
      [join(this.o.root, 'bin', 'crr.js'), 'run', '--config', this.o.configPath, '--cluster', this.o.alias, '--http-port', String(this.httpPort)],
      { env: { ...process.env, ...this.o.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    proc.stdout!.pipe(out);
    proc.stderr!.pipe(out);
    this.proc = proc;
    proc.on('exit', (code, signal) => {
      if (this.proc !== proc || this.killing) return;
      this.crashes += 1;
      this.o.log(`  ! daemon ${this.name} (pid ${proc.pid}) exited by itself: code ${code} signal ${signal}; restarting it (as a supervisor would)`);
      setTimeout(() => {
        if (this.proc === proc) this.start();
      }, 1000);
    });
  }

  /** SIGKILL, waits for the exit. */
  async kill(): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.alive()) return;
    this.killing = true;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
  }

  /** SIGTERM, then SIGKILL after `ms`. */
  async terminate(ms = 20_000): Promise<void> {
    const proc = this.proc;
    if (!proc || !this.alive()) return;
    this.killing = true;
    if (this.stopped) proc.kill('SIGCONT');
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(t);
  }

  signal(sig: 'SIGSTOP' | 'SIGCONT'): void {
    if (!this.alive()) return;
    this.proc!.kill(sig);
    this.stopped = sig === 'SIGSTOP';
  }

  /** The daemon's /status, or undefined when it does not answer within 1.5 s. */
  async status(): Promise<any> {
    if (!this.alive() || this.stopped) return undefined;
    try {
      const res = await fetch(`http://127.0.0.1:${this.httpPort}/status`, { signal: AbortSignal.timeout(1500) });
      return await res.json();
    } catch {
      return undefined;
    }
  }
}

/** An entity's state in the store, as the soak reads it: the `seq` of its last upsert, or absent. */
type EntityState = number | null;

/**
 * What the stores must hold: per entity, the state its last acknowledged write left (from the
 * baseline of the last sync break on), and the states unacknowledged writes after it may have left.
 */
class Model {
  certain = new Map<string, EntityState>();
  possible = new Map<string, Set<EntityState>>();
  /** Acknowledged events since the last baseline, by entity: the seq of the last one. */
  lastAckedSeq = new Map<string, number>();

  /** Starts over from a store snapshot (after a sync-breaking operation). */
  rebase(snapshot: Map<string, number>): void {
    this.certain = new Map(snapshot);
    this.possible.clear();
    this.lastAckedSeq.clear();
  }

  apply(events: SoakEvent[], acked: boolean): void {
    for (const e of events) {
      const effect: EntityState = e.op === 'upsert' ? e.seq : null;
      if (acked) {
        this.certain.set(e.entity, effect);
        this.possible.delete(e.entity);
        this.lastAckedSeq.set(e.entity, e.seq);
      } else {
        const s = this.possible.get(e.entity) ?? new Set<EntityState>();
        s.add(effect);
        this.possible.set(e.entity, s);
      }
    }
  }

  /** Compares a store's entities with the model. */
  check(store: Map<string, number>, label: string): StoreCheck {
    const r: StoreCheck = { entitiesChecked: 0, lost: 0, stale: 0, resurrected: 0, unexpected: 0, examples: [] };
    const keys = new Set([...this.certain.keys(), ...this.possible.keys(), ...store.keys()]);
    for (const k of keys) {
      r.entitiesChecked += 1;
      const want = this.certain.get(k) ?? null;
      const got = store.get(k) ?? null;
      if (got === want || this.possible.get(k)?.has(got)) continue;
      let what: string;
      if (want !== null && got === null) {
        r.lost += 1;
        what = 'lost';
      } else if (want !== null && got !== null && got < want) {
        r.stale += 1;
        what = 'stale';
      } else if (want === null && got !== null) {
        r.resurrected += 1;
        what = 'resurrected';
      } else {
        r.unexpected += 1;
        what = 'unexpected';
      }
      if (r.examples.length < 10)
        r.examples.push(`${label} ${k}: ${what}: holds ${got === null ? 'nothing' : `seq ${got}`}, expected ${want === null ? 'nothing' : `seq ${want}`}`);
    }
    return r;
  }
}

interface SoakEvent {
  id: string;
  seq: number;
  entity: string;
  op: 'upsert' | 'delete';
}

const VERTEX_TYPE = 'Soak';
const SCHEMA_EVENT = {
  op: 'CREATE_VERTEX_TYPE',
  name: VERTEX_TYPE,
  primaryIdType: 'STRING',
  attributes: [
    { name: 'seq', type: 'INT' },
    { name: 'pad', type: 'STRING' },
  ],
};

/** Runs one soak and returns its report (never throws for a failed check: see `ok` and `failures`). */
export async function runSoak(o: SoakOptions): Promise<SoakReport> {
  // two streams: the writer's draws interleave with the faults' by timing, so each has its own
  // and a seed gives the same fault sequence (kinds, targets, durations, gaps) every time
  const rnd = prng(o.seed);
  const eventRnd = prng(o.seed ^ 0x9e3779b9);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const between = (a: number, b: number): number => a + rnd() * (b - a);
  const id = randomUUID().replace(/-/g, '').slice(0, 8);
  const src = `p${id}`;
  const dst = `d${id}`;
  const prefix = `soak${id}`;
  const dataTopic = `${prefix}.data`;
  const metadataTopic = `${prefix}.metadata`;
  const remoteData = `${src}.${dataTopic}`;
  const pSchema = `soak_${id}_p`;
  const dSchema = `soak_${id}_d`;
  const appRole = `soak_${id}_app`;
  const replayRole = `soak_${id}_replay`;
  const bucket = `crr-soak-${id}`;
  const equalTimeoutMs = (o.equalTimeoutSeconds ?? 300) * 1000;
  const batchEvents = o.batchEvents ?? 40;
  mkdirSync(o.workDir, { recursive: true });
  const t0 = Date.now();
  const at = (): number => Math.round((Date.now() - t0) / 100) / 10;
  const log = (l: string): void => o.log(`[${at().toFixed(1).padStart(6)}s] ${l}`);
  const failures: string[] = [];

  // ---- proxies: every crr connection crosses one
  const pgTarget = new URL(o.pgUrl);
  const proxies = {
    'kafka-primary': await TcpProxy.create({ host: '127.0.0.1', port: o.primaryPort + 2 }, o.primaryAdvertisedPort),
    'kafka-dr': await TcpProxy.create({ host: '127.0.0.1', port: o.drPort + 2 }, o.drAdvertisedPort),
    pg: await TcpProxy.create({ host: pgTarget.hostname, port: Number(pgTarget.port || 5432) }),
    s3: await TcpProxy.create({ host: '127.0.0.1', port: o.s3Port }),
  };
  for (const p of Object.values(proxies)) await p.restore();
  const viaPg = new URL(o.pgUrl);
  viaPg.port = String(proxies.pg.port);

  const s3 = new S3Client({
    endpoint: `http://127.0.0.1:${o.s3Port}`,
    region: 'us-east-1',
    credentials: { accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' },
    forcePathStyle: true,
  });
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));

  const configPath = join(o.workDir, 'crr.yaml');
  const kafkaTimeouts = { connectionTimeoutMs: 3000, requestTimeoutMs: 15_000 };
  writeFileSync(
    configPath,
    stringify({
      clusters: {
        [src]: {
          bootstrapServers: [`127.0.0.1:${o.primaryAdvertisedPort}`],
          ...kafkaTimeouts,
          changeTopics: { data: dataTopic, metadata: metadataTopic, dataPartitions: 3 },
          store: { type: 'postgres', connectionString: viaPg.toString(), schema: pSchema },
          backup: {
            repository: {
              type: 's3',
              bucket,
              endpoint: `http://127.0.0.1:${proxies.s3.port}`,
              region: 'us-east-1',
              forcePathStyle: true,
              accessKeyId: 'crr',
              secretAccessKey: 'crr-secret-key',
            },
            partSizeBytes: 1024 * 1024,
          },
        },
        [dst]: {
          bootstrapServers: [`127.0.0.1:${o.drAdvertisedPort}`],
          ...kafkaTimeouts,
          changeTopics: { data: dataTopic, metadata: metadataTopic, dataPartitions: 3 },
          store: { type: 'postgres', connectionString: viaPg.toString(), schema: dSchema, appRole, replayRole },
        },
      },
      mirror: {
        flows: [
          {
            source: src,
            target: dst,
            topics: { include: [`${prefix}.*`] },
            heartbeatsTopic: `${prefix}-heartbeats`,
            topicRefreshIntervalMs: 2000,
            transactionLingerMs: 50,
            consumerSessionTimeoutMs: 10_000,
            emitCheckpoints: false,
          },
        ],
        shutdownTimeoutMs: 10_000,
        restartBackoffInitialMs: 300,
        restartBackoffMaxMs: 3000,
        lagPollIntervalMs: 1000,
      },
      replay: { lagPollIntervalMs: 1000, restartBackoffInitialMs: 300, restartBackoffMaxMs: 3000, consumerSessionTimeoutMs: 10_000 },
      reseed: { mode: 'auto', retryBackoffInitialMs: 1000, retryBackoffMaxMs: 5000 },
      http: { host: '127.0.0.1', port: 0 },
      log: { level: 'info' },
    }),
  );
  log(
    `run ${id}: clusters ${src} (127.0.0.1:${o.primaryPort}, via proxy :${o.primaryAdvertisedPort}) -> ${dst} (127.0.0.1:${o.drPort}, via :${o.drAdvertisedPort}); PostgreSQL via :${proxies.pg.port}; S3 via :${proxies.s3.port}; logs in ${o.workDir}`,
  );

  const db = new pg.Pool({ connectionString: o.pgUrl, max: 3 });
  db.on('error', () => undefined);
  await registerCodecs();
  const kafkaOf = (port: number): KafkaClient =>
    new Kafka({
      clientId: `crr-soak-${id}`,
      brokers: [`127.0.0.1:${port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 20, initialRetryTime: 300, maxRetryTime: 5000 },
    });

  // ---- the writer: crr write, one batch at a time; a batch is acknowledged when crr write exits 0
  const model = new Model();
  let seq = 0;
  let needsSchema = true;
  let lastAckedSeq = 0;
  const ackedIds = new Set<string>();
  const writtenIds = new Set<string>();
  let resetsStarted = 0;
  /** Acknowledged ids since the last RESET (the primary's topics were recreated then). */
  let ackedSinceReset = new Set<string>();
  const events = { written: 0, acknowledged: 0, unacknowledged: 0, writeBatches: 0, failedBatches: 0 };
  const entities = 400;
  let writerPaused = false;
  let writerBusy: Promise<void> = Promise.resolve();
  let writing = true;
  const writeTimeoutMs = 45_000;

  const runCli = (args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [join(o.root, 'bin', 'crr.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('exit', (code) => {
        clearTimeout(t);
        resolve({ code, out });
      });
    });

  const writeBatch = async (): Promise<void> => {
    const batch: SoakEvent[] = [];
    for (let i = 0; i < batchEvents; i++) {
      seq += 1;
      const entity = `e${Math.floor(eventRnd() * entities)}`;
      batch.push({ id: `soak-${id}-${seq}`, seq, entity, op: eventRnd() < 0.1 ? 'delete' : 'upsert' });
    }
    const lines = batch.map((e) =>
      JSON.stringify(
        e.op === 'upsert'
          ? { id: e.id, op: 'UPSERT_VERTEX', vertex: { type: VERTEX_TYPE, id: e.entity }, attributes: { seq: e.seq, pad: `soak event ${e.seq}` } }
          : { id: e.id, op: 'DELETE_VERTEX', vertex: { type: VERTEX_TYPE, id: e.entity } },
      ),
    );
    const withSchema = needsSchema;
    if (withSchema) lines.unshift(JSON.stringify(SCHEMA_EVENT));
    const file = join(o.workDir, 'batch.ndjson');
    writeFileSync(file, `${lines.join('\n')}\n`);
    for (const e of batch) writtenIds.add(e.id);
    const r = await runCli(['write', '--config', configPath, '--cluster', src, '--file', file], writeTimeoutMs);
    events.writeBatches += 1;
    events.written += batch.length;
    const acked = r.code === 0;
    model.apply(batch, acked);
    if (acked) {
      events.acknowledged += batch.length;
      for (const e of batch) {
        ackedIds.add(e.id);
        ackedSinceReset.add(e.id);
      }
      lastAckedSeq = batch[batch.length - 1]!.seq;
      if (withSchema) needsSchema = false;
    } else {
      events.unacknowledged += batch.length;
      events.failedBatches += 1;
      log(
        `  write batch of seq ${batch[0]!.seq}..${lastOf(batch).seq} not acknowledged (exit ${r.code}): ${r.out.trim().split('\n').pop()?.slice(0, 160) ?? ''}`,
      );
    }
  };
  const lastOf = <T>(xs: T[]): T => xs[xs.length - 1]!;
  const writerLoop = async (): Promise<void> => {
    while (writing) {
      if (writerPaused) {
        await sleep(100);
        continue;
      }
      const p = writeBatch();
      writerBusy = p;
      await p;
      await sleep(300);
    }
  };
  const pauseWriter = async (): Promise<void> => {
    writerPaused = true;
    await writerBusy;
  };

  // initial schema, before the daemons: the change topics exist from here
  {
    writeFileSync(join(o.workDir, 'schema.ndjson'), `${JSON.stringify(SCHEMA_EVENT)}\n`);
    const w = await runCli(['write', '--config', configPath, '--cluster', src, '--file', join(o.workDir, 'schema.ndjson')], 60_000);
    if (w.code !== 0) throw new Error(`soak: the first crr write failed (exit ${w.code}): ${w.out}`);
    needsSchema = false;
  }

  // ---- the daemons: two per region
  const daemonEnv: NodeJS.ProcessEnv = { CRR__log__level: 'info' };
  const daemons: Daemon[] = [];
  for (const region of ['primary', 'dr'] as const) {
    for (const slot of [1, 2]) {
      daemons.push(
        new Daemon(region, slot, await freePort(), {
          root: o.root,
          workDir: o.workDir,
          configPath,
          alias: region === 'primary' ? src : dst,
          log,
          env: daemonEnv,
        }),
      );
    }
  }
  for (const d of daemons) d.start();
  log(`daemons: ${daemons.map((d) => `${d.name} pid ${d.pid} http :${d.httpPort}`).join(', ')}`);

  const q = async <T extends pg.QueryResultRow>(sql: string): Promise<T[]> => (await db.query<T>(sql)).rows;
  const maxSeq = async (schema: string): Promise<number> =>
    Number((await q<{ m: string | null }>(`SELECT max((attributes->>'seq')::bigint) AS m FROM ${schema}.vertices WHERE type = '${VERTEX_TYPE}'`))[0]?.m ?? 0);
  const snapshot = async (schema: string): Promise<Map<string, number>> =>
    new Map(
      (await q<{ id: string; s: string }>(`SELECT id, attributes->>'seq' AS s FROM ${schema}.vertices WHERE type = '${VERTEX_TYPE}'`)).map((r) => [
        r.id,
        Number(r.s),
      ]),
    );

  const waitUntil = async (check: () => Promise<boolean>, timeoutMs: number, everyMs = 500): Promise<boolean> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      try {
        if (await check()) return true;
      } catch {
        // not yet (a store not created yet, an outage)
      }
      await sleep(everyMs);
    }
    return false;
  };
  const replayStates = async (region: 'primary' | 'dr'): Promise<any[]> =>
    (await Promise.all(daemons.filter((d) => d.region === region).map((d) => d.status()))).map((s) => s?.replay).filter(Boolean);
  const upOk = await waitUntil(async () => {
    const [p, d] = await Promise.all([replayStates('primary'), replayStates('dr')]);
    return p.some((r) => r.state === 'active') && d.some((r) => r.state === 'active' && r.clusterState?.state === 'REPLICATING');
  }, 120_000);
  if (!upOk) throw new Error(`soak: the daemons did not become active within 120 s (logs in ${o.workDir})`);
  log('both regions replaying; the stream and the faults start');

  // ---- sampling positions
  const positionsCheck = { samples: 0, decreases: 0, allowedDecreases: 0, allowedReasons: {} as Record<string, number>, violations: [] as string[] };
  const allow = (reason: string): void => {
    positionsCheck.allowedDecreases += 1;
    positionsCheck.allowedReasons[reason] = (positionsCheck.allowedReasons[reason] ?? 0) + 1;
  };
  let syncBreaks = 0;
  /**
   * One sample of a store: its positions and cluster state, read in one statement (one snapshot),
   * and the counters of sync breaks and resets the soak had started before and after the read.
   */
  interface StoreSample {
    positions: Map<string, number>;
    state: string;
    before: { syncBreaks: number; resets: number };
    after: { syncBreaks: number; resets: number };
  }
  const prevSample: Record<string, StoreSample | undefined> = {};
  const sampleStore = async (label: 'primary' | 'dr', schema: string): Promise<void> => {
    const before = { syncBreaks, resets: resetsStarted };
    const [row] = await q<{ p: Array<{ t: string; n: string }> | null; s: string | null }>(
      `SELECT (SELECT json_agg(json_build_object('t', topic || '[' || partition || ']', 'n', next_offset)) FROM ${schema}.positions) AS p,
              (SELECT concat_ws('|', role, state, epoch, reason, updated_at) FROM ${schema}.cluster_state) AS s`,
    );
    const cur: StoreSample = {
      positions: new Map((row?.p ?? []).map((r) => [r.t, Number(r.n)])),
      state: row?.s ?? '',
      before,
      after: { syncBreaks, resets: resetsStarted },
    };
    positionsCheck.samples += 1;
    const prev = prevSample[label];
    prevSample[label] = cur;
    if (!prev) return;
    for (const [k, v] of cur.positions) {
      const was = prev.positions.get(k);
      if (was === undefined || v >= was) continue;
      positionsCheck.decreases += 1;
      // allowed only when the cause may lie between the two reads
      if (label === 'dr' && prev.state !== cur.state) allow('dr store: reseed (cluster_state changed between the samples)');
      else if (label === 'dr' && prev.before.syncBreaks !== cur.after.syncBreaks) allow('dr store: a sync break on the primary between the samples');
      else if (label === 'primary' && prev.state !== cur.state && /\|RESET: /.test(cur.state))
        allow('primary store: RESET set its positions back to 0 (its cluster_state changed in the same transaction)');
      else if (label === 'primary' && prev.before.resets !== cur.after.resets) allow('primary store: RESET set its positions back to 0');
      else positionsCheck.violations.push(`${label} store position ${k} moved back from ${was} to ${v} at ${at()} s`);
    }
  };
  let sampling = true;
  const samplerLoop = async (): Promise<void> => {
    while (sampling) {
      await Promise.all([sampleStore('primary', pSchema).catch(() => undefined), sampleStore('dr', dSchema).catch(() => undefined)]);
      await sleep(1000);
    }
  };
  // every committed mirror position, in commit order (read_committed), from the positions topic on DR
  const mirrorPos = new Map<string, { offset: number; resets: number; topicId: string | undefined }>();
  const tailSeen = new Map<number, number>();
  const tail: Consumer = kafkaOf(o.drPort).consumer({
    groupId: `crr-soak-positions-${id}`,
    readUncommitted: false,
    maxWaitTimeInMs: 500,
    retry: { retries: 1000 },
  });
  await tail.connect();
  await tail.subscribe({ topics: [positionsTopicName(src)], fromBeginning: true });
  await tail.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      // the reader commits no offsets: after a rebalance (a broker restart) it reads from the beginning again
      if (Number(message.offset) <= (tailSeen.get(partition) ?? -1)) return;
      tailSeen.set(partition, Number(message.offset));
      const d = (() => {
        try {
          return decodePosition(`${src}->${dst}`, message.key, message.value);
        } catch {
          return undefined;
        }
      })();
      if (!d?.position) return;
      const k = `${d.topic}[${d.partition}]`;
      const prev = mirrorPos.get(k);
      positionsCheck.samples += 1;
      if (prev && d.position.offset < prev.offset) {
        positionsCheck.decreases += 1;
        // a position belongs to one incarnation of the source topic (its id): a new id starts it again
        if (prev.topicId !== undefined && d.position.topicId !== undefined && prev.topicId !== d.position.topicId)
          allow('mirror position: a new incarnation of the source topic (new topic id)');
        else if (prev.resets !== resetsStarted) allow('mirror position: the source topic was recreated by RESET');
        else positionsCheck.violations.push(`mirror position ${k} moved back from ${prev.offset} to ${d.position.offset} at ${at()} s`);
      }
      mirrorPos.set(k, { offset: d.position.offset, resets: resetsStarted, topicId: d.position.topicId });
    },
  });

  // ---- faults
  const faults: SoakReport['faults'] = [];
  const active = async (region: 'primary' | 'dr', role: 'mirror' | 'replay' | 'reseed'): Promise<Daemon | undefined> => {
    for (const d of daemons.filter((x) => x.region === region)) {
      const s = await d.status();
      if (!s) continue;
      if (role === 'mirror' && s.flows?.some((f: any) => f.state === 'active')) return d;
      if (role === 'replay' && s.replay?.state === 'active') return d;
      if (role === 'reseed' && s.replay?.state === 'reseeding') return d;
    }
    return undefined;
  };
  const kafkaEnv = {
    ...process.env,
    CRR_PRIMARY_PORT: String(o.primaryPort),
    CRR_DR_PORT: String(o.drPort),
    CRR_PRIMARY_ADVERTISED_PORT: String(o.primaryAdvertisedPort),
    CRR_DR_ADVERTISED_PORT: String(o.drAdvertisedPort),
  };
  const kafkaSh = (args: string[]): Promise<number | null> =>
    new Promise((resolve) => {
      const child = spawn('bash', [join(o.root, 'scripts', 'kafka.sh'), ...args], { env: kafkaEnv, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', (code) => {
        if (code !== 0) log(`  kafka.sh ${args.join(' ')}: exit ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`);
        resolve(code);
      });
    });

  /** Performs one fault; returns its detail, or undefined when there was nothing to hit (not counted). */
  const inject = async (kind: FaultKind): Promise<string | undefined> => {
    const [action, role] = kind.split('-') as [string, string];
    if (action === 'kill' || action === 'stop') {
      const region = role === 'mirror' || role === 'reseed' ? 'dr' : pick(['primary', 'dr'] as const);
      const d = await active(region, role as 'mirror' | 'replay' | 'reseed');
      if (!d) return undefined;
      const pid = d.pid;
      if (action === 'kill') {
        await d.kill();
        const restartIn = between(0, 3000);
        await sleep(restartIn);
        d.start();
        return `SIGKILL ${d.name} (active ${role} of ${region}, pid ${pid}); a new process in its place after ${(restartIn / 1000).toFixed(1)} s`;
      }
      const ms = between(2000, 14_000);
      d.signal('SIGSTOP');
      await sleep(ms);
      d.signal('SIGCONT');
      return `SIGSTOP ${d.name} (active ${role} of ${region}, pid ${pid}) for ${(ms / 1000).toFixed(1)} s, then SIGCONT`;
    }
    if (kind === 'restart-broker') {
      const which = pick(['primary', 'dr'] as const);
      const t = Date.now();
      const code = await kafkaSh(['restart', which]);
      return `kafka.sh restart ${which} (${((Date.now() - t) / 1000).toFixed(1)} s${code === 0 ? '' : `, exit ${code}`})`;
    }
    if (action === 'net') {
      const [, mode, target] = kind.split('-') as [string, 'cut' | 'blackhole' | 'slow', 'kafka' | 'pg' | 's3'];
      const name = target === 'kafka' ? pick(['kafka-primary', 'kafka-dr'] as const) : target;
      const proxy = proxies[name];
      const ms = between(2000, 10_000);
      let how: string = mode;
      if (mode === 'cut') await proxy.cut();
      else if (mode === 'blackhole') await proxy.blackhole();
      else {
        const latency = Math.round(between(50, 1000));
        how = `slow (+${latency} ms each way)`;
        await proxy.slow(latency);
      }
      await sleep(ms);
      await proxy.restore();
      return `${name}: ${how} for ${(ms / 1000).toFixed(1)} s`;
    }
    // a sync-breaking operation on the primary: the writer pauses around it, so the model knows what it left
    await pauseWriter();
    try {
      const opArgs = ['admin', kind, '--config', configPath, '--cluster', src, '--reason', `soak ${kind}`, '--execute'];
      let importNote = '';
      const imported: SoakEvent[] = [];
      if (kind === 'import') {
        const file = join(o.workDir, 'import.ndjson');
        const lines: string[] = [];
        const n = 50 + Math.floor(rnd() * 150);
        for (let i = 0; i < n; i++) {
          seq += 1;
          const entity = `e${Math.floor(rnd() * entities)}`;
          imported.push({ id: '', seq, entity, op: 'upsert' });
          lines.push(JSON.stringify({ op: 'UPSERT_VERTEX', vertex: { type: VERTEX_TYPE, id: entity }, attributes: { seq, pad: `import ${seq}` } }));
        }
        writeFileSync(file, `${lines.join('\n')}\n`);
        opArgs.push('--file', file);
        importNote = ` (${n} upserts)`;
      }
      if (kind === 'reset') resetsStarted += 1;
      syncBreaks += 1;
      let r = { code: null as number | null, out: '' };
      const deadline = Date.now() + 90_000;
      // exit 1: the primary's replay has not caught up yet (the writer just paused): try again
      do {
        r = await runCli(opArgs, 60_000);
        if (r.code === 1) await sleep(1000);
      } while (r.code === 1 && Date.now() < deadline);
      if (r.code !== 0) {
        failures.push(`crr admin ${kind} failed (exit ${r.code}): ${r.out.trim().slice(-300)}`);
        return `crr admin ${kind}: FAILED exit ${r.code}`;
      }
      if (kind === 'drop-all') needsSchema = true;
      if (kind === 'reset') ackedSinceReset = new Set();
      // the primary's store as the operation left it is the new baseline; check it against the model first
      const snap = await snapshot(pSchema);
      if (kind !== 'drop-all') {
        // what the primary must hold now: the model, plus the import's upserts (all in the store: the import committed)
        const expected = new Model();
        expected.certain = new Map(model.certain);
        expected.possible = new Map(model.possible);
        expected.apply(imported, true);
        const c = expected.check(snap, `primary after ${kind}:`);
        if (c.lost + c.stale + c.resurrected + c.unexpected > 0) failures.push(`primary store at ${kind}: ${c.examples.slice(0, 5).join('; ')}`);
      } else if (snap.size > 0) {
        failures.push(`primary store after drop-all still holds ${snap.size} entities`);
      }
      model.rebase(snap);
      return `crr admin ${kind}${importNote} on ${src}: done; ${snap.size} entities on the primary now`;
    } finally {
      writerPaused = false;
    }
  };

  const survivedAfter = async (): Promise<{ survived: boolean; seconds: number }> => {
    const t = Date.now();
    // progress: every acknowledged write so far, or a later one, shows up in both stores
    const mark = lastAckedSeq;
    const ok = await waitUntil(async () => (await maxSeq(pSchema)) >= mark && (await maxSeq(dSchema)) >= mark, 240_000, 500);
    return { survived: ok, seconds: (Date.now() - t) / 1000 };
  };

  const enabled = [...o.faults];
  const normal = enabled.filter((k) => !k.endsWith('-reseed'));
  const reseedKinds = RESEED_FAULTS.filter((k) => o.faults.has(k));
  if (normal.length === 0) throw new Error('soak: no fault kind enabled (SOAK_FAULTS)');
  // sync breaks and broker restarts take long (a reseed, a JVM start); S3 matters during reseeds, which get their own faults
  const weight = (k: FaultKind): number => (SYNC_BREAKS.includes(k) ? 0.4 : k === 'restart-broker' ? 0.6 : k.startsWith('net-') && k.endsWith('-s3') ? 0.3 : 1);
  const pickFault = (): FaultKind => {
    const total = normal.reduce((s, k) => s + weight(k), 0);
    let x = rnd() * total;
    for (const k of normal) {
      x -= weight(k);
      if (x <= 0) return k;
    }
    return lastOf(normal);
  };

  const writer = writerLoop();
  const sampler = samplerLoop();
  const faultDeadline = t0 + o.seconds * 1000;
  const exits = (): number => daemons.reduce((n, d) => n + d.crashes, 0);
  const record = async (kind: FaultKind, detail: string, exitsBefore: number): Promise<void> => {
    const s = await survivedAfter();
    const daemonExits = exits() - exitsBefore;
    faults.push({ at: at(), kind, detail, survived: s.survived, recoverySeconds: Math.round(s.seconds * 10) / 10, daemonExits });
    log(
      `#${faults.length} ${kind}: ${detail} -> ${s.survived ? `recovered in ${s.seconds.toFixed(1)} s` : 'NOT RECOVERED within 240 s'}${daemonExits ? `; ${daemonExits} daemon(s) exited by themselves (restarted)` : ''}`,
    );
  };
  while (Date.now() < faultDeadline) {
    await sleep(between(500, 3000));
    if (Date.now() >= faultDeadline) break;
    const kind = pickFault();
    const exitsBefore = exits();
    const detail = await inject(kind);
    if (!detail) continue;
    if (SYNC_BREAKS.includes(kind) && reseedKinds.length > 0 && rnd() < 0.7) {
      // the replica becomes OUTDATED and reseeds: hit the reseed (a process, S3, PostgreSQL)
      const rk = pick(reseedKinds);
      const reseeding = await waitUntil(async () => !!(await active('dr', 'reseed')), 30_000, 100);
      const rExitsBefore = exits();
      const rd = reseeding ? await inject(rk) : undefined;
      faults.push({ at: at(), kind, detail, survived: true, daemonExits: rExitsBefore - exitsBefore });
      log(`#${faults.length} ${kind}: ${detail}`);
      if (rd) await record(rk, `${rd} (during the reseed)`, rExitsBefore);
      else {
        const s = await survivedAfter();
        if (!s.survived) lastOf(faults).survived = false;
        log(`  (no reseed seen to hit; recovered: ${s.survived}, ${s.seconds.toFixed(1)} s)`);
      }
      continue;
    }
    await record(kind, detail, exitsBefore);
  }

  // ---- the end: faults stopped
  log('faults stopped; healing everything, stopping the writer');
  for (const p of Object.values(proxies)) await p.restore();
  for (const d of daemons) if (d.stopped) d.signal('SIGCONT');
  await kafkaSh(['up']);
  writing = false;
  await writer;
  const writeSeconds = (Date.now() - t0) / 1000;
  for (const d of daemons) if (!d.alive()) d.start();
  const tEnd = Date.now();
  let verified = false;
  let verifyOut = '';
  while (Date.now() - tEnd < equalTimeoutMs) {
    const r = await runCli(['verify', '--config', configPath, '--timeout-ms', '20000'], 60_000);
    verifyOut = r.out;
    if (r.code === 0) {
      verified = true;
      break;
    }
    await sleep(2000);
  }
  const secondsToEqual = verified ? Math.round((Date.now() - tEnd) / 100) / 10 : null;
  log(verified ? `crr verify: EQUAL ${secondsToEqual} s after the faults stopped` : `crr verify: NOT EQUAL within ${equalTimeoutMs / 1000} s:\n${verifyOut}`);
  if (!verified) failures.push(`crr verify not EQUAL within ${equalTimeoutMs / 1000} s after the faults stopped`);
  sampling = false;
  await sampler;
  await sampleStore('primary', pSchema).catch(() => undefined);
  await sampleStore('dr', dSchema).catch(() => undefined);
  await tail.disconnect().catch(() => undefined);

  // ---- the stores against the model
  const [drSnap, pSnap] = await Promise.all([snapshot(dSchema), snapshot(pSchema)]);
  const drCheck = model.check(drSnap, 'dr');
  const pCheck = model.check(pSnap, 'primary');
  for (const [label, c] of [
    ['dr', drCheck],
    ['primary', pCheck],
  ] as const) {
    if (c.lost + c.stale + c.resurrected + c.unexpected > 0)
      failures.push(
        `${label} store: ${c.lost} lost, ${c.stale} stale, ${c.resurrected} resurrected, ${c.unexpected} unexpected: ${c.examples.slice(0, 3).join('; ')}`,
      );
  }

  // ---- the DR's remote data topic: every acknowledged event id exactly once
  const topicCheck = { acknowledgedChecked: 0, missing: 0, duplicated: 0, duplicatedAny: 0, examples: [] as string[] };
  try {
    const counts = await countIds(kafkaOf(o.drPort), remoteData, `crr-soak-reader-${id}`);
    for (const eid of ackedSinceReset) {
      topicCheck.acknowledgedChecked += 1;
      const n = counts.get(eid) ?? 0;
      if (n === 0) {
        topicCheck.missing += 1;
        if (topicCheck.examples.length < 10) topicCheck.examples.push(`${eid} missing on ${remoteData}`);
      } else if (n > 1) {
        topicCheck.duplicated += 1;
        if (topicCheck.examples.length < 10) topicCheck.examples.push(`${eid} ${n} times on ${remoteData}`);
      }
    }
    for (const [eid, n] of counts) if (n > 1 && writtenIds.has(eid)) topicCheck.duplicatedAny += 1;
  } catch (err) {
    failures.push(`reading ${remoteData} on DR failed: ${String(err)}`);
  }
  if (topicCheck.missing > 0 || topicCheck.duplicatedAny > 0)
    failures.push(
      `DR topic ${remoteData}: ${topicCheck.missing} acknowledged ids missing, ${topicCheck.duplicatedAny} ids more than once: ${topicCheck.examples.slice(0, 3).join('; ')}`,
    );
  if (positionsCheck.violations.length > 0) failures.push(`positions moved backwards: ${positionsCheck.violations.slice(0, 5).join('; ')}`);
  const notSurvived = faults.filter((f) => !f.survived);
  if (notSurvived.length > 0) failures.push(`${notSurvived.length} faults not recovered from: ${notSurvived.map((f) => `${f.kind} at ${f.at} s`).join(', ')}`);
  const crashes = daemons.reduce((s, d) => s + d.crashes, 0);

  // ---- clean up
  await Promise.all(daemons.map((d) => d.terminate()));
  for (const p of Object.values(proxies)) await p.close();
  try {
    await db.query(`DROP SCHEMA IF EXISTS ${pSchema} CASCADE; DROP SCHEMA IF EXISTS ${dSchema} CASCADE`);
    for (const r of [appRole, replayRole]) {
      await db.query(
        `DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '${r}') THEN EXECUTE 'DROP OWNED BY ${r}'; EXECUTE 'DROP ROLE ${r}'; END IF; END $$`,
      );
    }
  } catch (err) {
    log(`  cleanup of the stores: ${String(err)}`);
  }
  await db.end();
  await emptyBucket(s3, bucket).catch(() => undefined);
  s3.destroy();
  await deleteTopics(kafkaOf(o.primaryPort), (t) => t.startsWith(prefix)).catch(() => undefined);
  await deleteTopics(kafkaOf(o.drPort), (t) => t.startsWith(`${src}.`) || t === positionsTopicName(src)).catch(() => undefined);

  const table = FAULT_KINDS.map((kind) => ({
    kind,
    injected: faults.filter((f) => f.kind === kind).length,
    survived: faults.filter((f) => f.kind === kind && f.survived).length,
    daemonExits: faults.filter((f) => f.kind === kind).reduce((n, f) => n + f.daemonExits, 0),
  })).filter((r) => r.injected > 0);
  return {
    seed: o.seed,
    seconds: o.seconds,
    faultKinds: enabled,
    ok: failures.length === 0,
    failures,
    faults,
    table,
    events: { ...events, acknowledgedPerSecond: Math.round((events.acknowledged / writeSeconds) * 10) / 10 },
    checks: { dr: drCheck, primary: pCheck, topic: topicCheck, positions: positionsCheck },
    equal: { verified, secondsToEqual, output: verifyOut },
    daemonCrashes: crashes,
    syncBreaks,
  };
}

/** Reads a topic from the beginning to its current end (read_committed) and counts event ids. */
async function countIds(kafka: KafkaClient, topic: string, groupId: string): Promise<Map<string, number>> {
  const admin = kafka.admin();
  await admin.connect();
  const ends = (await admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, high: Number(p.high), low: Number(p.low) }));
  await admin.disconnect();
  const counts = new Map<string, number>();
  const seen = new Set<string>();
  const past = new Map<number, number>();
  const consumer = kafka.consumer({ groupId, readUncommitted: false, maxWaitTimeInMs: 200 });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const at = `${batch.partition}:${m.offset}`;
        if (seen.has(at)) continue; // a rebalance re-delivers: the same offset is the same record
        seen.add(at);
        try {
          const e = JSON.parse(m.value?.toString() ?? 'null') as { id?: string } | null;
          if (e?.id) counts.set(e.id, (counts.get(e.id) ?? 0) + 1);
        } catch {
          // not an event
        }
      }
      past.set(batch.partition, Math.max(past.get(batch.partition) ?? 0, Number(batch.lastOffset()) + 1));
    },
  });
  const deadline = Date.now() + 120_000;
  while (!ends.every((e) => e.high <= e.low || (past.get(e.partition) ?? 0) >= e.high)) {
    if (Date.now() > deadline) {
      await consumer.disconnect();
      throw new Error(`${topic}: the end was not reached within 120 s`);
    }
    await sleep(200);
  }
  await consumer.disconnect();
  return counts;
}

async function deleteTopics(kafka: KafkaClient, which: (t: string) => boolean): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter(which);
    if (topics.length > 0) await admin.deleteTopics({ topics });
  } finally {
    await admin.disconnect();
  }
}

async function emptyBucket(s3: S3Client, Bucket: string): Promise<void> {
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket, ContinuationToken }));
    const keys = (page.Contents ?? []).map((x) => ({ Key: x.Key! }));
    if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  await s3.send(new DeleteBucketCommand({ Bucket }));
}

/** The report as text: faults table, figures, checks, verdict. */
export function renderReport(r: SoakReport): string {
  const lines: string[] = [];
  const w = Math.max(10, ...r.table.map((t) => t.kind.length));
  const row = (c: string[]): string => `${c[0]!.padEnd(w)}  ${c[1]!.padStart(8)}  ${c[2]!.padStart(8)}  ${c[3]!.padStart(12)}`;
  lines.push('', row(['FAULT KIND', 'INJECTED', 'SURVIVED', 'DAEMON EXITS']));
  for (const t of r.table) lines.push(row([t.kind, String(t.injected), String(t.survived), String(t.daemonExits)]));
  const sum = (f: (t: SoakReport['table'][number]) => number): string => String(r.table.reduce((n, t) => n + f(t), 0));
  lines.push(`${row(['total', sum((t) => t.injected), sum((t) => t.survived), sum((t) => t.daemonExits)])}   (${r.table.length} kinds)`);
  const e = r.events;
  const c = r.checks;
  lines.push(
    '',
    `seed ${r.seed}, ${r.seconds} s of faults, kinds enabled: ${r.faultKinds.join(', ')}`,
    `events: ${e.written} written in ${e.writeBatches} batches, ${e.acknowledged} acknowledged (${e.acknowledgedPerSecond}/s), ${e.unacknowledged} not acknowledged (${e.failedBatches} batches)`,
    `crr verify: ${r.equal.verified ? `EQUAL ${r.equal.secondsToEqual} s after the faults stopped` : 'NOT EQUAL'}`,
    `DR store: ${c.dr.entitiesChecked} entities; lost ${c.dr.lost}, stale ${c.dr.stale}, resurrected ${c.dr.resurrected}, unexpected ${c.dr.unexpected}`,
    `primary store: ${c.primary.entitiesChecked} entities; lost ${c.primary.lost}, stale ${c.primary.stale}, resurrected ${c.primary.resurrected}, unexpected ${c.primary.unexpected}`,
    `DR remote topic: ${c.topic.acknowledgedChecked} acknowledged ids checked; missing ${c.topic.missing}, more than once ${c.topic.duplicatedAny}`,
    `positions: ${c.positions.samples} samples, ${c.positions.decreases} decreases (${c.positions.allowedDecreases} allowed: ${Object.entries(
      c.positions.allowedReasons,
    )
      .map(([k, v]) => `${v} ${k}`)
      .join('; ')}), ${c.positions.violations.length} violations`,
    `daemons that exited by themselves (restarted, as a supervisor would): ${r.daemonCrashes}; sync breaks: ${r.syncBreaks}`,
    r.ok ? 'SOAK PASSED' : `SOAK FAILED:\n  ${r.failures.join('\n  ')}`,
  );
  return lines.join('\n');
}
