import { execFileSync } from 'node:child_process';
import type { Message } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import {
  admin,
  byPartition,
  createTopic,
  DR,
  flowStatuses,
  http,
  KAFKA_SH,
  metricValue,
  PRIMARY,
  produce,
  readTopic,
  sleep,
  testFlow,
  useMirrorProcesses,
  waitFor,
  waitForMirrored,
  type SeenRecord,
} from '../support/helpers.js';

const mirror = useMirrorProcesses();

const seq = (from: number, n: number, partitions: number): Message[] =>
  Array.from({ length: n }, (_, i) => ({
    partition: (from + i) % partitions,
    key: `k${(from + i) % 97}`,
    value: `v${from + i}`,
    headers: { seq: String(from + i) },
  }));

/** Every source record exactly once on the target, in the same order per partition. */
function expectExactlyOnce(source: SeenRecord[], target: SeenRecord[]): void {
  const values = target.map((r) => r.value);
  const dupes = values.filter((v, i) => values.indexOf(v) !== i);
  expect(dupes, 'duplicated records').toEqual([]);
  expect(target.length, 'record count').toBe(source.length);
  expect(byPartition(target)).toEqual(byPartition(source));
}

/**
 * Produces `batches` batches of `size` records in the background, with a pause between them: the
 * pause deliberately spreads the stream over time, so that the failures a test injects meanwhile
 * land mid-stream.
 */
async function produceSlowly(topic: string, from: number, batches: number, size: number, partitions: number, pauseMs: number): Promise<void> {
  for (let b = 0; b < batches; b++) {
    await produce(PRIMARY, topic, seq(from + b * size, size, partitions));
    await sleep(pauseMs);
  }
}

/** Records of remote topic `remoteTopic` the mirror on `port` committed to the target since it started (its /metrics). */
async function mirroredRecords(port: number, remoteTopic: string): Promise<number> {
  return metricValue((await http(port, '/metrics')).body, 'crr_mirror_records_total', `topic="${remoteTopic}"`) ?? 0;
}

/** The state of the (only) flow on the /status of the mirror on `port`. */
async function flowState(port: number): Promise<string | undefined> {
  return (await flowStatuses(port))[0]?.state;
}

describe('mirror: exactly once through failures', () => {
  it('SIGKILL of the mirror mid-stream, then a restart: every record exactly once and in order', async () => {
    const flow = testFlow({ transactionMaxBytes: 64 * 1024 });
    const topic = `${flow.prefix}.events`;
    await createTopic(PRIMARY, topic, 3);
    // the stream comes in three parts of 4,000 records, the second after the first kill, the third
    // after the second: every run has records arriving while it mirrors
    let kills = 0;
    const writer = (async () => {
      for (let part = 0; part < 3; part++) {
        await waitFor(`kill ${part} before part ${part} of the stream`, () => kills >= part, 240_000, 50);
        await produceSlowly(topic, part * 4000, 10, 400, 3, 50);
      }
    })();
    let total = 0;
    for (let round = 0; round < 3; round++) {
      const p = mirror(flow.configPath);
      // killed once this run has committed records of the topic to the target (its /metrics count
      // only this process's commits), later in each round
      const atLeast = 400 * (round + 1);
      await waitFor(
        `the mirror to commit ${atLeast} records in this run`,
        async () => (await mirroredRecords(flow.httpPort, flow.remote(topic))) >= atLeast,
        60_000,
      );
      p.child.kill('SIGKILL');
      await p.exited;
      kills += 1;
    }
    await writer;
    total = 30 * 400;
    mirror(flow.configPath);
    const source = await readTopic(PRIMARY, topic, total, 30_000);
    await waitForMirrored(flow.httpPort, PRIMARY, topic);
    const target = await readTopic(DR, flow.remote(topic), total, 90_000);
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
    const source = await readTopic(PRIMARY, topic, 9000, 30_000);
    await waitForMirrored(flow.httpPort, PRIMARY, topic);
    const target = await readTopic(DR, flow.remote(topic), 9000, 120_000);
    expectExactlyOnce(source, target);
    expect(p.child.exitCode).toBeNull();
  });

  it('two mirrors of one flow: one is active, the other a standby that takes over; no duplicates', async () => {
    const flow = testFlow({ consumerSessionTimeoutMs: 6000 });
    const topic = `${flow.prefix}.events`;
    await createTopic(PRIMARY, topic, 2);
    const a = mirror(flow.configPath);
    const bPort = flow.httpPort + 1000;
    await waitFor('the first mirror to be active', async () => (await flowState(flow.httpPort)) === 'active', 60_000);
    const _b = mirror(flow.configPath, { CRR__http__port: String(bPort) });
    // the second one joined the flow's consumer group on the source and got nothing: standby
    const group = `crr-mirror-${flow.source}-${flow.target}`;
    const sourceAdmin = await admin(PRIMARY);
    try {
      await waitFor(
        'the second mirror to wait as standby, in the group with the first',
        async () => {
          const { groups } = await sourceAdmin.describeGroups([group]);
          return groups[0]?.state === 'Stable' && groups[0].members.length === 2 && (await flowState(bPort)) === 'standby';
        },
        60_000,
      );
    } finally {
      await sourceAdmin.disconnect();
    }
    expect(await flowState(flow.httpPort), 'the first mirror stays active').toBe('active');
    expect(
      metricValue((await http(flow.httpPort, '/metrics')).body, 'crr_mirror_task_restarts_total', 'reason="lost-assignment"') ?? 0,
      'the first mirror never lost the flow',
    ).toBe(0);
    expect(a.log()).not.toMatch(/lost the flow/);
    const writer = produceSlowly(topic, 0, 60, 100, 2, 150);
    // the active mirror is killed once it has mirrored part of the stream
    await waitFor('the first mirror to commit 1000 records', async () => (await mirroredRecords(flow.httpPort, flow.remote(topic))) >= 1000, 60_000);
    a.child.kill('SIGKILL');
    await waitFor('the standby to take over', async () => (await flowState(bPort)) === 'active', 60_000);
    await writer;
    const source = await readTopic(PRIMARY, topic, 6000, 30_000);
    await waitForMirrored(bPort, PRIMARY, topic);
    const target = await readTopic(DR, flow.remote(topic), 6000, 120_000);
    expectExactlyOnce(source, target);
  }, 240_000);

  it('SIGTERM: commits what it has, closes its clients and exits 0', async () => {
    const flow = testFlow();
    const topic = `${flow.prefix}.events`;
    await createTopic(PRIMARY, topic, 2);
    await produce(PRIMARY, topic, seq(0, 2000, 2));
    const p = mirror(flow.configPath);
    // stopped once it has committed part of the backlog, not all of it
    await waitFor('the mirror to commit records', async () => (await mirroredRecords(flow.httpPort, flow.remote(topic))) > 0, 60_000, 50);
    const started = Date.now();
    p.child.kill('SIGTERM');
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000 + 2000);
    // the process is gone: its last log line is the only thing left that says it shut down cleanly
    expect(p.log()).toMatch(/"msg":"stopped"/);
    // whatever it committed plus a fresh run: still exactly once
    mirror(flow.configPath);
    const source = await readTopic(PRIMARY, topic, 2000, 30_000);
    await waitForMirrored(flow.httpPort, PRIMARY, topic);
    expectExactlyOnce(source, await readTopic(DR, flow.remote(topic), 2000, 60_000));
  });
});
