// npm run bench, phase "backup": backup and restore throughput of a store of N entities
// (BENCH_BACKUP_ENTITIES, default 1,000,000: 800k vertices + 200k edges) in PostgreSQL, through
// the S3 server of scripts/s3.sh, next to that server's raw speed for the same bytes, in the
// same run:
//   1. a fresh schema, migrated by crr, filled with N rows by INSERT ... SELECT generate_series
//   2. crr's createBackup into a fresh bucket (snapshot read + NDJSON + gzip + SHA-256 + multipart)
//   3. raw download: GetObject of every part of that backup, bytes counted, nothing decoded
//   4. raw upload: the same bytes put again (the repository's put, multipart) under another prefix
//   5. crr's restoreBackup into another fresh schema (read + checksums + staging + swap)
// Ratios: backup / raw upload and restore / raw download, in MB/s of stored (gzip) bytes.
// JSON in .bench/backup-<timestamp>.json; schemas and the bucket are dropped unless BENCH_KEEP=1.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { openRepository } from '../../dist/backup/open-repository.js';
import { restoreBackup } from '../../dist/backup/restore.js';
import { createBackup } from '../../dist/backup/write.js';
import { PostgresStore } from '../../dist/store/postgres.js';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectsCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';

const N = Number(process.env.BENCH_BACKUP_ENTITIES ?? 1_000_000);
const PG = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const ENDPOINT = process.env.CRR_S3_ENDPOINT ?? `http://127.0.0.1:${process.env.CRR_S3_PORT ?? 19000}`;
const KEEP = process.env.BENCH_KEEP === '1';
const ts = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
const bucket = `crr-bench-${ts}`;
const credentials = { accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' };
const log = (m) => process.stderr.write(`${m}\n`);
const mb = (bytes) => bytes / 1e6;
const timed = async (fn) => {
  const t0 = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t0) / 1000 };
};

const s3 = new S3Client({ endpoint: ENDPOINT, region: 'us-east-1', forcePathStyle: true, credentials: { ...credentials } });
await s3.send(new CreateBucketCommand({ Bucket: bucket }));
const repoConfig = (prefix) => ({ type: 's3', bucket, prefix, endpoint: ENDPOINT, region: 'us-east-1', forcePathStyle: true, ...credentials });
const source = new PostgresStore({ connectionString: PG, schema: `crr_bench_${ts}_src` });
const target = new PostgresStore({ connectionString: PG, schema: `crr_bench_${ts}_dst` });
const results = {};
try {
  await source.migrate();
  const vertices = Math.round(N * 0.8);
  const edges = N - vertices;
  log(`-- backup bench: ${vertices} vertices + ${edges} edges into ${source.schema}`);
  await source.pool.query(`INSERT INTO "${source.schema}".vertices (type, id, attributes)
    SELECT 'City', 'c' || g, jsonb_build_object('name', 'city ' || g, 'code', md5(g::text), 'population', g * 7 % 100000, 'lat', (g % 180) - 90.5, 'lon', (g % 360) - 180.5)
    FROM generate_series(1, ${vertices}) g`);
  await source.pool.query(`INSERT INTO "${source.schema}".edges (type, from_type, from_id, to_type, to_id, attributes)
    SELECT 'NEAR', 'City', 'c' || g, 'City', 'c' || (g % ${vertices} + 1), jsonb_build_object('km', g % 500)
    FROM generate_series(1, ${edges}) g`);
  await source.setClusterState({ role: 'primary', state: 'ACTIVE', epoch: 0 });

  const repo = await openRepository(repoConfig('crr'));
  log('-- crr backup create');
  const backup = await timed(() => createBackup(source, repo, { cluster: 'bench' }));
  const manifest = backup.value;
  const bytes = manifest.totals.bytes;
  results.backup = {
    seconds: backup.seconds,
    records: manifest.totals.vertices + manifest.totals.edges,
    bytes,
    uncompressedBytes: manifest.totals.uncompressedBytes,
    parts: manifest.parts.length,
  };

  log('-- raw download of the same parts');
  const parts = [];
  const download = await timed(async () => {
    for (const p of manifest.parts) {
      const stream = await repo.get(`${manifest.id}/${p.name}`);
      const chunks = [];
      for await (const c of stream) chunks.push(c);
      parts.push({ name: p.name, body: Buffer.concat(chunks) });
    }
  });
  results.rawDownload = { seconds: download.seconds, bytes: parts.reduce((n, p) => n + p.body.length, 0) };

  log('-- raw upload of the same bytes');
  const raw = await openRepository(repoConfig('raw'));
  const upload = await timed(async () => {
    for (const p of parts) await raw.put(`copy/${p.name}`, p.body);
  });
  results.rawUpload = { seconds: upload.seconds, bytes: results.rawDownload.bytes };
  results.sha256Check = parts.every((p) => createHash('sha256').update(p.body).digest('hex') === manifest.parts.find((m) => m.name === p.name).sha256);

  log('-- crr restore');
  const restore = await timed(() => restoreBackup(target, repo, manifest.id, { clusterState: { role: 'replica', state: 'REPLICATING', epoch: 0 } }));
  results.restore = { seconds: restore.seconds, records: results.backup.records, bytes };
  results.equal = (await source.digest()) === (await target.digest());
  repo.close();
  raw.close();
} finally {
  if (!KEEP) {
    for (const s of [source, target]) await s.pool.query(`DROP SCHEMA IF EXISTS "${s.schema}" CASCADE`).catch(() => undefined);
    let token;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
      const keys = (page.Contents ?? []).map((o) => ({ Key: o.Key }));
      if (keys.length) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys, Quiet: true } }));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  }
  await source.close();
  await target.close();
}

const rate = (r) => ({ mbPerSec: +(mb(r.bytes) / r.seconds).toFixed(2), ...(r.records ? { recordsPerSec: Math.round(r.records / r.seconds) } : {}) });
const row = (name, r) =>
  `${name.padEnd(34)} ${r.seconds.toFixed(1).padStart(7)} s  ${mb(r.bytes).toFixed(1).padStart(8)} MB  ${rate(r).mbPerSec.toFixed(2).padStart(8)} MB/s  ${r.records ? `${rate(r).recordsPerSec.toLocaleString('en-US').padStart(10)} records/s` : ''}`;
console.log(
  `\nbackup/restore of ${results.backup.records.toLocaleString('en-US')} entities (${mb(results.backup.uncompressedBytes).toFixed(0)} MB NDJSON, ${mb(results.backup.bytes).toFixed(0)} MB gzip, ${results.backup.parts} parts) through S3Proxy at ${ENDPOINT}`,
);
console.log(row('crr backup create (to S3)', results.backup));
console.log(row('raw S3 upload (same bytes)', results.rawUpload));
console.log(row('crr restore (from S3)', results.restore));
console.log(row('raw S3 download (same bytes)', results.rawDownload));
const ratios = {
  backupToRawUpload: +(rate(results.backup).mbPerSec / rate(results.rawUpload).mbPerSec).toFixed(3),
  restoreToRawDownload: +(rate(results.restore).mbPerSec / rate(results.rawDownload).mbPerSec).toFixed(3),
};
console.log(
  `\nbackup / raw upload     ${ratios.backupToRawUpload}x\nrestore / raw download  ${ratios.restoreToRawDownload}x\nrestored store equal to the source: ${results.equal}; part checksums match: ${results.sha256Check}`,
);
mkdirSync('.bench', { recursive: true });
const out = `.bench/backup-${ts}.json`;
writeFileSync(out, `${JSON.stringify({ entities: N, endpoint: ENDPOINT, results, ratios }, null, 2)}\n`);
console.log(`JSON: ${out}`);
if (!results.equal) process.exit(1);
