/**
 * Decompression of URL imports, chosen by the first bytes (never by the URL's name): gzip through
 * zlib, zstd through zlib where this Node has it (refused otherwise), xz and bzip2 through the `xz`
 * and `bzip2` programs of this machine when they are installed (refused otherwise). Each program
 * runs without a shell, reading stdin and writing stdout.
 * @module
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { InstanceImagesError } from '../errors';
import { unsupportedImage } from './format';

/** How the downloaded bytes are compressed. */
export type Compression = 'none' | 'gzip' | 'zstd' | 'xz' | 'bzip2';

/** The compression of a stream, from its first (up to 6) bytes. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.toString('latin1', 0, 3) === 'BZh' && head[3]! >= 0x31 && head[3]! <= 0x39) return 'bzip2';
  return 'none';
}

/** The absolute path of a program on PATH, or null. */
export function findProgram(name: string, path = process.env.PATH ?? ''): string | null {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}

/** Programs used for xz and bzip2 (null: refused); found on PATH by default. */
export interface Decompressors {
  xz: string | null;
  bzip2: string | null;
  /** Whether zlib can decompress zstd (Node ≥ 22.15). */
  zstd: boolean;
}

/** What this machine can decompress. */
export function localDecompressors(): Decompressors {
  return {
    xz: findProgram('xz'),
    bzip2: findProgram('bzip2'),
    zstd: typeof (zlib as { createZstdDecompress?: unknown }).createZstdDecompress === 'function',
  };
}

/** Decompresses `input` (an async iterable of bytes) through a program; its failure fails the stream. */
function throughProgram(program: string, name: string, input: AsyncIterable<Buffer>, signal: AbortSignal): Readable {
  const child = spawn(program, ['-dc'], { stdio: ['pipe', 'pipe', 'pipe'], signal });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < 2000) stderr += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  child.on('error', () => undefined);
  const feed = Readable.from(input);
  feed.once('error', (error) => child.stdout.destroy(error));
  child.stdin.on('error', () => undefined);
  feed.pipe(child.stdin);
  async function* output(): AsyncGenerator<Buffer> {
    try {
      for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
      const code = await exited;
      if (code !== 0)
        throw unsupportedImage(
          `The ${name} data could not be decompressed: ${stderr.trim().slice(0, 200) || `exit ${code}`}`,
          `${name}-corrupt`,
        );
    } finally {
      feed.destroy();
      if (child.exitCode === null) child.kill();
    }
  }
  return Readable.from(output());
}

/**
 * The decompressed bytes of `input`, whose compression `compression` is.
 * @throws UNSUPPORTED_IMAGE when this machine cannot decompress it, or when the data is corrupt (as the stream's error).
 */
export function decompress(
  input: AsyncIterable<Buffer>,
  compression: Compression,
  tools: Decompressors,
  signal: AbortSignal,
): AsyncIterable<Buffer> {
  if (compression === 'none') return input;
  if (compression === 'gzip' || compression === 'zstd') {
    if (compression === 'zstd' && !tools.zstd)
      throw unsupportedImage(
        'zstd-compressed images cannot be decompressed by this panel (its Node.js has no zstd); import it uncompressed, or gzip or xz compressed',
        'zstd-unavailable',
      );
    const inflater =
      compression === 'gzip'
        ? zlib.createGunzip()
        : (zlib as unknown as { createZstdDecompress(): NodeJS.ReadWriteStream }).createZstdDecompress();
    const source = Readable.from(input);
    source.once('error', (error) => (inflater as unknown as Readable).destroy(error));
    (inflater as unknown as Readable).once('error', () => source.destroy());
    source.pipe(inflater as unknown as NodeJS.WritableStream);
    return mapZlibErrors(inflater as unknown as Readable, compression);
  }
  const program = compression === 'xz' ? tools.xz : tools.bzip2;
  if (!program)
    throw unsupportedImage(
      `${compression}-compressed images cannot be decompressed: the ${compression} program is not installed on the panel's machine; import it uncompressed or gzip compressed`,
      `${compression}-unavailable`,
    );
  return throughProgram(program, compression, input, signal);
}

async function* mapZlibErrors(stream: Readable, name: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
  } catch (error) {
    const code = (error as { code?: string }).code ?? '';
    if (error instanceof InstanceImagesError || !code.startsWith('Z_')) throw error;
    throw unsupportedImage(`The ${name} data could not be decompressed (${code})`, `${name}-corrupt`);
  } finally {
    stream.destroy();
  }
}
