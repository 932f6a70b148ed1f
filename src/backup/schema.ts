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
 * A key file and the id manifests name it by (src/backup/keys.ts). The file holds 32 raw bytes,
 * 64 hex digits or the base64 of 32 bytes (`openssl rand -hex 32 > backup.key`); it is read, and
 * refused when it is none of these, when the config is loaded (exit 78 naming its path).
 */
const KeyFileSchema = z.strictObject({
  /** Path of the key file; relative to the working directory. */
  keyFile: z.string().min(1),
  /** The key's name in manifests and messages. Default: the first 16 hex digits of the SHA-256 of the key. Never the key itself. */
  keyId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'expected 1 to 64 of A-Z a-z 0-9 . _ : -')
    .optional(),
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
 * - `encryption`: `{ keyFile, keyId? }`: every part is encrypted with AES-256-GCM under this key
 *   (a fresh random IV per part; the backup id and the part's place are authenticated with it),
 *   and the manifest records `encryption: { algorithm: AES-256-GCM, keyId }`. Absent: parts are
 *   stored in the clear (gzip).
 * - `manifestHmac`: `{ keyFile, keyId? }`: manifests are signed with HMAC-SHA256 under this key,
 *   and a manifest read with it configured must carry a valid HMAC under it. Absent, with
 *   `encryption`: the HMAC key is derived from the encryption key (HKDF-SHA256), so an encrypted
 *   backup's manifest is always signed. Neither: manifests are not signed, nor their HMAC checked.
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
  encryption: KeyFileSchema.optional(),
  manifestHmac: KeyFileSchema.optional(),
});

/** The validated `backup` config of one cluster. */
export type BackupConfig = z.infer<typeof BackupSchema>;
export type RepositoryConfig = BackupConfig['repository'];
export type RetentionPolicy = BackupConfig['retention'];
