import { describe, expect, it } from 'vitest';
import { BackupSchema } from '../../../src/backup/schema.js';
import { ClusterSchema } from '../../../src/cluster/schema.js';

const issues = (v: unknown): string[] => {
  const r = BackupSchema.safeParse(v);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('backup config', () => {
  it('fills the defaults: 256 MiB parts, no retention rule, S3 prefix crr in us-east-1', () => {
    expect(BackupSchema.parse({ repository: { type: 'local', path: '/b' } })).toEqual({
      repository: { type: 'local', path: '/b' },
      partSizeBytes: 268435456,
      retention: {},
    });
    expect(BackupSchema.parse({ repository: { type: 's3', bucket: 'bkt' } }).repository).toEqual({
      type: 's3',
      bucket: 'bkt',
      prefix: 'crr',
      region: 'us-east-1',
      forcePathStyle: false,
    });
  });

  it('refuses bad values, naming the path', () => {
    expect(issues({ repository: { type: 'local', path: '/b' }, partSizeBytes: 1000 })).toEqual([expect.stringMatching(/^partSizeBytes: /)]);
    expect(issues({ repository: { type: 'local', path: '/b' }, retention: { keepLast: 0 } })).toEqual([expect.stringMatching(/^retention.keepLast: /)]);
    expect(issues({ repository: { type: 's3', bucket: 'bkt', accessKeyId: 'k' } })).toEqual([
      expect.stringMatching(/^repository.secretAccessKey: accessKeyId and secretAccessKey go together/),
    ]);
    expect(issues({ repository: { type: 's3', bucket: 'bkt', prefix: 'a/' } })).toEqual([expect.stringMatching(/^repository.prefix: /)]);
    expect(issues({ repository: { type: 'ftp' } })).toHaveLength(1);
    expect(issues({ repository: { type: 'local', path: '/b', bucket: 'x' } })).toEqual([expect.stringMatching(/bucket|Unrecognized/)]);
  });

  it('is the optional backup field of a cluster', () => {
    const c = ClusterSchema.parse({
      bootstrapServers: ['h:9092'],
      backup: { repository: { type: 's3', bucket: 'bkt', endpoint: 'http://127.0.0.1:19000', forcePathStyle: true } },
    });
    expect(c.backup?.repository).toMatchObject({ endpoint: 'http://127.0.0.1:19000', forcePathStyle: true });
    expect(ClusterSchema.parse({ bootstrapServers: ['h:9092'] }).backup).toBeUndefined();
  });
});
