import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../src/config/load.js';
import { clearRegisteredSecrets, REDACTED, redactSecrets, redactText } from '../../../src/config/secrets.js';
import { describeError } from '../../../src/errors.js';

describe('secret redaction (src/config/secrets.ts)', () => {
  it('censors URL passwords and libpq password= values in any text, keeping the rest', () => {
    expect(redactText('connect postgres://crr:s3cr%40t@db:5432/crr?sslmode=require failed')).toBe(
      `connect postgres://crr:${REDACTED}@db:5432/crr?sslmode=require failed`,
    );
    expect(redactText("host=db password='a b' user=crr")).toBe(`host=db password=${REDACTED} user=crr`);
    expect(redactText('postgres://crr@db/crr and http://127.0.0.1:9464/status')).toBe('postgres://crr@db/crr and http://127.0.0.1:9464/status');
  });

  it('a loaded config registers its secrets: an error message that quotes one is censored', () => {
    clearRegisteredSecrets();
    parseConfig({
      clusters: {
        a: { bootstrapServers: ['h:9092'], ssl: true, sasl: { mechanism: 'plain', username: 'u', password: 'pw-quoted-by-a-driver' } },
        b: { bootstrapServers: ['h:9092'], store: { type: 'postgres', connectionString: 'postgres://u:url%2Fpw@db/crr' } },
      },
    });
    const err = new Error('outer', { cause: new Error('auth failed for pw-quoted-by-a-driver; url/pw rejected') });
    expect(describeError(err)).toBe(`outer: auth failed for ${REDACTED}; ${REDACTED} rejected`);
    clearRegisteredSecrets();
  });

  it("a flow's sourceAuth / targetAuth password: censored by key in the config and by value in any text", () => {
    clearRegisteredSecrets();
    const config = parseConfig({
      clusters: { a: { bootstrapServers: ['h:9092'] }, b: { bootstrapServers: ['h:9092'] } },
      mirror: {
        flows: [
          {
            source: 'a',
            target: 'b',
            sourceAuth: { ssl: true, sasl: { mechanism: 'scram-sha-512', username: 'crr-src', password: 'source-side-secret' } },
            targetAuth: { ssl: true, sasl: { mechanism: 'plain', username: 'crr-dr', password: 'target-side-secret' } },
          },
        ],
      },
    });
    const shown = JSON.stringify(redactSecrets(config));
    expect(shown).not.toContain('source-side-secret');
    expect(shown).not.toContain('target-side-secret');
    expect((redactSecrets(config) as typeof config).mirror.flows[0]!.sourceAuth!.sasl).toMatchObject({ username: 'crr-src', password: REDACTED });
    expect(describeError(new Error('login with source-side-secret and target-side-secret refused'))).toBe(`login with ${REDACTED} and ${REDACTED} refused`);
    clearRegisteredSecrets();
  });

  it('walks objects by key at any depth, serializes errors, survives cycles, leaves other objects', () => {
    const cyclic: Record<string, unknown> = { name: 'x' };
    cyclic.self = cyclic;
    const shared = { token: 't0ken-value' };
    const buf = Buffer.from('x');
    const out = redactSecrets({ a: [{ b: { Password: 'p', other: 1 } }], cyclic, s1: shared, s2: shared, buf, err: new TypeError('bad') }) as any;
    expect(out.a[0].b).toEqual({ Password: REDACTED, other: 1 });
    expect(out.cyclic.self).toBe('[circular]');
    expect(out.s1).toEqual({ token: REDACTED });
    expect(out.s2).toEqual({ token: REDACTED });
    expect(out.buf).toBe(buf);
    expect(out.err).toMatchObject({ type: 'TypeError', message: 'bad' });
  });
});
