// Helper of scripts/bench.sh, phase 7 (npm run bench): replay throughput of crr (events/s) into
// PostgreSQL and into PGlite, each next to the ceiling of plain batched inserts of the same rows
// into the same kind of database, measured in the same run. Runnable alone (BENCH_MIRROR=0 npm
// run bench runs only this phase).
//
// Usage: node scripts/bench/replay.mjs --dir D --out F --ts TS --broker B [--events N]
//          [--stores postgres,pglite] [--pg-url URL] [--partitions P] [--timeout S] [--settle S]
//          [--keep 0|1] [--node-args "..."] [--git REV]
//
//  1. generates N deterministic change events (seeded PRNG) into D/events.ndjson (no envelope):
//     4 metadata events (two vertex types, two edge types), then ~70% UPSERT_VERTEX (Person 3/4,
//     Company 1/4, over id spaces of 0.4·N and 0.1·N ids, 3–5 attributes), ~20% UPSERT_EDGE
//     (WORKS_AT, KNOWS), ~6% DELETE_VERTEX and ~4% DELETE_EDGE (of an edge upserted before).
//     It also computes the rows these events leave in a store (the "net rows": vertices, edges
//     and catalog rows, with upserts merged and deletes applied, as src/store/batch-plan.ts does)
//  2. `crr write` appends them once to <prefix>.data (P partitions) and <prefix>.metadata of the
//     primary; wall time of the process                                        -> "writer"
//     Both store types replay these same topics: one config per store type with its own cluster
//     alias (so its own consumer group), and replay positions live in the store, so a fresh
//     store replays from offset 0.
//  3. per store type: `crr replay --exit-when-caught-up` into a fresh store (postgres: schema
//     crr_bench_<ts>; pglite: a dataDir under D); wall time from process start to exit
//                                                                              -> "replay into <store>"
//     Its config has http.port 0; the bench passes --http-port with a free port and polls
//     /status every 250 ms for progress and the steady rate (events applied between the first
//     and the last answers that showed applied events); peak RSS and CPU from /usr/bin/time -v.
//     Then (untimed) the store is checked to hold exactly the net rows: the order-independent
//     digest `crr verify` computes over vertices, edges and catalog, against the ceiling's.
//  4. per store type, the ceiling: this process inserts the net rows into fresh tables of the
//     same kind of database (postgres: a fresh schema on the same server, one `pg` connection;
//     pglite: a fresh dataDir, PGlite in this process), created with the DDL of the store's
//     migration (src/store/migrations.ts: same primary keys and indexes), 5000 rows per INSERT and one
//     transaction per INSERT, no crr code in the timed path. Two plain ways, both reported, the
//     faster one is the ceiling: multi-row INSERT ... VALUES with bind parameters, and INSERT ...
//     SELECT FROM jsonb_to_recordset($1) (one JSON parameter, as the store writes). Timed from
//     the first BEGIN to the last COMMIT; events/s = N / that time (the rows are the end state
//     of all N events: the ceiling executes no delete and no merge)       -> "ceiling <store>"
//  5. table and ratios replay/ceiling on stdout, JSON to --out
//  6. drops the schemas, removes the PGlite directories and the events file, deletes the topics,
//     the consumer groups and the published cluster states (tombstones) — unless --keep 1
//
// Progress goes to stderr, results to stdout. Exit 1 with a message on any failure (after the
// clean-up); SIGINT/SIGTERM stop the running crr process and clean up.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, totalmem } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import kafkajs from 'kafkajs';
import pg from 'pg';
import { mulberry32 } from '../../dist/util/prng.js'; // seeded: the same N gives the same events on every run

const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const CRR = join(ROOT, 'bin/crr.js');
const BATCH_ROWS = 5000; // = replay.maxBatchEvents' default: rows per INSERT and per transaction in the ceiling
const POLL_MS = 250;
const PROGRESS_EVERY_MS = 3000;
const SEED = 0x5eed2024;
const TIME_BIN = '/usr/bin/time';

// ------------------------------------------------------------------ helpers --

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) fail(`unexpected argument ${a}`);
    const v = argv[i + 1];
    if (v === undefined || (v.startsWith('--') && a !== '--node-args')) fail(`option ${a} needs a value`);
    opts[a.slice(2)] = v;
    i++;
  }
  return opts;
}

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmtInt = (n) => (n === undefined || Number.isNaN(n) ? '-' : Math.round(n).toLocaleString('en-US'));
const secs = (ms) => (ms / 1000).toFixed(1);
const say = (line) => process.stderr.write(`${line}\n`);
const step = (title) => process.stderr.write(`\n\x1b[1m-- ${title}\x1b[0m\n`);
const rel = (p) => relative(ROOT, p) || '.';

function loadavg() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return undefined;
  }
}

function kafka(broker) {
  return new Kafka({
    clientId: 'crr-bench-replay',
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

/** A TCP port free on 127.0.0.1 right now (for crr's /status). */
function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => res(port));
    });
  });
}

// --------------------------------------------------------------- generation --

const CITIES = [
  'Amsterdam',
  'Berlin',
  'Cairo',
  'Dublin',
  'Edinburgh',
  'Florence',
  'Geneva',
  'Helsinki',
  'Istanbul',
  'Jakarta',
  'Kyoto',
  'Lisbon',
  'Madrid',
  'Nairobi',
  'Oslo',
  'Paris',
  'Quito',
  'Rome',
  'Seoul',
  'Toronto',
];
const COUNTRIES = ['DE', 'FR', 'GB', 'IE', 'IT', 'JP', 'KE', 'NL', 'NO', 'PT', 'US'];
const ROLES = ['engineer', 'manager', 'analyst', 'designer', 'operator'];

const METADATA_EVENTS = [
  {
    op: 'CREATE_VERTEX_TYPE',
    name: 'Person',
    primaryIdType: 'STRING',
    attributes: [
      { name: 'name', type: 'STRING' },
      { name: 'age', type: 'INT' },
      { name: 'city', type: 'STRING' },
      { name: 'score', type: 'DOUBLE' },
      { name: 'active', type: 'BOOL' },
    ],
  },
  {
    op: 'CREATE_VERTEX_TYPE',
    name: 'Company',
    primaryIdType: 'STRING',
    attributes: [
      { name: 'name', type: 'STRING' },
      { name: 'country', type: 'STRING' },
      { name: 'employees', type: 'INT' },
      { name: 'founded', type: 'INT' },
      { name: 'public', type: 'BOOL' },
    ],
  },
  {
    op: 'CREATE_EDGE_TYPE',
    name: 'WORKS_AT',
    fromType: 'Person',
    toType: 'Company',
    directed: true,
    attributes: [
      { name: 'since', type: 'INT' },
      { name: 'role', type: 'STRING' },
    ],
  },
  {
    op: 'CREATE_EDGE_TYPE',
    name: 'KNOWS',
    fromType: 'Person',
    toType: 'Person',
    directed: false,
    attributes: [
      { name: 'since', type: 'INT' },
      { name: 'weight', type: 'DOUBLE' },
    ],
  },
];

/**
 * N events (NDJSON text, without envelope) and the net rows they leave in a store: the catalog
 * rows of the metadata events, and vertices and edges with upserts merged (jsonb `||`) and
 * deletes applied; a vertex delete leaves its edges (docs/protocol.md, "Order").
 */
function generate(n) {
  const rnd = mulberry32(SEED);
  const int = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const people = Math.max(10, Math.ceil(0.4 * n));
  const companies = Math.max(10, Math.ceil(0.1 * n));
  const vid = (type) => (type === 'Person' ? `p${int(1, people)}` : `c${int(1, companies)}`);
  const lines = [];
  const mix = {};
  const vertices = new Map(); // JSON [type,id] -> attributes
  const edges = new Map(); // JSON [type,from_type,from_id,to_type,to_id] -> attributes
  const edgeRefs = []; // every upserted edge, for deletes
  const catalog = [];
  const emit = (e) => {
    lines.push(JSON.stringify(e));
    mix[e.op] = (mix[e.op] ?? 0) + 1;
  };
  const merge = (map, key, attrs) => map.set(key, { ...(map.get(key) ?? {}), ...attrs });

  for (const m of METADATA_EVENTS.slice(0, n)) {
    emit(m);
    const { op: _op, name, ...body } = m;
    catalog.push({ kind: m.op === 'CREATE_VERTEX_TYPE' ? 'vertex_type' : 'edge_type', name, body });
  }
  for (let i = lines.length; i < n; i++) {
    const r = rnd();
    if (r < 0.7) {
      const type = rnd() < 0.75 ? 'Person' : 'Company';
      const id = vid(type);
      const attributes =
        type === 'Person'
          ? { name: `person ${id} ${int(0, 9999)}`, age: int(18, 90), city: pick(CITIES) }
          : { name: `company ${id} ${int(0, 9999)}`, country: pick(COUNTRIES), employees: int(1, 100_000) };
      if (rnd() < 0.5) attributes[type === 'Person' ? 'score' : 'founded'] = type === 'Person' ? Math.round(rnd() * 10_000) / 100 : int(1850, 2024);
      if (rnd() < 0.5) attributes[type === 'Person' ? 'active' : 'public'] = rnd() < 0.5;
      emit({ op: 'UPSERT_VERTEX', vertex: { type, id }, attributes });
      merge(vertices, JSON.stringify([type, id]), attributes);
    } else if (r < 0.9) {
      const type = rnd() < 0.5 ? 'WORKS_AT' : 'KNOWS';
      const from = { type: 'Person', id: vid('Person') };
      const to = type === 'WORKS_AT' ? { type: 'Company', id: vid('Company') } : { type: 'Person', id: vid('Person') };
      const attributes =
        type === 'WORKS_AT' ? { since: int(1990, 2024), role: pick(ROLES) } : { since: int(1990, 2024), weight: Math.round(rnd() * 1000) / 1000 };
      emit({ op: 'UPSERT_EDGE', type, from, to, attributes });
      merge(edges, JSON.stringify([type, from.type, from.id, to.type, to.id]), attributes);
      edgeRefs.push({ type, from, to });
    } else if (r < 0.96 || edgeRefs.length === 0) {
      const type = rnd() < 0.75 ? 'Person' : 'Company';
      const id = vid(type);
      emit({ op: 'DELETE_VERTEX', vertex: { type, id } });
      vertices.delete(JSON.stringify([type, id]));
    } else {
      const { type, from, to } = pick(edgeRefs);
      emit({ op: 'DELETE_EDGE', type, from, to });
      edges.delete(JSON.stringify([type, from.type, from.id, to.type, to.id]));
    }
  }
  // rows as the store's tables hold them; attribute JSON serialized here, outside any timed path
  const rows = {
    vertices: [...vertices].map(([k, a]) => {
      const [type, id] = JSON.parse(k);
      return { type, id, attributes: JSON.stringify(a) };
    }),
    edges: [...edges].map(([k, a]) => {
      const [type, from_type, from_id, to_type, to_id] = JSON.parse(k);
      return { type, from_type, from_id, to_type, to_id, attributes: JSON.stringify(a) };
    }),
    catalog: catalog.map((c) => ({ ...c, body: JSON.stringify(c.body) })),
  };
  return { ndjson: `${lines.join('\n')}\n`, mix, rows, idSpace: { Person: people, Company: companies } };
}

// ---------------------------------------------------------------- databases --

/** The tables of the store's migration 1 (src/store/migrations.ts) that hold rows: same columns, keys and indexes. */
const DDL = (s) => [
  `CREATE SCHEMA ${s}`,
  `CREATE TABLE ${s}.vertices (type text NOT NULL, id text NOT NULL, attributes jsonb NOT NULL, PRIMARY KEY (type, id))`,
  `CREATE TABLE ${s}.edges (type text NOT NULL, from_type text NOT NULL, from_id text NOT NULL, to_type text NOT NULL, to_id text NOT NULL,
     attributes jsonb NOT NULL, PRIMARY KEY (type, from_type, from_id, to_type, to_id))`,
  `CREATE INDEX edges_from ON ${s}.edges (from_type, from_id)`,
  `CREATE INDEX edges_to ON ${s}.edges (to_type, to_id)`,
  `CREATE TABLE ${s}.catalog (kind text NOT NULL, name text NOT NULL, body jsonb NOT NULL, PRIMARY KEY (kind, name))`,
];

/** The order-independent digest `crr verify` compares (SqlStore.digest), and row counts. */
async function digestOf(db, s) {
  const { rows } = await db.query(
    `SELECT encode(sha256(coalesce(string_agg(h, ''::bytea ORDER BY h), ''::bytea)), 'hex') AS digest FROM (
       SELECT sha256(convert_to(jsonb_build_array('v'::text, type, id, attributes)::text, 'UTF8')) AS h FROM ${s}.vertices
       UNION ALL SELECT sha256(convert_to(jsonb_build_array('e'::text, type, from_type, from_id, to_type, to_id, attributes)::text, 'UTF8')) FROM ${s}.edges
       UNION ALL SELECT sha256(convert_to(jsonb_build_array('m'::text, kind, name, body)::text, 'UTF8')) FROM ${s}.catalog
     ) AS rows_`,
  );
  const counts = await db.query(
    `SELECT (SELECT count(*) FROM ${s}.vertices) AS v, (SELECT count(*) FROM ${s}.edges) AS e, (SELECT count(*) FROM ${s}.catalog) AS c`,
  );
  const c = counts.rows[0];
  return { digest: rows[0].digest, vertices: Number(c.v), edges: Number(c.e), catalog: Number(c.c) };
}

/** One connection with query(text, params) and tx(fn): `pg` (BEGIN/COMMIT on one client) or PGlite. */
async function openPg(url) {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  return {
    query: (text, params) => client.query(text, params),
    tx: async (fn) => {
      await client.query('BEGIN');
      try {
        await fn((text, params) => client.query(text, params));
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    },
    close: () => client.end(),
  };
}

async function openPglite(dir) {
  const db = new PGlite(dir);
  await db.waitReady;
  return {
    query: (text, params) => db.query(text, params),
    tx: (fn) => db.transaction((t) => fn((text, params) => t.query(text, params))),
    close: () => db.close(),
  };
}

const TABLES = {
  vertices: ['type', 'id', 'attributes'],
  edges: ['type', 'from_type', 'from_id', 'to_type', 'to_id', 'attributes'],
  catalog: ['kind', 'name', 'body'],
};
const JSONB = new Set(['attributes', 'body']);

/** The statement of one batch: `values` (bind parameters) or `recordset` (one JSON parameter). */
function statement(method, s, table, batch) {
  const cols = TABLES[table];
  if (method === 'values') {
    const tuples = batch.map((_, i) => `(${cols.map((c, j) => `$${i * cols.length + j + 1}${JSONB.has(c) ? '::jsonb' : ''}`).join(', ')})`);
    const params = [];
    for (const row of batch) for (const c of cols) params.push(row[c]);
    return [`INSERT INTO ${s}.${table} (${cols.join(', ')}) VALUES ${tuples.join(', ')}`, params];
  }
  // one JSON array of row objects; the attributes are JSON text already and are embedded as they are
  const json = `[${batch.map((row) => `{${cols.map((c) => `${JSON.stringify(c)}:${JSONB.has(c) ? row[c] : JSON.stringify(row[c])}`).join(',')}}`).join(',')}]`;
  return [
    `INSERT INTO ${s}.${table} (${cols.join(', ')}) SELECT ${cols.map((c) => `r.${c}`).join(', ')} FROM jsonb_to_recordset($1::text::jsonb) AS r(${cols.map((c) => `${c} ${JSONB.has(c) ? 'jsonb' : 'text'}`).join(', ')})`,
    [json],
  ];
}

/** The ceiling: the net rows into fresh tables, BATCH_ROWS per INSERT, one transaction per INSERT. */
async function ceiling(db, s, rows, method) {
  for (const stmt of DDL(s)) await db.query(stmt);
  const load0 = loadavg();
  const cpu0 = process.cpuUsage();
  let batches = 0;
  const t0 = performance.now();
  for (const table of ['catalog', 'vertices', 'edges']) {
    const all = rows[table];
    for (let i = 0; i < all.length; i += BATCH_ROWS) {
      const [text, params] = statement(method, s, table, all.slice(i, i + BATCH_ROWS));
      await db.tx((q) => q(text, params));
      batches++;
    }
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, batches, cpuSeconds: +((cpu.user + cpu.system) / 1e6).toFixed(1), loadavgBefore: load0, loadavgAfter: loadavg() };
}

// -------------------------------------------------------------- crr processes --

/** The process running now (killed on SIGINT/SIGTERM). */
let running;

/**
 * Runs `node [nodeArgs] bin/crr.js args...` (under /usr/bin/time -v when there is one, in its
 * own process group so that a stop reaches node through time), stdout/stderr to files.
 * `onPoll` runs every POLL_MS while it runs. Resolves with the wall time, exit code and the
 * resource use time reported; fails after `timeoutS`.
 */
async function runCrr({ label, args, nodeArgs = [], dir, name, timeoutS, onPoll }) {
  const outFile = join(dir, `${name}.out`);
  const errFile = join(dir, `${name}.err`);
  const timeFile = join(dir, `${name}.time`);
  const useTime = existsSync(TIME_BIN);
  const cmd = [...(useTime ? [TIME_BIN, '-v', '-o', timeFile] : []), process.execPath, ...nodeArgs, CRR, ...args];
  const out = openSync(outFile, 'w');
  const err = openSync(errFile, 'w');
  const t0 = performance.now();
  const child = spawn(cmd[0], cmd.slice(1), { cwd: ROOT, stdio: ['ignore', out, err], detached: true });
  closeSync(out);
  closeSync(err);
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal, ms: performance.now() - t0 })));
  running = { child, label };
  let result;
  let timer;
  const deadline = new Promise((res) => (timer = setTimeout(() => res('timeout'), timeoutS * 1000)));
  for (;;) {
    const r = await Promise.race([exited, sleep(POLL_MS).then(() => undefined), deadline]);
    if (r === 'timeout') {
      await stopRunning();
      clearTimeout(timer);
      throw new Error(`${label}: timed out after ${timeoutS} s (logs: ${rel(outFile)}, ${rel(errFile)})`);
    }
    if (r) {
      result = r;
      break;
    }
    if (onPoll) await onPoll(performance.now() - t0).catch(() => undefined);
  }
  clearTimeout(timer);
  running = undefined;
  const stdout = readFileSync(outFile, 'utf8');
  if (result.code !== 0) {
    const tail = `${readFileSync(errFile, 'utf8')}\n${stdout}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`${label} exited with ${result.code ?? result.signal}:\n${tail}\n(logs: ${rel(outFile)}, ${rel(errFile)})`);
  }
  return { ...result, stdout, time: useTime ? parseTimeV(timeFile) : undefined };
}

/** GNU time -v: peak RSS, CPU seconds. */
function parseTimeV(file) {
  try {
    const t = readFileSync(file, 'utf8');
    const num = (re) => Number(re.exec(t)?.[1]);
    return {
      peakRssMiB: +(num(/Maximum resident set size \(kbytes\): (\d+)/) / 1024).toFixed(1),
      cpuSeconds: +(num(/User time \(seconds\): ([\d.]+)/) + num(/System time \(seconds\): ([\d.]+)/)).toFixed(1),
      cpuPercent: num(/Percent of CPU this job got: (\d+)%/),
    };
  } catch {
    return undefined;
  }
}

async function stopRunning() {
  const r = running;
  if (!r || r.child.exitCode !== null || r.child.signalCode !== null) return;
  const gone = new Promise((res) => r.child.once('exit', res));
  try {
    process.kill(-r.child.pid, 'SIGTERM');
  } catch {
    return;
  }
  if ((await Promise.race([gone.then(() => true), sleep(15_000).then(() => false)])) === false) {
    say(`  ${r.label} (pid ${r.child.pid}) still running 15 s after SIGTERM: SIGKILL`);
    try {
      process.kill(-r.child.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  running = undefined;
}

/**
 * The steady rate: events applied between the first and the last /status answers that showed
 * applied events, per second of the time between them; and the start-up: when the first event
 * was applied, extrapolated back from the first such answer at that rate. (The answers can be
 * seconds apart: PGlite runs in crr's process and holds its event loop while it works.)
 */
function steadyRate(series) {
  const pts = series.filter(([, n]) => n > 0);
  const [first, last] = [pts[0], pts.at(-1)];
  if (!first || last[1] <= first[1] || last[0] <= first[0]) return {};
  const rate = ((last[1] - first[1]) * 1000) / (last[0] - first[0]);
  return { steadyEventsPerSec: Math.round(rate), startupMs: Math.max(0, Math.round(first[0] - (first[1] * 1000) / rate)) };
}

/** Polls crr's /status: progress lines, and when the first and the last event were seen applied. */
function replayWatcher(label, port, total) {
  // series: [ms since start, events applied, state] of every answer; a PGlite store runs in crr's
  // process and can keep its event loop (so /status) from answering for seconds
  const w = { firstMs: undefined, lastMs: undefined, applied: 0, states: new Set(), lastPrint: 0, last: { ms: 0, n: 0 }, series: [], unanswered: 0 };
  w.poll = async (sentMs) => {
    const sent = performance.now();
    let r;
    let ms = sentMs;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/status`, { signal: AbortSignal.timeout(5000) });
      r = (await res.json()).replay;
      ms = sentMs + (performance.now() - sent); // when it answered
    } catch (err) {
      if (ms > 3000) w.unanswered++; // not listening yet during start-up
      throw err;
    }
    if (!r) return;
    w.series.push([Math.round(ms), r.eventsApplied, r.state]);
    w.states.add(r.state);
    w.applied = r.eventsApplied;
    if (w.applied > 0 && w.firstMs === undefined) w.firstMs = ms;
    if (w.applied >= total && w.lastMs === undefined) w.lastMs = ms;
    if (ms - w.lastPrint >= PROGRESS_EVERY_MS) {
      const rate = ((w.applied - w.last.n) * 1000) / Math.max(1, ms - w.last.ms);
      say(
        `  [${label}] ${secs(ms).padStart(6)} s  ${fmtInt(w.applied).padStart(9)} / ${fmtInt(total)} events (${((100 * w.applied) / total).toFixed(1)}%)  ${fmtInt(rate)} ev/s  state ${r.state}  lag ${fmtInt(r.lagRecords ?? undefined)}`,
      );
      w.lastPrint = ms;
      w.last = { ms, n: w.applied };
    }
  };
  return w;
}

// --------------------------------------------------------------------- main --

const o = parseArgs(process.argv.slice(2));
for (const k of ['dir', 'out', 'ts', 'broker']) if (o[k] === undefined) fail(`missing --${k}`);
const N = Number(o.events ?? 200_000);
const P = Number(o.partitions ?? 6);
const TIMEOUT_S = Number(o.timeout ?? 1200);
const SETTLE_S = Number(o.settle ?? 3);
const KEEP = o.keep === '1';
const STORES = (o.stores ?? 'postgres,pglite').split(',').filter(Boolean);
const PG_URL = o['pg-url'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const NODE_ARGS = (o['node-args'] ?? '').split(/\s+/).filter(Boolean);
if (!Number.isSafeInteger(N) || N < 10) fail('--events must be an integer >= 10');
if (!Number.isSafeInteger(P) || P < 1) fail('--partitions must be a positive integer');
for (const s of STORES) if (s !== 'postgres' && s !== 'pglite') fail(`--stores: unknown store type "${s}" (postgres, pglite)`);
if (STORES.length === 0) fail('--stores: none given');
if (!/^\d+$/.test(o.ts)) fail('--ts must be digits (a timestamp)');

const DIR = resolve(o.dir);
mkdirSync(DIR, { recursive: true });
const TS = o.ts;
const PREFIX = `crr-bench-replay-${TS}`;
const TOPICS = { data: `${PREFIX}.data`, metadata: `${PREFIX}.metadata`, deadLetters: `${PREFIX}.dead-letters.internal` };
const ALIAS = { postgres: `rbpg${TS}`, pglite: `rbpglite${TS}` };
const PG_SCHEMA = `crr_bench_${TS}`; // crr's store in the postgres run; ceilings: <it>_ceil_<method>
const PGLITE_DIR = join(DIR, 'pglite-replay');
const METHODS = ['values', 'recordset'];
const METHOD_NAME = { values: 'INSERT ... VALUES', recordset: 'INSERT ... jsonb_to_recordset' };
const notes = [];

/** What the clean-up removes. */
const created = { schemas: [], dirs: [], topics: [], groups: [], aliases: [], files: [] };
let cleaning;
function cleanup() {
  cleaning ??= (async () => {
    await stopRunning();
    step('replay bench: cleaning up');
    if (KEEP) {
      say(
        `  BENCH_KEEP=1: keeping topics ${created.topics.join(', ') || '-'}; schemas ${created.schemas.join(', ') || '-'}; directories ${created.dirs.map(rel).join(', ') || '-'}`,
      );
      return;
    }
    if (created.schemas.length > 0) {
      try {
        const db = await openPg(PG_URL);
        for (const s of created.schemas) await db.query(`DROP SCHEMA IF EXISTS "${s}" CASCADE`);
        await db.close();
        say(`  dropped schemas ${created.schemas.join(', ')}`);
      } catch (err) {
        say(`  warning: could not drop schemas ${created.schemas.join(', ')}: ${err.message}`);
      }
    }
    for (const p of [...created.dirs, ...created.files]) rmSync(p, { recursive: true, force: true });
    if (created.dirs.length + created.files.length > 0) say(`  removed ${[...created.dirs, ...created.files].map(rel).join(', ')}`);
    if (created.topics.length + created.groups.length + created.aliases.length > 0) {
      const client = kafka(o.broker);
      const admin = client.admin();
      try {
        await admin.connect();
        const existing = new Set(await admin.listTopics());
        const topics = created.topics.filter((t) => existing.has(t));
        if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 30_000 });
        say(`  deleted topics ${topics.join(', ') || '-'}`);
        if (created.groups.length > 0) {
          await admin.deleteGroups(created.groups).catch(() => undefined);
          say(`  deleted consumer groups ${created.groups.join(', ')}`);
        }
        if (created.aliases.length > 0 && existing.has('crr-cluster-state.internal')) {
          // the states replay published for this run's aliases: tombstones (the topic is compacted)
          const producer = client.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
          await producer.connect();
          await producer.send({ topic: 'crr-cluster-state.internal', acks: -1, messages: created.aliases.map((a) => ({ key: a, value: null })) });
          await producer.disconnect();
          say(`  tombstoned the published states of ${created.aliases.join(', ')} in crr-cluster-state.internal`);
        }
      } catch (err) {
        say(`  warning: Kafka clean-up failed: ${err.message}`);
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    }
  })();
  return cleaning;
}
/** Set on SIGINT/SIGTERM: the exit status, once the clean-up is done. */
let interrupted;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (interrupted !== undefined) return;
    interrupted = sig === 'SIGINT' ? 130 : 143;
    say(`\nbench: replay phase interrupted (${sig})`);
    void cleanup().finally(() => process.exit(interrupted));
  });
}

function configYaml(store, alias) {
  const storeYaml =
    store === 'postgres' ? `{ type: postgres, connectionString: "${PG_URL}", schema: ${PG_SCHEMA} }` : `{ type: pglite, dataDir: "${PGLITE_DIR}" }`;
  return `# generated by scripts/bench/replay.mjs (npm run bench, replay phase)
clusters:
  ${alias}:
    bootstrapServers: ["${o.broker}"]
    changeTopics: { data: ${TOPICS.data}, metadata: ${TOPICS.metadata}, dataPartitions: ${P} }
    store: ${storeYaml}
replay:
  # the end of the run is noticed at this interval (default 2000 ms)
  lagPollIntervalMs: 200
  deadLetterTopic: ${TOPICS.deadLetters}
http: { host: 127.0.0.1, port: 0 }
log: { level: warn }
`;
}

async function main() {
  const meta = {
    timestamp: TS,
    date: new Date().toISOString(),
    events: N,
    stores: STORES,
    partitions: P,
    broker: o.broker,
    postgres: STORES.includes('postgres') ? PG_URL.replace(/:[^:@/]*@/, ':***@') : undefined,
    topics: TOPICS,
    git: o.git,
    distBuiltAt: existsSync(join(ROOT, 'dist/cli/main.js')) ? statSync(join(ROOT, 'dist/cli/main.js')).mtime.toISOString() : undefined,
    host: { cpus: cpus().length, memTotalMiB: Math.round(totalmem() / 2 ** 20), node: process.version },
    batchRows: BATCH_ROWS,
    replayConfig: { maxBatchEvents: '5000 (default)', lagPollIntervalMs: 200, other: 'defaults' },
    runDir: rel(DIR),
    loadavgStart: loadavg(),
  };

  if (STORES.includes('postgres')) {
    try {
      const db = await openPg(PG_URL);
      const v = await db.query('SHOW server_version');
      const sc = await db.query('SHOW synchronous_commit');
      meta.postgresVersion = v.rows[0].server_version;
      meta.postgresSynchronousCommit = sc.rows[0].synchronous_commit;
      await db.close();
    } catch (err) {
      throw new Error(`PostgreSQL at ${PG_URL} is not reachable (${err.message}); set BENCH_PG_URL, or BENCH_REPLAY_STORES=pglite`);
    }
  }

  // 1. events
  step(`7.1 generating ${fmtInt(N)} change events (seed ${SEED.toString(16)})`);
  const gen = generate(N);
  const eventsFile = join(DIR, 'events.ndjson');
  writeFileSync(eventsFile, gen.ndjson);
  created.files.push(eventsFile);
  const netRows = { vertices: gen.rows.vertices.length, edges: gen.rows.edges.length, catalog: gen.rows.catalog.length };
  netRows.total = netRows.vertices + netRows.edges + netRows.catalog;
  meta.mix = gen.mix;
  meta.idSpace = gen.idSpace;
  meta.netRows = netRows;
  meta.eventsFileMiB = +(Buffer.byteLength(gen.ndjson) / 2 ** 20).toFixed(1);
  say(
    `  ${Object.entries(gen.mix)
      .map(([k, v]) => `${k} ${fmtInt(v)}`)
      .join(', ')}`,
  );
  say(
    `  net rows: ${fmtInt(netRows.vertices)} vertices, ${fmtInt(netRows.edges)} edges, ${netRows.catalog} catalog = ${fmtInt(netRows.total)}; ${rel(eventsFile)} ${meta.eventsFileMiB} MiB`,
  );

  const configs = {};
  for (const s of STORES) {
    configs[s] = join(DIR, `crr-${s}.yaml`);
    writeFileSync(configs[s], configYaml(s, ALIAS[s]));
  }

  // 2. writer
  const wAlias = ALIAS[STORES[0]];
  step(`7.2 writer: crr write --cluster ${wAlias} -> ${TOPICS.data} (${P} partitions), ${TOPICS.metadata}`);
  created.topics.push(TOPICS.data, TOPICS.metadata);
  const wLoad = loadavg();
  const w = await runCrr({
    label: 'crr write',
    args: ['write', '--config', configs[STORES[0]], '--cluster', wAlias, '--file', eventsFile],
    dir: DIR,
    name: 'writer',
    timeoutS: TIMEOUT_S,
  });
  const wrote = /wrote (\d+) events/.exec(w.stdout);
  if (!wrote || Number(wrote[1]) !== N) throw new Error(`crr write: expected "wrote ${N} events", got: ${w.stdout.trim()}`);
  const writer = {
    events: N,
    ms: Math.round(w.ms),
    eventsPerSec: N / (w.ms / 1000),
    ...w.time,
    printed: w.stdout.trim(),
    loadavgBefore: wLoad,
    loadavgAfter: loadavg(),
  };
  say(`  ${w.stdout.trim()}`);
  say(`  [writer] ${fmtInt(N)} events in ${secs(w.ms)} s = ${fmtInt(writer.eventsPerSec)} events/s; peak RSS ${writer.peakRssMiB ?? '?'} MiB`);

  // 3.-4. per store type
  const results = {};
  let phase = 3;
  for (const s of STORES) {
    await sleep(SETTLE_S * 1000);
    const alias = ALIAS[s];
    const port = await freePort();
    step(`7.${phase++} replay into ${s}: crr replay --cluster ${alias} --exit-when-caught-up (logs ${rel(DIR)}/replay-${s}.*)`);
    created.groups.push(`crr-replay-${alias}`);
    if (!created.topics.includes(TOPICS.deadLetters)) created.topics.push(TOPICS.deadLetters); // replay creates it at start
    created.aliases.push(alias);
    if (s === 'postgres') created.schemas.push(PG_SCHEMA);
    else created.dirs.push(PGLITE_DIR);
    const watch = replayWatcher(`replay into ${s}`, port, N);
    const rLoad = loadavg();
    const r = await runCrr({
      label: `crr replay (${s})`,
      args: ['replay', '--config', configs[s], '--cluster', alias, '--exit-when-caught-up', '--http-port', String(port)],
      nodeArgs: NODE_ARGS,
      dir: DIR,
      name: `replay-${s}`,
      timeoutS: TIMEOUT_S,
      onPoll: watch.poll,
    });
    const caught = /caught up: (\d+) events applied/.exec(r.stdout);
    const applied = caught ? Number(caught[1]) : undefined;
    if (applied !== N) throw new Error(`crr replay (${s}): expected ${N} events applied, it printed: ${r.stdout.trim().split('\n').at(-1)}`);
    const warnLines = r.stdout.split('\n').filter((l) => /"level":"?(40|50|60|warn|error|fatal)/.test(l));
    if (warnLines.length > 0) notes.push(`replay into ${s} logged ${warnLines.length} warn/error lines (see ${rel(DIR)}/replay-${s}.out)`);
    const replay = {
      events: N,
      ms: Math.round(r.ms),
      eventsPerSec: N / (r.ms / 1000),
      firstSeenAppliedMs: watch.firstMs !== undefined ? Math.round(watch.firstMs) : undefined,
      allSeenAppliedMs: watch.lastMs !== undefined ? Math.round(watch.lastMs) : undefined,
      ...steadyRate(watch.series),
      ...r.time,
      statesSeen: [...watch.states],
      statusSeries: watch.series,
      statusUnanswered: watch.unanswered,
      printed: caught[0],
      loadavgBefore: rLoad,
      loadavgAfter: loadavg(),
    };
    // steady: from the first poll that saw an applied event to the exit (the interval ends with the caught-up check)
    say(
      `  [replay into ${s}] ${fmtInt(N)} events in ${secs(r.ms)} s = ${fmtInt(replay.eventsPerSec)} events/s (${replay.steadyEventsPerSec !== undefined ? `steady ${fmtInt(replay.steadyEventsPerSec)} events/s after a start-up of ~${secs(replay.startupMs)} s` : 'steady rate n/a: /status answered fewer than twice while it applied'}); peak RSS ${replay.peakRssMiB ?? '?'} MiB, CPU ${replay.cpuSeconds ?? '?'} s`,
    );

    // what the store holds (untimed)
    const db = s === 'postgres' ? await openPg(PG_URL) : await openPglite(PGLITE_DIR);
    const storeDigest = await digestOf(db, s === 'postgres' ? `"${PG_SCHEMA}"` : '"crr"');
    // gone before the ceilings run (no autovacuum of replay's dead tuples meanwhile), unless kept
    if (s === 'postgres' && !KEEP) await db.query(`DROP SCHEMA "${PG_SCHEMA}" CASCADE`);
    await db.close();
    if (s === 'pglite' && !KEEP) rmSync(PGLITE_DIR, { recursive: true, force: true });

    // ceilings
    const ceilings = {};
    for (const method of METHODS) {
      await sleep(SETTLE_S * 1000);
      let cdb;
      let schema;
      const open0 = performance.now();
      if (s === 'postgres') {
        schema = `${PG_SCHEMA}_ceil_${method}`;
        created.schemas.push(schema);
        cdb = await openPg(PG_URL);
      } else {
        const dir = join(DIR, `pglite-ceiling-${method}`);
        created.dirs.push(dir);
        schema = 'crr';
        cdb = await openPglite(dir);
      }
      const openMs = Math.round(performance.now() - open0); // untimed: a fresh PGlite dataDir runs initdb
      step(
        `7.${phase++} ceiling ${s}: ${fmtInt(netRows.total)} rows, ${METHOD_NAME[method]}, ${BATCH_ROWS} rows per statement and transaction (${s === 'postgres' ? `schema ${schema}, one pg connection` : 'PGlite in this process, fresh dataDir'})`,
      );
      try {
        const c = await ceiling(cdb, `"${schema}"`, gen.rows, method);
        c.digest = await digestOf(cdb, `"${schema}"`);
        c.eventsPerSec = N / (c.ms / 1000);
        c.rowsPerSec = netRows.total / (c.ms / 1000);
        c.ms = Math.round(c.ms);
        c.openMs = openMs;
        ceilings[method] = c;
        say(
          `  [ceiling ${s} ${method}] ${fmtInt(netRows.total)} rows in ${c.batches} transactions, ${secs(c.ms)} s = ${fmtInt(c.rowsPerSec)} rows/s = ${fmtInt(c.eventsPerSec)} events/s (opening the database, untimed: ${secs(openMs)} s)`,
        );
      } finally {
        await cdb.close();
      }
      if (s === 'pglite' && !KEEP) rmSync(join(DIR, `pglite-ceiling-${method}`), { recursive: true, force: true });
    }
    const best = METHODS.reduce((a, b) => (ceilings[b].ms < ceilings[a].ms ? b : a));
    const sameRows = METHODS.every((m) => ceilings[m].digest.digest === storeDigest.digest);
    if (!sameRows) {
      notes.push(
        `${s}: the replayed store and the ceiling's rows DIFFER (store ${JSON.stringify(storeDigest)}, ceiling ${JSON.stringify(ceilings[best].digest)})`,
      );
      say(`  WARNING: the replayed ${s} store does not hold the same rows as the ceiling (see the JSON)`);
    } else {
      say(
        `  the replayed ${s} store holds exactly the ceiling's rows (digest ${storeDigest.digest.slice(0, 16)}..., ${fmtInt(storeDigest.vertices)} vertices, ${fmtInt(storeDigest.edges)} edges, ${storeDigest.catalog} catalog)`,
      );
    }
    results[s] = {
      replay,
      ceilings,
      ceiling: { method: best, ...ceilings[best] },
      storeDigest,
      sameRows,
      ratio: +(replay.eventsPerSec / ceilings[best].eventsPerSec).toFixed(3),
      steadyRatio: replay.steadyEventsPerSec ? +(replay.steadyEventsPerSec / ceilings[best].eventsPerSec).toFixed(3) : undefined,
    };
  }

  // 5. report
  const f1 = (n) => (n === undefined ? '-' : Number(n).toFixed(1));
  const header = ['', 'events/s', 'rows/s', 'time s', 'startup s', 'steady ev/s', 'peak RSS MiB', 'CPU s'];
  const table = [
    ['writer (crr write, whole process)', fmtInt(writer.eventsPerSec), '-', f1(writer.ms / 1000), '-', '-', f1(writer.peakRssMiB), f1(writer.cpuSeconds)],
  ];
  for (const s of STORES) {
    const { replay, ceilings } = results[s];
    table.push([
      `replay into ${s}`,
      fmtInt(replay.eventsPerSec),
      '-',
      f1(replay.ms / 1000),
      f1(replay.startupMs === undefined ? undefined : replay.startupMs / 1000),
      fmtInt(replay.steadyEventsPerSec),
      f1(replay.peakRssMiB),
      f1(replay.cpuSeconds),
    ]);
    for (const m of METHODS) {
      const c = ceilings[m];
      table.push([
        `ceiling ${s} (${METHOD_NAME[m]})${results[s].ceiling.method === m ? ' *' : ''}`,
        fmtInt(c.eventsPerSec),
        fmtInt(c.rowsPerSec),
        f1(c.ms / 1000),
        '-',
        '-',
        '-',
        s === 'pglite' ? f1(c.cpuSeconds) : '-',
      ]);
    }
  }
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [];
  out.push(
    `\nreplay: ${fmtInt(N)} events (${Object.entries(gen.mix)
      .map(([k, v]) => `${fmtInt(v)} ${k}`)
      .join(', ')}), ${P} data partitions;`,
  );
  out.push(
    `net rows ${fmtInt(netRows.total)} (${fmtInt(netRows.vertices)} vertices, ${fmtInt(netRows.edges)} edges, ${netRows.catalog} catalog); load average ${(loadavg() ?? []).join(' ')} on ${cpus().length} CPUs`,
  );
  out.push(line(header));
  out.push(widths.map((wd) => '-'.repeat(wd)).join('  '));
  for (const r of table) out.push(line(r));
  out.push('');
  for (const s of STORES) {
    const r = results[s];
    const x = (v) => (v === undefined ? 'n/a' : `${v.toFixed(v < 0.1 ? 3 : 2)}x`);
    out.push(`${`replay/ceiling ${s}`.padEnd(24)} ${x(r.ratio)}   (steady: ${x(r.steadyRatio)}; same rows: ${r.sameRows ? 'yes' : 'NO'})`);
  }
  out.push('writer, replay: wall time of the crr process from start to exit (replay: until --exit-when-caught-up saw lag 0), events/s = N / it;');
  out.push("  steady ev/s = events applied between the first and the last answers of crr's /status (polled every 250 ms) that showed applied events, per");
  out.push('  second between them; startup = when the first event was applied, extrapolated from the first such answer at that rate (PGlite runs in');
  out.push(
    "  crr's process and holds its event loop: those answers are seconds apart). Replay config: defaults (maxBatchEvents 5000) but lagPollIntervalMs 200.",
  );
  out.push(
    `ceiling: this process inserts the ${fmtInt(netRows.total)} net rows (the end state of the N events; no deletes, no merges) into fresh tables with the keys and`,
  );
  out.push(`  indexes of the store's migration, ${BATCH_ROWS} rows per INSERT, one transaction per INSERT, one connection; time = first BEGIN to last COMMIT;`);
  out.push(
    '  events/s = N / time. * = the faster method, used for the ratio. ceiling CPU s: this process (PGlite runs in it; the PostgreSQL server is not counted).',
  );
  for (const n of notes) out.push(`note: ${n}`);
  process.stdout.write(`${out.join('\n')}\n`);
  writeFileSync(o.out, `${JSON.stringify({ ...meta, writer, results, notes, loadavgEnd: loadavg() }, null, 2)}\n`);
  process.stdout.write(`JSON: ${rel(resolve(o.out))}\n`);
}

let rc = 0;
try {
  await main();
} catch (err) {
  // after a signal, the failure is the stop of the running crr process: not worth a message
  if (interrupted === undefined) process.stderr.write(`bench: replay phase failed: ${err?.stack ?? err}\n`);
  rc = 1;
}
await cleanup();
process.exit(interrupted ?? rc);
