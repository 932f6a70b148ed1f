import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CrrError } from '../../../src/errors.js';
import type { ChangeEvent } from '../../../src/protocol/schema.js';
import { isDataErrorState, toApplyError, toStoreError } from '../../../src/store/pg-errors.js';
import { PgliteStore } from '../../../src/store/pglite.js';

// Issue 11, item 2: a database error that says the data itself can never be stored (SQLSTATE
// class 22, 23, 54) is CRR_STORE_APPLY, not retriable, so replay dead-letters the event instead
// of retrying it forever; outages stay retriable CRR_STORE.

const dbError = (code: string | undefined, message = 'boom'): Error => Object.assign(new Error(message), code === undefined ? {} : { code });

describe('toApplyError (Store.applyBatch) and toStoreError', () => {
  it.each([
    ['22P05', 'unsupported Unicode escape sequence'],
    ['22021', 'invalid byte sequence for encoding "UTF8": 0x00'],
    ['22P02', 'invalid input syntax for type json'],
    ['23514', 'new row violates check constraint'],
    ['23505', 'duplicate key value violates unique constraint'],
    ['54000', 'index row size 3016 exceeds btree version 4 maximum 2704'],
  ])('maps the data error %s of an apply to CRR_STORE_APPLY, not retriable, with its SQLSTATE', (code, message) => {
    const err = toApplyError(dbError(code, message), 'crr') as CrrError;
    expect(err).toBeInstanceOf(CrrError);
    expect(err).toMatchObject({ code: 'CRR_STORE_APPLY', retriable: false, sqlState: code, schema: 'crr' });
    expect(err.message).toBe(`store (schema crr) refused the data [${code}]: ${message}`);
    expect(isDataErrorState(code)).toBe(true);
    // outside an apply (a restore, a state write) it stays the CRR_STORE it was, not retriable
    expect(toStoreError(dbError(code, message), 'crr')).toMatchObject({ code: 'CRR_STORE', retriable: false, sqlState: code });
  });

  it.each([
    ['08006', true],
    ['08001', true],
    ['40001', true],
    ['40P01', true],
    ['57P01', true],
    ['57P03', true],
    [undefined, true],
    ['ECONNRESET', true], // a Node.js socket error: the server is unreachable
    ['42P01', false],
    ['42501', false],
    ['53300', false],
  ])('keeps %s of an apply a CRR_STORE (retriable %s)', (code, retriable) => {
    for (const wrap of [toApplyError, toStoreError]) expect(wrap(dbError(code), 'crr')).toMatchObject({ code: 'CRR_STORE', retriable });
    expect(isDataErrorState(code)).toBe(false);
  });

  it('passes CrrErrors and programming errors through', () => {
    const own = new CrrError('CRR_STORE', 'x');
    expect(toApplyError(own, 'crr')).toBe(own);
    const te = new TypeError('y');
    expect(toApplyError(te, 'crr')).toBe(te);
  });
});

describe('PGlite store: events the protocol now refuses, applied past it', () => {
  const store = new PgliteStore({ schema: 'crr' });
  beforeAll(async () => store.migrate(), 60_000);
  afterAll(async () => store.close());

  const vertex = (id: string, attributes: Record<string, unknown> = {}): ChangeEvent =>
    ({ v: 1, id: 'e', ts: 1, epoch: 0, origin: 'primary', op: 'UPSERT_VERTEX', vertex: { type: 'Person', id }, attributes }) as ChangeEvent;

  it.each([
    ['U+0000 in a vertex id', vertex('a\u0000b'), /^22/],
    ['a lone surrogate in a vertex id', vertex('a\ud800b'), /^22/],
    ['an incompressible 3000-byte vertex id', vertex(randomBytes(2250).toString('base64')), /^54/],
    ['U+0000 in an attribute value', vertex('ok', { note: '\u0000' }), /^22/],
    ['U+0000 in a catalog name', { v: 1, id: 'e', ts: 1, epoch: 0, origin: 'primary', op: 'DROP_QUERY', name: 'q\u0000' } as ChangeEvent, /^22/],
  ])('%s: CRR_STORE_APPLY with the SQLSTATE PGlite reports, nothing applied', async (_what, event, sqlState) => {
    const err = await store.applyBatch([event], [{ topic: 't', partition: 0, nextOffset: 1 }]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CrrError);
    expect(err).toMatchObject({ code: 'CRR_STORE_APPLY', retriable: false });
    expect((err as CrrError).sqlState).toMatch(sqlState);
    expect(await store.positions()).toEqual([]);
  });
});
