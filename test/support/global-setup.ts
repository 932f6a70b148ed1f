import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

/**
 * Starts the two real Kafka clusters (`primary` on 127.0.0.1:19092, `dr` on 127.0.0.1:29092)
 * and the real S3 API server (S3Proxy on http://127.0.0.1:19000, `scripts/s3.sh`) with the
 * project's own scripts before any test file runs, and stops each afterwards if this run started
 * it (clusters or S3 a developer started with `npm run clusters:up` / `npm run s3:up` are left
 * running; CRR_KEEP_CLUSTERS=1 leaves everything running). The secured clusters, which the
 * files that need them start (test/support/secured.ts), are stopped the same way. Set
 * CRR_SKIP_CLUSTERS=1 for unit tests alone.
 */
export default function setup(_project: TestProject): (() => void) | undefined {
  if (process.env.CRR_SKIP_CLUSTERS === '1') return undefined;
  const kafka = new URL('../../scripts/kafka.sh', import.meta.url).pathname;
  const s3 = new URL('../../scripts/s3.sh', import.meta.url).pathname;
  const status = execFileSync('bash', [kafka, 'status'], { encoding: 'utf8' });
  const wasRunning = /primary\s+running/.test(status) && /dr\s+running/.test(status);
  const s3WasRunning = /^s3\s+running/m.test(execFileSync('bash', [s3, 'status'], { encoding: 'utf8' }));
  const keep = () => process.env.CRR_KEEP_CLUSTERS === '1';
  // the secured clusters are started by the test files that use them (test/support/secured.ts)
  // and left running between files: stopped here if this run started them
  const secured = { ...process.env, CRR_KAFKA_SECURED: '1' };
  const securedRunning = () => /primary\s+running/.test(execFileSync('bash', [kafka, 'status'], { encoding: 'utf8', env: secured }));
  const securedWasRunning = securedRunning();
  execFileSync('bash', [kafka, 'up'], { stdio: 'inherit' });
  try {
    execFileSync('bash', [s3, 'up'], { stdio: 'inherit' });
  } catch (err) {
    if (!wasRunning && !keep()) execFileSync('bash', [kafka, 'down'], { stdio: 'inherit' });
    throw err;
  }
  return () => {
    if (keep()) return;
    if (!securedWasRunning && securedRunning()) execFileSync('bash', [kafka, 'down'], { stdio: 'inherit', env: secured });
    if (!s3WasRunning) execFileSync('bash', [s3, 'down'], { stdio: 'inherit' });
    if (!wasRunning) execFileSync('bash', [kafka, 'down'], { stdio: 'inherit' });
  };
}
