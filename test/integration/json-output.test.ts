import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { runCrr, usePairs, uniq } from '../support/helpers.js';

/**
 * With `--json`, a command's stdout is exactly one JSON document, whatever crr or KafkaJS logs
 * meanwhile: every log line goes to stderr, so `crr ... --json | jq` works. The config sets
 * `log.level: debug`, so a single log line on stdout would break the parse.
 */
const makePair = usePairs();

describe('--json output is one JSON document on stdout, logs on stderr', () => {
  it('status, checkpoints, promote, admin, backup and verify', async () => {
    const pair = makePair();
    const config = parseYaml(readFileSync(pair.configPath, 'utf8')) as Record<string, any>;
    config.log = { level: 'debug' };
    config.clusters[pair.source].backup = { repository: { type: 'local', path: join(tmpdir(), 'crr-tests', `json-backups-${uniq()}`) } };
    writeFileSync(pair.configPath, stringify(config));
    const events = join(tmpdir(), 'crr-tests', `json-events-${uniq()}.ndjson`);
    writeFileSync(events, `${JSON.stringify({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: 'a' }, attributes: {} })}\n`);
    const c = ['--config', pair.configPath];
    const commands: string[][] = [
      ['status', ...c, '--json'],
      ['checkpoints', ...c, '--json'],
      ['admin', 'import', ...c, '--cluster', pair.source, '--file', events, '--reason', 'json test', '--json'],
      ['admin', 'import', ...c, '--cluster', pair.source, '--file', events, '--reason', 'json test', '--execute', '--json'],
      ['backup', 'create', ...c, '--cluster', pair.source, '--json'],
      ['backup', 'list', ...c, '--cluster', pair.source, '--json'],
      ['backup', 'prune', ...c, '--cluster', pair.source, '--json'],
      ['promote', ...c, '--cluster', pair.target, '--json'],
      ['verify', ...c, '--json', '--timeout-ms', '2000'],
    ];
    for (const args of commands) {
      const r = await runCrr(args);
      const what = `crr ${args.filter((a) => a !== pair.configPath).join(' ')} (exit ${r.code})\nstdout: ${r.stdout.slice(0, 500)}\nstderr: ${r.stderr.slice(-800)}`;
      expect(r.stdout.trim(), what).not.toBe('');
      expect(() => JSON.parse(r.stdout), what).not.toThrow();
    }
  }, 180_000);
});
