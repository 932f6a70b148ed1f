import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { fenced } from '../../src/cluster/cluster-state.js';
import { publishClusterState } from '../../src/cluster/state.js';
import { admin, client, CRR_BIN, PRIMARY, testFlow, waitFor } from '../support/helpers.js';

/**
 * A writer opened before a promotion learns of the fence (issue 11 item 7): `crr write` streaming
 * to a primary that a promotion then fences refuses its next batch with exit 4, instead of
 * appending events that Kafka acknowledges and replay then refuses as stale-epoch.
 */
describe('crr write kept open across a failover', () => {
  it('refuses (exit 4) the batches after its cluster was fenced; the ones before it are written', async () => {
    const flow = testFlow();
    const config = parseYaml(readFileSync(flow.configPath, 'utf8')) as Record<string, any>;
    const data = `${flow.prefix}.data`;
    config.clusters[flow.source].changeTopics = { data, metadata: `${flow.prefix}.metadata`, dataPartitions: 1 };
    config.mirror.flows[0].enabled = false;
    writeFileSync(flow.configPath, stringify(config));

    const child = spawn(process.execPath, [CRR_BIN, 'write', '--config', flow.configPath, '--cluster', flow.source], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    const line = (i: number): string => `${JSON.stringify({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${i}` }, attributes: {} })}\n`;
    const CHUNK = 5000; // crr write sends a batch every 5000 lines (src/cli/write.ts)
    child.stdin.write(Array.from({ length: CHUNK }, (_, i) => line(i)).join(''));

    const a = await admin(PRIMARY);
    try {
      await waitFor(
        'the first batch on the data topic',
        async () => Number((await a.fetchTopicOffsets(data).catch(() => [{ high: '0' }]))[0]?.high) >= CHUNK,
        60_000,
      );
      // what crr promote does to the old primary it can reach
      await publishClusterState(await client(PRIMARY), a, flow.source, fenced(0, 'fenced: the test promoted its replica'));
      child.stdin.end(Array.from({ length: CHUNK }, (_, i) => line(CHUNK + i)).join(''));
      expect(await exited, stderr).toBe(4);
      expect(stderr).toContain(`cluster ${flow.source} is a fenced primary`);
      expect(stderr).toContain(`(${CHUNK} events before it were written)`);
      expect(Number((await a.fetchTopicOffsets(data))[0]?.high)).toBe(CHUNK);
    } finally {
      child.kill('SIGKILL');
      await a.disconnect();
    }
  }, 120_000);
});
