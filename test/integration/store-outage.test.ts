import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { http, metricValue, runCrr, usePairs, uniq, useCrrProcesses, waitFor } from '../support/helpers.js';
import { TcpProxy } from '../support/tcp-proxy.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const pair = usePairs();
const start = useCrrProcesses();
const proxies: TcpProxy[] = [];
afterAll(async () => {
  for (const p of proxies) await p.cut();
});

const status = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body);

/**
 * Issue 11 item 8: a PostgreSQL outage must not stop the DR mirror. The DR store is reached
 * through a TCP proxy that is cut when the daemon starts: `crr run` of the replica starts
 * anyway, mirrors everything, and replay waits (`waiting-for-store`, crr_store_up 0, /readyz
 * 503, /healthz 200); once the store answers, replay catches up and the stores are equal.
 */
describe('the replica daemon during a PostgreSQL outage', () => {
  it('keeps mirroring while its store is down, then replays to EQUAL once it is back', async () => {
    const p = pair();
    const proxy = await TcpProxy.create({ host: '127.0.0.1', port: 5432 });
    proxies.push(proxy);
    const config = parseYaml(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    config.clusters[p.target].store.connectionString = `postgres://postgres@127.0.0.1:${proxy.port}/postgres`;
    writeFileSync(p.configPath, stringify(config));
    const events = [
      { op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [] },
      ...Array.from({ length: 500 }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${i}` }, attributes: {} })),
    ];
    const file = join(tmpdir(), 'crr-tests', `outage-${uniq()}.ndjson`);
    writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
    expect((await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file])).code).toBe(0);
    start(['run', '--config', p.configPath, '--cluster', p.source, '--http-port', String(p.primaryHttpPort)]);

    const dr = start(['run', '--config', p.configPath, '--cluster', p.target]);
    let lastStatus: unknown;
    const drLog = (): string => dr.log().split('\n').slice(-8).join('\n');
    await waitFor(
      'the mirror to copy everything while the store is down',
      async () => {
        const s = await status(p.httpPort).catch(() => undefined);
        lastStatus = s;
        const parts = (s?.flows?.[0]?.partitions ?? []).filter((x: any) => x.topic === p.dataTopic);
        return parts.length === 3 && parts.every((x: any) => x.lagRecords === 0) && parts.reduce((n: number, x: any) => n + x.logEndOffset, 0) === 500;
      },
      90_000,
      300,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${drLog()}\n${String(JSON.stringify(lastStatus)).slice(0, 1500)}`);
    });
    const down = await status(p.httpPort);
    expect(down.replay.state).toBe('waiting-for-store');
    expect(metricValue((await http(p.httpPort, '/metrics')).body, 'crr_store_up')).toBe(0);
    expect((await http(p.httpPort, '/healthz')).status).toBe(200);
    expect((await http(p.httpPort, '/readyz')).status).toBe(503);
    expect(dr.child.exitCode).toBeNull();

    await proxy.restore();
    await waitFor(
      'replay to catch up once the store is back',
      async () => (await status(p.httpPort)).replay.lagRecords === 0 && (await status(p.httpPort)).replay.state === 'active',
      120_000,
      300,
    );
    expect(metricValue((await http(p.httpPort, '/metrics')).body, 'crr_store_up')).toBe(1);
    const verify = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '60000']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/City\s+500\s+500/);
  }, 300_000);
});
