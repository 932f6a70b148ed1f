import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ConfigResourceTypes } from '../../src/kafka/kafkajs.js';
import { admin, createTopic, DR, http, PRIMARY, produce, readTopic, testFlow, useMirrorProcesses, waitFor } from '../support/helpers.js';

const mirror = useMirrorProcesses();

const RECORDS = 20_000;
const PARTITIONS = 4;

/** Record `i` of a backlog: keyed, on partition i % 4, its value padded to `bytes`, with or without source headers. */
function record(i: number, bytes: number, headers: boolean): Message {
  const head = `v-${i}-`;
  return {
    partition: i % PARTITIONS,
    key: `key-${i}`,
    value: head + 'x'.repeat(Math.max(0, bytes - head.length)),
    headers: headers ? { app: 'orders', trace: `trace-${i}`, seq: String(i) } : undefined,
  };
}

/** Whether /status shows every partition of `remoteTopics` mirrored to its log end (lag 0). */
async function caughtUp(port: number, remoteTopics: string[]): Promise<boolean> {
  const status = JSON.parse((await http(port, '/status')).body) as {
    flows: Array<{ state: string; partitions: Array<{ remoteTopic: string; lagRecords: number; logEndOffset: number }> }>;
  };
  const parts = status.flows[0]?.partitions.filter((p) => remoteTopics.includes(p.remoteTopic)) ?? [];
  return parts.length === remoteTopics.length * PARTITIONS && parts.every((p) => p.lagRecords === 0 && p.logEndOffset > 0);
}

describe('mirror: backlogs of small records and records near the size limit', () => {
  it('mirrors 20,000-record backlogs of 50, 150 and 1,000-byte records (with and without headers) and a record near the limit, completely, after a restart', async () => {
    const flow = testFlow({ targetCompression: 'none', emitHeartbeats: false });
    const cases = [50, 150, 1000].flatMap((bytes) =>
      [false, true].map((headers) => ({ bytes, headers, topic: `${flow.prefix}.b${bytes}${headers ? '-h' : ''}` })),
    );
    const near = `${flow.prefix}.near-limit`;
    for (const c of cases) await createTopic(PRIMARY, c.topic, PARTITIONS);
    await createTopic(PRIMARY, near, PARTITIONS);

    // the mirror runs once (creating the remote topics), then is stopped while the backlogs pile up
    const first = mirror(flow.configPath);
    await waitFor(
      'the first run to be active',
      async () => (JSON.parse((await http(flow.httpPort, '/status')).body) as { flows: Array<{ state: string }> }).flows[0]?.state === 'active',
    );
    first.child.kill('SIGTERM');
    await first.exited;

    for (const c of cases)
      await produce(
        PRIMARY,
        c.topic,
        Array.from({ length: RECORDS }, (_, i) => record(i, c.bytes, c.headers)),
      );
    // one record just under the broker's default message.max.bytes (1,048,588) once crr's headers and the batch framing are added
    const big = 1_048_588 - 61 - 200;
    await produce(PRIMARY, near, [{ partition: 0, key: 'big', value: 'y'.repeat(big) }]);
    await produce(
      PRIMARY,
      near,
      Array.from({ length: 100 }, (_, i) => record(i, 150, true)),
    );

    mirror(flow.configPath);
    await waitFor(
      'every backlog mirrored (lag 0 on every partition)',
      () => caughtUp(flow.httpPort, [...cases.map((c) => flow.remote(c.topic)), flow.remote(near)]).catch(() => false),
      240_000,
      500,
    );

    for (const c of cases) {
      const target = await readTopic(DR, flow.remote(c.topic), RECORDS, 60_000);
      expect(target, `${c.topic}: every record once`).toHaveLength(RECORDS);
      for (let p = 0; p < PARTITIONS; p++) {
        const got = target
          .filter((r) => r.partition === p)
          .sort((a, b) => a.offset - b.offset)
          .map((r) => [r.key, r.value, r.headers.join(',')]);
        const want = Array.from({ length: RECORDS }, (_, i) => i)
          .filter((i) => i % PARTITIONS === p)
          .map((i) => {
            const m = record(i, c.bytes, c.headers);
            return [
              m.key,
              m.value,
              Object.entries(m.headers ?? {})
                .map(([k, v]) => `${k}=${String(v)}`)
                .join(','),
            ];
          });
        expect(got, `${c.topic}[${p}] in order`).toEqual(want);
      }
    }
    const nearTarget = await readTopic(DR, flow.remote(near), 101, 60_000);
    expect(nearTarget).toHaveLength(101);
    expect(nearTarget.find((r) => r.key === 'big')?.value?.length).toBe(big);
  }, 420_000);

  it('retries in smaller batches, without a restart, when the target lowered its limit after the mirror read it', async () => {
    const flow = testFlow({ targetCompression: 'none', emitHeartbeats: false, syncTopicConfigs: false });
    const topic = `${flow.prefix}.shrunk`;
    await createTopic(PRIMARY, topic, PARTITIONS);
    mirror(flow.configPath);
    await waitFor(
      'the mirror to be active',
      async () => (JSON.parse((await http(flow.httpPort, '/status')).body) as { flows: Array<{ state: string }> }).flows[0]?.state === 'active',
    );
    const a = await admin(DR);
    try {
      await a.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: flow.remote(topic), configEntries: [{ name: 'max.message.bytes', value: String(64 * 1024) }] }],
      });
    } finally {
      await a.disconnect();
    }
    await produce(
      PRIMARY,
      topic,
      Array.from({ length: 8000 }, (_, i) => record(i, 150, true)),
    );
    await waitFor('the backlog mirrored', () => caughtUp(flow.httpPort, [flow.remote(topic)]).catch(() => false), 120_000, 500);
    expect(await readTopic(DR, flow.remote(topic), 8000, 60_000)).toHaveLength(8000);
    const metrics = (await http(flow.httpPort, '/metrics')).body;
    expect(metrics, 'the task never restarted').not.toMatch(/crr_mirror_task_restarts_total\{[^}]*reason="failure"[^}]*\} [1-9]/);
    expect(metrics, 'a transaction was aborted and retried').toMatch(/crr_mirror_transactions_total\{[^}]*result="aborted"[^}]*\} [1-9]/);
  }, 180_000);

  it('halts the flow naming the record when one record is larger than the remote topic accepts', async () => {
    const flow = testFlow({ targetCompression: 'none', emitHeartbeats: false, syncTopicConfigs: false });
    const topic = `${flow.prefix}.huge`;
    await createTopic(PRIMARY, topic, 1, [{ name: 'max.message.bytes', value: String(3 * 1024 * 1024) }]);
    await produce(PRIMARY, topic, [
      { key: 'a', value: 'small' },
      { key: 'huge', value: 'z'.repeat(2 * 1024 * 1024) },
    ]);
    const proc = mirror(flow.configPath);
    const status = await waitFor(
      'the flow to stop with CRR_RECORD_TOO_LARGE',
      async () => {
        const s = JSON.parse((await http(flow.httpPort, '/status')).body) as { flows: Array<{ state: string; lastError?: string }> };
        return s.flows[0]?.state === 'stopped' && s.flows[0].lastError ? s.flows[0] : undefined;
      },
      60_000,
    );
    expect(status.lastError).toMatch(new RegExp(`record ${topic}\\[0\\]@1 .* more than ${flow.remote(topic).replace(/\./g, '\\.')} accepts`));
    const metrics = (await http(flow.httpPort, '/metrics')).body;
    expect(metrics).toMatch(/crr_mirror_active\{flow="[^"]+"\} 0/);
    // nothing of the failed transaction is visible on the target: read to its log end, the flow being stopped
    expect(await readTopic(DR, flow.remote(topic), 0)).toHaveLength(0);
    expect(proc.child.exitCode).toBeNull();
  }, 120_000);
});
