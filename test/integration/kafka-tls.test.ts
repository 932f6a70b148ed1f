import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createKafka } from '../../src/kafka/client.js';
import { createLogger } from '../../src/log/logger.js';
import { PRIMARY, uniq } from '../support/helpers.js';
import { makePki, type TestPki } from '../support/pki.js';

/**
 * A TLS listener in front of the real `primary` broker: it terminates TLS (requiring a client
 * certificate signed by the test CA: mTLS) and forwards the bytes to the broker's plaintext port.
 * Records the subject of each client certificate it accepted.
 */
async function tlsFront(
  pki: TestPki,
  certFile = pki.cert,
  keyFile = pki.key,
): Promise<{ port: number; clients: string[]; answeredBytes: () => number; close(): Promise<void> }> {
  const [host, port] = PRIMARY.split(':') as [string, string];
  const clients: string[] = [];
  let answered = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer(
    { cert: readFileSync(certFile), key: readFileSync(keyFile), ca: readFileSync(pki.caCert), requestCert: true, rejectUnauthorized: true },
    (client) => {
      clients.push(String(client.getPeerCertificate().subject?.CN));
      const upstream = net.connect(Number(port), host);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
        s.on('error', () => undefined);
      }
      upstream.on('data', (d: Buffer) => (answered += d.length));
      client.pipe(upstream).pipe(client);
    },
  );
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    clients,
    answeredBytes: () => answered,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function logCapture(): { log: ReturnType<typeof createLogger>; text: () => string } {
  const lines: string[] = [];
  const sink = new Writable({
    write: (c, _e, done) => {
      lines.push(String(c));
      done();
    },
  });
  return { log: createLogger('warn', sink), text: () => lines.join('') };
}

/**
 * The TLS settings of a cluster reach KafkaJS's connections (issue 12 item 1): through a TLS
 * front of the real broker that requires a client certificate, crr's client verifies the
 * broker's certificate against `caFile`, presents `certFile`/`keyFile` and names `servername`;
 * a broker certificate of another issuer is refused unless verification is turned off, which is
 * logged. The seed broker answers the request (Metadata), so the broker's advertised plaintext
 * address is not dialled.
 */
describe('Kafka over TLS with the cluster config', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makePki();
  });
  const fronts: Array<{ close(): Promise<void> }> = [];
  afterAll(async () => {
    for (const f of fronts) await f.close();
  });

  /**
   * Connects an admin client of a cluster whose bootstrap is the front. KafkaJS's first request
   * (Metadata) goes through the front; it then dials the broker's advertised address
   * (127.0.0.1:19092, plaintext) with TLS, which fails: that error, if any, is returned.
   */
  async function connectThrough(port: number, ssl: Record<string, unknown>, log = logCapture().log): Promise<Error | undefined> {
    const alias = `tls${uniq()}`;
    const cluster = parseConfig({ clusters: { [alias]: { bootstrapServers: [`127.0.0.1:${port}`], ssl, connectionTimeoutMs: 3000 } } }).clusters[alias]!;
    const admin = createKafka(alias, cluster, 'test', log, 'fatal').admin({ retry: { retries: 0 } });
    try {
      await admin.connect();
      await admin.describeCluster();
      return undefined;
    } catch (err) {
      return err as Error;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  it('mTLS with caFile, certFile/keyFile and servername: the broker answers through TLS; the front saw crr-client', async () => {
    const front = await tlsFront(pki);
    fronts.push(front);
    const err = await connectThrough(front.port, { caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey, servername: 'localhost' });
    expect(front.clients[0]).toBe('crr-client');
    expect(front.answeredBytes()).toBeGreaterThan(0);
    if (err) expect(String((err as { broker?: string }).broker ?? (err.cause as { broker?: string })?.broker)).toBe(PRIMARY); // the advertised plaintext address, not the front
    // servername is what the certificate is checked against
    const wrongName = await connectThrough(front.port, { caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey, servername: 'kafka.elsewhere' });
    expect(String(wrongName)).toMatch(/kafka\.elsewhere/);
  });

  it('no client certificate: the mTLS front refuses the connection, nothing reaches the broker', async () => {
    const front = await tlsFront(pki);
    fronts.push(front);
    expect(await connectThrough(front.port, { caFile: pki.caCert })).toBeInstanceOf(Error);
    expect(front.clients).toEqual([]);
    expect(front.answeredBytes()).toBe(0);
  });

  it('a broker certificate of another issuer is refused; rejectUnauthorized: false accepts it and says so', async () => {
    const front = await tlsFront(pki, pki.otherCert, pki.otherKey);
    fronts.push(front);
    const ssl = { caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey };
    expect(String(await connectThrough(front.port, ssl))).toMatch(/self[- ]signed certificate|unable to verify/i);
    expect(front.answeredBytes()).toBe(0);
    const { log, text } = logCapture();
    await connectThrough(front.port, { ...ssl, rejectUnauthorized: false }, log);
    expect(front.answeredBytes()).toBeGreaterThan(0);
    expect(text()).toMatch(/TLS certificate verification is OFF for cluster tls/);
  });
});
