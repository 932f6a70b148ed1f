// Shows the DR pipeline catching up, from the /status endpoints of the two `crr run` daemons:
// one bar for the mirror (primary topics -> remote topics on dr), one for replay on the primary,
// one for replay on dr, and one per step of a reseed while dr reseeds itself. Ends when the writer processes named by WRITER_PID have exited and every
// lag is 0 on every partition twice in a row (or exits 1 at the timeout).
// Usage: node scripts/demo/progress.mjs PRIMARY_PORT DR_PORT TIMEOUT_S [WRITER_PID...]
import cliProgress from 'cli-progress';

const [primaryPort, drPort, timeoutS, ...writers] = process.argv.slice(2).map(Number);
if (!primaryPort || !drPort || !timeoutS || writers.some((p) => !Number.isInteger(p))) {
  console.error('usage: node scripts/demo/progress.mjs PRIMARY_PORT DR_PORT TIMEOUT_S [WRITER_PID...]');
  process.exit(2);
}
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const deadline = Date.now() + timeoutS * 1000;
const multibar = new cliProgress.MultiBar(
  { format: '{name} [{bar}] {percentage}% | {value}/{total} | lag {lag}', hideCursor: true, clearOnComplete: false },
  cliProgress.Presets.shades_classic,
);
const bars = {};
const show = (name, parts) => {
  const total = parts.reduce((n, p) => n + p.logEndOffset, 0);
  const done = parts.reduce((n, p) => n + Math.min(p.position, p.logEndOffset), 0);
  const lag = parts.reduce((n, p) => n + p.lagRecords, 0);
  const payload = { name: name.padEnd(14), lag };
  bars[name] ??= multibar.create(Math.max(total, 1), done, payload);
  bars[name].setTotal(Math.max(total, 1));
  bars[name].update(done, payload);
  return parts.length > 0 && lag === 0;
};
const status = async (port) => {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/status`)).json();
  } catch {
    return undefined; // still starting
  }
};
let calm = 0;
let outdatedSince;
for (;;) {
  const [p, d] = await Promise.all([status(primaryPort), status(drPort)]);
  const mirrored = show('mirror', d?.flows?.flatMap((f) => f.partitions) ?? []);
  const primaryDone = show('replay primary', p?.replay?.partitions ?? []);
  const drDone = show('replay dr', d?.replay?.partitions ?? []);
  const r = d?.replay;
  if (r?.reseed) {
    show(`reseed ${r.reseed.step}`, [{ logEndOffset: r.reseed.totalRecords ?? r.reseed.records, position: r.reseed.records, lagRecords: 0 }]);
  }
  for (const [name, s] of [
    ['primary', p],
    ['dr', d],
  ]) {
    // an OUTDATED replica is cured by its daemon's reseed (reseed.mode auto); a halt is not
    if (s?.replay && (s.replay.state === 'halted' || (s.replay.state === 'outdated' && outdatedSince !== undefined && Date.now() - outdatedSince > 20_000))) {
      multibar.stop();
      console.error(`replay of ${name} stopped: ${s.replay.haltReason}`);
      process.exit(1);
    }
  }
  if (r?.state === 'outdated') outdatedSince ??= Date.now();
  else outdatedSince = undefined;
  const replicating = r?.state === 'active' && r.clusterState?.state === 'REPLICATING';
  calm = mirrored && primaryDone && drDone && replicating && !writers.some(alive) ? calm + 1 : 0;
  if (calm >= 2) break;
  if (Date.now() > deadline) {
    multibar.stop();
    console.error(`timed out after ${timeoutS}s waiting for the DR pipeline to catch up`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 500));
}
multibar.stop();
