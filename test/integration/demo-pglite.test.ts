import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/helpers.js';

/**
 * The README's first command on a machine without PostgreSQL: `npm run demo` falls back to
 * PGlite stores and must end with `crr verify` EQUAL. Runs scripts/demo.sh itself (what
 * `npm run demo` runs after its fetch steps) with a small dataset, its own folder and ports.
 */
describe('npm run demo on the embedded default (PGlite, no PostgreSQL)', () => {
  it('loads a small dataset and a live mix, catches up on both sides and ends EQUAL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'crr-demo-'));
    try {
      const child = spawn('bash', ['scripts/demo.sh'], {
        cwd: ROOT,
        env: {
          ...process.env,
          CRR_DEMO_PG: 'postgres://nobody@127.0.0.1:1/none', // nothing listens there: the PGlite path
          CRR_DEMO_DIR: dir,
          CRR_DEMO_LIMIT: '2000',
          CRR_DEMO_LIVE_EVENTS: '2000',
          CRR_DEMO_HTTP_PORT: '19464',
          CRR_DEMO_PRIMARY_HTTP_PORT: '19465',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
      expect(out).toContain('stores: PGlite');
      expect(code, out.slice(-3000)).toBe(0);
      expect(out).toMatch(/^EQUAL$/m);
      expect(out).toContain('crr write to dr: exit 4');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
