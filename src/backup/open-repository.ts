import { LocalRepository } from './local-repository.js';
import type { BackupRepository } from './repository.js';
import type { RepositoryConfig } from './schema.js';

/**
 * Opens the repository a config names.
 * @throws CrrError CRR_REPOSITORY when the S3 client cannot be made
 */
export async function openRepository(config: RepositoryConfig): Promise<BackupRepository> {
  if (config.type === 'local') return new LocalRepository(config.path);
  // loaded only when used: the AWS SDK is large
  const { S3Repository } = await import('./s3-repository.js');
  return new S3Repository({
    bucket: config.bucket,
    prefix: config.prefix,
    region: config.region,
    forcePathStyle: config.forcePathStyle,
    ...(config.endpoint !== undefined ? { endpoint: config.endpoint } : {}),
    ...(config.accessKeyId !== undefined && config.secretAccessKey !== undefined
      ? { credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey } }
      : {}),
    ...(config.serverSideEncryption !== undefined ? { serverSideEncryption: config.serverSideEncryption } : {}),
    ...(config.sseKmsKeyId !== undefined ? { sseKmsKeyId: config.sseKmsKeyId } : {}),
  });
}
