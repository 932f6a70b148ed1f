import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync, appendFileSync, chownSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../../src/store/open.js';
import { PostgresStore } from '../../src/store/postgres.js';
import { StoreSchema } from '../../src/store/schema.js';
import { makePki, type TestPki } from '../support/pki.js';

// Issue 12 item 6: TLS to PostgreSQL from the store config, against a real server with ssl=on.
// The test starts its own PostgreSQL (the machine's binaries, as the postgres user) on a free
// port: hostssl only, `cert` authentication for the role crr-client, trust for the rest over TLS.

const bin = (() => {
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).sort().pop() : undefined;
  return version ? join(root, version, 'bin') : undefined;
})();

let pki: TestPki;
let dir: string;
let port: number;
const asPostgres = (args: string[]): void => void execFileSync('runuser', ['-u', 'postgres', '--', ...args], { stdio: 'pipe' });

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

const url = (user: string): string => `postgres://${user}@127.0.0.1:${port}/postgres`;

describe.skipIf(bin === undefined)('PostgreSQL over TLS (store.ssl)', () => {
  beforeAll(async () => {
    pki = makePki();
    port = await freePort();
    dir = mkdtempSync(join(tmpdir(), 'crr-pgtls-'));
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    const data = join(dir, 'data');
    asPostgres([join(bin!, 'initdb'), '-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    for (const [from, to] of [
      [pki.cert, 'server.crt'],
      [pki.key, 'server.key'],
      [pki.caCert, 'ca.crt'],
    ] as const) {
      copyFileSync(from, join(data, to));
      chownSync(join(data, to), uid, gid);
      chmodSync(join(data, to), 0o600);
    }
    appendFileSync(
      join(data, 'postgresql.conf'),
      `port = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${dir}'\nssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\nssl_ca_file = 'ca.crt'\nfsync = off\n`,
    );
    writeFileSync(
      join(data, 'pg_hba.conf'),
      'hostssl all crr-client 127.0.0.1/32 cert\nhostssl all all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 reject\nlocal all all trust\n',
    );
    asPostgres([join(bin!, 'pg_ctl'), '-D', data, '-l', join(dir, 'server.log'), '-w', '-t', '60', 'start']);
    const admin = new PostgresStore({ connectionString: url('postgres'), ssl: { mode: 'verify-full', caFile: pki.caCert } });
    try {
      await admin.pool.query('CREATE ROLE "crr-client" LOGIN SUPERUSER');
    } finally {
      await admin.close();
    }
  }, 120_000);

  afterAll(() => {
    if (!dir) return;
    try {
      asPostgres([join(bin!, 'pg_ctl'), '-D', join(dir, 'data'), '-m', 'immediate', 'stop']);
    } catch {
      // already stopped
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('verify-full with the server CA connects encrypted; the store works over it', async () => {
    const config = StoreSchema.parse({ type: 'postgres', connectionString: url('postgres'), schema: 'tls_a', ssl: { caFile: pki.caCert } });
    expect(config.ssl?.mode).toBe('verify-full');
    const store = openStore(config) as PostgresStore;
    try {
      await store.migrate();
      await store.applyBatch([], [{ topic: 't', partition: 0, nextOffset: 5 }]);
      expect(await store.positions()).toEqual([{ topic: 't', partition: 0, nextOffset: 5 }]);
      const lease = await store.tryLease('reseed', 'tls test');
      expect('release' in lease).toBe(true);
      if ('release' in lease) await lease.release();
      const { rows } = await store.pool.query('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      expect(rows[0]).toEqual({ ssl: true });
    } finally {
      await store.close();
    }
  });

  it('refuses a server whose certificate does not chain to caFile, and an unencrypted connection the server does not allow', async () => {
    const wrongCa = new PostgresStore({ connectionString: url('postgres'), schema: 'tls_b', ssl: { mode: 'verify-full', caFile: pki.otherCert } });
    await expect(wrongCa.migrate()).rejects.toThrow(/store \(schema tls_b\) failed.*(self[- ]signed|unable to verify|certificate)/i);
    await wrongCa.close();
    const plain = new PostgresStore({ connectionString: url('postgres'), schema: 'tls_b', ssl: { mode: 'disable' } });
    await expect(plain.migrate()).rejects.toThrow(/pg_hba\.conf rejects connection .*no encryption/);
    await plain.close();
    // require: encrypted without verifying the server (libpq's meaning)
    const require = new PostgresStore({ connectionString: url('postgres'), schema: 'tls_b', ssl: { mode: 'require' } });
    try {
      await require.migrate();
    } finally {
      await require.close();
    }
  });

  it('authenticates with a client certificate (pg_hba.conf cert), and refuses the role without one', async () => {
    const withCert = new PostgresStore({
      connectionString: url('crr-client'),
      schema: 'tls_c',
      ssl: { mode: 'verify-full', caFile: pki.caCert, certFile: pki.clientCert, keyFile: pki.clientKey },
    });
    try {
      await withCert.migrate();
      expect((await withCert.pool.query('SELECT current_user AS u')).rows[0]).toEqual({ u: 'crr-client' });
    } finally {
      await withCert.close();
    }
    const withoutCert = new PostgresStore({ connectionString: url('crr-client'), schema: 'tls_c', ssl: { mode: 'verify-full', caFile: pki.caCert } });
    await expect(withoutCert.migrate()).rejects.toThrow(/certificate/i);
    await withoutCert.close();
  });

  it('refuses TLS given twice (store.ssl and sslmode in the connection string), and a certFile without keyFile, naming the field', () => {
    const twice = StoreSchema.safeParse({ type: 'postgres', connectionString: `${url('postgres')}?sslmode=require`, ssl: { mode: 'require' } });
    expect(twice.success).toBe(false);
    expect(twice.error?.issues[0]).toMatchObject({ path: ['ssl'], message: expect.stringMatching(/not both/) });
    const half = StoreSchema.safeParse({ type: 'postgres', connectionString: url('postgres'), ssl: { certFile: pki.clientCert } });
    expect(half.error?.issues[0]).toMatchObject({ path: ['ssl', 'keyFile'] });
    expect(() => new PostgresStore({ connectionString: url('postgres'), ssl: { mode: 'verify-full', caFile: join(dir, 'missing.pem') } })).toThrow(
      /store\.ssl\.caFile: cannot read .*missing\.pem/,
    );
  });
});
