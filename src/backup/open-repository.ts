import { loadBackupKeys } from './keys.js';
import { LocalRepository } from './local-repository.js';
import type { BackupRepository } from './repository.js';
import type { BackupConfig } from './schema.js';

/**
 * Opens the repository a cluster's `backup` config names, with the keys of its backups
 * (`encryption`, `manifestHmac`: src/backup/keys.ts) read from their files.
 * @param config the cluster's `backup` config (not only its `repository`: the keys go with it)
 * @param configPath its config path, for messages; default `backup` (`clusters.<alias>.backup` is better)
 * @throws CrrError CRR_REPOSITORY when the S3 client cannot be made
 * @throws CrrError CRR_CONFIG_INVALID when a key file cannot be read or is not a key, naming its config path
 */
export async function openRepository(
  config: Pick<BackupConfig, 'repository' | 'encryption' | 'manifestHmac'>,
  configPath = 'backup',
): Promise<BackupRepository> {
  const keys = config.encryption || config.manifestHmac ? loadBackupKeys(config, configPath) : undefined;
  const repo = config.repository;
  if (repo.type === 'local') return new LocalRepository(repo.path, keys);
  // loaded only when used: the AWS SDK is large
  const { S3Repository } = await import('./s3-repository.js');
  return new S3Repository({
    bucket: repo.bucket,
    prefix: repo.prefix,
    region: repo.region,
    forcePathStyle: repo.forcePathStyle,
    ...(repo.endpoint !== undefined ? { endpoint: repo.endpoint } : {}),
    ...(repo.accessKeyId !== undefined && repo.secretAccessKey !== undefined
      ? { credentials: { accessKeyId: repo.accessKeyId, secretAccessKey: repo.secretAccessKey } }
      : {}),
    ...(repo.serverSideEncryption !== undefined ? { serverSideEncryption: repo.serverSideEncryption } : {}),
    ...(repo.sseKmsKeyId !== undefined ? { sseKmsKeyId: repo.sseKmsKeyId } : {}),
    ...(keys !== undefined ? { keys } : {}),
  });
}
