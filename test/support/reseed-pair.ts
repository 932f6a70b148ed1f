import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect } from 'vitest';
import { parse, stringify } from 'yaml';
import { runCrr, uniq, usePairs, type TestPair } from './helpers.js';
import { dropBucket, freshBucket, S3_ENDPOINT, S3_REGION, s3Client } from './s3-helpers.js';

/** A primary/replica pair whose primary backs up to its own fresh S3 bucket (S3Proxy). */
export type ReseedPair = TestPair & { bucket: string };

/**
 * For a test file of reseeds: returns `reseedPair(opts)`, which makes a pair (testPair's schemas
 * and roles dropped after the file, see usePairs) whose primary backs up to a fresh bucket, with
 * reseed mode `mode` (fast retries) and the given backup settings; the buckets are dropped after
 * the file's tests.
 * @param opts.mode reseed mode; default `auto`
 * @param opts.backup merged into `clusters.<primary>.backup` (e.g. `partSizeBytes`, `retention`)
 * @param opts.dataPartitions partitions of the change topics' data topic; default 3
 * @param opts.primaryStore the primary's store (testPair's); default PostgreSQL
 */
export function useReseedPairs(): (opts?: {
  mode?: 'auto' | 'manual';
  backup?: Record<string, unknown>;
  dataPartitions?: number;
  bucketPrefix?: string;
  primaryStore?: 'pglite' | 'postgres';
}) => Promise<ReseedPair> {
  const pair = usePairs();
  const s3 = s3Client();
  const buckets: string[] = [];
  afterAll(async () => {
    for (const b of buckets) await dropBucket(s3, b).catch(() => undefined);
  });
  return async (opts = {}) => {
    const p = pair({ dataPartitions: opts.dataPartitions ?? 3, ...(opts.primaryStore ? { primaryStore: opts.primaryStore } : {}) });
    const bucket = await freshBucket(s3, opts.bucketPrefix ?? 'reseed');
    buckets.push(bucket);
    const config = parse(readFileSync(p.configPath, 'utf8')) as Record<string, any>;
    config.clusters[p.source].backup = {
      repository: { type: 's3', bucket, endpoint: S3_ENDPOINT, region: S3_REGION, forcePathStyle: true, accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' },
      ...(opts.backup ?? {}),
    };
    config.reseed = { mode: opts.mode ?? 'auto', retryBackoffInitialMs: 200, retryBackoffMaxMs: 2000 };
    writeFileSync(p.configPath, stringify(config));
    return { ...p, bucket };
  };
}

/** Writes events to the pair's primary with `crr write`; its exit 0 acknowledges every one of them. */
export async function writeEvents(p: TestPair, events: object[]): Promise<void> {
  const file = join(tmpdir(), 'crr-tests', `events-${uniq()}.ndjson`);
  writeFileSync(file, events.map((e) => JSON.stringify(e)).join('\n'));
  const r = await runCrr(['write', '--config', p.configPath, '--cluster', p.source, '--file', file]);
  expect(r.code, r.stderr).toBe(0);
}
