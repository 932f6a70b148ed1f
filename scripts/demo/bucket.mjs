// Creates an S3 bucket if it does not exist (the demo's backup repository), on the S3 server of
// scripts/s3.sh. Usage: node scripts/demo/bucket.mjs ENDPOINT BUCKET
import { CreateBucketCommand, HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';

const [endpoint, bucket] = process.argv.slice(2);
if (!endpoint || !bucket) {
  console.error('usage: node scripts/demo/bucket.mjs ENDPOINT BUCKET');
  process.exit(2);
}
const s3 = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: 'crr', secretAccessKey: 'crr-secret-key' } });
try {
  await s3.send(new HeadBucketCommand({ Bucket: bucket }));
} catch {
  await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  console.log(`created bucket ${bucket} on ${endpoint}`);
}
