import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/log/logger.js';

describe('logger', () => {
  it('redacts SASL passwords and S3 secrets wherever they appear', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write: (chunk, _enc, done) => {
        lines.push(String(chunk));
        done();
      },
    });
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
});
