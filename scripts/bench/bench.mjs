// Helper of scripts/bench.sh (npm run bench): the parts that are easier in Node than in bash —
// polling crr's /status and the clusters through KafkaJS (a JVM tool per poll would cost ~1.5 s of
// CPU on a 2-core box and disturb the measurement), per-process stats from /proc, and the report.
//
// Usage: node scripts/bench/bench.mjs <command> [--option value ...]
//   topics        --broker B                          topic names, one per line
//   wait-crr      --log F --topic T --records N --partitions P --t0 MS --pid PID --timeout S --out F
//                 polls crr's /status (port read from its log) every 200 ms until every partition
//                 of T has lag 0 and the positions add up to N; then reads /metrics and /proc
//   wait-offsets  --broker B --topic T --records N --t0 MS --pid PID --timeout S --out F [--label L]
//                 polls the sum of T's end offsets every 500 ms until it reaches N
//   wait-connect-offsets --broker B --offsets-topic O --source-topic T --remote-topic R
//                 --partitions P --records N --t0 MS --pid PID --timeout S --out F [--label L]
//                 reads a Kafka Connect offsets topic (read_committed) until the source offsets
//                 committed for T cover N records — the completion signal of an exactly-once
//                 MM2, whose remote topic also holds transaction markers, so that its end
//                 offsets overshoot the record count
//   group-progress --broker B --group G --topic T --records N --pid PID
//                 prints a consumer group's committed offsets every 3 s while PID lives
//   report        --dir D --out F                      table on stdout, JSON to F
//
// Every wait prints a progress line every 3 s, fails (exit 1) with a clear message when its
// timeout passes or the watched process exits, and writes its result as JSON to --out.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import kafkajs from 'kafkajs';

const { Kafka, logLevel } = kafkajs;
process.env.KAFKAJS_NO_PARTITIONER_WARNING ??= '1';

const PROGRESS_EVERY_MS = 3000;
const MIB = 1024 * 1024;

// ------------------------------------------------------------------ helpers --

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) fail(`unexpected argument ${a}`);
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) fail(`option ${a} needs a value`);
    opts[a.slice(2)] = v;
    i++;
  }
  return opts;
}

function need(opts, ...names) {
  for (const n of names) if (opts[n] === undefined) fail(`missing --${n}`);
}

function fail(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(1);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const fmtInt = (n) => Math.round(n).toLocaleString('en-US');
const secs = (ms) => (ms / 1000).toFixed(1);

function kafka(broker, clientId) {
  return new Kafka({
    clientId,
    brokers: [broker],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    requestTimeout: 30000,
    retry: { retries: 5, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Peak and current RSS (MiB) and CPU seconds of a process, from /proc. */
function procStats(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    // /proc/PID/stat: fields after the ")" that ends the command name; utime/stime are 14/15
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = 100; // USER_HZ; 100 on every Linux that matters
    return {
      name: /^Name:\s+(\S+)/m.exec(status)?.[1],
      peakRssMiB: +(kb('VmHWM') / 1024).toFixed(1),
      rssMiB: +(kb('VmRSS') / 1024).toFixed(1),
      cpuSeconds: +((Number(f[11]) + Number(f[12])) / ticks).toFixed(1),
    };
  } catch {
    return undefined;
  }
}

/** Tracks progress: prints a line every few seconds, and the time the first record arrived. */
class Progress {
  constructor(label, records, t0) {
    Object.assign(this, { label, records, t0, lastPrint: 0, firstMs: undefined, last: { t: t0, n: 0 } });
  }
  update(done, extra = '') {
    const now = Date.now();
    if (done > 0 && this.firstMs === undefined) this.firstMs = now - this.t0;
    if (now - this.lastPrint >= PROGRESS_EVERY_MS) {
      const rate = ((done - this.last.n) * 1000) / Math.max(1, now - this.last.t);
      const pct = this.records > 0 ? ((100 * done) / this.records).toFixed(1) : '?';
      process.stdout.write(
        `  [${this.label}] ${secs(now - this.t0).padStart(6)} s  ${fmtInt(done).padStart(11)} / ${fmtInt(this.records)} records (${pct}%)  ${fmtInt(rate)} rec/s${extra ? `  ${extra}` : ''}\n`,
      );
      this.lastPrint = now;
      this.last = { t: now, n: done };
    }
  }
}

/** Runs poll() until it returns a result, failing on timeout or when the watched process dies. */
async function waitFor({ label, pid, timeoutS, intervalMs, t0 }, poll) {
  const deadline = t0 + Number(timeoutS) * 1000;
  for (;;) {
    if (pid && !alive(pid)) fail(`${label}: the process (pid ${pid}) exited before it was done; see its log`);
    const r = await poll();
    if (r) return r;
    if (Date.now() > deadline) fail(`${label}: timed out after ${timeoutS} s`);
    await sleep(intervalMs);
  }
}

async function endOffsets(admin, topic) {
  const offsets = await admin.fetchTopicOffsets(topic);
  return offsets.map((o) => ({ partition: o.partition, high: Number(o.high), low: Number(o.low) }));
}

// ------------------------------------------------------------------ commands --

async function cmdTopics(o) {
  need(o, 'broker');
  const admin = kafka(o.broker, 'crr-bench-admin').admin();
  await admin.connect();
  const topics = await admin.listTopics();
  await admin.disconnect();
  process.stdout.write(
    topics
      .sort()
      .map((t) => `${t}\n`)
      .join(''),
  );
}

/** crr: /status until lag 0 on every partition of the topic and positions summing to N. */
async function cmdWaitCrr(o) {
  need(o, 'log', 'topic', 'records', 'partitions', 't0', 'pid', 'timeout', 'out');
  const N = Number(o.records);
  const P = Number(o.partitions);
  const t0 = Number(o.t0);
  const pid = Number(o.pid);
  const label = o.label ?? 'crr';
  // the HTTP port: crr logs "serving /metrics ... on http://HOST:N" (field "port") once it listens (http.port 0 = any free one)
  const port = await waitFor({ label: `${label} (waiting for its HTTP server)`, pid, timeoutS: 60, intervalMs: 100, t0: Date.now() }, async () => {
    if (!existsSync(o.log)) return undefined;
    const m = /"component":"http"[^\n]*"port":(\d+)[^\n]*serving \/metrics/.exec(readFileSync(o.log, 'utf8'));
    return m ? Number(m[1]) : undefined;
  });
  const base = `http://127.0.0.1:${port}`;
  const progress = new Progress(label, N, t0);
  const states = new Set();
  // commits seen on /status (lastCommitAt, recordsMirrored); two commits within one poll merge
  const commits = [];
  const result = await waitFor({ label, pid, timeoutS: o.timeout, intervalMs: 200, t0 }, async () => {
    let status;
    try {
      status = await (await fetch(`${base}/status`)).json();
    } catch {
      return undefined;
    }
    const flows = status.flows ?? [];
    for (const f of flows) {
      states.add(f.state);
      if (f.lastCommitAt && f.lastCommitAt !== commits.at(-1)?.at) commits.push({ at: f.lastCommitAt, records: f.recordsMirrored });
    }
    const parts = flows.flatMap((f) => f.partitions ?? []).filter((p) => p.topic === o.topic);
    const done = parts.reduce((n, p) => n + p.position, 0);
    const lag = parts.reduce((n, p) => n + p.lagRecords, 0);
    progress.update(done, `lag ${fmtInt(lag)}  state ${flows.map((f) => f.state).join(',')}`);
    if (parts.length === P && parts.every((p) => p.lagRecords === 0) && done === N) {
      return { elapsedMs: Date.now() - t0, parts, flows };
    }
    return undefined;
  });
  const proc = procStats(pid);
  const metrics = parseMetrics(await (await fetch(`${base}/metrics`)).text());
  const committed = sumMetric(metrics, 'crr_mirror_transactions_total', { result: 'committed' });
  const aborted = sumMetric(metrics, 'crr_mirror_transactions_total', { result: 'aborted' });
  const mirrored = sumMetric(metrics, 'crr_mirror_records_total');
  const activeMs = result.elapsedMs - (progress.firstMs ?? 0);
  const flow = result.flows[0] ?? {};
  const out = {
    label,
    records: N,
    elapsedMs: result.elapsedMs,
    firstRecordMs: progress.firstMs,
    positions: result.parts.map((p) => ({ partition: p.partition, position: p.position, logEndOffset: p.logEndOffset })),
    peakRssMiB: proc?.peakRssMiB,
    rssMiB: proc?.rssMiB,
    cpuSeconds: proc?.cpuSeconds,
    httpPort: port,
    statesSeen: [...states],
    restarts: flow.restarts,
    lastError: flow.lastError,
    metrics: {
      transactionsCommitted: committed,
      transactionsAborted: aborted,
      recordsMirrored: mirrored,
      bytesMirrored: sumMetric(metrics, 'crr_mirror_bytes_total'),
      taskRestarts: sumMetric(metrics, 'crr_mirror_task_restarts_total'),
      recordsPerTransaction: committed > 0 ? Math.round(mirrored / committed) : undefined,
      msPerTransaction: committed > 0 ? +(activeMs / committed).toFixed(1) : undefined,
      // commit time minus source timestamp: in a catch-up mostly the age of the backlog
      latencyMeanMs: meanLatencyMs(metrics),
    },
    observedCommits: commitStats(commits),
    loadavg: loadavg(),
  };
  writeFileSync(o.out, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(
    `  [${label}] done: ${fmtInt(N)} records in ${secs(out.elapsedMs)} s (first record after ${secs(out.firstRecordMs ?? 0)} s); ` +
      `${fmtInt(committed)} transactions, ${fmtInt(out.metrics.recordsPerTransaction ?? 0)} records and ${out.metrics.msPerTransaction ?? '?'} ms per transaction; peak RSS ${out.peakRssMiB} MiB\n`,
  );
}

/** Gaps between the commits seen on /status, and the records each added. */
function commitStats(commits) {
  const gaps = [];
  const sizes = [];
  for (let i = 1; i < commits.length; i++) {
    gaps.push(Date.parse(commits[i].at) - Date.parse(commits[i - 1].at));
    sizes.push(commits[i].records - commits[i - 1].records);
  }
  const median = (a) => (a.length ? [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] : undefined);
  return {
    seen: commits.length,
    medianGapMs: median(gaps),
    maxGapMs: gaps.length ? Math.max(...gaps) : undefined,
    medianRecords: median(sizes),
    maxRecords: sizes.length ? Math.max(...sizes) : undefined,
    series: commits.map((c) => [c.at, c.records]),
  };
}

function loadavg() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return undefined;
  }
}

/** Prometheus text format -> [{name, labels, value}] (enough for counters and histograms). */
function parseMetrics(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    rows.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return rows;
}

function sumMetric(rows, name, where = {}) {
  return rows.filter((r) => r.name === name && Object.entries(where).every(([k, v]) => r.labels[k] === v)).reduce((n, r) => n + r.value, 0);
}

function meanLatencyMs(rows) {
  const sum = sumMetric(rows, 'crr_replication_latency_seconds_sum');
  const count = sumMetric(rows, 'crr_replication_latency_seconds_count');
  return count > 0 ? Math.round((sum / count) * 1000) : undefined;
}

/** MM2 (at least once): the remote topic's end offsets add up to N. */
async function cmdWaitOffsets(o) {
  need(o, 'broker', 'topic', 'records', 't0', 'pid', 'timeout', 'out');
  const N = Number(o.records);
  const t0 = Number(o.t0);
  const pid = Number(o.pid);
  const label = o.label ?? o.topic;
  const admin = kafka(o.broker, 'crr-bench-admin').admin();
  await admin.connect();
  const progress = new Progress(label, N, t0);
  let total = 0;
  const result = await waitFor({ label, pid, timeoutS: o.timeout, intervalMs: Number(o.interval ?? 500), t0 }, async () => {
    let offsets;
    try {
      offsets = await endOffsets(admin, o.topic);
    } catch {
      progress.update(0, `(${o.topic} not there yet)`);
      return undefined; // the remote topic does not exist yet
    }
    total = offsets.reduce((n, p) => n + p.high, 0);
    progress.update(total);
    return total >= N ? { elapsedMs: Date.now() - t0, offsets } : undefined;
  });
  const proc = procStats(pid);
  await admin.disconnect();
  const out = {
    label,
    records: N,
    elapsedMs: result.elapsedMs,
    firstRecordMs: progress.firstMs,
    endOffsetSum: total,
    duplicates: total - N,
    peakRssMiB: proc?.peakRssMiB,
    rssMiB: proc?.rssMiB,
    cpuSeconds: proc?.cpuSeconds,
    loadavg: loadavg(),
  };
  writeFileSync(o.out, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(
    `  [${label}] done: ${fmtInt(total)} records in ${secs(out.elapsedMs)} s (first record after ${secs(out.firstRecordMs ?? 0)} s); peak RSS ${out.peakRssMiB} MiB\n`,
  );
}

/**
 * MM2 with exactly-once (KIP-618/KIP-710): its source offsets are committed in the same
 * transaction as the records, to the Connect offsets topic on the target. Done when the
 * committed offsets of every source partition cover N records. Key:
 * ["MirrorSourceConnector",{"cluster":"<alias>","partition":P,"topic":"<topic>"}], value:
 * {"offset":<last mirrored offset>}.
 */
async function cmdWaitConnectOffsets(o) {
  need(o, 'broker', 'offsets-topic', 'source-topic', 'remote-topic', 'partitions', 'records', 't0', 'pid', 'timeout', 'out');
  const N = Number(o.records);
  const P = Number(o.partitions);
  const t0 = Number(o.t0);
  const pid = Number(o.pid);
  const label = o.label ?? o['remote-topic'];
  const client = kafka(o.broker, 'crr-bench-eos-watch');
  const admin = client.admin();
  await admin.connect();
  // the offsets topic is created by the Connect worker at start-up
  await waitFor(
    { label: `${label} (waiting for ${o['offsets-topic']})`, pid, timeoutS: o.timeout, intervalMs: 500, t0 },
    async () => (await admin.listTopics()).includes(o['offsets-topic']) || undefined,
  );
  const committed = new Map(); // source partition -> last mirrored offset
  let doneAt;
  const covered = () => [...committed.values()].reduce((n, off) => n + off + 1, 0);
  const consumer = client.consumer({ groupId: o.group ?? `crr-bench-eos-watch-${process.pid}-${Date.now()}`, readUncommitted: false, maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topics: [o['offsets-topic']], fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ message }) => {
      try {
        const [, part] = JSON.parse(message.key.toString('utf8'));
        if (part?.topic !== o['source-topic']) return;
        const off = message.value ? JSON.parse(message.value.toString('utf8')).offset : undefined;
        if (typeof off === 'number' && off > (committed.get(part.partition) ?? -1)) committed.set(part.partition, off);
        if (doneAt === undefined && committed.size === P && covered() >= N) doneAt = Date.now();
      } catch {
        // not a MirrorSourceConnector offset record
      }
    },
  });
  const progress = new Progress(label, N, t0);
  let remoteEnd = 0;
  const result = await waitFor({ label, pid, timeoutS: o.timeout, intervalMs: 500, t0 }, async () => {
    try {
      remoteEnd = (await endOffsets(admin, o['remote-topic'])).reduce((n, p) => n + p.high, 0);
    } catch {
      // remote topic not created yet
    }
    progress.update(covered(), `(remote end offsets incl. transaction markers: ${fmtInt(remoteEnd)})`);
    return doneAt !== undefined ? { elapsedMs: doneAt - t0 } : undefined;
  });
  const proc = procStats(pid);
  await consumer.disconnect().catch(() => undefined);
  await admin.disconnect();
  const out = {
    label,
    records: N,
    elapsedMs: result.elapsedMs,
    firstRecordMs: progress.firstMs,
    sourceOffsetsCovered: covered(),
    remoteEndOffsetSum: remoteEnd,
    peakRssMiB: proc?.peakRssMiB,
    rssMiB: proc?.rssMiB,
    cpuSeconds: proc?.cpuSeconds,
    loadavg: loadavg(),
  };
  writeFileSync(o.out, `${JSON.stringify(out, null, 2)}\n`);
  process.stdout.write(
    `  [${label}] done: ${fmtInt(N)} records committed in ${secs(out.elapsedMs)} s (first commit after ${secs(out.firstRecordMs ?? 0)} s); peak RSS ${out.peakRssMiB} MiB\n`,
  );
}

/** Progress of kafka-consumer-perf-test, from its group's committed offsets (auto-commit: every 5 s). */
async function cmdGroupProgress(o) {
  need(o, 'broker', 'group', 'topic', 'records', 'pid');
  const N = Number(o.records);
  const pid = Number(o.pid);
  const admin = kafka(o.broker, 'crr-bench-admin').admin();
  await admin.connect();
  const progress = new Progress(o.label ?? 'consumer', N, Date.now());
  while (alive(pid)) {
    try {
      const [t] = await admin.fetchOffsets({ groupId: o.group, topics: [o.topic] });
      const done = (t?.partitions ?? []).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
      progress.update(done, '(committed offsets)');
    } catch {
      // group not there yet
    }
    await sleep(500);
  }
  await admin.disconnect().catch(() => undefined);
}

// ------------------------------------------------------------------- report --

/** "1000000 records sent, 98765.4 records/sec (96.45 MB/sec), ..." -> numbers. */
function parseProducer(file) {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => /records sent,.*records\/sec/.test(l));
  const last = lines.at(-1);
  if (!last) throw new Error(`no summary line in ${file}`);
  const m = /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency/.exec(last);
  if (!m) throw new Error(`cannot parse ${file}: ${last}`);
  const p = /([\d.]+) ms 50th, ([\d.]+) ms 95th, ([\d.]+) ms 99th/.exec(last);
  return {
    records: Number(m[1]),
    recordsPerSec: Number(m[2]),
    mibPerSec: Number(m[3]),
    avgLatencyMs: Number(m[4]),
    maxLatencyMs: Number(m[5]),
    p99LatencyMs: p ? Number(p[3]) : undefined,
    printed: last.trim(),
  };
}

/** The header + one data line of kafka-consumer-perf-test -> {column: value}. */
function parseConsumer(file) {
  const lines = readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const h = lines.findIndex((l) => l.startsWith('start.time'));
  if (h < 0 || !lines[h + 1]) throw new Error(`no header/data line in ${file}`);
  const cols = lines[h].split(',').map((s) => s.trim());
  const vals = lines[h + 1].split(',').map((s) => s.trim());
  const row = Object.fromEntries(cols.map((c, i) => [c, vals[i]]));
  return {
    records: Number(row['data.consumed.in.nMsg']),
    mib: Number(row['data.consumed.in.MB']),
    recordsPerSec: Number(row['nMsg.sec']),
    mibPerSec: Number(row['MB.sec']),
    rebalanceMs: Number(row['rebalance.time.ms']),
    fetchMs: Number(row['fetch.time.ms']),
    fetchRecordsPerSec: Number(row['fetch.nMsg.sec']),
    fetchMibPerSec: Number(row['fetch.MB.sec']),
    printed: `${lines[h]}\n${lines[h + 1]}`,
  };
}

function cmdReport(o) {
  need(o, 'dir', 'out');
  const meta = JSON.parse(readFileSync(join(o.dir, 'meta.json'), 'utf8'));
  const N = meta.records;
  const bytes = N * meta.recordSize;
  const read = (f) => (existsSync(join(o.dir, f)) ? JSON.parse(readFileSync(join(o.dir, f), 'utf8')) : undefined);
  const rows = [];
  const producer = parseProducer(join(o.dir, 'producer.out'));
  rows.push({
    key: 'producer',
    name: 'producer (kafka-producer-perf-test)',
    recordsPerSec: producer.recordsPerSec,
    mibPerSec: producer.mibPerSec,
    detail: producer,
  });
  const consumer = parseConsumer(join(o.dir, 'consumer.out'));
  rows.push({
    key: 'ceiling',
    name: 'ceiling (kafka-consumer-perf-test)',
    recordsPerSec: consumer.recordsPerSec,
    mibPerSec: consumer.mibPerSec,
    seconds: (consumer.rebalanceMs + consumer.fetchMs) / 1000,
    detail: consumer,
  });
  const mirror = (key, name, file) => {
    const r = read(file);
    if (!r) return;
    const s = r.elapsedMs / 1000;
    rows.push({
      key,
      name,
      recordsPerSec: N / s,
      mibPerSec: bytes / MIB / s,
      seconds: s,
      startupSeconds: r.firstRecordMs !== undefined ? r.firstRecordMs / 1000 : undefined,
      steadyRecordsPerSec: r.firstRecordMs !== undefined && r.elapsedMs > r.firstRecordMs ? N / ((r.elapsedMs - r.firstRecordMs) / 1000) : undefined,
      peakRssMiB: r.peakRssMiB,
      cpuSeconds: r.cpuSeconds,
      detail: r,
    });
  };
  mirror('crr', 'crr (exactly once)', 'crr.json');
  mirror('mm2', 'MM2 (defaults, at least once)', 'mm2.json');
  mirror('mm2eos', 'MM2 exactly once (KIP-618/710)', 'mm2eos.json');
  const by = Object.fromEntries(rows.map((r) => [r.key, r]));
  const ratio = (a, b) => (by[a] && by[b] ? +(by[a].recordsPerSec / by[b].recordsPerSec).toFixed(3) : undefined);
  const ratios = {
    crrToMm2: ratio('crr', 'mm2'),
    crrToMm2Eos: ratio('crr', 'mm2eos'),
    crrToCeiling: ratio('crr', 'ceiling'),
    mm2ToCeiling: ratio('mm2', 'ceiling'),
  };

  const f1 = (n) => (n === undefined ? '-' : n.toFixed(1));
  const header = ['', 'records/s', 'MB/s', 'time s', 'startup s', 'steady rec/s', 'peak RSS MiB', 'CPU s'];
  const table = rows.map((r) => [
    r.name,
    fmtInt(r.recordsPerSec),
    r.mibPerSec.toFixed(1),
    f1(r.seconds),
    f1(r.startupSeconds),
    r.steadyRecordsPerSec ? fmtInt(r.steadyRecordsPerSec) : '-',
    f1(r.peakRssMiB),
    f1(r.cpuSeconds),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
  const line = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const out = [];
  out.push(
    `\n${fmtInt(N)} records x ${meta.recordSize} B (${(bytes / MIB).toFixed(0)} MiB), ${meta.partitions} partitions, topic ${meta.topic}; MB = 2^20 bytes`,
  );
  out.push(line(header));
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of table) out.push(line(r));
  out.push('');
  const pr = (name, v) => out.push(`${name.padEnd(20)} ${v === undefined ? 'n/a' : `${v.toFixed(2)}x`}`);
  pr('crr / MM2', ratios.crrToMm2);
  if (by.mm2eos) pr('crr / MM2 EOS', ratios.crrToMm2Eos);
  pr('crr / ceiling', ratios.crrToCeiling);
  pr('MM2 / ceiling', ratios.mm2ToCeiling);
  out.push('time = wall time from process start (incl. start-up) until all records are on the target; records/s and MB/s use it.');
  out.push('startup = until the first record arrived; steady rec/s = N / (time - startup).');
  if (by.crr?.detail?.metrics) {
    const m = by.crr.detail.metrics;
    out.push(
      `crr: ${fmtInt(m.transactionsCommitted)} transactions committed, ${fmtInt(m.transactionsAborted)} aborted, ${fmtInt(m.taskRestarts)} task restarts; ` +
        `${fmtInt(m.recordsPerTransaction ?? 0)} records and ${m.msPerTransaction ?? '?'} ms per transaction on average`,
    );
    const c = by.crr.detail.observedCommits;
    if (c?.seen > 1)
      out.push(
        `crr: commits seen on /status: median ${c.medianGapMs} ms apart (max ${c.maxGapMs}), median ${fmtInt(c.medianRecords)} records each (max ${fmtInt(c.maxRecords)})`,
      );
  }
  const notes = existsSync(join(o.dir, 'notes.txt')) ? readFileSync(join(o.dir, 'notes.txt'), 'utf8').split('\n').filter(Boolean) : [];
  for (const n of notes) out.push(`note: ${n}`);
  process.stdout.write(`${out.join('\n')}\n`);
  writeFileSync(o.out, `${JSON.stringify({ ...meta, results: rows, ratios, notes }, null, 2)}\n`);
}

// --------------------------------------------------------------------- main --

const [command, ...rest] = process.argv.slice(2);
const opts = parseArgs(rest);
const commands = {
  topics: cmdTopics,
  'wait-crr': cmdWaitCrr,
  'wait-offsets': cmdWaitOffsets,
  'wait-connect-offsets': cmdWaitConnectOffsets,
  'group-progress': cmdGroupProgress,
  report: cmdReport,
};
if (!commands[command]) fail(`unknown command ${command ?? '(none)'}; one of: ${Object.keys(commands).join(', ')}`);
try {
  await commands[command](opts);
  process.exit(0);
} catch (err) {
  fail(`${command}: ${err?.stack ?? err}`);
}
