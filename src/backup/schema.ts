import { z } from 'zod';

/** Default size at which a backup part is closed and the next one started: 256 MiB of NDJSON (uncompressed). */
export const DEFAULT_PART_SIZE_BYTES = 256 * 1024 * 1024;
/** The smallest part size the config accepts: 1 MiB. */
export const MIN_PART_SIZE_BYTES = 1024 * 1024;

/** A directory on this machine (or a mounted file system). */
export const LocalRepositorySchema = z.strictObject({
  type: z.literal('local'),
  /** Directory of the repository, created when missing; relative to the working directory. Backups are `<path>/<id>/...`. */
  path: z.string().min(1),
});

/**
 * An S3 bucket, or a server that speaks the S3 API (MinIO, S3Proxy, Ceph): set `endpoint` and
 * usually `forcePathStyle: true` for those. Credentials: `accessKeyId` + `secretAccessKey`
 * when both are given (give the secret by env override, e.g.
 * `CRR__clusters__primary__backup__repository__secretAccessKey`), else the AWS SDK's standard
 * chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws, web identity, ECS or
 * EC2 instance roles).
 */
export const S3RepositorySchema = z
  .strictObject({
    type: z.literal('s3'),
    /** Bucket name; the bucket must exist. */
    bucket: z.string().min(3).max(63),
    /** Key prefix of the repository inside the bucket, without a trailing `/`. Default `crr`. Backups are `<prefix>/<id>/...`. */
    prefix: z
      .string()
      .regex(/^[^/](.*[^/])?$/, 'expected a key prefix without a leading or trailing "/"')
      .default('crr'),
    /** URL of an S3-compatible server, e.g. `http://127.0.0.1:19000`. Default: AWS's endpoint for `region`. */
    endpoint: z.url().optional(),
    /** AWS region (signing region for other servers). Default `us-east-1`. */
    region: z.string().min(1).default('us-east-1'),
    /** Address buckets as `<endpoint>/<bucket>` rather than `<bucket>.<endpoint>`. Default false (AWS); most S3-compatible servers need true. */
    forcePathStyle: z.boolean().default(false),
    /** Static credentials; both or neither. Absent: the AWS SDK's standard credential chain. */
    accessKeyId: z.string().min(1).optional(),
    secretAccessKey: z.string().min(1).optional(),
    /**
     * Server-side encryption S3 applies to every object crr writes (PutObject and
     * CreateMultipartUpload's `x-amz-server-side-encryption`): `AES256` (SSE-S3), `aws:kms`
     * (SSE-KMS) or `aws:kms:dsse`. Absent: the bucket's default encryption.
     */
    serverSideEncryption: z.enum(['AES256', 'aws:kms', 'aws:kms:dsse']).optional(),
    /** The KMS key (id, alias or ARN) of SSE-KMS; only with `serverSideEncryption: aws:kms` (or `aws:kms:dsse`). Absent: the AWS managed key `aws/s3`. */
    sseKmsKeyId: z.string().min(1).optional(),
  })
  .superRefine((r, ctx) => {
    if (r.sseKmsKeyId !== undefined && !r.serverSideEncryption?.startsWith('aws:kms')) {
      ctx.addIssue({ code: 'custom', path: ['sseKmsKeyId'], message: 'only with serverSideEncryption: aws:kms (or aws:kms:dsse)' });
    }
    if ((r.accessKeyId === undefined) !== (r.secretAccessKey === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [r.accessKeyId === undefined ? 'accessKeyId' : 'secretAccessKey'],
        message: 'accessKeyId and secretAccessKey go together (or give neither, for the AWS standard credential chain)',
      });
    }
  });

/**
 * The `backup` part of `clusters.<alias>`: where this cluster's store is backed up, how big a
 * part gets, and which backups `crr backup prune` keeps (docs/architecture.md, "Backups, restore and reseed").
 *
 * - `repository`: `{ type: local, path }` or `{ type: s3, bucket, prefix, endpoint, region,
 *   forcePathStyle, accessKeyId, secretAccessKey, serverSideEncryption, sseKmsKeyId }`.
 * - `partSizeBytes`: a part is closed once its uncompressed NDJSON reaches this size, bytes.
 *   Default 268435456 (256 MiB); at least 1048576 (1 MiB).
 * - `retention.keepLast`: keep at most the newest N complete backups (N >= 1).
 * - `retention.maxAgeMs`: delete complete backups older than this, ms.
 *   A backup must pass both rules to be kept; the newest complete backup is never deleted.
 *   Neither given: prune deletes nothing but stale incomplete backups.
 */
export const BackupSchema = z.strictObject({
  repository: z.discriminatedUnion('type', [LocalRepositorySchema, S3RepositorySchema]),
  partSizeBytes: z.number().int().min(MIN_PART_SIZE_BYTES).default(DEFAULT_PART_SIZE_BYTES),
  retention: z
    .strictObject({
      keepLast: z.number().int().min(1).optional(),
      maxAgeMs: z.number().int().positive().optional(),
    })
    .prefault({}),
});

/** The validated `backup` config of one cluster. */
export type BackupConfig = z.infer<typeof BackupSchema>;
export type RepositoryConfig = BackupConfig['repository'];
export type RetentionPolicy = BackupConfig['retention'];
