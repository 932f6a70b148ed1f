import { randomUUID } from 'node:crypto';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';

/**
 * The real S3 API server (S3Proxy) started by test/support/global-setup.ts via `scripts/s3.sh up`:
 * path-style, region us-east-1, the fixed local credentials below (`bash scripts/s3.sh env`).
 */
export const S3_ENDPOINT = process.env.CRR_S3_ENDPOINT ?? `http://127.0.0.1:${process.env.CRR_S3_PORT ?? 19000}`;
export const S3_REGION = 'us-east-1';
export const S3_CREDENTIALS = { accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' } as const;

/** Client settings for the test S3 server; `overrides` are merged on top. */
export function s3Config(overrides: Partial<S3ClientConfig> = {}): S3ClientConfig {
  return {
    endpoint: S3_ENDPOINT,
    region: S3_REGION,
    credentials: S3_CREDENTIALS,
    forcePathStyle: true,
    ...overrides,
  };
}

/** An S3 client for the test S3 server; the caller calls `destroy()`. */
export function s3Client(overrides: Partial<S3ClientConfig> = {}): S3Client {
  return new S3Client(s3Config(overrides));
}

/** A valid, unique bucket name (lower case, 3-63 characters): `crr-test-<prefix>-<random>`. */
export function bucketName(prefix = 'b'): string {
  return `crr-test-${prefix}-${randomUUID().replace(/-/g, '').slice(0, 12)}`.toLowerCase();
}

/** Creates a new empty bucket with a unique name and returns the name. */
export async function freshBucket(client: S3Client, prefix?: string): Promise<string> {
  const Bucket = bucketName(prefix);
  await client.send(new CreateBucketCommand({ Bucket }));
  return Bucket;
}

/** Deletes every object of a bucket (1,000 per DeleteObjects call), then the bucket. */
export async function dropBucket(client: S3Client, Bucket: string): Promise<void> {
  let ContinuationToken: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket, ContinuationToken }));
    const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key! }));
    if (keys.length > 0) await client.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys, Quiet: true } }));
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  await client.send(new DeleteBucketCommand({ Bucket }));
}
