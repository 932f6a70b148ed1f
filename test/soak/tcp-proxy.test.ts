import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpProxy } from '../support/tcp-proxy.js';

// The soak's network faults (scripts/soak/soak.ts) rest on these modes: a test of each against a
// real echo server on loopback.
const servers: net.Server[] = [];
const proxies: TcpProxy[] = [];
afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

async function echoServer(): Promise<number> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function proxyToEcho(): Promise<TcpProxy> {
  const p = await TcpProxy.create({ host: '127.0.0.1', port: await echoServer() });
  proxies.push(p);
  await p.restore();
  return p;
}

/** Connects; resolves the socket, or rejects with the connect error. */
function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends `text` and resolves what came back within `ms` ('' when nothing did), and whether the socket closed. */
function roundTrip(s: net.Socket, text: string, ms: number): Promise<{ got: string; closed: boolean; elapsedMs: number }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let got = '';
    let closed = false;
    const done = (): void => {
      clearTimeout(timer);
      s.off('data', onData);
      resolve({ got, closed, elapsedMs: Date.now() - t0 });
    };
    const onData = (d: Buffer): void => {
      got += d.toString();
      if (got.length >= text.length) done();
    };
    s.on('data', onData);
    s.once('close', () => {
      closed = true;
      done();
    });
    s.on('error', () => undefined);
    const timer = setTimeout(done, ms);
    s.write(text);
  });
}

describe('TcpProxy: the network faults of the soak', () => {
  it('forwards; cut refuses new connections and resets open ones; restore listens again', async () => {
    const p = await proxyToEcho();
    const s = await connect(p.port);
    expect((await roundTrip(s, 'hello', 2000)).got).toBe('hello');
    const closed = new Promise<void>((r) => s.once('close', () => r()));
    await p.cut();
    await closed;
    await expect(connect(p.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await p.restore();
    const s2 = await connect(p.port);
    expect((await roundTrip(s2, 'again', 2000)).got).toBe('again');
    s2.destroy();
  });

  it('blackhole: open and new connections get no answer and no reset; restore resets them, and new connections work', async () => {
    const p = await proxyToEcho();
    const open = await connect(p.port);
    await p.blackhole();
    expect(await roundTrip(open, 'lost', 400)).toMatchObject({ got: '', closed: false });
    const fresh = await connect(p.port); // accepted...
    expect(await roundTrip(fresh, 'lost too', 400)).toMatchObject({ got: '', closed: false }); // ...never answered
    const bothClosed = Promise.all([open, fresh].map((s) => new Promise<void>((r) => s.once('close', () => r()))));
    await p.restore();
    await bothClosed; // their byte streams lost bytes: reset, not resumed
    const s = await connect(p.port);
    expect((await roundTrip(s, 'back', 2000)).got).toBe('back');
    s.destroy();
  });

  it('slow: every chunk arrives whole and in order, after the latency each way', async () => {
    const p = await proxyToEcho();
    const s = await connect(p.port);
    await p.slow(150);
    const r = await roundTrip(s, 'abcdefghij'.repeat(100), 3000);
    expect(r.got).toBe('abcdefghij'.repeat(100));
    expect(r.elapsedMs).toBeGreaterThanOrEqual(290); // 150 ms up + 150 ms down
    await p.restore();
    const fast = await roundTrip(s, 'quick', 2000);
    expect(fast.got).toBe('quick');
    expect(fast.elapsedMs).toBeLessThan(150);
    s.destroy();
    await expect(p.slow(-1)).rejects.toThrow(/latencyMs must be a finite number >= 0/);
  });
});
