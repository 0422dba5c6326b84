/** Test data for the S3 tests: streams of random bytes with a known sha256. */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';

/** A buffer of random bytes and its sha256. */
export function randomData(size: number): { data: Buffer; sha256: string } {
  const data = randomBytes(size);
  return { data, sha256: createHash('sha256').update(data).digest('hex') };
}

/** Streams `data` in 64 KiB chunks, as a pipe from a process would. */
export function streamOf(data: Buffer, chunkSize = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      this.push(data.subarray(offset, offset + chunkSize));
      offset += chunkSize;
    },
  });
}

/** A stream that yields `bytesBeforeStall` bytes and then never ends (until destroyed). */
export function stallingStream(bytesBeforeStall: number): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= bytesBeforeStall) return;
      const chunk = randomBytes(Math.min(64 * 1024, bytesBeforeStall - sent));
      sent += chunk.length;
      this.push(chunk);
    },
  });
}

/** Reads a stream fully and returns its bytes' sha256 and length. */
export async function digestStream(stream: Readable): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    const buffer = chunk as Buffer;
    hash.update(buffer);
    size += buffer.length;
  }
  return { sha256: hash.digest('hex'), size };
}

/** Reads a stream fully into a buffer. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
