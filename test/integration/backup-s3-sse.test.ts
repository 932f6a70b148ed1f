import type { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openRepository } from '../../src/backup/open-repository.js';
import type { S3Repository } from '../../src/backup/s3-repository.js';
import { parseConfig } from '../../src/config/load.js';
import { CrrError } from '../../src/errors.js';
import { uniq } from '../support/helpers.js';
import { dropBucket, freshBucket, S3_CREDENTIALS, S3_ENDPOINT, s3Client } from '../support/s3-helpers.js';

const MiB = 1024 * 1024;

/** Every request the repository's S3 client sends: the command and its `x-amz-server-side-encryption*` headers. */
function recordRequests(repo: S3Repository): Array<{ command: string; headers: Record<string, string> }> {
  const seen: Array<{ command: string; headers: Record<string, string> }> = [];
  repo.client.middlewareStack.add(
    (next, context) => async (args) => {
      const headers = (args.request as { headers: Record<string, string> }).headers;
      seen.push({
        command: String(context.commandName),
        headers: Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase().startsWith('x-amz-server-side-encryption'))),
      });
      return next(args);
    },
    { step: 'finalizeRequest', name: 'crrTestRecordSse' },
  );
  return seen;
}

/** The repository a cluster's `backup.repository` config opens (the config path crr takes). */
async function repositoryFromConfig(bucket: string, extra: Record<string, unknown>): Promise<S3Repository> {
  const config = parseConfig({
    clusters: {
      p: {
        bootstrapServers: ['127.0.0.1:1'],
        backup: {
          repository: {
            type: 's3',
            bucket,
            prefix: `sse-${uniq()}`,
            endpoint: S3_ENDPOINT,
            forcePathStyle: true,
            accessKeyId: S3_CREDENTIALS.accessKeyId,
            secretAccessKey: S3_CREDENTIALS.secretAccessKey,
            ...extra,
          },
        },
      },
    },
  });
  return (await openRepository(config.clusters.p!.backup!, 'clusters.p.backup')) as S3Repository;
}

/**
 * S3 server-side encryption (issue 12 item 7): `serverSideEncryption` / `sseKmsKeyId` of an S3
 * repository reach S3 on PutObject and CreateMultipartUpload. S3Proxy's filesystem store does not
 * implement SSE and says so (501 NotImplemented), which shows the headers reached it; crr then
 * fails the put with a clear, non-retriable CRR_REPOSITORY and leaves nothing behind.
 */
describe(`S3 server-side encryption settings (${S3_ENDPOINT})`, () => {
  let client: S3Client;
  let bucket: string;
  beforeAll(async () => {
    client = s3Client();
    bucket = await freshBucket(client, 'sse');
  });
  afterAll(async () => {
    await dropBucket(client, bucket);
    client.destroy();
  });

  it('SSE-KMS with a key id: sent on PutObject and on CreateMultipartUpload (not on UploadPart); S3Proxy refuses it: non-retriable CRR_REPOSITORY naming NotImplemented', async () => {
    const repo = await repositoryFromConfig(bucket, { serverSideEncryption: 'aws:kms', sseKmsKeyId: 'alias/crr-backups' });
    const seen = recordRequests(repo);
    try {
      for (const body of [Buffer.from('{"small":true}'), Buffer.alloc(9 * MiB, 1)]) {
        const err = await repo.put('id/object', body).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(CrrError);
        expect((err as CrrError).code).toBe('CRR_REPOSITORY');
        expect((err as CrrError).message).toMatch(/put id\/object failed: NotImplemented \(HTTP 501\): Server-side encryption is not supported/);
        expect((err as CrrError).retriable).toBe(false);
      }
      const sse = { 'x-amz-server-side-encryption': 'aws:kms', 'x-amz-server-side-encryption-aws-kms-key-id': 'alias/crr-backups' };
      expect(seen.filter((r) => r.command === 'PutObjectCommand').map((r) => r.headers)).toEqual([sse]);
      expect(seen.filter((r) => r.command === 'CreateMultipartUploadCommand').map((r) => r.headers)).toEqual([sse]);
      expect(seen.filter((r) => r.command === 'UploadPartCommand')).toEqual([]);
      const listed: string[] = [];
      for await (const o of repo.list('')) listed.push(o.key);
      expect(listed).toEqual([]);
    } finally {
      repo.close();
    }
  });

  it('SSE-S3 (AES256) is sent alone; without the setting no SSE header is sent and the put succeeds', async () => {
    const aes = await repositoryFromConfig(bucket, { serverSideEncryption: 'AES256' });
    const seenAes = recordRequests(aes);
    await expect(aes.put('a', 'x')).rejects.toThrow(/NotImplemented/);
    expect(seenAes.find((r) => r.command === 'PutObjectCommand')?.headers).toEqual({ 'x-amz-server-side-encryption': 'AES256' });
    aes.close();

    const plain = await repositoryFromConfig(bucket, {});
    const seenPlain = recordRequests(plain);
    await plain.put('a', 'x');
    expect(seenPlain.find((r) => r.command === 'PutObjectCommand')?.headers).toEqual({});
    plain.close();
  });

  it('sseKmsKeyId without aws:kms is refused at config load, naming the path', () => {
    expect(() =>
      parseConfig({
        clusters: {
          p: { bootstrapServers: ['h:1'], backup: { repository: { type: 's3', bucket: 'b-b-b', serverSideEncryption: 'AES256', sseKmsKeyId: 'k' } } },
        },
      }),
    ).toThrow(/clusters\.p\.backup\.repository\.sseKmsKeyId: only with serverSideEncryption: aws:kms/);
  });
});
