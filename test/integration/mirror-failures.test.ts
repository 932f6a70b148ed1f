import { execFileSync } from 'node:child_process';
import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { byPartition, createTopic, DR, http, KAFKA_SH, PRIMARY, produce, readTopic, sleep, testFlow, useMirrorProcesses, waitFor, type SeenRecord } from '../support/helpers.js';

const mirror = useMirrorProcesses();

const seq = (from: number, n: number, partitions: number): Message[] =>
  Array.from({ length: n }, (_, i) => ({ partition: (from + i) % partitions, key: `k${(from + i) % 97}`, value: `v${from + i}`, headers: { seq: String(from + i) } }));

/** Every source record exactly once on the target, in the same order per partition. */
function expectExactlyOnce(source: SeenRecord[], target: SeenRecord[]): void {
  const values = target.map((r) => r.value);
  const dupes = values.filter((v, i) => values.indexOf(v) !== i);
  expect(dupes, 'duplicated records').toEqual([]);
  expect(target.length, 'record count').toBe(source.length);
  expect(byPartition(target)).toEqual(byPartition(source));
}

/** Produces `batches` batches of `size` records in the background, with a pause between them. */
async function produceSlowly(topic: string, from: number, batches: number, size: number, partitions: number, pauseMs: number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    await produce(PRIMARY, topic, seq(from + b * size, size, partitions));
    await sleep(pauseMs);
  }
}

describe('mirror: exactly once through failures', () => {
  it('SIGKILL of the mirror mid-stream, then a restart: every record exactly once and in order', async () => {
    const flow = testFlow({ transactionMaxBytes: 64 * 1024 });
    const topic = `${flow.prefix}.events`;
    await createTopic(PRIMARY, topic, 3);
    const writer = produceSlowly(topic, 0, 30, 400, 3, 50);
    let total = 0;
    for (let round = 0; round < 3; round++) {
      const p = mirror(flow.configPath);
      await waitFor('the mirror to commit something', () => /"state":"active"|resuming from the positions/.test(p.log()), 60_000);
      await sleep(700 + round * 300);
      p.child.kill('SIGKILL');
      await p.exited;
    }
    await writer;
    total = 30 * 400;
    mirror(flow.configPath);
    const source = await readTopic(PRIMARY, topic, total, 30_000, 100);
    const target = await readTopic(DR, flow.remote(topic), total, 90_000, 3000);
    expectExactlyOnce(source, target);
  }, 300_000);

  it('the target broker restarted while mirroring: nothing lost or repeated', async () => {
    const flow = testFlow();
    const topic = `${flow.prefix}.events`;
    await createTopic(PRIMARY, topic, 2);
    const p = mirror(flow.configPath);
    const writer = produceSlowly(topic, 0, 30, 300, 2, 100);
    await waitFor('the mirror to be active', async () => JSON.parse((await http(flow.httpPort, '/status')).body).flows[0].state === 'active', 60_000);
    execFileSync('bash', [KAFKA_SH, 'restart', 'dr'], { stdio: 'inherit' });
    await writer;
    const source = await readTopic(PRIMARY, topic, 9000, 30_000, 100);
    const target = await readTopic(DR, flow.remote(topic), 9000, 120_000, 3000);
    expectExactlyOnce(source, target);
    expect(p.child.exitCode).toBeNull();
  });

  it('two mirrors of one flow: one is active, the other a standby that takes over; no duplicates', async () => {
    const flow = testFlow({ consumerSessionTimeoutMs: 6000 });
    const topic = `${flow.prefix}.events`;
    await createTopic(PRIMARY, topic, 2);
    const a = mirror(flow.configPath);
    await waitFor('the first mirror to be active', () => /resuming from the positions/.test(a.log()), 60_000);
    const b = mirror(flow.configPath, { CRR__http__port: String(flow.httpPort + 1000) });
    await waitFor('the second mirror to wait as standby', () => /waiting as standby/.test(b.log()), 60_000);
    expect(a.log()).not.toMatch(/lost the flow/);
    const writer = produceSlowly(topic, 0, 60, 100, 2, 150);
    await sleep(2000);
    a.child.kill('SIGKILL');
    await waitFor('the standby to take over', () => /resuming from the positions/.test(b.log()), 60_000);
    await writer;
    const source = await readTopic(PRIMARY, topic, 6000, 30_000, 100);
    const target = await readTopic(DR, flow.remote(topic), 6000, 120_000, 3000);
    expectExactlyOnce(source, target);
  }, 240_000);

  it('SIGTERM: commits what it has, closes its clients and exits 0', async () => {
    const flow = testFlow();
    const topic = `${flow.prefix}.events`;
    await createTopic(PRIMARY, topic, 2);
    await produce(PRIMARY, topic, seq(0, 2000, 2));
    const p = mirror(flow.configPath);
    await waitFor('the mirror to be active', () => /resuming from the positions/.test(p.log()), 60_000);
    await sleep(500);
    const started = Date.now();
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000 + 2000);
    expect(p.log()).toMatch(/"msg":"stopped"/);
    // whatever it committed plus a fresh run: still exactly once
    mirror(flow.configPath);
    expectExactlyOnce(await readTopic(PRIMARY, topic, 2000, 30_000, 100), await readTopic(DR, flow.remote(topic), 2000, 60_000, 2000));
  });
});
