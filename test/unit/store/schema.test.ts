import { describe, expect, it } from 'vitest';
import { StoreSchema } from '../../../src/store/schema.js';

const problems = (raw: unknown): string[] => {
  const r = StoreSchema.safeParse(raw);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('store config', () => {
  it('defaults to an in-memory PGlite store in schema crr', () => {
    expect(StoreSchema.parse({})).toEqual({ type: 'pglite', schema: 'crr' });
  });

  it('accepts a PostgreSQL store with fence roles', () => {
    const c = StoreSchema.parse({ type: 'postgres', connectionString: 'postgres://replay@db:5432/graph', appRole: 'graph_app', replayRole: 'crr_replay' });
    expect(c.schema).toBe('crr');
  });

  it.each([
    ['postgres without a connection string', { type: 'postgres' }, 'connectionString: required when type is postgres'],
    ['pglite with roles', { appRole: 'app' }, 'appRole: only allowed when type is postgres'],
    ['a schema that is not a plain identifier', { schema: 'Crr; DROP' }, 'schema: expected a lower-case SQL identifier'],
    ['the same role twice', { type: 'postgres', connectionString: 'postgres://x@h/db', appRole: 'r', replayRole: 'r' }, 'replayRole: must differ from appRole'],
    ['an unknown key', { type: 'pglite', dir: '/x' }, ': Unrecognized key: "dir"'],
  ])('rejects %s, naming the path', (_what, raw, expected) => {
    expect(
      problems(raw).some((p) => p.startsWith(expected)),
      problems(raw).join('\n'),
    ).toBe(true);
  });
});
