import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  createTopic,
  DR,
  endOffsets,
  flowStatuses,
  http,
  PRIMARY,
  produce,
  readTopic,
  testFlow,
  useMirrorProcesses,
  waitFor,
  type FlowStatusView,
} from '../support/helpers.js';

const mirror = useMirrorProcesses();

describe('identity replication policy', () => {
  it('an active/active pair keeps topic names and never loops records back (provenance header)', async () => {
    const flow = testFlow();
    const topic = `${flow.prefix}.shared`;
    const common = {
      topics: { include: [`${flow.prefix}.*`] },
      replicationPolicy: { type: 'identity' },
      topicRefreshIntervalMs: 1000,
      transactionLingerMs: 20,
      emitHeartbeats: false,
    };
    writeFileSync(
      flow.configPath,
      stringify({
        clusters: { [flow.source]: { bootstrapServers: [PRIMARY] }, [flow.target]: { bootstrapServers: [DR] } },
        mirror: {
          flows: [
            { source: flow.source, target: flow.target, ...common },
            { source: flow.target, target: flow.source, ...common },
          ],
          restartBackoffInitialMs: 200,
          restartBackoffMaxMs: 2000,
          lagPollIntervalMs: 500,
        },
        http: { host: '127.0.0.1', port: flow.httpPort },
      }),
    );
    await createTopic(PRIMARY, topic, 2);
    await createTopic(DR, topic, 2);
    await produce(
      PRIMARY,
      topic,
      Array.from({ length: 100 }, (_, i) => ({ partition: i % 2, key: `p${i}`, value: `from-primary-${i}` })),
    );
    await produce(
      DR,
      topic,
      Array.from({ length: 40 }, (_, i) => ({ partition: i % 2, key: `d${i}`, value: `from-dr-${i}` })),
    );
    const p = mirror(flow.configPath);
    const forward = `${flow.source}->${flow.target}`;
    const back = `${flow.target}->${flow.source}`;
    await waitFor(
      'both flows to be active',
      async () => {
        const flows = await flowStatuses(flow.httpPort);
        return flows.length === 2 && flows.every((f) => f.state === 'active');
      },
      60_000,
    );

    // A loop never settles: each flow would keep writing what the other wrote. Settled means both
    // flows have committed positions at the log end of their source topic as it is after the
    // positions were read, so nothing is left for either to write.
    const committedTo = (f: FlowStatusView | undefined, ends: Array<{ partition: number; high: number }>): boolean =>
      ends.every((o) => (f?.partitions.find((x) => x.topic === topic && x.partition === o.partition)?.position ?? -1) >= o.high);
    const settled = async (): Promise<boolean> => {
      const flows = await flowStatuses(flow.httpPort);
      const [onP, onD] = await Promise.all([endOffsets(PRIMARY, topic), endOffsets(DR, topic)]);
      return (
        committedTo(
          flows.find((f) => f.flow === forward),
          onP,
        ) &&
        committedTo(
          flows.find((f) => f.flow === back),
          onD,
        )
      );
    };
    await waitFor('both flows to settle: positions at both log ends', settled, 60_000, 500);

    const onDr = await readTopic(DR, topic, 140, 60_000);
    const onPrimary = await readTopic(PRIMARY, topic, 140, 60_000);
    // each flow skipped exactly the records that came from its target: the 40 of dr on the primary, the 100 of the primary on dr
    const metrics = (await http(flow.httpPort, '/metrics')).body.split('\n');
    const cycleSkips = (f: string): number | undefined => {
      const line = metrics.find((l) => l.startsWith('crr_mirror_records_skipped_total{') && l.includes(`flow="${f}"`) && l.includes('reason="cycle"'));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    expect(cycleSkips(forward), `${forward} cycle skips`).toBe(40);
    expect(cycleSkips(back), `${back} cycle skips`).toBe(100);
    // still settled, and read again to the end: nothing more arrived
    expect(await settled(), 'both flows still settled').toBe(true);
    const again = await readTopic(PRIMARY, topic, 140, 60_000);
    for (const side of [onDr, onPrimary, again]) {
      expect(side).toHaveLength(140);
      expect(side.filter((r) => r.value!.startsWith('from-primary-'))).toHaveLength(100);
      expect(side.filter((r) => r.value!.startsWith('from-dr-'))).toHaveLength(40);
    }
    expect(onDr.filter((r) => r.value!.startsWith('from-primary-')).every((r) => r.provenance['crr.origin.alias'] === flow.source)).toBe(true);
    expect(p.log()).not.toMatch(/"level":"(error|fatal)"/);
  });
});
