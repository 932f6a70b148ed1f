import { createRequire } from 'node:module';
import type { CompressionTypes as CompressionType } from 'kafkajs';
import { CompressionCodecs, CompressionTypes } from './kafkajs.js';
import { decompress as zstdDecompress } from 'fzstd';
import * as zstdWasm from '@bokuweb/zstd-wasm';

const require = createRequire(import.meta.url);
// Native (napi-rs) codecs ship prebuilt binaries inside their npm packages; loaded lazily so
// that a platform without them still runs uncompressed and gzip flows.
type Snappy = { compressSync(b: Buffer): Buffer; uncompressSync(b: Buffer, o?: { asBuffer: true }): Buffer };
type Lz4 = { compressFrameSync(b: Buffer): Buffer; decompressFrameSync(b: Buffer): Buffer };
let snappy: Snappy | undefined;
let lz4: Lz4 | undefined;
const loadSnappy = (): Snappy => (snappy ??= require('snappy') as Snappy);
const loadLz4 = (): Lz4 => (lz4 ??= require('lz4-napi') as Lz4);

/**
 * Xerial snappy framing, which Kafka's Java clients write (`SnappyOutputStream`): a 16-byte
 * header (magic `\x82SNAPPY\0`, version 1, compatible version 1) then blocks of
 * `[int32 BE compressed length][raw snappy block]`. Plain raw snappy is also accepted on read.
 */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00]);
const XERIAL_BLOCK = 32 * 1024;

/** Compresses with snappy in Kafka's xerial framing (readable by the Java clients). */
export function snappyCompress(input: Buffer): Buffer {
  const s = loadSnappy();
  const header = Buffer.alloc(16);
  XERIAL_MAGIC.copy(header, 0);
  header.writeInt32BE(1, 8);
  header.writeInt32BE(1, 12);
  const parts: Buffer[] = [header];
  for (let off = 0; off < input.length; off += XERIAL_BLOCK) {
    const block = s.compressSync(input.subarray(off, off + XERIAL_BLOCK));
    const len = Buffer.alloc(4);
    len.writeInt32BE(block.length, 0);
    parts.push(len, block);
  }
  return Buffer.concat(parts);
}

/** Decompresses xerial-framed or raw snappy. @throws Error on a truncated frame */
export function snappyDecompress(input: Buffer): Buffer {
  const s = loadSnappy();
  if (input.length < 16 || !input.subarray(0, 8).equals(XERIAL_MAGIC)) {
    return s.uncompressSync(input, { asBuffer: true });
  }
  const out: Buffer[] = [];
  let off = 16;
  while (off < input.length) {
    if (off + 4 > input.length) throw new Error('truncated xerial snappy block header');
    const len = input.readInt32BE(off);
    off += 4;
    if (off + len > input.length) throw new Error('truncated xerial snappy block');
    out.push(s.uncompressSync(input.subarray(off, off + len), { asBuffer: true }));
    off += len;
  }
  return Buffer.concat(out);
}

let zstdReady: Promise<void> | undefined;

/**
 * Registers snappy, LZ4 (frame format, as Kafka's KafkaLZ4BlockOutputStream writes for
 * magic v2) and zstd codecs with KafkaJS, which ships only gzip. Idempotent.
 * zstd is decompressed with fzstd (streaming frames without a content size, as zstd-jni
 * writes them, are supported) and compressed with the zstd WebAssembly build.
 */
export async function registerCodecs(): Promise<void> {
  const codecs = CompressionCodecs as Record<number, () => { compress(e: { buffer: Buffer }): Promise<Buffer>; decompress(b: Buffer): Promise<Buffer> }>;
  codecs[CompressionTypes.Snappy] = () => ({
    compress: async (encoder) => snappyCompress(encoder.buffer),
    decompress: async (buffer) => snappyDecompress(buffer),
  });
  codecs[CompressionTypes.LZ4] = () => ({
    compress: async (encoder) => loadLz4().compressFrameSync(encoder.buffer),
    decompress: async (buffer) => loadLz4().decompressFrameSync(buffer),
  });
  zstdReady ??= zstdWasm.init();
  await zstdReady;
  codecs[CompressionTypes.ZSTD] = () => ({
    compress: async (encoder) => Buffer.from(zstdWasm.compress(encoder.buffer, 3)),
    decompress: async (buffer) => Buffer.from(zstdDecompress(buffer)),
  });
}

/** Config name of a target compression → KafkaJS's CompressionTypes value. */
export function compressionType(name: 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd'): CompressionType {
  return {
    none: CompressionTypes.None,
    gzip: CompressionTypes.GZIP,
    snappy: CompressionTypes.Snappy,
    lz4: CompressionTypes.LZ4,
    zstd: CompressionTypes.ZSTD,
  }[name];
}
