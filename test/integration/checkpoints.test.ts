import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { syncGroupOffsetsOnce } from '../../src/checkpoint/index.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log/logger.js';
import {
  admin,
  client,
  createTopic,
  DR,
  http,
  KAFKA_SH,
  metricValue,
  PRIMARY,
  produce,
  readTopic,
  runCrr,
  testFlow,
  uniq,
  useMirrorProcesses,
  waitFor,
} from '../support/helpers.js';

const mirror = useMirrorProcesses();
const run = promisify(execFile);

interface Row {
  group: string;
  topic: string;
  remoteTopic: string;
  partition: number;
  upstreamOffset: number;
  downstreamOffset?: number;
  status: string;
}

/** Reads the remote topic from the given offsets per partition until each has given the record of upstream offset `lastUpstream`; returns the upstream offsets read. */
async function readFrom(topic: string, from: Map<number, number>, lastUpstream: number): Promise<Map<number, number[]>> {
  const upstream = new Map<number, number[]>([...from.keys()].map((p) => [p, []]));
  const consumer = (await client(DR)).consumer({ groupId: `crr-test-from-${uniq()}`, readUncommitted: false, maxWaitTimeInMs: 200 });
  const reached = new Set<number>();
  await consumer.connect();
  await consumer.subscribe({ topics: [topic] });
  await consumer.run({
    autoCommit: false,
    eachBatch: async ({ batch }) => {
      for (const m of batch.messages) {
        const u = Number(m.headers?.['crr.upstream.offset']?.toString());
        upstream.get(batch.partition)?.push(u);
        if (u === lastUpstream) reached.add(batch.partition);
      }
    },
  });
  for (const [partition, offset] of from) consumer.seek({ topic, partition, offset: String(offset) });
  await waitFor('the reader to reach the end of every partition', () => reached.size === from.size, 30_000, 100);
  await consumer.disconnect();
  return upstream;
}

describe('checkpoints: consumer group offsets translated to the target', () => {
  it("translates offsets committed by Kafka's console consumer; a consumer on dr starting there misses nothing and re-reads at most offsetLagMax per partition", async () => {
    const offsetLagMax = 50; // the bound asserted below
    const flow = testFlow({ offsetLagMax, emitCheckpoints: false });
    const topic = `${flow.prefix}.orders`;
    const group = `crr-test-cc-${uniq()}`;
    await createTopic(PRIMARY, topic, 4);
    // partitions 0-2 get 400 records each, partition 3 none (a group offset there has no offset sync: unknown)
    const now = Date.now();
    await produce(
      PRIMARY,
      topic,
      Array.from({ length: 1200 }, (_, i) => ({ partition: i % 3, key: `k${i}`, value: `v${i}`, timestamp: String(now + i) })),
    );
    mirror(flow.configPath);
    await readTopic(DR, flow.remote(topic), 1200, 30_000);

    // Kafka's own console consumer commits group offsets on the primary (it rewinds to the first
    // unprinted record before closing, so the committed offsets are exactly what it printed)
    const cc = await run(
      'bash',
      [
        KAFKA_SH,
        'tool',
        'kafka-console-consumer',
        '--bootstrap-server',
        PRIMARY,
        '--topic',
        topic,
        '--group',
        group,
        '--from-beginning',
        '--max-messages',
        '500',
      ],
      { maxBuffer: 16 << 20 },
    );
    expect(cc.stdout.trim().split('\n')).toHaveLength(500);
    const a = await admin(PRIMARY);
    try {
      await a.setOffsets({ groupId: `${group}-empty`, topic, partitions: [{ partition: 3, offset: '0' }] });
    } finally {
      await a.disconnect();
    }

    const out = await runCrr(['checkpoints', '--config', flow.configPath, '--group', group, `${group}-empty`, '--json']);
    expect(out.code, out.stderr).toBe(0);
    const result = JSON.parse(out.stdout) as { flows: Array<{ from: string; rows: Row[] }> };
    expect(result.flows[0]!.from).toBe('source');
    const rows = result.flows[0]!.rows;
    expect(rows.find((r) => r.group === `${group}-empty`)).toMatchObject({ partition: 3, upstreamOffset: 0, status: 'unknown' });
    const mine = rows.filter((r) => r.group === group && r.upstreamOffset > 0);
    expect(mine.reduce((n, r) => n + r.upstreamOffset, 0)).toBe(500);
    for (const r of mine) expect(r).toMatchObject({ remoteTopic: flow.remote(topic), status: 'translated' });

    const from = new Map(mine.filter((r) => r.upstreamOffset < 400).map((r) => [r.partition, r.downstreamOffset!]));
    const read = await readFrom(flow.remote(topic), from, 399);
    const reread: number[] = [];
    for (const r of mine.filter((x) => x.upstreamOffset < 400)) {
      const seen = read.get(r.partition)!;
      // every record the console consumer had not consumed is read on dr
      const missing = Array.from({ length: 400 - r.upstreamOffset }, (_, i) => r.upstreamOffset + i).filter((u) => !seen.includes(u));
      expect(missing).toEqual([]);
      reread.push(seen.filter((u) => u < r.upstreamOffset).length);
    }
    console.log(`re-read per partition (offsetLagMax ${offsetLagMax}): ${reread.join(', ')}`);
    for (const n of reread) expect(n).toBeLessThanOrEqual(offsetLagMax);
  });

  it('writes checkpoints and syncs them into an empty target group, never into a group with an active member', async () => {
    const flow = testFlow({ checkpointIntervalMs: 1000, syncGroupOffsets: true, syncGroupOffsetsIntervalMs: 1000 });
    const topic = `${flow.prefix}.events`;
    const idle = `crr-test-idle-${uniq()}`;
    const busy = `crr-test-busy-${uniq()}`;
    await createTopic(PRIMARY, topic, 2);
    await produce(
      PRIMARY,
      topic,
      Array.from({ length: 600 }, (_, i) => ({ partition: i % 2, value: `v${i}` })),
    );
    const a = await admin(PRIMARY);
    try {
      for (const g of [idle, busy])
        await a.setOffsets({
          groupId: g,
          topic,
          partitions: [
            { partition: 0, offset: '120' },
            { partition: 1, offset: '250' },
          ],
        });
    } finally {
      await a.disconnect();
    }
    // a live member of `busy` on dr, consuming the remote topic
    await createTopic(DR, flow.remote(topic), 2).catch(() => undefined);
    const member = (await client(DR)).consumer({ groupId: busy, maxWaitTimeInMs: 200 });
    await member.connect();
    await member.subscribe({ topics: [flow.remote(topic)] });
    await member.run({ autoCommit: false, eachMessage: async () => undefined });
    try {
      mirror(flow.configPath);
      const d = await admin(DR);
      try {
        const synced = await waitFor(
          'the idle group to receive translated offsets on dr',
          async () => {
            const [t] = await d.fetchOffsets({ groupId: idle, topics: [flow.remote(topic)] });
            const offsets = t!.partitions.sort((x, y) => x.partition - y.partition).map((p) => Number(p.offset));
            return offsets.every((o) => o >= 0) ? offsets : undefined;
          },
          60_000,
          500,
        );
        const out = await runCrr(['checkpoints', '--config', flow.configPath, '--group', idle, '--json']);
        const rows = (JSON.parse(out.stdout) as { flows: Array<{ rows: Row[] }> }).flows[0]!.rows;
        expect(synced).toEqual(rows.map((r) => r.downstreamOffset));
        const [b] = await d.fetchOffsets({ groupId: busy, topics: [flow.remote(topic)] });
        expect(b!.partitions.map((p) => Number(p.offset))).toEqual([-1, -1]);
        const metrics = (await http(flow.httpPort, '/metrics')).body;
        expect(metricValue(metrics, 'crr_checkpoint_latency_seconds_count')).toBeGreaterThan(0);
        expect(metricValue(metrics, 'crr_checkpoint_group_partitions', 'status="translated"')).toBeGreaterThanOrEqual(4);
      } finally {
        await d.disconnect();
      }
    } finally {
      await member.disconnect();
    }
    // the library entry point of crr promote: the same, once; the busy group (now empty) gets its offsets
    const config = loadConfig(flow.configPath);
    const res = await syncGroupOffsetsOnce(config, `${flow.source}->${flow.target}`, { log: createLogger('silent'), groups: [idle, busy] });
    expect(res.filter((r) => r.group === busy).map((r) => r.status)).toEqual(['committed', 'committed']);
    expect(res.filter((r) => r.group === idle).map((r) => r.status)).toEqual(['skipped-target-ahead', 'skipped-target-ahead']);
  });
});
