import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrrError } from '../../../src/errors.js';
import { S3Repository } from '../../../src/backup/s3-repository.js';

// An S3 endpoint that accepts connections and never answers (a blackholed server, as a firewall
// that drops packets makes it): a request must fail in bounded time, as a retriable CRR_REPOSITORY.
describe('S3 repository against a server that never answers', () => {
  let server: net.Server;
  let port: number;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });

  it('fails a read after the socket timeout and the SDK retries, retriable, naming the repository', async () => {
    const repo = new S3Repository({
      bucket: 'b',
      prefix: 'crr',
      endpoint: `http://127.0.0.1:${port}`,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
      maxAttempts: 2,
      socketTimeoutMs: 300,
    });
    const err = await repo.get('x/manifest.json').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CrrError);
    expect((err as CrrError).code).toBe('CRR_REPOSITORY');
    expect((err as CrrError).retriable).toBe(true);
    expect((err as CrrError).message).toMatch(/repository s3:\/\/b\/crr at http:\/\/127\.0\.0\.1:\d+: get x\/manifest\.json failed/);
    repo.client.destroy();
  }, 30_000); // without a socket timeout the request waits for ever: the test's own timeout fails it
});
