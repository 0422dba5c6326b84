/**
 * The known-size upload loop against an in-memory {@link PartSink}: buffer reuse never corrupts a
 * part still being sent, at most `queueSize` buffers and requests exist, parts complete out of
 * order, and every failure path aborts the multipart upload.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { toS3StorageError } from '../../../drivers/storage/s3/errors';
import { putInParts, type PartPutOptions, type PartSink, type StoredPart } from '../../../drivers/storage/s3/parts';
import { InstanceImagesError } from '../../../src/errors';

const KiB = 1024;

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Streams `data` in chunks of varying sizes (so chunks straddle part boundaries). */
function chunked(data: Buffer, sizes: readonly number[] = [1000, 7 * KiB + 3, 64 * KiB, 13, 33 * KiB]): Readable {
  let offset = 0;
  let index = 0;
  return new Readable({
    read() {
      if (offset >= data.length) {
        this.push(null);
        return;
      }
      const size = sizes[index % sizes.length]!;
      index += 1;
      this.push(data.subarray(offset, offset + size));
      offset += size;
    },
  });
}

/** A stream that yields `data` and then never ends until destroyed. */
function stalling(data: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (sent) return;
      sent = true;
      this.push(data);
    },
  });
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface FakeSinkOptions {
  /** Delay of a part upload, by part number (default: a pseudo-random few ms, so parts finish out of order). */
  delay?: (partNumber: number) => number;
  /** Makes this part fail. */
  failPart?: number;
  /** Makes AbortMultipartUpload fail. */
  failAbort?: boolean;
}

/** An in-memory S3 that snapshots each part when sent and checks the buffer is unchanged when it resolves. */
function fakeSink(options: FakeSinkOptions = {}) {
  const state = {
    created: 0,
    parts: new Map<number, Buffer>(),
    completed: null as StoredPart[] | null,
    object: null as Buffer | null,
    aborted: [] as string[],
    putObjects: 0,
    inFlight: 0,
    maxInFlight: 0,
    /** Distinct ArrayBuffers behind the part bodies: the number of part buffers the loop used. */
    backingBuffers: new Set<ArrayBufferLike>(),
    corrupted: [] as number[],
    abortedSignals: 0,
  };
  const delay = options.delay ?? ((n: number) => (n * 7919) % 5);
  const sink: PartSink = {
    async create() {
      state.created += 1;
      return 'upload-1';
    },
    async uploadPart(uploadId, partNumber, body, signal) {
      expect(uploadId).toBe('upload-1');
      state.backingBuffers.add(body.buffer);
      state.inFlight += 1;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      const snapshot = Buffer.from(body);
      let onAbort = (): void => undefined;
      try {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(resolve, delay(partNumber));
          onAbort = () => {
            clearTimeout(timer);
            state.abortedSignals += 1;
            reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          };
          signal.addEventListener('abort', onAbort, { once: true });
        });
        if (options.failPart === partNumber) throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
        // The loop must not have refilled this buffer while the part was "on the wire".
        if (!snapshot.equals(body)) state.corrupted.push(partNumber);
        state.parts.set(partNumber, snapshot);
        return `"etag-${partNumber}"`;
      } finally {
        signal.removeEventListener('abort', onAbort);
        state.inFlight -= 1;
      }
    },
    async complete(uploadId, parts) {
      expect(uploadId).toBe('upload-1');
      state.completed = parts;
      state.object = Buffer.concat(parts.map((part) => state.parts.get(part.PartNumber)!));
    },
    async abort(uploadId) {
      if (options.failAbort) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
      state.aborted.push(uploadId);
    },
    async putObject(body) {
      state.putObjects += 1;
      state.object = Buffer.from(body);
    },
  };
  return { sink, state };
}

const context = { action: 'upload "a.qcow2"', bucket: 'images', endpoint: 'http://127.0.0.1:7480', secrets: ['s3cr3t'] };

function optionsFor(size: number, extra: Partial<PartPutOptions> = {}): PartPutOptions {
  return {
    key: 'a.qcow2',
    size,
    partSize: 64 * KiB,
    queueSize: 3,
    mapError: (error) => toS3StorageError(error, { ...context, ...(extra.signal ? { signal: extra.signal } : {}) }),
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<InstanceImagesError> {
  const error = await promise.then(
    () => null,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(InstanceImagesError);
  return error as InstanceImagesError;
}

describe('putInParts', () => {
  it('round-trips many parts of random data through at most queueSize reused buffers', async () => {
    const data = randomBytes(40 * 64 * KiB + 12_345);
    const { sink, state } = fakeSink();
    const progress: number[] = [];
    const result = await putInParts(chunked(data), sink, optionsFor(data.length, { onProgress: (bytes) => progress.push(bytes) }));
    expect(result).toEqual({ size: data.length });
    expect(state.corrupted).toEqual([]);
    expect(state.object && sha256(state.object)).toBe(sha256(data));
    expect(state.completed?.map((part) => part.PartNumber)).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
    expect(state.completed?.[0]).toEqual({ PartNumber: 1, ETag: '"etag-1"' });
    expect(state.backingBuffers.size).toBe(3);
    expect(state.maxInFlight).toBe(3);
    expect(progress).toHaveLength(41);
    expect(progress.at(-1)).toBe(data.length);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    expect(state.aborted).toEqual([]);
  });

  it('keeps the buffer of a slow part untouched while later parts are filled and sent', async () => {
    const data = randomBytes(10 * 64 * KiB);
    // Part 1 is slow, the others fast: its buffer must stay reserved until it resolves.
    const { sink, state } = fakeSink({ delay: (n) => (n === 1 ? 40 : 1) });
    await putInParts(chunked(data, [64 * KiB + 1, 5]), sink, optionsFor(data.length, { queueSize: 2 }));
    expect(state.corrupted).toEqual([]);
    expect(state.object?.equals(data)).toBe(true);
    expect(state.backingBuffers.size).toBe(2);
  });

  it('a part size that is an exact divisor of the size sends full parts only', async () => {
    const data = randomBytes(4 * 64 * KiB);
    const { sink, state } = fakeSink();
    await putInParts(chunked(data), sink, optionsFor(data.length));
    expect(state.completed).toHaveLength(4);
    expect(state.object?.equals(data)).toBe(true);
  });

  it('an object of at most one part is one PutObject with a Buffer body', async () => {
    for (const size of [0, 1000, 64 * KiB]) {
      const data = randomBytes(size);
      const { sink, state } = fakeSink();
      const progress: number[] = [];
      expect(await putInParts(chunked(data), sink, optionsFor(size, { onProgress: (bytes) => progress.push(bytes) }))).toEqual({ size });
      expect(state.created).toBe(0);
      expect(state.putObjects).toBe(1);
      expect(state.object?.equals(data)).toBe(true);
      expect(progress).toEqual([size]);
    }
  });

  it('a body shorter or longer than announced is VALIDATION_FAILED, never completed, and aborted', async () => {
    const data = randomBytes(5 * 64 * KiB);
    for (const announced of [data.length + 1, data.length - 1, 6 * 64 * KiB]) {
      const { sink, state } = fakeSink();
      const body = chunked(data);
      const error = await rejection(putInParts(body, sink, optionsFor(announced)));
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(error.details.expected).toBe(announced);
      expect(state.completed).toBeNull();
      expect(state.aborted).toEqual(['upload-1']);
      expect(body.destroyed).toBe(true);
    }
    for (const announced of [10, 2000]) {
      const { sink, state } = fakeSink();
      const error = await rejection(putInParts(chunked(randomBytes(1000)), sink, optionsFor(announced === 10 ? 10 : 2000)));
      expect(error.code).toBe('VALIDATION_FAILED');
      expect(state.putObjects).toBe(0);
    }
  });

  it('a failing part aborts the parts in flight and the multipart upload', async () => {
    const data = randomBytes(20 * 64 * KiB);
    const { sink, state } = fakeSink({ failPart: 4, delay: (n) => (n === 4 ? 1 : 30) });
    const body = chunked(data);
    const error = await rejection(putInParts(body, sink, optionsFor(data.length)));
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.message).toContain('ECONNRESET');
    expect(state.abortedSignals).toBeGreaterThan(0);
    expect(state.inFlight).toBe(0);
    expect(state.aborted).toEqual(['upload-1']);
    expect(state.completed).toBeNull();
    expect(body.destroyed).toBe(true);
    expect(error.details.incompleteUpload).toBeUndefined();
  });

  it('names the incomplete upload when even the abort fails, without any secret', async () => {
    const data = randomBytes(8 * 64 * KiB);
    const { sink } = fakeSink({ failPart: 2, failAbort: true });
    const error = await rejection(putInParts(chunked(data), sink, optionsFor(data.length)));
    expect(error.details.incompleteUpload).toEqual({ key: 'a.qcow2', id: 'upload-1' });
    expect(JSON.stringify(error)).not.toContain('s3cr3t');
  });

  it('the caller cancelling mid-loop stops reading, aborts the requests in flight and the upload', async () => {
    const controller = new AbortController();
    const { sink, state } = fakeSink({ delay: () => 20 });
    const body = stalling(randomBytes(5 * 64 * KiB));
    const putting = putInParts(body, sink, optionsFor(50 * 64 * KiB, { signal: controller.signal }));
    await tick(5);
    expect(state.inFlight).toBeGreaterThan(0);
    controller.abort();
    const error = await rejection(putting);
    expect(error.code).toBe('CANCELLED');
    expect(state.abortedSignals).toBeGreaterThan(0);
    expect(state.aborted).toEqual(['upload-1']);
    expect(state.completed).toBeNull();
    expect(body.destroyed).toBe(true);
  });

  it('a failing body surfaces its own error and aborts the upload', async () => {
    const { sink, state } = fakeSink();
    const body = stalling(randomBytes(3 * 64 * KiB));
    const sourceError = new InstanceImagesError('HYPERVISOR_UNREACHABLE', 'The SSH connection dropped');
    setTimeout(() => body.destroy(sourceError), 10);
    const error = await rejection(putInParts(body, sink, optionsFor(50 * 64 * KiB)));
    expect(error).toBe(sourceError);
    expect(state.aborted).toEqual(['upload-1']);
  });

  it('an already-aborted signal or a size needing more than 10,000 parts sends nothing', async () => {
    const { sink, state } = fakeSink();
    const cancelled = await rejection(putInParts(chunked(randomBytes(10)), sink, optionsFor(10, { signal: AbortSignal.abort() })));
    expect(cancelled.code).toBe('CANCELLED');
    const tooBig = await rejection(putInParts(chunked(randomBytes(10)), sink, optionsFor(10_001 * 64 * KiB)));
    expect(tooBig.code).toBe('VALIDATION_FAILED');
    expect(state.created + state.putObjects).toBe(0);
  });
});
