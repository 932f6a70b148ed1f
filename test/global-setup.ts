import { execFileSync } from 'node:child_process';
import type { TestProject } from 'vitest/node';

/**
 * Starts the two real Kafka clusters (`primary` on 127.0.0.1:19092, `dr` on 127.0.0.1:29092)
 * with the project's own script before any test file runs, and stops them afterwards if this
 * run started them (clusters a developer started with `npm run clusters:up` are left running).
 * Set CRR_SKIP_CLUSTERS=1 for unit tests alone.
 */
export default function setup(_project: TestProject): (() => void) | undefined {
  if (process.env.CRR_SKIP_CLUSTERS === '1') return undefined;
  const script = new URL('../scripts/kafka.sh', import.meta.url).pathname;
  const status = execFileSync('bash', [script, 'status'], { encoding: 'utf8' });
  const wasRunning = /primary\s+running/.test(status) && /dr\s+running/.test(status);
  execFileSync('bash', [script, 'up'], { stdio: 'inherit' });
  return () => {
    if (!wasRunning && process.env.CRR_KEEP_CLUSTERS !== '1') execFileSync('bash', [script, 'down'], { stdio: 'inherit' });
  };
}
