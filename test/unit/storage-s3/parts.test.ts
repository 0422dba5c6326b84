/**
 * The upload loop against an in-memory {@link PartSink}: buffer reuse never corrupts a part still
 * being sent, at most `queueSize` buffers and requests exist, parts complete out of order, every
 * failure path aborts the multipart upload, and a body of unknown size is stored in parts that grow.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { toS3StorageError } from '../../../drivers/storage/s3/errors';
import {
  GROWING_PART_CAP,
  growingPartSize,
  growingPartsCapacity,
  putInParts,
  type PartPutOptions,
  type PartSink,
  type StoredPart,
} from '../../../drivers/storage/s3/parts';
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
      const ms = delay(partNumber);
      try {
        // A delay of 0 settles in a microtask (the 10,000-part tests would take seconds of timers).
        if (ms === 0) await Promise.resolve();
        else
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, ms);
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

function optionsFor(size: number | undefined, extra: Partial<PartPutOptions> = {}): PartPutOptions {
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

describe('putInParts with an unknown size', () => {
  const MiB = 1024 * KiB;

  it('grows the parts from the base size every 1,000 parts, up to 128 MiB, so 10,000 parts hold 867 GiB of 8 MiB base parts', () => {
    expect([1, 1000, 1001, 2000, 2001, 3001, 4001, 5001, 10_000].map((n) => growingPartSize(n, 8 * MiB) / MiB)).toEqual([
      8, 8, 16, 16, 32, 64, 128, 128, 128,
    ]);
    // A base part above the cap stays as it is.
    expect(growingPartSize(9000, 256 * MiB)).toBe(256 * MiB);
    expect(GROWING_PART_CAP).toBe(128 * MiB);
    // 1,000 parts each of 8, 16, 32, 64 MiB and 6,000 of 128 MiB; fixed 8 MiB parts held 78 GiB.
    expect(growingPartsCapacity(8 * MiB)).toBe((8 + 16 + 32 + 64 + 6 * 128) * 1000 * MiB);
  });

  it('a body that ends within the first part is one PutObject of exactly its bytes', async () => {
    for (const size of [0, 1000, 64 * KiB]) {
      const data = randomBytes(size);
      const { sink, state } = fakeSink();
      const progress: number[] = [];
      expect(await putInParts(chunked(data), sink, optionsFor(undefined, { onProgress: (bytes) => progress.push(bytes) }))).toEqual({
        size,
      });
      expect(state.created).toBe(0);
      expect(state.putObjects).toBe(1);
      expect(state.object?.equals(data)).toBe(true);
      expect(progress).toEqual([size]);
    }
  });

  it('round-trips a larger body through base-size parts and reused buffers, reporting the size it had', async () => {
    const data = randomBytes(40 * 64 * KiB + 12_345);
    const { sink, state } = fakeSink();
    const result = await putInParts(chunked(data), sink, optionsFor(undefined));
    expect(result).toEqual({ size: data.length });
    expect(state.corrupted).toEqual([]);
    expect(state.object && sha256(state.object)).toBe(sha256(data));
    expect(state.completed).toHaveLength(41);
    expect(state.backingBuffers.size).toBe(3);
    expect(state.aborted).toEqual([]);
  });

  it('past 1,000 parts the parts double and the pool shrinks to keep its bytes, without corrupting a part in flight', async () => {
    const base = 1 * KiB;
    // 1,000 parts of 1 KiB, 1,000 of 2 KiB, then 4 KiB parts and a short last one.
    const data = randomBytes(1000 * KiB + 1000 * 2 * KiB + 300 * 4 * KiB + 77);
    // Every 50th part is slow, so the pool fills up before it is reused.
    const { sink, state } = fakeSink({ delay: (n) => (n % 50 === 0 ? 2 : 0) });
    // Buffers this small share Node's allocation pool: a part buffer is its memory and its start.
    const buffers = new Map<ArrayBufferLike, Map<number, number>>();
    const uploadPart = sink.uploadPart.bind(sink);
    sink.uploadPart = (uploadId, partNumber, body, signal) => {
      const starts = buffers.get(body.buffer) ?? new Map<number, number>();
      buffers.set(body.buffer, starts.set(body.byteOffset, Math.max(body.length, starts.get(body.byteOffset) ?? 0)));
      return uploadPart(uploadId, partNumber, body, signal);
    };
    const result = await putInParts(chunked(data, [3000, 10_000, 777]), sink, optionsFor(undefined, { partSize: base, queueSize: 4 }));
    expect(result).toEqual({ size: data.length });
    expect(state.corrupted).toEqual([]);
    expect(state.object?.equals(data)).toBe(true);
    const sizes = state.completed!.map((part) => state.parts.get(part.PartNumber)!.length);
    expect(sizes).toHaveLength(2301);
    expect(new Set(sizes.slice(0, 1000))).toEqual(new Set([KiB]));
    expect(new Set(sizes.slice(1000, 2000))).toEqual(new Set([2 * KiB]));
    expect(new Set(sizes.slice(2000, 2300))).toEqual(new Set([4 * KiB]));
    expect(sizes.at(-1)).toBe(77);
    // 4 buffers of 1 KiB, then 2 of 2 KiB, then 2 of 4 KiB (never more than 4 in flight).
    const lengths = [...buffers.values()].flatMap((starts) => [...starts.values()]);
    expect([KiB, 2 * KiB, 4 * KiB].map((size) => lengths.filter((length) => length === size).length)).toEqual([4, 2, 2]);
    expect(state.maxInFlight).toBeLessThanOrEqual(4);
  });

  it('a body larger than 10,000 growing parts is VALIDATION_FAILED and the upload aborted', async () => {
    // Parts of 1, 2, 4 ... 512 bytes, 1,000 each: 1,023,000 bytes in all.
    expect(growingPartsCapacity(1)).toBe(1_023_000);
    const { sink, state } = fakeSink({ delay: () => 0 });
    const error = await rejection(
      putInParts(chunked(randomBytes(1_023_001), [4096]), sink, optionsFor(undefined, { partSize: 1, queueSize: 8 })),
    );
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.message).toContain('1023000 bytes');
    expect(state.completed).toBeNull();
    expect(state.aborted).toEqual(['upload-1']);
    // Exactly the capacity fits.
    const fits = fakeSink({ delay: () => 0 });
    const data = randomBytes(1_023_000);
    expect(await putInParts(chunked(data, [4096]), fits.sink, optionsFor(undefined, { partSize: 1, queueSize: 8 }))).toEqual({
      size: data.length,
    });
    expect(fits.state.completed).toHaveLength(10_000);
    expect(fits.state.object?.equals(data)).toBe(true);
  });

  it('a failing part or a cancel aborts the upload, as with a known size', async () => {
    const failing = fakeSink({ failPart: 3 });
    const failed = await rejection(putInParts(chunked(randomBytes(20 * 64 * KiB)), failing.sink, optionsFor(undefined)));
    expect(failed.code).toBe('STORAGE_UNAVAILABLE');
    expect(failing.state.completed).toBeNull();
    expect(failing.state.aborted).toEqual(['upload-1']);
    const controller = new AbortController();
    const cancelling = fakeSink();
    const body = stalling(randomBytes(3 * 64 * KiB));
    setTimeout(() => controller.abort(), 10);
    const cancelled = await rejection(putInParts(body, cancelling.sink, optionsFor(undefined, { signal: controller.signal })));
    expect(cancelled.code).toBe('CANCELLED');
    expect(body.destroyed).toBe(true);
    expect(cancelling.state.aborted).toEqual(['upload-1']);
  });
});
