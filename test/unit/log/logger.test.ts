import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/logger.js';

function capture(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write: (chunk, _enc, done) => {
      lines.push(String(chunk));
      done();
    },
  });
  return { lines, sink };
}

describe('logger', () => {
  it('redacts SASL passwords and S3 secrets wherever they appear', () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink).child({ component: 'mirror' });
    log.info(
      { sasl: { mechanism: 'plain', username: 'crr', password: 'hunter2' }, cluster: { sasl: { password: 'hunter3' } }, s3: { secretAccessKey: 'AKIAsecret' } },
      'connecting',
    );
    const text = lines.join('');
    expect(text).toContain('"component":"mirror"');
    expect(text).toContain('"username":"crr"');
    for (const secret of ['hunter2', 'hunter3', 'AKIAsecret']) expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('redacts secrets at any depth: a whole config, a connection string, an error and its cause, the message', () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink);
    const config = {
      clusters: {
        primary: { bootstrapServers: ['b:9092'], sasl: { mechanism: 'scram-sha-512', username: 'crr', password: 'deep-sasl-pw' } },
        dr: {
          store: { type: 'postgres', connectionString: 'postgres://crr:pg-pw-in-url@db:5432/crr', schema: 'crr' },
          backup: { repository: { type: 's3', accessKeyId: 'AKIA1', secretAccessKey: 'deep-s3-secret', sessionToken: 'deep-session' } },
        },
      },
      list: [{ nested: [{ token: 'deep-token' }] }],
    };
    log.info({ config }, 'effective config');
    const cause = new Error('connect to postgres://crr:pg-pw-in-cause@db:5432/crr failed');
    const err = Object.assign(new Error('store failed', { cause }), { connectionString: 'postgresql://u:pg-pw-prop@h/db' });
    log.error({ err }, 'store error');
    log.error(err);
    log.warn('connecting with host=db user=crr password=kw-pw-in-msg dbname=crr');
    log.child({ store: { connectionString: 'postgres://a:child-binding-pw@h/db' } }).info('child');
    const text = lines.join('');
    for (const secret of [
      'deep-sasl-pw',
      'pg-pw-in-url',
      'deep-s3-secret',
      'deep-session',
      'deep-token',
      'pg-pw-in-cause',
      'pg-pw-prop',
      'kw-pw-in-msg',
      'child-binding-pw',
    ]) {
      expect(text, secret).not.toContain(secret);
    }
    // what is not secret stays readable
    expect(text).toContain('postgres://crr:[redacted]@db:5432/crr');
    expect(text).toContain('"username":"crr"');
    expect(text).toContain('"accessKeyId":"AKIA1"');
    expect(text).toContain('store failed');
    expect(lines.filter((l) => l.includes('"err":')).length).toBe(2);
  });
});
