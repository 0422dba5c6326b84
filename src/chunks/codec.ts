/**
 * Chunk codecs. zstd comes from `node:zlib` where the runtime has it (Node ≥ 22.15); elsewhere
 * writing with it is refused and reading a zstd chunk fails with a typed error. A chunk is stored
 * compressed only when that makes it smaller, so its codec follows from its stored size: exactly
 * its length means as is, shorter means zstd. Readers decide by the bytes they get, which keeps
 * stores that mix codecs (or writers that raced on one digest) readable.
 * @module
 */
import { createHash } from 'node:crypto';
import * as zlib from 'node:zlib';
import { InstanceImagesError } from '../errors';
import type { ChunkCodec } from './manifest';

type Callback = (error: Error | null, result: Buffer) => void;
interface ZstdZlib {
  zstdCompress?: (buffer: Buffer, options: object, callback: Callback) => void;
  zstdDecompress?: (buffer: Buffer, options: { maxOutputLength?: number }, callback: Callback) => void;
}
const zstd = zlib as unknown as ZstdZlib;

/** True when this runtime's `node:zlib` has zstd. */
export function isZstdAvailable(): boolean {
  return typeof zstd.zstdCompress === 'function' && typeof zstd.zstdDecompress === 'function';
}

function zstdUnavailable(what: string): InstanceImagesError {
  return new InstanceImagesError(
    'INVALID_STATE',
    `${what} needs zstd, which this Node.js (${process.version}) lacks in node:zlib; run on Node.js 22.15 or later`,
    { details: { codec: 'zstd', node: process.version, reason: 'zstd-unavailable' } },
  );
}

/**
 * The bytes to store for a chunk and their codec: zstd when asked for and smaller, else as is.
 * @throws INVALID_STATE when zstd is asked for and missing.
 */
export async function encodeChunk(bytes: Buffer, codec: ChunkCodec): Promise<{ stored: Buffer; codec: ChunkCodec }> {
  if (codec === 'none') return { stored: bytes, codec: 'none' };
  const compress = zstd.zstdCompress;
  if (!compress) throw zstdUnavailable('Storing a chunk with codec zstd');
  const compressed = await new Promise<Buffer>((resolve, reject) =>
    compress(bytes, {}, (error, result) => (error ? reject(error) : resolve(result))),
  );
  return compressed.length < bytes.length ? { stored: compressed, codec: 'zstd' } : { stored: bytes, codec: 'none' };
}

/** The codec of a stored chunk of `length` bytes, from its stored size. */
export function codecOfStoredSize(storedBytes: number, length: number): ChunkCodec {
  return storedBytes === length ? 'none' : 'zstd';
}

/**
 * Decodes a stored chunk and checks it against its digest.
 * @throws CHECKSUM_MISMATCH when it does not decode to `length` bytes hashing to `sha256`;
 *   INVALID_STATE when it is zstd and this runtime has no zstd.
 */
export async function decodeChunk(stored: Buffer, chunk: { sha256: string; length: number; key: string }): Promise<Buffer> {
  let bytes = stored;
  if (stored.length !== chunk.length) {
    if (stored.length > chunk.length) throw mismatch(chunk, `it holds ${stored.length} bytes, more than the chunk's ${chunk.length}`);
    const decompress = zstd.zstdDecompress;
    if (!decompress) throw zstdUnavailable(`Reading the zstd-compressed chunk ${chunk.key}`);
    try {
      bytes = await new Promise<Buffer>((resolve, reject) =>
        decompress(stored, { maxOutputLength: chunk.length }, (error, result) => (error ? reject(error) : resolve(result))),
      );
    } catch (error) {
      throw mismatch(chunk, `it does not decompress to ${chunk.length} bytes`, error);
    }
    if (bytes.length !== chunk.length) throw mismatch(chunk, `it decompresses to ${bytes.length} bytes, not ${chunk.length}`);
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== chunk.sha256) throw mismatch(chunk, 'its bytes hash to another digest', undefined, actual);
  return bytes;
}

function mismatch(chunk: { sha256: string; key: string }, why: string, cause?: unknown, actual?: string): InstanceImagesError {
  return new InstanceImagesError('CHECKSUM_MISMATCH', `The stored chunk ${chunk.key} is damaged: ${why}`, {
    cause,
    details: { key: chunk.key, sha256: chunk.sha256, ...(actual ? { actual } : {}) },
  });
}
