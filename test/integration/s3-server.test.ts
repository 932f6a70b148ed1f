import { createHash, randomBytes } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropBucket, freshBucket, s3Client, S3_ENDPOINT } from '../support/s3-helpers.js';

// The S3 server started by test/support/global-setup.ts (scripts/s3.sh: S3Proxy, filesystem backend) is a
// real implementation of the S3 REST API: this file checks the parts of it the backups rely on,
// through the same client library crr uses.

const MiB = 1024 * 1024;
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const md5 = (b: Uint8Array): Buffer => createHash('md5').update(b).digest();

async function getBytes(client: S3Client, Bucket: string, Key: string, Range?: string) {
  const res = await client.send(new GetObjectCommand({ Bucket, Key, Range }));
  const body = Buffer.from(await res.Body!.transformToByteArray());
  return { res, body };
}

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

describe(`real S3 API server (${S3_ENDPOINT})`, () => {
  let client: S3Client;
  let bucket: string;

  beforeAll(async () => {
    client = s3Client();
    bucket = await freshBucket(client, 'server');
  });

  afterAll(async () => {
    if (!client) return;
    // only if a test failed half-way: the last test deletes the bucket itself
    try {
      await client.send(new HeadBucketCommand({ Bucket: bucket }));
      await dropBucket(client, bucket);
    } catch {
      /* already gone */
    }
    client.destroy();
  });

  const N = 1200;
  const keys = Array.from({ length: N }, (_, i) => `small/${String(i).padStart(5, '0')}.txt`);
  const body = (key: string) => `object ${key}\n`;

  it('puts 1,200 small objects; ETag is the quoted MD5 of the body', async () => {
    await pool(keys, 16, async (Key) => {
      const res = await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: body(Key), ContentType: 'text/plain' }));
      expect(res.ETag).toBe(`"${md5(Buffer.from(body(Key))).toString('hex')}"`);
    });
    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: keys[42] }));
    expect(head.ContentLength).toBe(Buffer.byteLength(body(keys[42]!)));
    expect(head.ContentType).toBe('text/plain');
  });

  it('lists them with ListObjectsV2 over two pages (MaxKeys 1000 + continuation token)', async () => {
    const page1 = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'small/', MaxKeys: 1000 }));
    expect(page1.KeyCount).toBe(1000);
    expect(page1.IsTruncated).toBe(true);
    expect(page1.NextContinuationToken).toBeTruthy();
    const page2 = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: 'small/', MaxKeys: 1000, ContinuationToken: page1.NextContinuationToken }),
    );
    expect(page2.KeyCount).toBe(200);
    expect(page2.IsTruncated).toBe(false);
    expect(page2.NextContinuationToken).toBeUndefined();
    const listed = [...page1.Contents!, ...page2.Contents!];
    expect(listed.map((o) => o.Key)).toEqual(keys); // lexicographic order, no gap, no repeat
    expect(listed[7]!.Size).toBe(Buffer.byteLength(body(keys[7]!)));

    // the client's default page size is the server's (1000), and a delimiter groups prefixes
    const byDelimiter = await client.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: '/' }));
    expect(byDelimiter.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['small/']);
    expect(byDelimiter.Contents ?? []).toEqual([]);
    const after = await client.send(new ListObjectsV2Command({ Bucket: bucket, StartAfter: keys[1195] }));
    expect(after.Contents?.map((o) => o.Key)).toEqual(keys.slice(1196));
  });

  const bigKey = 'big/multipart.bin';
  const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB + 123), randomBytes(1 * MiB + 4567)]; // last part may be small
  const big = Buffer.concat(parts);

  it('refuses to complete a multipart upload whose non-last part is under 5 MiB (EntityTooSmall)', async () => {
    const Key = 'big/too-small.bin';
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }));
    const etags: string[] = [];
    for (const [i, b] of [randomBytes(1000), randomBytes(1000)].entries()) {
      const res = await client.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: i + 1, Body: b }));
      etags.push(res.ETag!);
    }
    await expect(
      client.send(
        new CompleteMultipartUploadCommand({
          Bucket: bucket,
          Key,
          UploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ PartNumber: i + 1, ETag })) },
        }),
      ),
    ).rejects.toMatchObject({ name: 'EntityTooSmall', $metadata: { httpStatusCode: 400 } });
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key, UploadId }));
  });

  it(`uploads a ${(big.length / MiB).toFixed(1)} MiB object in 3 parts; Range and full GETs match (SHA-256)`, async () => {
    expect(big.length).toBeGreaterThan(10 * MiB);
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: bigKey, ContentType: 'application/octet-stream' }));
    expect(UploadId).toBeTruthy();
    const done = await Promise.all(
      parts.map(async (Body, i) => {
        const res = await client.send(new UploadPartCommand({ Bucket: bucket, Key: bigKey, UploadId, PartNumber: i + 1, Body }));
        expect(res.ETag).toBe(`"${md5(Body).toString('hex')}"`);
        return { PartNumber: i + 1, ETag: res.ETag! };
      }),
    );
    const completed = await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: bigKey, UploadId, MultipartUpload: { Parts: done } }));
    // the S3 convention: MD5 of the parts' binary MD5s, then "-<number of parts>"
    expect(completed.ETag).toBe(`"${md5(Buffer.concat(parts.map(md5))).toString('hex')}-3"`);

    const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: bigKey }));
    expect(head.ContentLength).toBe(big.length);
    expect(head.ETag).toBe(completed.ETag);

    // a range across the first part boundary
    const from = 5 * MiB - 1000;
    const to = 5 * MiB + 999;
    const ranged = await getBytes(client, bucket, bigKey, `bytes=${from}-${to}`);
    expect(ranged.res.$metadata.httpStatusCode).toBe(206);
    expect(ranged.res.ContentRange).toBe(`bytes ${from}-${to}/${big.length}`);
    expect(ranged.body.length).toBe(2000);
    expect(sha256(ranged.body)).toBe(sha256(big.subarray(from, to + 1)));
    // a suffix range (the last 100 bytes)
    const tail = await getBytes(client, bucket, bigKey, 'bytes=-100');
    expect(tail.res.ContentRange).toBe(`bytes ${big.length - 100}-${big.length - 1}/${big.length}`);
    expect(tail.body.equals(big.subarray(big.length - 100))).toBe(true);
    // a range past the end
    await expect(client.send(new GetObjectCommand({ Bucket: bucket, Key: bigKey, Range: `bytes=${big.length}-` }))).rejects.toMatchObject({
      name: 'InvalidRange',
      $metadata: { httpStatusCode: 416 },
    });

    const full = await getBytes(client, bucket, bigKey);
    expect(full.res.$metadata.httpStatusCode).toBe(200);
    expect(full.body.length).toBe(big.length);
    expect(sha256(full.body)).toBe(sha256(big));
  });

  it('deletes the objects (DeleteObjects in batches of 1,000 and DeleteObject), then the bucket', async () => {
    for (let i = 0; i < keys.length; i += 1000) {
      const res = await client.send(
        new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }),
      );
      expect(res.Errors ?? []).toEqual([]);
    }
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: bigKey }));
    await expect(client.send(new HeadObjectCommand({ Bucket: bucket, Key: bigKey }))).rejects.toMatchObject({ name: 'NotFound' });
    const left = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
    expect(left.KeyCount).toBe(0);
    await client.send(new DeleteBucketCommand({ Bucket: bucket }));
    await expect(client.send(new HeadBucketCommand({ Bucket: bucket }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 404 } });
  });

  it('rejects a request signed with a wrong secret key', async () => {
    const wrong = s3Client({ credentials: { accessKeyId: 'crr', secretAccessKey: 'not-the-secret' } });
    try {
      await expect(wrong.send(new ListBucketsCommand({}))).rejects.toMatchObject({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } });
    } finally {
      wrong.destroy();
    }
  });
});
