/**
 * An import's source as one stream: download → decompress (chosen by the first bytes) → detect the
 * disk format from the decompressed head → count, limit and hash the decompressed bytes; an
 * expected sha256 is checked at the end (a mismatch fails the stream, so the consumer discards
 * what it stored).
 * @module
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { InstanceImagesError } from '../errors';
import { decompress, detectCompression, type Compression, type Decompressors } from './decompress';
import { downloadUrl, type DownloadOptions } from './download';
import { detectDiskFormat, MAX_HEAD_BYTES, type DetectedFormat } from './format';

/** Options of {@link openImportSource}. */
export interface ImportSourceOptions extends DownloadOptions {
  /** The most decompressed bytes accepted. */
  maxImageBytes: number;
  /** The expected sha256 (lowercase hex) of the decompressed bytes. */
  expectedSha256?: string | null;
  decompressors: Decompressors;
  /** Bytes read from the server so far (compressed), for progress. */
  onDownloaded?(bytes: number, total: number | null): void;
  /** See {@link ByteSourceOptions.admit}. */
  admit?(bytes: number): Promise<void>;
}

/** An opened import source. */
export interface ImportSource {
  compression: Compression;
  detected: DetectedFormat;
  /** The decompressed bytes, head included; fails on a limit, a checksum mismatch or a download error. */
  stream: Readable;
  /** Once the stream ended: bytes and sha256 of the decompressed image. */
  result(): { sizeBytes: number; sha256: string } | null;
}

/** Takes bytes from `source` until `want` are buffered or it ends. */
async function takeHead(
  source: AsyncIterator<Buffer>,
  buffered: Buffer[],
  have: number,
  want: number,
): Promise<{ have: number; done: boolean }> {
  while (have < want) {
    const next = await source.next();
    if (next.done) return { have, done: true };
    buffered.push(next.value);
    have += next.value.length;
  }
  return { have, done: false };
}

/** `head` then the rest of `rest`, as one iterable. */
async function* prefixed(head: Buffer[], rest: AsyncIterator<Buffer>, done: boolean): AsyncGenerator<Buffer> {
  for (const chunk of head) yield chunk;
  if (done) return;
  for (;;) {
    const next = await rest.next();
    if (next.done) return;
    yield next.value;
  }
}

/** Options of {@link openByteSource}: what is done with bytes that are already at hand. */
export interface ByteSourceOptions {
  /** The most decompressed bytes accepted. */
  maxImageBytes: number;
  /** The expected sha256 (lowercase hex) of the decompressed bytes. */
  expectedSha256?: string | null;
  decompressors: Decompressors;
  signal: AbortSignal;
  /**
   * Called with the decompressed bytes so far before each piece is passed on; its rejection fails
   * the stream (an import's hold on its account's byte cap).
   */
  admit?(bytes: number): Promise<void>;
}

/**
 * Opens the source: downloads and decompresses far enough to know the compression and the disk
 * format. @throws DESTINATION_REFUSED, DOWNLOAD_FAILED, UNSUPPORTED_IMAGE, CANCELLED.
 */
export async function openImportSource(url: URL, options: ImportSourceOptions): Promise<ImportSource> {
  let downloaded = 0;
  let total: number | null = null;
  const counted = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of downloadUrl(url, {
      ...options,
      onResponse: (info) => {
        total = info.totalBytes === null ? null : info.totalBytes;
        options.onResponse?.(info);
      },
    })) {
      downloaded += chunk.length;
      options.onDownloaded?.(downloaded, total);
      yield chunk;
    }
  };
  return openByteSource(counted(), options);
}

/**
 * The same pipeline over bytes from anywhere (an upload staged on the panel): decompress (chosen
 * by the first bytes), detect the format, count, limit and hash.
 * @throws UNSUPPORTED_IMAGE, and the errors of `bytes`.
 */
export async function openByteSource(bytes: AsyncIterable<Buffer>, options: ByteSourceOptions): Promise<ImportSource> {
  const raw = bytes[Symbol.asyncIterator]();
  const rawHead: Buffer[] = [];
  const first = await takeHead(raw, rawHead, 0, 6);
  const compression = detectCompression(Buffer.concat(rawHead));
  const inflated = decompress(prefixed(rawHead, raw, first.done), compression, options.decompressors, options.signal);
  const image = inflated[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let state = { have: 0, done: false };
  let detected: DetectedFormat | null = null;
  try {
    while (detected === null) {
      const found = detectDiskFormat(Buffer.concat(head), state.done);
      if ('format' in found) detected = found;
      else if (state.done || found.needBytes > MAX_HEAD_BYTES)
        throw new InstanceImagesError('UNSUPPORTED_IMAGE', 'The image format could not be recognized');
      else state = await takeHead(image, head, state.have, found.needBytes);
    }
  } catch (error) {
    await image.return?.(undefined).catch(() => undefined);
    throw error;
  }
  const hash = createHash('sha256');
  let size = 0;
  let finished: { sizeBytes: number; sha256: string } | null = null;
  const { maxImageBytes, expectedSha256 } = options;
  const output = async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of prefixed(head, image, state.done)) {
      size += chunk.length;
      if (size > maxImageBytes)
        throw new InstanceImagesError('DOWNLOAD_FAILED', `The decompressed image is larger than the limit of ${maxImageBytes} bytes`, {
          details: { reason: 'too-large', limitBytes: maxImageBytes },
        });
      if (options.admit) await options.admit(size);
      hash.update(chunk);
      yield chunk;
    }
    const sha256 = hash.digest('hex');
    if (expectedSha256 && sha256 !== expectedSha256)
      throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The downloaded image does not match the expected sha256', {
        details: { expected: expectedSha256, actual: sha256 },
      });
    finished = { sizeBytes: size, sha256 };
  };
  return { compression, detected, stream: Readable.from(output(), { objectMode: false }), result: () => finished };
}
