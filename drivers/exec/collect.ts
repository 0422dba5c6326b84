/**
 * Shared by the executors: bounded collection of a command's output.
 * @module
 */
import type { Readable } from 'node:stream';

/** Default maximum stdout/stderr bytes kept in memory by an executor. */
export const DEFAULT_MAX_BUFFER = 16 * 1024 * 1024;

/** Collects up to `max` bytes of a stream as utf8; resolves when it ends, closes or fails. */
export function collect(stream: Readable, max: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream.on('data', (chunk: Buffer) => {
      if (size < max) {
        chunks.push(chunk.subarray(0, max - size));
        size += chunk.length;
      }
    });
    const finish = () => resolve(Buffer.concat(chunks).toString('utf8'));
    stream.on('end', finish);
    stream.on('close', finish);
    stream.on('error', finish);
  });
}
