import { writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createTopic, DR, PRIMARY, produce, readTopic, sleep, testFlow, useMirrorProcesses, waitFor } from '../support/helpers.js';

const mirror = useMirrorProcesses();

describe('identity replication policy', () => {
  it('an active/active pair keeps topic names and never loops records back (provenance header)', async () => {
    const flow = testFlow();
    const topic = `${flow.prefix}.shared`;
    const common = { topics: { include: [`${flow.prefix}.*`] }, replicationPolicy: { type: 'identity' }, topicRefreshIntervalMs: 1000, transactionLingerMs: 20, emitHeartbeats: false };
    writeFileSync(
      flow.configPath,
      stringify({
        clusters: { [flow.source]: { bootstrapServers: [PRIMARY] }, [flow.target]: { bootstrapServers: [DR] } },
        mirror: { flows: [{ source: flow.source, target: flow.target, ...common }, { source: flow.target, target: flow.source, ...common }], restartBackoffInitialMs: 200, restartBackoffMaxMs: 2000, lagPollIntervalMs: 500 },
        http: { host: '127.0.0.1', port: flow.httpPort },
      }),
    );
    await createTopic(PRIMARY, topic, 2);
    await createTopic(DR, topic, 2);
    await produce(PRIMARY, topic, Array.from({ length: 100 }, (_, i) => ({ partition: i % 2, key: `p${i}`, value: `from-primary-${i}` })));
    await produce(DR, topic, Array.from({ length: 40 }, (_, i) => ({ partition: i % 2, key: `d${i}`, value: `from-dr-${i}` })));
    const p = mirror(flow.configPath);
    await waitFor('both flows to be active', () => (p.log().match(/resuming from the positions/g) ?? []).length >= 2, 60_000);

    const onDr = await readTopic(DR, topic, 140, 60_000, 3000);
    const onPrimary = await readTopic(PRIMARY, topic, 140, 60_000, 3000);
    // give a loop time to show itself, then read again: nothing more may arrive
    await sleep(3000);
    const again = await readTopic(PRIMARY, topic, 141, 3000, 500);
    for (const side of [onDr, onPrimary, again]) {
      expect(side).toHaveLength(140);
      expect(side.filter((r) => r.value!.startsWith('from-primary-'))).toHaveLength(100);
      expect(side.filter((r) => r.value!.startsWith('from-dr-'))).toHaveLength(40);
    }
    expect(onDr.filter((r) => r.value!.startsWith('from-primary-')).every((r) => r.provenance['crr.origin.alias'] === flow.source)).toBe(true);
    expect(p.log()).not.toMatch(/"level":"(error|fatal)"/);
  });
});
