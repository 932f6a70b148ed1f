import { DeleteObjectsCommand, GetObjectCommand, ListObjectsV2Command, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { Readable } from 'node:stream';
import { CrrError } from '../errors.js';
import type { BackupKeys } from './keys.js';
import { checkKey, type BackupRepository, type RepositoryObject } from './repository.js';

/** Options of an {@link S3Repository}. */
export interface S3RepositoryOptions {
  bucket: string;
  /** Key prefix of the repository, without leading or trailing `/` (`crr` -> objects `crr/<key>`); `''` = the bucket's root. */
  prefix: string;
  /** AWS region, or the signing region of another server. */
  region: string;
  /** URL of an S3-compatible server; absent = AWS. */
  endpoint?: string;
  /** `<endpoint>/<bucket>/<key>` addressing (most S3-compatible servers need it). */
  forcePathStyle: boolean;
  /** Static credentials; absent = the AWS SDK's standard credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** Attempts per request, the first included, with the SDK's standard retry strategy (backoff with jitter). Default 5. */
  maxAttempts?: number;
  /** How long opening a connection may take, ms; default 10000. */
  connectionTimeoutMs?: number;
  /** How long a connection may stay silent during a request (no byte either way), ms; default 60000. */
  socketTimeoutMs?: number;
  /** Bytes per multipart-upload part (S3's minimum is 5 MiB). Default 8 MiB. */
  uploadPartBytes?: number;
  /** Parts uploaded at once per object. Default 4 (memory: up to uploadPartBytes x uploadQueueSize per upload). */
  uploadQueueSize?: number;
  /** Server-side encryption of every object written: `AES256` (SSE-S3), `aws:kms` (SSE-KMS), `aws:kms:dsse`. Absent: the bucket's default. */
  serverSideEncryption?: 'AES256' | 'aws:kms' | 'aws:kms:dsse';
  /** The KMS key of SSE-KMS (id, alias or ARN). Absent: the AWS managed key. */
  sseKmsKeyId?: string;
  /** The keys of its backups (see BackupRepository.keys); default none. */
  keys?: BackupKeys;
}

/** S3 DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;

/**
 * A {@link BackupRepository} in an S3 bucket (or an S3-compatible server) through
 * `@aws-sdk/client-s3`: the object `a/b` is `s3://<bucket>/<prefix>/a/b`.
 * - `put` streams through `@aws-sdk/lib-storage`'s `Upload`: a multipart upload when the body
 *   passes one part (`uploadPartBytes`), a single PutObject otherwise; the object appears only
 *   when the upload completes, and a failed upload is aborted (its parts removed).
 * - Every request is retried by the SDK's standard strategy (`maxAttempts`), then fails as
 *   CrrError CRR_REPOSITORY: retriable for network errors, throttling and 5xx; not for 4xx
 *   (AccessDenied, NoSuchBucket, InvalidAccessKeyId ...) nor for 501 NotImplemented (a server
 *   without a feature asked for, such as server-side encryption, will not grow it on retry).
 * - With `serverSideEncryption` (and `sseKmsKeyId`), PutObject and CreateMultipartUpload ask S3
 *   to encrypt the object (`x-amz-server-side-encryption`, `...-aws-kms-key-id`); the parts of a
 *   multipart upload inherit it, as S3 specifies.
 */
export class S3Repository implements BackupRepository {
  readonly client: S3Client;
  readonly description: string;
  readonly keys?: BackupKeys;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly partBytes: number;
  private readonly queueSize: number;
  private readonly encryption: { ServerSideEncryption?: 'AES256' | 'aws:kms' | 'aws:kms:dsse'; SSEKMSKeyId?: string };

  constructor(options: S3RepositoryOptions) {
    this.bucket = options.bucket;
    if (options.keys !== undefined) this.keys = options.keys;
    this.prefix = options.prefix === '' ? '' : `${options.prefix}/`;
    this.description = `s3://${options.bucket}/${options.prefix}${options.endpoint ? ` at ${options.endpoint}` : ''}`;
    this.partBytes = options.uploadPartBytes ?? 8 * 1024 * 1024;
    this.queueSize = options.uploadQueueSize ?? 4;
    this.encryption = {
      ...(options.serverSideEncryption !== undefined ? { ServerSideEncryption: options.serverSideEncryption } : {}),
      ...(options.sseKmsKeyId !== undefined ? { SSEKMSKeyId: options.sseKmsKeyId } : {}),
    };
    this.client = new S3Client({
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      maxAttempts: options.maxAttempts ?? 5,
      // a server that stops answering (a blackholed connection) fails the request in bounded time,
      // which the SDK retries and then reports as a retriable CRR_REPOSITORY, instead of hanging
      requestHandler: { connectionTimeout: options.connectionTimeoutMs ?? 10_000, socketTimeout: options.socketTimeoutMs ?? 60_000 },
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
    });
  }

  private objectKey(key: string): string {
    return `${this.prefix}${checkKey(key)}`;
  }

  private fail(op: string, key: string, cause: unknown): CrrError {
    const status = (cause as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
    const name = cause instanceof S3ServiceException ? cause.name : (cause as Error)?.name;
    const retriable = (status === undefined || status >= 500 || status === 429 || name === 'SlowDown' || name === 'RequestTimeout') && status !== 501;
    const what = status !== undefined ? `${name} (HTTP ${status})` : (name ?? 'error');
    return new CrrError('CRR_REPOSITORY', `repository ${this.description}: ${op} ${key} failed: ${what}: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
      retriable,
      context: { repository: this.description, key, httpStatus: status },
    });
  }

  async put(key: string, body: Readable | Buffer | string): Promise<void> {
    const Key = this.objectKey(key);
    let sourceError: unknown;
    if (body instanceof Readable) body.once('error', (err) => (sourceError ??= err));
    const upload = new Upload({
      client: this.client,
      params: { Bucket: this.bucket, Key, Body: body, ...this.encryption },
      partSize: this.partBytes,
      queueSize: this.queueSize,
      leavePartsOnError: false, // abort the multipart upload: no orphan parts
    });
    try {
      await upload.done();
    } catch (err) {
      if (body instanceof Readable && !body.destroyed) body.destroy();
      if (sourceError !== undefined) throw sourceError; // the producer's own failure
      throw this.fail('put', key, err);
    }
  }

  async get(key: string): Promise<Readable | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      if (!(res.Body instanceof Readable)) throw new TypeError(`GetObject ${key}: expected a Node.js stream body`);
      return res.Body;
    } catch (err) {
      if (err instanceof TypeError) throw err;
      const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
      if ((err as Error)?.name === 'NoSuchKey' || status === 404) {
        if ((err as Error)?.name === 'NoSuchBucket') throw this.fail('get', key, err);
        return undefined;
      }
      throw this.fail('get', key, err);
    }
  }

  async *list(prefix: string): AsyncIterable<RepositoryObject> {
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: `${this.prefix}${prefix}`, ContinuationToken: token }));
      } catch (err) {
        throw this.fail('list', prefix || '(root)', err);
      }
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        yield { key: o.Key.slice(this.prefix.length), bytes: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async delete(keys: readonly string[]): Promise<void> {
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      const batch = keys.slice(i, i + DELETE_BATCH);
      let res;
      try {
        res = await this.client.send(
          new DeleteObjectsCommand({ Bucket: this.bucket, Delete: { Objects: batch.map((k) => ({ Key: this.objectKey(k) })), Quiet: true } }),
        );
      } catch (err) {
        throw this.fail('delete', batch[0]!, err);
      }
      const failed = res.Errors ?? [];
      if (failed.length > 0) {
        const first = failed[0]!;
        throw new CrrError(
          'CRR_REPOSITORY',
          `repository ${this.description}: delete failed for ${failed.length} of ${batch.length} objects, e.g. ${first.Key?.slice(this.prefix.length)}: ${first.Code}: ${first.Message}`,
          { retriable: first.Code !== 'AccessDenied', context: { repository: this.description, key: first.Key } },
        );
      }
    }
  }

  /** Releases the HTTP connections. */
  close(): void {
    this.client.destroy();
  }
}
