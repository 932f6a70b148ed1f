// Shows the mirror's catch-up as a progress bar, from its /status endpoint, until replication
// lag is 0 on every partition of the given topics (or the timeout passes).
// Usage: node scripts/demo-progress.mjs PORT TIMEOUT_S TOPIC...
import cliProgress from 'cli-progress';

const [port, timeoutS, ...topics] = process.argv.slice(2);
const deadline = Date.now() + Number(timeoutS) * 1000;
const bar = new cliProgress.SingleBar(
  { format: 'mirroring [{bar}] {percentage}% | {value}/{total} records | lag {lag} | {rate} rec/s', hideCursor: true },
  cliProgress.Presets.shades_classic,
);
let started = false;
let first;
for (;;) {
  let parts = [];
  try {
    const res = await fetch(`http://127.0.0.1:${port}/status`);
    const status = await res.json();
    parts = status.flows.flatMap((f) => f.partitions).filter((p) => topics.includes(p.topic));
  } catch {
    // the mirror is still starting
  }
  const total = parts.reduce((n, p) => n + p.logEndOffset, 0);
  const done = parts.reduce((n, p) => n + Math.min(p.position, p.logEndOffset), 0);
  const lag = parts.reduce((n, p) => n + p.lagRecords, 0);
  if (parts.length > 0) {
    first ??= { t: Date.now(), done };
    const rate = Math.round(((done - first.done) * 1000) / Math.max(1, Date.now() - first.t));
    if (!started) {
      bar.start(total, done, { lag, rate });
      started = true;
    }
    bar.setTotal(total);
    bar.update(done, { lag, rate });
    if (lag === 0 && parts.every((p) => p.lagRecords === 0)) break;
  }
  if (Date.now() > deadline) {
    if (started) bar.stop();
    console.error(`timed out after ${timeoutS}s waiting for replication lag 0`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 500));
}
bar.stop();
