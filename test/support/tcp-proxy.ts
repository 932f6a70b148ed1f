import net from 'node:net';

/** What a {@link TcpProxy} does with traffic: see its methods. */
export type TcpProxyMode = 'cut' | 'forward' | 'blackhole' | 'slow';

/** One open connection: the client's socket, the upstream one, and what it still has to deliver. */
interface Link {
  client: net.Socket;
  upstream: net.Socket | undefined;
  /** Saw blackholed (dropped) bytes: its byte stream is broken, so it is reset on restore. */
  broken: boolean;
  /** Delayed chunks per direction, in order, each with the time it is due (ms since the epoch). */
  queues: { up: Array<{ due: number; data: Buffer }>; down: Array<{ due: number; data: Buffer }> };
  timers: { up: NodeJS.Timeout | undefined; down: NodeJS.Timeout | undefined };
}

/**
 * A TCP proxy for fault tests: forwards connections to 127.0.0.1:`port` to a target on this
 * machine. Loopback only. Its modes:
 * - `cut()`: closes the listener and destroys every open connection (new connections are
 *   refused, open ones reset);
 * - `restore()`: listens again on the same port and forwards (connections broken by a blackhole
 *   are reset first);
 * - `blackhole()`: listens, but nothing passes in either direction, on open connections or on
 *   new ones: bytes are dropped and nothing answers (a network partition without resets; the
 *   client sees only its own timeouts). `restore()` then resets those connections, since their
 *   byte streams lost bytes;
 * - `slow(latencyMs)`: forwards every chunk in each direction `latencyMs` after it arrived, in
 *   order (a slow link; nothing lost).
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly links = new Set<Link>();
  private modeNow: TcpProxyMode = 'cut';
  private latencyMs = 0;

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  /**
   * A proxy to `target`, on `port` (default: a free port picked now). It starts cut: call
   * restore to listen.
   */
  static async create(target: { host: string; port: number }, port?: number): Promise<TcpProxy> {
    if (port !== undefined) return new TcpProxy(port, target);
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const picked = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    return new TcpProxy(picked, target);
  }

  /** The current mode. */
  get mode(): TcpProxyMode {
    return this.modeNow;
  }

  /** Open connections (client side). */
  get connections(): number {
    return this.links.size;
  }

  private async listen(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(client: net.Socket): void {
    const link: Link = { client, upstream: undefined, broken: false, queues: { up: [], down: [] }, timers: { up: undefined, down: undefined } };
    this.links.add(link);
    client.setNoDelay(true);
    client.on('error', () => undefined);
    client.on('close', () => this.drop(link));
    client.on('data', (d: Buffer) => this.pass(link, 'up', d));
    if (this.modeNow === 'blackhole') {
      // accepted, never answered: upstream is connected only if the link is ever restored (it is reset then)
      link.broken = true;
      return;
    }
    this.connectUpstream(link);
  }

  private connectUpstream(link: Link): void {
    const upstream = net.connect(this.target.port, this.target.host);
    link.upstream = upstream;
    upstream.setNoDelay(true);
    upstream.on('error', () => undefined);
    upstream.on('close', () => this.drop(link));
    upstream.on('data', (d: Buffer) => this.pass(link, 'down', d));
  }

  /** Forwards (now or after the latency) or drops one chunk, by the mode. */
  private pass(link: Link, dir: 'up' | 'down', data: Buffer): void {
    if (this.modeNow === 'blackhole' || link.broken) {
      link.broken = true;
      return;
    }
    const to = dir === 'up' ? link.upstream : link.client;
    if (!to) return;
    const q = link.queues[dir];
    if (this.modeNow !== 'slow' && q.length === 0) {
      to.write(data);
      return;
    }
    // keep the order: a chunk never overtakes one queued before it
    const last = q[q.length - 1];
    q.push({ due: Math.max(Date.now() + (this.modeNow === 'slow' ? this.latencyMs : 0), last?.due ?? 0), data });
    this.arm(link, dir);
  }

  private arm(link: Link, dir: 'up' | 'down'): void {
    if (link.timers[dir]) return;
    const head = link.queues[dir][0];
    if (!head) return;
    link.timers[dir] = setTimeout(
      () => {
        link.timers[dir] = undefined;
        const to = dir === 'up' ? link.upstream : link.client;
        const q = link.queues[dir];
        while (q.length > 0 && q[0]!.due <= Date.now()) {
          const { data } = q.shift()!;
          if (!link.broken) to?.write(data);
        }
        this.arm(link, dir);
      },
      Math.max(0, head.due - Date.now()),
    );
  }

  private drop(link: Link): void {
    if (!this.links.delete(link)) return;
    for (const t of [link.timers.up, link.timers.down]) if (t) clearTimeout(t);
    link.client.destroy();
    link.upstream?.destroy();
  }

  /** Listens and forwards without delay; resets the connections a blackhole broke. */
  async restore(): Promise<void> {
    this.modeNow = 'forward';
    for (const link of [...this.links]) if (link.broken) this.drop(link);
    await this.listen();
  }

  /** Refuses new connections and resets the open ones. */
  async cut(): Promise<void> {
    this.modeNow = 'cut';
    const server = this.server;
    this.server = undefined;
    for (const link of [...this.links]) this.drop(link);
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Accepts connections but lets nothing through, either way, on any connection; nothing is reset. */
  async blackhole(): Promise<void> {
    this.modeNow = 'blackhole';
    await this.listen();
  }

  /**
   * Forwards each chunk `latencyMs` after it arrived, in order, in both directions.
   * @throws RangeError when latencyMs is not a finite number >= 0
   */
  async slow(latencyMs: number): Promise<void> {
    if (!Number.isFinite(latencyMs) || latencyMs < 0) throw new RangeError(`TcpProxy.slow: latencyMs must be a finite number >= 0, got ${latencyMs}`);
    for (const link of [...this.links]) if (link.broken) this.drop(link);
    this.latencyMs = latencyMs;
    this.modeNow = 'slow';
    await this.listen();
  }

  /** Closes the listener and every connection (the end of a test). */
  async close(): Promise<void> {
    await this.cut();
  }
}
