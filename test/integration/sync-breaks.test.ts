import { describe, expect, it } from 'vitest';
import { ConfigResourceTypes } from '../../src/kafka/kafkajs.js';
import {
  admin,
  CRR_BIN,
  createTopic,
  DR,
  http,
  metricValue,
  PRIMARY,
  readTopic,
  runCrr,
  testPair,
  useCrrProcesses,
  waitFor,
  type TestPair,
} from '../support/helpers.js';

const start = useCrrProcesses();

const upserts = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${from + i}` }, attributes: { n: from + i } }));

async function write(p: TestPair, events: object[]): Promise<void> {
  const { writeFileSync } = await import('node:fs');
  const file = `${p.configPath}.${Date.now()}.ndjson`;
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
  const r = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
  expect(r.code, r.stderr).toBe(0);
}

async function replay(p: TestPair): Promise<any> {
  return JSON.parse((await http(p.httpPort, '/status')).body).replay;
}

/**
 * Shortens the retention of the pair's data topic (one partition) and writes slices of upserts,
 * each rolling a segment, until the broker's retention has deleted past `offset`.
 */
async function deleteByRetentionPast(p: TestPair, offset: number): Promise<void> {
  const a = await admin(PRIMARY);
  try {
    // only now a short retention, so nothing expires before what came first was handled
    await a.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: p.dataTopic,
          configEntries: [
            { name: 'retention.ms', value: '1000' },
            { name: 'segment.ms', value: '300' },
          ],
        },
      ],
    });
    // one slice per check; the checks are at least 700 ms apart, more than segment.ms, so every
    // slice rolls a segment that retention can then delete
    let i = 1000;
    await waitFor(
      `the log start of ${p.dataTopic} to pass offset ${offset}`,
      async () => {
        const [o] = await a.fetchTopicOffsets(p.dataTopic);
        if (Number(o!.low) > offset) return true;
        await write(p, upserts(i, 20));
        i += 20;
        return false;
      },
      90_000,
      700,
    );
  } finally {
    await a.disconnect();
  }
}

async function expectOutdated(p: TestPair, kind: string, reason: RegExp): Promise<void> {
  await waitFor(`the replica to be OUTDATED (${kind})`, async () => (await replay(p).catch(() => undefined))?.state === 'outdated', 90_000, 300);
  const r = await replay(p);
  expect(r.clusterState).toMatchObject({ role: 'replica', state: 'OUTDATED' });
  expect(r.haltReason).toMatch(reason);
  const metrics = (await http(p.httpPort, '/metrics')).body;
  expect(metricValue(metrics, 'crr_sync_breaks_total', `reason="${kind}"`)).toBe(1);
  expect(metricValue(metrics, 'crr_cluster_state', 'state="OUTDATED"')).toBe(1);
  const st = await runCrr(['status', '--config', p.configPath]);
  expect(st.code).toBe(1);
  expect(st.stdout).toMatch(new RegExp(`cluster ${p.target}: replica OUTDATED`));
}

describe('sync breaks found by the mirror make the replica OUTDATED', () => {
  it('a retention gap: source records deleted (short retention.ms) before they were mirrored', async () => {
    const p = testPair({ dataPartitions: 1 });
    await createTopic(PRIMARY, p.dataTopic, 1);
    await write(p, upserts(0, 50));
    const dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor(
      'the replica to catch up',
      async () => {
        const r = await replay(p).catch(() => undefined);
        return r?.state === 'active' && r.lagRecords === 0 && r.eventsApplied >= 50;
      },
      90_000,
      300,
    );
    dr.child.kill('SIGTERM');
    await dr.exited;
    // while the DR side is down: deleted by retention past what was mirrored
    await deleteByRetentionPast(p, 50);
    // the mirror and replay in separate processes: the gap reaches replay through the remote topic alone
    start(['mirror', '--config', p.configPath, '--http-port', '0']);
    start(['replay', '--config', p.configPath, '--cluster', p.target]);
    await expectOutdated(p, 'retention-gap', new RegExp(`retention gap on ${p.dataTopic.replace('.', '\\.')}\\[0\\]: \\d+ records were deleted`));
  }, 240_000);

  it('a source topic recreated and refilled past the mirrored position while DR was down: found by its topic id, marked durably for a separate replay process, and mirrored from its new start', async () => {
    const p = testPair({ dataPartitions: 1 });
    await write(p, upserts(0, 60));
    const dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor(
      'the replica to catch up',
      async () => {
        const r = await replay(p).catch(() => undefined);
        return r?.state === 'active' && r.lagRecords === 0 && r.eventsApplied >= 60;
      },
      90_000,
      300,
    );
    dr.child.kill('SIGTERM');
    await dr.exited;
    const a = await admin(PRIMARY);
    try {
      await a.deleteTopics({ topics: [p.dataTopic] });
      await waitFor('the topic to be gone', async () => !(await a.listTopics()).includes(p.dataTopic), 30_000, 200);
    } finally {
      await a.disconnect();
    }
    await createTopic(PRIMARY, p.dataTopic, 1);
    // the new incarnation passes the old position (60) before crr looks: only the topic id tells them apart
    await write(p, upserts(1000, 100));
    // the mirror and replay in separate processes: the break reaches replay through the remote topic alone
    start(['mirror', '--config', p.configPath, '--http-port', '0']);
    start(['replay', '--config', p.configPath, '--cluster', p.target]);
    await expectOutdated(
      p,
      'topic-recreated',
      new RegExp(
        `source topic ${p.dataTopic.replace('.', '\\.')} was recreated \\(topic id [0-9a-f-]{36} is now [0-9a-f-]{36}\\): partition 0 is mirrored again from its log start 0; the mirrored position 60 belonged to the old topic`,
      ),
    );
    // every record of the new incarnation is on DR, once, after the marker
    const records = await readTopic(DR, p.remote(p.dataTopic), 161);
    const marker = records.findIndex((r) => r.provenance['crr.sync-break'] === 'topic-recreated');
    expect(marker, 'the sync-break marker').toBe(60);
    const after = records.slice(marker + 1).map((r) => JSON.parse(r.value!).vertex.id as string);
    expect(after).toEqual(Array.from({ length: 100 }, (_, i) => `c${1000 + i}`));
  }, 240_000);

  it("a retention gap in the primary's own change topic halts its replay there, naming the deleted offsets (never a silent skip)", async () => {
    const p = testPair({ dataPartitions: 1 });
    await createTopic(PRIMARY, p.dataTopic, 1);
    await write(p, upserts(0, 50));
    const replayArgs = ['replay', '--config', p.configPath, '--cluster', p.source, '--http-port', '0', '--exit-when-caught-up'];
    const first = await runCrr(replayArgs);
    expect(first.code, first.stderr).toBe(0);
    await deleteByRetentionPast(p, 50);
    const second = await runCrr(replayArgs);
    expect(second.code, second.stdout + second.stderr).toBe(5);
    expect(second.stderr).toMatch(
      new RegExp(`retention gap on ${p.dataTopic.replace('.', '\\.')}\\[0\\]: offsets 50 to \\d+ were deleted before replay applied them`),
    );
  }, 240_000);

  it('steady writes while the mirror commits are never taken for a recreated topic (a lag poll compares the log ends with positions committed before it read them)', async () => {
    const p = testPair({ dataPartitions: 3 });
    await write(p, upserts(0, 10));
    start(['run', '--config', p.configPath, '--cluster', p.target]);
    await waitFor('the replica to be active', async () => (await replay(p).catch(() => undefined))?.state === 'active', 90_000, 300);
    // a steady stream for ~10 s through one writer (stdin), while lag polls (every 500 ms) read log
    // ends and wait for the commits that follow, which cover records written after those reads
    const { spawn } = await import('node:child_process');
    const writer = spawn(process.execPath, [CRR_BIN, 'write', '--config', p.configPath, '--cluster', p.source, '--file', '-'], {
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    writer.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const done = new Promise<number | null>((resolve) => writer.on('exit', resolve));
    for (let i = 0; i < 120; i++) {
      writer.stdin!.write(
        `${upserts(100 + i * 300, 300)
          .map((e) => JSON.stringify(e))
          .join('\n')}\n`,
      );
      await new Promise((r) => setTimeout(r, 80)); // the pace of the stream, not a wait for a condition
    }
    writer.stdin!.end();
    expect(await done, stderr).toBe(0);
    await waitFor(
      'the replica to catch up',
      async () => {
        const r = await replay(p).catch(() => undefined);
        return r?.lagRecords === 0 && r.eventsApplied >= 36_010;
      },
      120_000,
      500,
    );
    const metrics = (await http(p.httpPort, '/metrics')).body;
    expect(metricValue(metrics, 'crr_mirror_task_restarts_total', 'reason="topic-recreated"') ?? 0).toBe(0);
    expect(metricValue(metrics, 'crr_sync_breaks_total', 'reason="topic-recreated"') ?? 0).toBe(0);
    expect((await replay(p)).clusterState).toMatchObject({ state: 'REPLICATING' });
  }, 240_000);
});
