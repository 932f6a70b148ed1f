import { readFileSync } from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { parse } from 'yaml';
import { http, runCrr, useCrrProcesses, waitFor } from '../support/helpers.js';
import { useReseedPairs, writeEvents } from '../support/reseed-pair.js';
import { rememberAcls, useSecuredClusters, writeTestConfig } from '../support/secured.js';

/**
 * The mirror, replay and a reseed on the secured clusters (issue 12), each region with its own
 * principals and no more than `crr acls apply` grants them:
 * - the primary region's daemon is User:crr on the primary (its change topics, its store, its
 *   backup repository);
 * - the DR region's daemon is User:crr-dr on the DR cluster and User:crr-src on the primary (the
 *   mirror's read-only source principal, which may also WRITE backup requests on
 *   `crr-control.internal`); its config has no credentials for the primary's database;
 * - the application is User:app (`crr write` to the primary).
 * A DROP ALL on the primary makes the replica OUTDATED; the DR daemon asks the primary's daemon
 * for a backup through the primary's Kafka, restores it and ends equal.
 */

const secured = useSecuredClusters();
const start = useCrrProcesses();
const makePair = useReseedPairs();

const upserts = (from: number, n: number): object[] =>
  Array.from({ length: n }, (_, i) => ({ op: 'UPSERT_VERTEX', vertex: { type: 'City', id: `c${(from + i) % 400}` }, attributes: { n: from + i } }));

const replayStatus = async (port: number): Promise<any> => JSON.parse((await http(port, '/status')).body).replay;

describe('secured clusters: mirror, replay and a reseed, each region with its own principals', () => {
  it('the DR region (crr-dr on DR, the read-only crr-src on the primary, no primary database) reseeds through the primary daemon (crr) after a DROP ALL, and ends equal', async () => {
    const p = await makePair({ mode: 'auto' });
    const plain = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    const [P, D] = [p.source, p.target];
    /** The pair's config with the secured clusters, logged in as `users` per alias; `keepStores` names the stores this region knows. */
    const regionConfig = (name: string, users: { primary: string; dr: string }, keepStores: string[]): string => {
      const c = structuredClone(plain);
      for (const [alias, bootstrap, user] of [
        [P, secured.primary, users.primary],
        [D, secured.dr, users.dr],
      ] as const) {
        const { bootstrapServers: _b, ...rest } = c.clusters[alias];
        c.clusters[alias] = { ...rest, ...secured.cluster(bootstrap, user), applicationPrincipals: ['User:app'] };
        if (!keepStores.includes(alias)) delete c.clusters[alias].store;
      }
      c.mirror.flows[0].sourceAuth = { sasl: { mechanism: 'scram-sha-512', username: 'crr-src', password: secured.password('crr-src') } };
      c.reseed.backupRequest = { acceptTimeoutMs: 5000 };
      return writeTestConfig(`secured-${name}-${P}`, c);
    };
    const adminConfig = regionConfig('admin', { primary: 'crr-admin', dr: 'crr-admin' }, [P, D]);
    const primaryConfig = regionConfig('primary', { primary: 'crr', dr: 'crr-dr' }, [P]);
    const drConfig = regionConfig('dr', { primary: 'crr-src', dr: 'crr-dr' }, [D]);
    const appConfig = regionConfig('app', { primary: 'app', dr: 'app' }, []);

    // the ACLs of each cluster's role, applied by the super user (removed at the end)
    const restoreAcls = await rememberAcls(secured);
    onTestFinished(restoreAcls);
    for (const [alias, principal] of [
      [P, 'User:crr'],
      [D, 'User:crr-dr'],
    ]) {
      const r = await runCrr(['acls', 'apply', '--config', adminConfig, '--cluster', alias!, '--principal', principal!, '--execute']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
    }

    const primaryDaemon = start(['run', '--config', primaryConfig, '--cluster', P, '--http-port', String(p.primaryHttpPort)]);
    const drDaemon = start(['run', '--config', drConfig, '--cluster', D]);
    const logs = () => `\nprimary daemon:\n${primaryDaemon.log().slice(-2500)}\nDR daemon:\n${drDaemon.log().slice(-2500)}`;
    const caughtUp = (epoch: number, what: string) =>
      waitFor(
        what,
        async () => {
          const [a, b] = await Promise.all([replayStatus(p.primaryHttpPort).catch(() => undefined), replayStatus(p.httpPort).catch(() => undefined)]);
          return (
            a?.lagRecords === 0 && b?.state === 'active' && b.lagRecords === 0 && b.clusterState?.state === 'REPLICATING' && b.clusterState.epoch === epoch
          );
        },
        120_000,
        300,
      ).catch((err) => {
        throw new Error(`${(err as Error).message}${logs()}`);
      });
    await waitFor(
      "the primary daemon's change topics",
      async () => JSON.parse((await http(p.primaryHttpPort, '/status')).body).backupRequests?.state === 'serving',
      120_000,
      300,
    ).catch((err) => {
      throw new Error(`${(err as Error).message}${logs()}`);
    });

    // the application writes as User:app
    const write = (events: object[]) => writeEvents({ ...p, configPath: appConfig }, events);
    await write([{ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }, ...upserts(0, 600)]);
    await caughtUp(0, 'both stores caught up at epoch 0 (mirrored by crr-src -> crr-dr, replayed)');

    const dropped = await runCrr(['admin', 'drop-all', '--config', primaryConfig, '--cluster', P, '--reason', 'test', '--execute']);
    expect(dropped.code, dropped.stdout + dropped.stderr).toBe(0);
    await write([{ op: 'CREATE_VERTEX_TYPE', name: 'City', primaryIdType: 'STRING', attributes: [{ name: 'n', type: 'INT' }] }, ...upserts(1000, 300)]);
    await caughtUp(1, 'the replica reseeded through the primary daemon and caught up at epoch 1');
    const dr = await replayStatus(p.httpPort);
    expect(dr.lastReseed.backupId).toMatch(new RegExp(`-${P}-`));
    expect(drDaemon.log()).toContain(`asked ${P}'s daemon for a backup`);
    const verified = await runCrr(['verify', '--config', p.configPath, '--timeout-ms', '120000']);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  }, 300_000);
});
