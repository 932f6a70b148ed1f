import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../../src/config/load.js';
import { clearRegisteredSecrets } from '../../../src/config/secrets.js';
import { CrrError, describeError } from '../../../src/errors.js';
import { mirrorSideCluster } from '../../../src/config/flow.js';
import kafkajs from 'kafkajs';
import { explainKafkaTlsError, kafkaSecurityOptions } from '../../../src/kafka/client.js';
import '../../../src/kafka/kafkajs.js';
import { createLogger } from '../../../src/log/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'crr-kafka-opts-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const CA = file('ca.pem', '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n');
const CERT = file('client.pem', 'CLIENT CERT');
const KEY = file('client.key', 'CLIENT KEY');

/** A validated config of one cluster `a` with the given Kafka fields. */
function cluster(fields: Record<string, unknown>) {
  return parseConfig({ clusters: { a: { bootstrapServers: ['b1:9093'], ...fields } } }).clusters.a!;
}

function problems(fields: Record<string, unknown>): string[] {
  try {
    parseConfig({ clusters: { a: { bootstrapServers: ['b1:9093'], ...fields } } });
  } catch (err) {
    expect((err as CrrError).code).toBe('CRR_CONFIG_INVALID');
    return ((err as CrrError).issues as Array<{ path: string; message: string }>).map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

function capture(): { text: () => string; log: ReturnType<typeof createLogger> } {
  const lines: string[] = [];
  const sink = new Writable({
    write: (chunk, _e, done) => {
      lines.push(String(chunk));
      done();
    },
  });
  return { text: () => lines.join(''), log: createLogger('info', sink) };
}

describe('KafkaJS transport options (issue 12 item 1)', () => {
  it('ssl false / true: plain TCP / TLS with the system CAs; no sasl', () => {
    const { log } = capture();
    expect(kafkaSecurityOptions('a', cluster({}), log)).toEqual({ ssl: false });
    expect(kafkaSecurityOptions('a', cluster({ ssl: true }), log)).toEqual({ ssl: true });
  });

  it('ssl with caFile, certFile/keyFile (mTLS) and servername: the PEM contents for tls.connect, verification on', () => {
    const { log, text } = capture();
    const opts = kafkaSecurityOptions('a', cluster({ ssl: { caFile: CA, certFile: CERT, keyFile: KEY, servername: 'kafka.internal' } }), log);
    expect(opts.ssl).toEqual({
      ca: ['-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n'],
      cert: 'CLIENT CERT',
      key: 'CLIENT KEY',
      servername: 'kafka.internal',
      rejectUnauthorized: true,
    });
    expect(text()).toBe('');
  });

  it('rejectUnauthorized: false is passed on and logged as a warning naming the setting, once per alias', () => {
    const { log, text } = capture();
    const c = cluster({ ssl: { caFile: CA, rejectUnauthorized: false } });
    expect(kafkaSecurityOptions('insecure1', c, log).ssl).toMatchObject({ rejectUnauthorized: false });
    kafkaSecurityOptions('insecure1', c, log);
    const warnings = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: string; msg: string; setting: string });
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', setting: 'clusters.insecure1.ssl.rejectUnauthorized' });
    expect(warnings[0]!.msg).toContain('TLS certificate verification is OFF for cluster insecure1');
  });

  it('SASL PLAIN and SCRAM: the password from the config or from passwordFile (one trailing newline dropped), censored once read', () => {
    const { log } = capture();
    expect(kafkaSecurityOptions('a', cluster({ ssl: true, sasl: { mechanism: 'plain', username: 'crr', password: 'pw-value' } }), log).sasl).toEqual({
      mechanism: 'plain',
      username: 'crr',
      password: 'pw-value',
    });
    clearRegisteredSecrets();
    const pwFile = file('scram-pw', 'pw-from-file\n');
    for (const mechanism of ['scram-sha-256', 'scram-sha-512'] as const) {
      expect(kafkaSecurityOptions('a', cluster({ ssl: true, sasl: { mechanism, username: 'crr', passwordFile: pwFile } }), log).sasl).toEqual({
        mechanism,
        username: 'crr',
        password: 'pw-from-file',
      });
    }
    expect(describeError(new Error('auth with pw-from-file failed'))).toBe('auth with [redacted] failed');
  });

  it('SASL OAUTHBEARER: the token file is read again at each token request', async () => {
    const { log } = capture();
    const tokenFile = file('token', 'token-one\n');
    const sasl = kafkaSecurityOptions('a', cluster({ ssl: true, sasl: { mechanism: 'oauthbearer', tokenFile } }), log).sasl as {
      mechanism: string;
      oauthBearerProvider: () => Promise<{ value: string }>;
    };
    expect(sasl.mechanism).toBe('oauthbearer');
    expect(await sasl.oauthBearerProvider()).toEqual({ value: 'token-one' });
    writeFileSync(tokenFile, 'token-two');
    expect(await sasl.oauthBearerProvider()).toEqual({ value: 'token-two' });
  });

  it('SASL OAUTHBEARER: a tokenCommand is run at each token request; one that fails is CRR_KAFKA_AUTH naming the path and how, never its output', async () => {
    const { log } = capture();
    const counter = file('count', '0');
    const script = `const f=${JSON.stringify(counter)};const n=Number(require('fs').readFileSync(f,'utf8'))+1;require('fs').writeFileSync(f,String(n));process.stdout.write(' tok-'+n+'\\n')`;
    const provider = (tokenCommand: string[]) =>
      (
        kafkaSecurityOptions('a', cluster({ ssl: true, sasl: { mechanism: 'oauthbearer', tokenCommand } }), log).sasl as {
          oauthBearerProvider: () => Promise<{ value: string }>;
        }
      ).oauthBearerProvider;
    const next = provider([process.execPath, '-e', script]);
    expect(await next()).toEqual({ value: 'tok-1' });
    expect(await next()).toEqual({ value: 'tok-2' });
    const failing = provider([
      process.execPath,
      '-e',
      'process.stdout.write("secret-tok");process.stderr.write("no identity provider\\nmore");process.exit(3)',
    ]);
    const err = await failing().then(
      () => undefined,
      (e: unknown) => e as CrrError,
    );
    expect(err).toBeInstanceOf(CrrError);
    expect(err!.code).toBe('CRR_KAFKA_AUTH');
    expect(err!.retriable).toBe(true);
    expect(err!.message).toMatch(/^clusters\.a\.sasl\.tokenCommand: .*node exit 3: no identity provider$/);
    expect(err!.message).not.toContain('secret-tok');
  });

  it('a file that cannot be read: CRR_CONFIG_INVALID naming the config path', () => {
    const { log } = capture();
    expect(() => kafkaSecurityOptions('a', cluster({ ssl: { caFile: join(dir, 'nope.pem') } }), log)).toThrow(
      /^clusters\.a\.ssl\.caFile: cannot read .*nope\.pem/,
    );
    const empty = file('empty-pw', '\n');
    expect(() => kafkaSecurityOptions('a', cluster({ ssl: true, sasl: { mechanism: 'plain', username: 'u', passwordFile: empty } }), log)).toThrow(
      /^clusters\.a\.sasl\.passwordFile: .* is empty/,
    );
  });
});

describe('Kafka transport config errors', () => {
  it('PLAIN, SCRAM or OAUTHBEARER without TLS is refused, naming clusters.<alias>.sasl, unless allowInsecureSasl: true', () => {
    for (const sasl of [
      { mechanism: 'plain', username: 'u', password: 'p' },
      { mechanism: 'scram-sha-256', username: 'u', password: 'p' },
      { mechanism: 'scram-sha-512', username: 'u', passwordFile: '/x' },
      { mechanism: 'oauthbearer', tokenFile: '/t' },
      { mechanism: 'oauthbearer', tokenCommand: ['get-token'] },
    ]) {
      const found = problems({ sasl });
      expect(found, sasl.mechanism).toHaveLength(1);
      expect(found[0]).toMatch(
        new RegExp(`^clusters\\.a\\.sasl: SASL ${sasl.mechanism.toUpperCase()} without TLS sends .*: set ssl .*or allowInsecureSasl: true`),
      );
      expect(problems({ sasl, allowInsecureSasl: true }), sasl.mechanism).toEqual([]);
      expect(problems({ sasl, ssl: true }), sasl.mechanism).toEqual([]);
      expect(problems({ sasl, ssl: { caFile: '/ca.pem' } }), sasl.mechanism).toEqual([]);
    }
  });

  it('a password and a passwordFile, or neither; certFile without keyFile; an unknown mechanism or field', () => {
    expect(problems({ ssl: true, sasl: { mechanism: 'plain', username: 'u', password: 'p', passwordFile: '/f' } })).toEqual([
      'clusters.a.sasl.password: give exactly one of password and passwordFile (SASL PLAIN)',
    ]);
    expect(problems({ ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'u' } })).toEqual([
      'clusters.a.sasl.password: give exactly one of password and passwordFile (SASL SCRAM-SHA-512)',
    ]);
    expect(problems({ ssl: { certFile: '/c.pem' } })).toEqual([
      'clusters.a.ssl.keyFile: certFile and keyFile go together (the client certificate of mTLS and its key)',
    ]);
    expect(problems({ ssl: true, sasl: { mechanism: 'gssapi', username: 'u', password: 'p' } })[0]).toMatch(/^clusters\.a\.sasl/);
    expect(problems({ ssl: { cafile: '/ca.pem' } })[0]).toMatch(/^clusters\.a\.ssl/);
  });

  it('loadConfig refuses files it cannot read, naming each path; an env override turns ssl: true into a CA file', () => {
    const path = file(
      'c.yaml',
      stringify({
        clusters: {
          a: {
            bootstrapServers: ['b:9093'],
            ssl: { caFile: join(dir, 'missing-ca.pem') },
            sasl: { mechanism: 'oauthbearer', tokenFile: join(dir, 'missing-token') },
          },
        },
      }),
    );
    expect(() => loadConfig(path, {})).toThrow(
      /- clusters\.a\.ssl\.caFile: cannot read .*missing-ca\.pem: ENOENT\n {2}- clusters\.a\.sasl\.tokenFile: cannot read/,
    );
    const ok = file('ok.yaml', stringify({ clusters: { a: { bootstrapServers: ['b:9093'], ssl: true } } }));
    expect(loadConfig(ok, { CRR__clusters__a__ssl__caFile: CA }).clusters.a!.ssl).toEqual({ caFile: CA, rejectUnauthorized: true });
  });

  it('crr exits 78 naming the path when SASL PLAIN has no TLS', () => {
    const path = file(
      'plain.yaml',
      stringify({ clusters: { a: { bootstrapServers: ['b:9093'], sasl: { mechanism: 'plain', username: 'u', password: 'p' } } } }),
    );
    const r = spawnSync(process.execPath, [new URL('../../../bin/crr.js', import.meta.url).pathname, 'config', '--config', path], { encoding: 'utf8' });
    expect(r.status).toBe(78);
    expect(r.stderr).toContain('clusters.a.sasl: SASL PLAIN without TLS sends the password in clear');
    // the same for a flow's sourceAuth
    const flowPath = file(
      'plain-flow.yaml',
      stringify({
        clusters: { a: { bootstrapServers: ['a:9093'] }, b: { bootstrapServers: ['b:9093'] } },
        mirror: { flows: [{ source: 'a', target: 'b', sourceAuth: { sasl: { mechanism: 'plain', username: 'src', password: 'p' } } }] },
      }),
    );
    const f = spawnSync(process.execPath, [new URL('../../../bin/crr.js', import.meta.url).pathname, 'config', '--config', flowPath], { encoding: 'utf8' });
    expect(f.status).toBe(78);
    expect(f.stderr).toContain('mirror.flows[0].sourceAuth.sasl: SASL PLAIN without TLS sends the password in clear');
  });
});

describe("a mirror flow's sourceAuth / targetAuth (issue 12: separate credentials for the mirror's two sides)", () => {
  const scram = (username: string, more: Record<string, unknown> = {}) => ({ mechanism: 'scram-sha-512', username, password: `${username}-pw`, ...more });
  const twoClusters = (flow: Record<string, unknown>, a: Record<string, unknown> = {}) => ({
    clusters: {
      a: { bootstrapServers: ['a:9093'], ssl: true, sasl: scram('crr'), ...a },
      b: { bootstrapServers: ['b:9093'], ssl: true, sasl: scram('crr') },
    },
    mirror: { flows: [{ source: 'a', target: 'b', ...flow }] },
  });
  const issues = (raw: unknown): string[] => {
    try {
      parseConfig(raw);
      return [];
    } catch (err) {
      return ((err as CrrError).issues as Array<{ path: string; message: string }>).map((i) => `${i.path}: ${i.message}`);
    }
  };

  it("overrides the cluster's sasl / ssl for that side only, naming where each field came from", () => {
    const config = parseConfig(twoClusters({ sourceAuth: { sasl: scram('crr-src') } }));
    const flow = config.mirror.flows[0]!;
    const source = mirrorSideCluster(config, flow, 'source');
    expect(source.cluster.sasl).toMatchObject({ username: 'crr-src' });
    expect(source.cluster.ssl).toBe(true); // kept from the cluster
    expect(source.cluster.bootstrapServers).toEqual(['a:9093']);
    expect(source.paths).toEqual({ ssl: 'clusters.a.ssl', sasl: 'mirror.flows[0].sourceAuth.sasl' });
    const target = mirrorSideCluster(config, flow, 'target');
    expect(target.cluster.sasl).toMatchObject({ username: 'crr' });
    expect(target.paths).toEqual({ ssl: 'clusters.b.ssl', sasl: 'clusters.b.sasl' });
    // the cluster itself (replay, crr write, crr status) keeps its own credentials
    expect(config.clusters.a!.sasl).toMatchObject({ username: 'crr' });
    expect(kafkaSecurityOptions('a', source.cluster, capture().log, source.paths).sasl).toEqual({
      mechanism: 'scram-sha-512',
      username: 'crr-src',
      password: 'crr-src-pw',
    });
  });

  it('SASL without TLS in effect is refused naming the override (exit 78), unless the cluster allows insecure SASL', () => {
    // the override brings SASL to a cluster without TLS
    expect(issues(twoClusters({ sourceAuth: { sasl: scram('crr-src') } }, { ssl: false, sasl: undefined }))).toEqual([
      'mirror.flows[0].sourceAuth.sasl: SASL SCRAM-SHA-512 without TLS sends a SCRAM exchange open to a man in the middle: set ssl (true, or caFile/certFile/keyFile), or clusters.a.allowInsecureSasl: true to accept that',
    ]);
    // the override turns TLS off under the cluster's SASL
    expect(issues(twoClusters({ targetAuth: { ssl: false } }))[0]).toMatch(/^mirror\.flows\[0\]\.targetAuth\.ssl: SASL SCRAM-SHA-512 without TLS/);
    expect(issues(twoClusters({ sourceAuth: { sasl: scram('crr-src') } }, { ssl: false, sasl: undefined, allowInsecureSasl: true }))).toEqual([]);
    expect(issues(twoClusters({ sourceAuth: { sasl: scram('crr-src'), ssl: { caFile: '/ca.pem' } } }, { ssl: false, sasl: undefined }))).toEqual([]);
    // the same schema as the cluster's fields
    expect(issues(twoClusters({ sourceAuth: { sasl: { mechanism: 'scram-sha-512', username: 'u' } } }))).toEqual([
      'mirror.flows[0].sourceAuth.sasl.password: give exactly one of password and passwordFile (SASL SCRAM-SHA-512)',
    ]);
    expect(issues(twoClusters({ sourceAuth: { user: 'x' } }))[0]).toMatch(/^mirror\.flows\[0\]\.sourceAuth: unknown key "user"/);
  });

  it('files of an override: checked at load and read by the client, errors naming the override path', () => {
    const path = file(
      'flow-auth.yaml',
      stringify(twoClusters({ sourceAuth: { sasl: { mechanism: 'scram-sha-512', username: 'crr-src', passwordFile: join(dir, 'missing-src-pw') } } })),
    );
    expect(() => loadConfig(path, {})).toThrow(/- mirror\.flows\[0\]\.sourceAuth\.sasl\.passwordFile: cannot read .*missing-src-pw/);
    const config = parseConfig(twoClusters({ targetAuth: { ssl: { caFile: join(dir, 'gone.pem') } } }));
    const target = mirrorSideCluster(config, config.mirror.flows[0]!, 'target');
    expect(() => kafkaSecurityOptions('b', target.cluster, capture().log, target.paths)).toThrow(
      /^mirror\.flows\[0\]\.targetAuth\.ssl\.caFile: cannot read .*gone\.pem/,
    );
  });
});

describe('a broker certificate that fails verification', () => {
  const { KafkaJSConnectionError, KafkaJSNonRetriableError } = kafkajs;
  it('is not retried by KafkaJS (a retry cannot cure it); other connection errors still are', () => {
    expect(new KafkaJSConnectionError('Connection error: self-signed certificate in certificate chain', { code: 'SELF_SIGNED_CERT_IN_CHAIN' }).retriable).toBe(
      false,
    );
    expect(new KafkaJSConnectionError('Connection error: Hostname/IP does not match', { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }).retriable).toBe(false);
    expect(new KafkaJSConnectionError('Connection error: connect ECONNREFUSED', { code: 'ECONNREFUSED' }).retriable).toBe(true);
    expect(new KafkaJSConnectionError('Connection timeout').retriable).toBe(true);
  });

  it('is explained naming the cluster, the problem and the config field; other errors pass through', () => {
    const cert = new KafkaJSConnectionError('Connection error: unable to verify the first certificate', { code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    const wrapped = Object.assign(new KafkaJSNonRetriableError(cert), { cause: cert }); // as KafkaJS's retrier wraps it
    const e = explainKafkaTlsError(wrapped, 'dr', ['k1:9093', 'k2:9093'], 'mirror.flows[0].targetAuth.ssl') as CrrError;
    expect(e.code).toBe('CRR_KAFKA_AUTH');
    expect(e.message).toBe(
      "cluster dr (k1:9093,k2:9093): the broker's TLS certificate failed verification (UNABLE_TO_VERIFY_LEAF_SIGNATURE: unable to verify the first certificate); check that mirror.flows[0].targetAuth.ssl.caFile holds the CA that signed the brokers' certificates",
    );
    const name = explainKafkaTlsError(new KafkaJSConnectionError('Connection error: x', { code: 'ERR_TLS_CERT_ALTNAME_INVALID' }), 'dr', [
      'k1:9093',
    ]) as CrrError;
    expect(name.message).toContain('check clusters.dr.ssl.servername');
    const refused = new KafkaJSConnectionError('Connection error: connect ECONNREFUSED', { code: 'ECONNREFUSED' });
    expect(explainKafkaTlsError(refused, 'dr', ['k1:9093'])).toBe(refused);
  });
});

describe('a client certificate the broker refused (mTLS listener)', () => {
  const { KafkaJSConnectionError, KafkaJSNonRetriableError } = kafkajs;
  // what Node reports for the alert a Kafka 4.3 listener with ssl.client.auth=required sends
  const alert = (code: string, text: string, n: number) =>
    new KafkaJSConnectionError(
      `Connection error: 80AC4F5BB77F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert ${text}:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number ${n}`,
      { code },
    );
  const noCert = alert('ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE', 'bad certificate', 42);
  const untrusted = alert('ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN', 'certificate unknown', 46);

  it('is not retried by KafkaJS', () => {
    expect(noCert.retriable).toBe(false);
    expect(untrusted.retriable).toBe(false);
    expect(new KafkaJSConnectionError('x', { code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' }).retriable).toBe(false);
  });

  it('is explained naming the cluster, the alert and certFile: missing, refused, or either when the ssl setting is not given', () => {
    const wrapped = Object.assign(new KafkaJSNonRetriableError(noCert), { cause: noCert });
    const missing = explainKafkaTlsError(wrapped, 'dr', ['k1:9093'], undefined, { caFile: '/ca.crt', rejectUnauthorized: true }) as CrrError;
    expect(missing.code).toBe('CRR_KAFKA_AUTH');
    expect(missing.message).toBe(
      'cluster dr (k1:9093): the broker refused the TLS connection (ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: bad certificate (SSL alert 42)): its listener requires a client certificate (mTLS) and clusters.dr.ssl.certFile is not set; set clusters.dr.ssl.certFile and keyFile to a certificate signed by a CA the brokers trust',
    );
    expect((explainKafkaTlsError(noCert, 'dr', ['k1:9093'], undefined, true) as CrrError).message).toContain('clusters.dr.ssl.certFile is not set');
    const refusedCert = explainKafkaTlsError(untrusted, 'dr', ['k1:9093'], 'mirror.flows[0].sourceAuth.ssl', {
      certFile: '/c.crt',
      keyFile: '/c.key',
      rejectUnauthorized: true,
    }) as CrrError;
    expect(refusedCert.message).toBe(
      "cluster dr (k1:9093): the broker refused crr's TLS client certificate (ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: certificate unknown (SSL alert 46)); check that mirror.flows[0].sourceAuth.ssl.certFile is signed by a CA the brokers trust (their ssl.truststore), is valid now and allows client authentication",
    );
    expect((explainKafkaTlsError(untrusted, 'dr', ['k1:9093']) as CrrError).message).toContain(
      'the broker refused the TLS connection over the client certificate (ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN: certificate unknown (SSL alert 46)): its listener requires mTLS; check clusters.dr.ssl.certFile and keyFile',
    );
  });
});
