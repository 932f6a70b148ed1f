import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ControlRecord, ControlRecordSchema, decodeControlRecord, encodeControlRecord } from '../../../src/replication/control-topic.js';
import { fuzz, nastyBytes, nastyJson } from './fuzz-helpers.js';

/**
 * The records of crr-control.internal (src/replication/control-topic.ts), which any principal
 * allowed to write the topic may have written: decodeControlRecord gives a valid record or
 * `{ invalid }` naming the problem; it never throws (the reader logs, counts and skips).
 */

const request: ControlRecord = {
  kind: 'backup-request',
  requestId: 'r-1',
  cluster: 'primary',
  replica: 'dr',
  requester: 'crr run --cluster dr pid 1 on h',
  reason: 'drop-all',
  requestedAtMs: 1_700_000_000_000,
  expiresAtMs: 1_700_000_030_000,
};

describe('fuzz: decodeControlRecord (crr-control.internal)', () => {
  fuzz('arbitrary bytes and JSON give a record or { invalid }, never an exception', 0xc0417, 4000, (options) => {
    fc.assert(
      fc.property(
        fc.oneof(
          nastyBytes,
          nastyJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
        ),
        (bytes) => {
          const r = decodeControlRecord(bytes);
          if ('invalid' in r) expect(typeof r.invalid).toBe('string');
          else expect(ControlRecordSchema.parse(r)).toEqual(r);
        },
      ),
      options,
    );
  });

  fuzz('a valid request with one field replaced by arbitrary JSON is refused naming that field, or still valid', 0xc0418, 3000, (options) => {
    const fields = Object.keys(request) as Array<keyof typeof request>;
    fc.assert(
      fc.property(fc.constantFrom(...fields), nastyJson, (field, value) => {
        const r = decodeControlRecord(Buffer.from(JSON.stringify({ ...request, [field]: value })));
        if ('invalid' in r) expect(r.invalid).toMatch(field === 'kind' ? /kind|invalid/i : new RegExp(field));
        else expect(r).toMatchObject({ kind: expect.any(String) });
      }),
      options,
    );
  });

  it('every kind round-trips through encodeControlRecord, keyed by request id (a release by replica)', () => {
    const records: ControlRecord[] = [
      request,
      { kind: 'backup-accepted', requestId: 'r-1', by: 'crr pid 2 on p', atMs: 1 },
      { kind: 'backup-progress', requestId: 'r-1', records: 10, atMs: 2 },
      { kind: 'backup-done', requestId: 'r-1', backupId: '20261202T104722Z-primary-ca92', epoch: 1, records: 10, bytes: 100, atMs: 3 },
      { kind: 'backup-failed', requestId: 'r-1', error: 'boom', retriable: true, atMs: 4 },
      { kind: 'backup-release', cluster: 'primary', replica: 'dr', backupId: '20261202T104722Z-primary-ca92', atMs: 5 },
    ];
    for (const r of records) {
      const m = encodeControlRecord(r);
      expect(m.key).toBe(r.kind === 'backup-release' ? 'dr' : 'r-1');
      expect(decodeControlRecord(Buffer.from(m.value))).toEqual(r);
    }
    expect(decodeControlRecord(null)).toEqual({ invalid: 'no value' });
    expect(decodeControlRecord(Buffer.from(JSON.stringify({ ...request, extra: 1 })))).toHaveProperty('invalid');
  });
});
