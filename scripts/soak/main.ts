/**
 * `npm run soak` (scripts/soak.sh runs this once the clusters and S3Proxy are up): the fault
 * soak of scripts/soak/soak.ts with its settings from the environment, the report on stdout,
 * JSON in .cache/soak-<timestamp>.json. Exit 0 when every check passed, 1 otherwise.
 *
 * Environment: SOAK_SECONDS (600), SOAK_SEED (random; printed first), SOAK_FAULTS (all kinds;
 * e.g. `all,-reset` or `net-,kill-`), SOAK_EQUAL_TIMEOUT (300 s), SOAK_BATCH_EVENTS (40),
 * CRR_PRIMARY_PORT / CRR_DR_PORT (19092 / 29092), CRR_PRIMARY_ADVERTISED_PORT /
 * CRR_DR_ADVERTISED_PORT (port + 3: where the Kafka proxies listen), CRR_S3_PORT (19000),
 * SOAK_PG (postgres://postgres@127.0.0.1:5432/postgres).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseFaultKinds, renderReport, runSoak } from './soak.js';

const root = resolve(process.env.SOAK_ROOT ?? process.cwd());
const int = (name: string, dflt: number): number => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`soak: ${name} must be an integer >= 0, got "${v}"\n`);
    process.exit(2);
  }
  return n;
};
const seed = int('SOAK_SEED', Math.floor(Math.random() * 2 ** 31));
process.stdout.write(`soak seed ${seed} (SOAK_SEED=${seed} reruns it)\n`);
let faults: ReturnType<typeof parseFaultKinds>;
try {
  faults = parseFaultKinds(process.env.SOAK_FAULTS);
} catch (err) {
  process.stderr.write(`soak: ${(err as Error).message}\n`);
  process.exit(2);
}
const primaryPort = int('CRR_PRIMARY_PORT', 19092);
const drPort = int('CRR_DR_PORT', 29092);
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const report = await runSoak({
  seconds: int('SOAK_SECONDS', 600),
  seed,
  faults,
  primaryPort,
  drPort,
  primaryAdvertisedPort: int('CRR_PRIMARY_ADVERTISED_PORT', primaryPort + 3),
  drAdvertisedPort: int('CRR_DR_ADVERTISED_PORT', drPort + 3),
  s3Port: int('CRR_S3_PORT', 19000),
  pgUrl: process.env.SOAK_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres',
  root,
  workDir: join(root, '.cache', `soak-${stamp}`),
  equalTimeoutSeconds: int('SOAK_EQUAL_TIMEOUT', 300),
  batchEvents: int('SOAK_BATCH_EVENTS', 40),
  log: (l) => process.stdout.write(`${l}\n`),
});
process.stdout.write(`${renderReport(report)}\n`);
mkdirSync(join(root, '.cache'), { recursive: true });
const json = join(root, '.cache', `soak-${stamp}.json`);
writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`report: ${json} (logs: .cache/soak-${stamp}/)\n`);
process.exit(report.ok ? 0 : 1);
