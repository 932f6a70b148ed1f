import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseFaultKinds, renderReport, runSoak } from '../../scripts/soak/soak.js';
import { KAFKA_SH, PG_URL, ROOT } from '../support/helpers.js';

// The shortened fault soak of `npm run soak` (scripts/soak/soak.ts): the same run for
// SOAK_TEST_SECONDS (default 100) of faults, with a fixed seed (SOAK_SEED overrides it; the seed
// is printed), on the suite's clusters. Its Kafka proxies need the brokers' PROXIED listener
// (scripts/kafka.sh, CRR_<NAME>_ADVERTISED_PORT): a broker without one is restarted with it, and
// keeps it afterwards (the plain listener is unchanged, so other tests do not notice).
// Every fault kind, `crr admin reset` included (SOAK_FAULTS narrows it, e.g. `all,-reset`).
const PRIMARY_PORT = Number(process.env.CRR_PRIMARY_PORT ?? 19092);
const DR_PORT = Number(process.env.CRR_DR_PORT ?? 29092);
const env = {
  ...process.env,
  CRR_PRIMARY_ADVERTISED_PORT: String(PRIMARY_PORT + 3),
  CRR_DR_ADVERTISED_PORT: String(DR_PORT + 3),
};

const listening = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });

describe('soak: a stream of writes under random faults loses and repeats nothing', () => {
  it('a seeded short soak: verify EQUAL, every acknowledged event on DR exactly once, positions never backwards', async () => {
    for (const [name, port] of [
      ['primary', PRIMARY_PORT],
      ['dr', DR_PORT],
    ] as const) {
      if (!(await listening(port + 2))) execFileSync('bash', [KAFKA_SH, 'restart', name], { env, stdio: 'inherit' });
    }
    const seed = Number(process.env.SOAK_SEED ?? 20_261_202);
    process.stdout.write(`soak seed ${seed} (SOAK_SEED=${seed} reruns it)\n`);
    const report = await runSoak({
      seconds: Number(process.env.SOAK_TEST_SECONDS ?? 100),
      seed,
      faults: parseFaultKinds(process.env.SOAK_FAULTS ?? 'all'),
      primaryPort: PRIMARY_PORT,
      drPort: DR_PORT,
      primaryAdvertisedPort: PRIMARY_PORT + 3,
      drAdvertisedPort: DR_PORT + 3,
      s3Port: Number(process.env.CRR_S3_PORT ?? 19000),
      pgUrl: PG_URL,
      root: ROOT,
      workDir: join(tmpdir(), 'crr-tests', `soak-${Date.now()}`),
      equalTimeoutSeconds: 120,
      log: (l) => process.stdout.write(`${l}\n`),
    });
    process.stdout.write(`${renderReport(report)}\n`);
    expect(report.failures).toEqual([]);
    expect(report.equal.verified).toBe(true);
    expect(report.checks.dr).toMatchObject({ lost: 0, stale: 0, resurrected: 0, unexpected: 0 });
    expect(report.checks.topic).toMatchObject({ missing: 0, duplicatedAny: 0 });
    expect(report.checks.topic.acknowledgedChecked).toBeGreaterThan(0);
    expect(report.checks.positions.violations).toEqual([]);
    expect(report.faults.length).toBeGreaterThanOrEqual(4);
  }, 420_000);
});
