import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CrrError, ERROR_CODES, isRetriable } from '../../src/errors.js';

describe('errors', () => {
  it('documents every error code in docs/errors.md', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    for (const code of Object.keys(ERROR_CODES)) expect(doc, code).toContain(`\`${code}\``);
  });
  it('never retries programming errors, and defaults to the code', () => {
    expect(isRetriable(new TypeError('x'))).toBe(false);
    expect(isRetriable(new CrrError('CRR_CONFIG_INVALID', 'x'))).toBe(false);
    expect(isRetriable(new CrrError('CRR_KAFKA', 'x'))).toBe(true);
    expect(isRetriable(Object.assign(new Error('x'), { retriable: true }))).toBe(true);
  });
});
