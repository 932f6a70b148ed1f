import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { CompressionTypes } from '../../src/kafka/kafkajs.js';
import {
  admin,
  byPartition,
  createTopic,
  DR,
  flowStatuses,
  http,
  metricValue,
  PRIMARY,
  produce,
  readTopic,
  runCrr,
  testFlow,
  useMirrorProcesses,
  waitFor,
  waitForMirrored,
} from '../support/helpers.js';

const mirror = useMirrorProcesses();

/** Keyed records with headers, null keys and tombstones spread over partitions. */
function records(n: number, partitions: number, tag: string): Message[] {
  // recent timestamps: the broker's retention (7 days) would delete older records at once
  const base = Date.now() - 60_000;
  return Array.from({ length: n }, (_, i) => ({
    partition: i % partitions,
    key: i % 7 === 0 ? null : `key-${i % 50}`,
    value: i % 11 === 0 ? null : `${tag}-value-${i}-${'x'.repeat(i % 300)}`,
    headers: i % 3 === 0 ? { source: 'test', seq: String(i), ...(i % 6 === 0 ? { multi: ['a', 'b'] } : {}) } : undefined,
    timestamp: String(base + i),
  }));
}

describe('mirror: records arrive on the target exactly as on the source', () => {
  it('replication lag reaches 0 once everything readable is mirrored, heartbeats included, even when a heartbeat is due before the last one is mirrored', async () => {
    // a heartbeat every 200 ms and a linger of 400 ms: at any instant the newest heartbeat is not mirrored yet,
    // so a lag read against the log end of that instant never showed 0 (issue 11 item 12, the demo's endless wait)
    const flow = testFlow({ heartbeatIntervalMs: 200, transactionLingerMs: 400 });
    const topic = `${flow.prefix}.quiet`;
    await createTopic(PRIMARY, topic, 2);
    await produce(PRIMARY, topic, records(100, 2, 'q'));
    mirror(flow.configPath);
    // eight lag polls in a row (each /status read below comes after a new poll) all show 0
    let inARow = 0;
    const zero = await waitFor(
      'lag 0 on every partition, heartbeats included, in 8 polls in a row',
      async () => {
        const status = JSON.parse((await http(flow.httpPort, '/status')).body) as {
          flows: Array<{ partitions: Array<{ topic: string; lagRecords: number; logEndOffset: number }> }>;
        };
        const parts = status.flows[0]?.partitions ?? [];
        const beats = parts.find((p) => p.topic === flow.heartbeatsTopic);
        const caughtUp = parts.length === 3 && beats !== undefined && beats.logEndOffset > 5 && parts.every((p) => p.lagRecords === 0);
        inARow = caughtUp ? inARow + 1 : 0;
        return inARow >= 8 ? parts : undefined;
      },
      60_000,
      600,
    );
    expect(zero.filter((p) => p.topic === topic).reduce((n, p) => n + p.logEndOffset, 0)).toBe(100);
    const metrics = (await http(flow.httpPort, '/metrics')).body;
    expect(metricValue(metrics, 'crr_replication_lag_records', `topic="${flow.remote(flow.heartbeatsTopic)}"`)).toBe(0);
  });

  it('copies key, value, tombstones, headers, timestamp and partition, from every compression codec', async () => {
    const flow = testFlow({ targetCompression: 'lz4' });
    const topic = `${flow.prefix}.orders`;
    // retention.ms is copied to the remote topic; message.timestamp.type is one of MM2's exclusions
    await createTopic(PRIMARY, topic, 4, [
      { name: 'retention.ms', value: '86400000' },
      { name: 'message.timestamp.type', value: 'LogAppendTime' },
    ]);
    const codecs = [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD];
    const all = records(1000, 4, 'c');
    for (let i = 0; i < codecs.length; i++) await produce(PRIMARY, topic, all.slice(i * 200, (i + 1) * 200), codecs[i]);

    const proc = mirror(flow.configPath);
    const source = await readTopic(PRIMARY, topic, 1000, 30_000);
    // once the mirror's positions are at the source's log end it writes nothing more for these records:
    // reading the target to its end then sees any duplicate
    await waitForMirrored(flow.httpPort, PRIMARY, topic);
    const target = await readTopic(DR, flow.remote(topic), 1000);
    expect(source).toHaveLength(1000);
    expect(target).toHaveLength(1000);
    expect(byPartition(target)).toEqual(byPartition(source));
    // provenance headers name the source and the upstream offset, which equals the offset on a fresh target
    for (const r of target) {
      expect(r.provenance['crr.source.alias']).toBe(flow.source);
      expect(Number(r.provenance['crr.upstream.offset'])).toBe(r.offset);
    }
    // tombstones stay tombstones
    expect(target.filter((r) => r.value === null)).toHaveLength(source.filter((r) => r.value === null).length);

    // the remote topic has the source's partition count and its allowed configs, not the excluded ones
    // (records keep the source's LogAppendTime timestamps: compared above)
    const a = await admin(DR);
    try {
      const meta = await a.fetchTopicMetadata({ topics: [flow.remote(topic)] });
      expect(meta.topics[0]!.partitions).toHaveLength(4);
      const { resources } = await a.describeConfigs({ includeSynonyms: false, resources: [{ type: 2, name: flow.remote(topic) }] });
      const cfg = Object.fromEntries(resources[0]!.configEntries.map((e) => [e.configName, e.configValue]));
      expect(cfg['retention.ms']).toBe('86400000');
      expect(cfg['message.timestamp.type']).toBe('CreateTime');
    } finally {
      await a.disconnect();
    }

    // after catch-up: lag 0 in /metrics and in `crr status --json`, heartbeats flowing
    await waitFor('replication lag 0 in /metrics', async () => {
      const m = await http(flow.httpPort, '/metrics');
      const lags = m.body.split('\n').filter((l) => l.startsWith('crr_replication_lag_records{') && l.includes(flow.remote(topic)));
      return lags.length === 4 && lags.every((l) => l.endsWith(' 0'));
    });
    const metrics = (await http(flow.httpPort, '/metrics')).body;
    expect(metricValue(metrics, 'crr_mirror_records_total', `topic="${flow.remote(topic)}"`)).toBe(1000);
    expect(metricValue(metrics, 'crr_mirror_transactions_total', 'result="committed"')).toBeGreaterThan(0);
    expect(metrics).toContain('crr_replication_latency_seconds_bucket');
    expect(metrics).toContain('process_cpu_user_seconds_total');
    await waitFor(
      'a heartbeat age in /metrics',
      async () => metricValue((await http(flow.httpPort, '/metrics')).body, 'crr_heartbeat_age_seconds') !== undefined,
    );
    expect((await http(flow.httpPort, '/healthz')).status).toBe(200);
    expect((await http(flow.httpPort, '/readyz')).status).toBe(200);
    const status = JSON.parse((await http(flow.httpPort, '/status')).body) as { flows: Array<{ state: string }> };
    expect(status.flows[0]!.state).toBe('active');

    const cli = await waitFor(
      'crr status to report lag 0',
      async () => {
        const r = await runCrr(['status', '--config', flow.configPath, '--json']);
        const report = JSON.parse(r.stdout) as {
          flows: Array<{
            health: string;
            totalLagRecords: number;
            heartbeatAgeSeconds: number | null;
            partitions: Array<{ remoteTopic: string; lagRecords: number }>;
          }>;
        };
        const parts = report.flows[0]!.partitions.filter((p) => p.remoteTopic === flow.remote(topic));
        return r.code === 0 && parts.length === 4 && parts.every((p) => p.lagRecords === 0) ? report : undefined;
      },
      30_000,
      1000,
    );
    expect(cli.flows[0]!.health).toBe('ok');
    expect(cli.flows[0]!.heartbeatAgeSeconds).not.toBeNull();
    const table = await runCrr(['status', '--config', flow.configPath]);
    expect(table.stdout).toContain(flow.remote(topic));
    expect(table.code).toBe(0);
    void proc;
  });

  it('discovers a new topic and mirrors what was written before discovery; grows remote partitions', async () => {
    const flow = testFlow();
    const first = `${flow.prefix}.first`;
    await createTopic(PRIMARY, first, 1);
    await produce(PRIMARY, first, records(50, 1, 'f'));
    mirror(flow.configPath);
    expect(await readTopic(DR, flow.remote(first), 50)).toHaveLength(50);

    const later = `${flow.prefix}.later`;
    await createTopic(PRIMARY, later, 2);
    await produce(PRIMARY, later, records(300, 2, 'l'));
    const seen = await readTopic(DR, flow.remote(later), 300, 60_000);
    expect(byPartition(seen)).toEqual(byPartition(await readTopic(PRIMARY, later, 300, 10_000)));

    // partition growth on the source: the remote topic grows, new partition's records arrive
    const a = await admin(PRIMARY);
    await a.createPartitions({ topicPartitions: [{ topic: first, count: 3 }] });
    await a.disconnect();
    await produce(PRIMARY, first, records(60, 3, 'g'));
    const target = await admin(DR);
    await waitFor(
      'the remote topic to grow to 3 partitions',
      async () => (await target.fetchTopicMetadata({ topics: [flow.remote(first)] })).topics[0]!.partitions.length === 3,
      30_000,
    );
    await target.disconnect();
    const grown = await readTopic(DR, flow.remote(first), 110, 60_000);
    expect(grown).toHaveLength(110);
    expect(new Set(grown.map((r) => r.partition))).toEqual(new Set([0, 1, 2]));
    expect(byPartition(grown)).toEqual(byPartition(await readTopic(PRIMARY, first, 110, 10_000)));
  });
});

describe('bad input', () => {
  it('an unknown flag prints usage and exits 2', async () => {
    const r = await runCrr(['mirror', '--config', 'x.yaml', '--no-such-flag']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--no-such-flag'/);
    expect(r.stderr).toMatch(/Usage: crr mirror/);
    const s = await runCrr(['stauts']);
    expect(s.code).toBe(2);
  });

  it('an invalid config stops at start-up naming the path', async () => {
    const flow = testFlow({ heartbeatIntervalMs: -5 });
    const r = await runCrr(['mirror', '--config', flow.configPath]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/mirror\.flows\[0\]\.heartbeatIntervalMs: /);
  });

  it('unreachable brokers: crr status exits 2 with a clear error; the mirror retries, alive on /healthz, not ready on /readyz naming the problem', async () => {
    // the target's address is one where nothing listens: every run of the flow fails to connect and backs off
    const flow = testFlow();
    const { readFileSync, writeFileSync } = await import('node:fs');
    writeFileSync(flow.configPath, readFileSync(flow.configPath, 'utf8').replace(DR, '127.0.0.1:1'));
    const r = await runCrr(['status', '--config', flow.configPath]);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(new RegExp(`cluster ${flow.target} \\(127\\.0\\.0\\.1:1\\) is unreachable`));

    const proc = mirror(flow.configPath);
    // a broker outage is a readiness problem, not a liveness one: a liveness probe must not restart the daemon for it
    const ready = await waitFor(
      '/readyz to report the failure',
      async () => {
        const h = await http(flow.httpPort, '/readyz');
        return h.status === 503 && /restarting after a failure/.test(h.body) ? h : undefined;
      },
      60_000,
      500,
    );
    expect(ready.body).toMatch(new RegExp(`flow ${flow.source}->${flow.target} is restarting after a failure: .*(ECONNREFUSED|Connection error|connect)`, 'i'));
    const live = await http(flow.httpPort, '/healthz');
    expect(live.status, `/healthz during the backoff: ${live.body}`).toBe(200);
    expect(live.body).toBe('ok\n');
    await waitFor(
      'a second failed attempt in /metrics',
      async () => (metricValue((await http(flow.httpPort, '/metrics')).body, 'crr_mirror_task_restarts_total', 'reason="failure"') ?? 0) >= 2,
      60_000,
      500,
    );
    expect((await flowStatuses(flow.httpPort))[0]!.restarts, 'restarts on /status').toBeGreaterThanOrEqual(2);
    expect(proc.child.exitCode, 'the mirror keeps retrying').toBeNull();
    expect(metricValue((await http(flow.httpPort, '/metrics')).body, 'crr_cluster_up', `cluster="${flow.target}"`)).toBe(0);
    // still alive after several failed attempts; still not ready
    expect((await http(flow.httpPort, '/healthz')).status).toBe(200);
    expect((await http(flow.httpPort, '/readyz')).status).toBe(503);
  });
});
