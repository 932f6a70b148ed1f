import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { http, runCrr, usePairs, uniq, useCrrProcesses, waitFor } from '../support/helpers.js';
import { dropBucket, freshBucket, s3Client, S3_ENDPOINT, S3_REGION } from '../support/s3-helpers.js';

const pair = usePairs();
const start = useCrrProcesses();
const s3 = s3Client();
let bucket = '';
afterAll(async () => {
  if (bucket) await dropBucket(s3, bucket).catch(() => undefined);
});

const replay = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

/**
 * Issue 11 item 4: `crr reseed --execute` of a REPLICATING replica whose daemon keeps replaying
 * while writes continue. The restore's swap replaces the store under the running replay; the
 * replay fence (Store.activateReplay) refuses the running replay's next batch, and its restart
 * reloads the restored positions, so nothing is lost or applied twice.
 */
describe('reseed while the replica daemon replays and writes continue', () => {
  it('ends EQUAL with every write on both sides', async () => {
    const p = pair({ dataPartitions: 3 });
    bucket = await freshBucket(s3, 'concurrent');
    const config = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    config.clusters[p.source].backup = {
      repository: { type: 's3', bucket, endpoint: S3_ENDPOINT, region: S3_REGION, forcePathStyle: true, accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' },
    };
    writeFileSync(p.configPath, stringify(config));
    let written = 0;
    const write = async (n: number): Promise<void> => {
      const file = join(tmpdir(), 'crr-tests', `concurrent-${uniq()}.ndjson`);
      const from = written; // taken before any await: two writes at once get distinct ids
      written += n;
      const events = Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${from + i}` }, attributes: { n: from + i } }));
      writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
      const r = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
      expect(r.code, r.stderr).toBe(0);
    };
    const schema = join(tmpdir(), 'crr-tests', `concurrent-schema-${uniq()}.ndjson`);
    writeFileSync(schema, JSON.stringify({ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }));
    expect((await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', schema])).code).toBe(0);
    await write(2000);
    start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor('the replica to replay', async () => (await replay(p.httpPort).catch(() => undefined))?.eventsApplied >= 1000, 120_000, 300);

    let writing = true;
    const load = (async () => {
      while (writing) await write(300);
    })();
    const reseed = await runCrr(['reseed', '--config', p.configPath, '--cluster', p.target, '--execute']);
    expect(reseed.code, reseed.stdout + reseed.stderr).toBe(0);
    await write(300);
    writing = false;
    await load;

    const verify = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '120000']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(new RegExp(`City\\s+${written}\\s+${written}`));
  }, 300_000);
});
