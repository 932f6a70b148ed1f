import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throw-away PKI made with openssl at test time (EC P-256: a few milliseconds per key): a test
 * CA, a server certificate for 127.0.0.1 and localhost and a client certificate (CN `crr-client`)
 * signed by it, and a self-signed certificate of another issuer. PEM file paths.
 */
export interface TestPki {
  dir: string;
  caCert: string;
  cert: string;
  key: string;
  clientCert: string;
  clientKey: string;
  /** Self-signed, for 127.0.0.1 and localhost: signed by no CA a client trusts. */
  otherCert: string;
  otherKey: string;
}

/** Makes a {@link TestPki} in a fresh temporary folder (valid 2 days). */
export function makePki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), 'crr-tls-'));
  const f = (n: string): string => join(dir, n);
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '2', '-subj', '/CN=crr test CA');
  writeFileSync(f('server.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  writeFileSync(f('client.cnf'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, cn] of [
    ['server', 'localhost'],
    ['client', 'crr-client'],
  ] as const) {
    ssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    ssl(
      'x509',
      '-req',
      '-in',
      f(`${name}.csr`),
      '-CA',
      f('ca.crt'),
      '-CAkey',
      f('ca.key'),
      '-CAcreateserial',
      '-out',
      f(`${name}.crt`),
      '-days',
      '2',
      '-extfile',
      f(`${name}.cnf`),
    );
  }
  ssl(
    'req',
    '-x509',
    ...ec,
    '-keyout',
    f('other.key'),
    '-out',
    f('other.crt'),
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  );
  return {
    dir,
    caCert: f('ca.crt'),
    cert: f('server.crt'),
    key: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
    otherCert: f('other.crt'),
    otherKey: f('other.key'),
  };
}
