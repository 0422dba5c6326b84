/**
 * The upload loop: the body is copied into a small fixed pool of reusable part buffers (at most
 * `queueSize`, each `partSize` bytes), each full buffer is sent as one part, and a buffer is
 * refilled only after its part was stored. Memory stays `queueSize × partSize` whatever the object
 * size, and no per-part garbage is made (a generic uploader that concatenates chunks into fresh
 * buffers per part peaks far higher, because the old buffers are collected late).
 *
 * When the size is not known in advance (an import whose source does not say it), the parts grow
 * ({@link growingPartSize}), so that S3's 10,000 parts hold up to {@link growingPartsCapacity}
 * bytes rather than 10,000 base parts (78 GiB with 8 MiB parts), and the pool shrinks as they grow,
 * to at least two buffers.
 *
 * The loop talks to S3 through {@link PartSink}, so it is independent of the SDK.
 * @module
 */
import type { Readable } from 'node:stream';
import { InstanceImagesError } from '../../../src/errors';

/** S3's part limit per multipart upload. */
export const S3_MAX_PARTS = 10_000;

/** Parts of one size before the part size of an upload of unknown size doubles. */
export const GROWING_PARTS_PER_STEP = 1000;
/** The largest part an upload of unknown size grows to (unless its base part is larger). */
export const GROWING_PART_CAP = 128 * 1024 * 1024;

/**
 * The size of part `partNumber` (1-based) of an upload of unknown size: `base` for the first
 * {@link GROWING_PARTS_PER_STEP} parts, then doubling every as many parts, up to
 * {@link GROWING_PART_CAP} (or `base`, when larger).
 */
export function growingPartSize(partNumber: number, base: number): number {
  const steps = Math.floor((partNumber - 1) / GROWING_PARTS_PER_STEP);
  const cap = Math.max(base, GROWING_PART_CAP);
  return Math.min(cap, base * 2 ** Math.min(steps, 30));
}

/** The most bytes an upload of unknown size can hold: its 10,000 growing parts. */
export function growingPartsCapacity(base: number): number {
  let total = 0;
  for (let step = 0; step * GROWING_PARTS_PER_STEP < S3_MAX_PARTS; step++) {
    total += growingPartSize(step * GROWING_PARTS_PER_STEP + 1, base) * GROWING_PARTS_PER_STEP;
  }
  return total;
}

/**
 * Buffers for parts of `partSize` in an upload of unknown size: the pool's bytes stay at most
 * `queueSize × base`, with at least two buffers (one filled while the other is sent) unless
 * `queueSize` is one.
 */
function growingBuffers(partSize: number, base: number, queueSize: number): number {
  return Math.max(Math.min(2, queueSize), Math.min(queueSize, Math.floor((queueSize * base) / partSize)));
}

/** One stored part, as CompleteMultipartUpload wants it. */
export interface StoredPart {
  /** 1-based part number. */
  PartNumber: number;
  /** The ETag UploadPart returned for it. */
  ETag: string;
}

/** The S3 requests the loop needs, bound to one bucket and object key. */
export interface PartSink {
  /** Starts a multipart upload and returns its id. Never cancelled, so the id is always learned. */
  create(): Promise<string>;
  /**
   * Stores one part and returns its ETag. `body` is only valid until the promise settles: the
   * buffer behind it is reused afterwards.
   */
  uploadPart(uploadId: string, partNumber: number, body: Buffer, signal: AbortSignal): Promise<string>;
  /** Completes the upload from the parts, sorted by number. Never cancelled, so its outcome is known. */
  complete(uploadId: string, parts: StoredPart[]): Promise<void>;
  /** Aborts the upload; resolves when it is already gone. */
  abort(uploadId: string): Promise<void>;
  /** Stores a whole (small) object in one request. */
  putObject(body: Buffer, signal: AbortSignal): Promise<void>;
}

/** What {@link putInParts} needs besides the body and the sink. */
export interface PartPutOptions {
  /** The driver key, for messages and `details.incompleteUpload`. */
  key: string;
  /**
   * The announced size: the body must have exactly this many bytes. Undefined when unknown: the
   * parts then grow from `partSize` ({@link growingPartSize}).
   */
  size: number | undefined;
  /** Bytes per part (the last part may be shorter); with an unknown size, the first parts'. */
  partSize: number;
  /** Parts uploaded at once, and so the number of part buffers. */
  queueSize: number;
  /** Cancels the put: stops reading, aborts the requests in flight and the multipart upload. */
  signal?: AbortSignal;
  /** Called after each stored part with the total bytes stored so far. */
  onProgress?: (storedBytes: number) => void;
  /** Turns anything thrown into the coded error the put rejects with. */
  mapError: (error: unknown) => InstanceImagesError;
}

function abortError(): Error {
  return Object.assign(new Error('The operation was aborted'), { name: 'AbortError' });
}

function sizeMismatch(key: string, expected: number, received: number, longer: boolean): InstanceImagesError {
  const had = longer ? `more than ${expected} bytes` : `${received} bytes`;
  return new InstanceImagesError(
    'VALIDATION_FAILED',
    `The data for "${key}" had ${had}, but ${expected} were announced; nothing was stored`,
    {
      fields: [{ path: 'size', message: 'does not match the data' }],
      details: { expected, received },
    },
  );
}

function asBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk);
  throw new TypeError('The body stream must yield bytes (Buffer, Uint8Array or string chunks)');
}

/** How many bytes the reader takes from the stream ahead of the loop before it pauses the stream. */
const READ_AHEAD_BYTES = 1024 * 1024;

/**
 * Reads a stream chunk by chunk in flowing mode. Unlike the async iterator (whose `read()`
 * concatenates everything buffered into a new Buffer), it never copies: every chunk is the one the
 * producer pushed. Up to {@link READ_AHEAD_BYTES} are queued ahead of the consumer (so a fast
 * source is never paused and resumed per chunk); beyond that the stream is paused (backpressure)
 * until the consumer catches up.
 */
class ChunkReader {
  readonly #body: Readable;
  readonly #chunks: Buffer[] = [];
  #queuedBytes = 0;
  #ended = false;
  #failure: { error: unknown } | undefined;
  #wake: (() => void) | undefined;

  constructor(body: Readable) {
    this.#body = body;
    body.pause();
    body.on('data', (chunk: unknown) => {
      try {
        const data = asBuffer(chunk);
        this.#chunks.push(data);
        this.#queuedBytes += data.length;
        if (this.#queuedBytes >= READ_AHEAD_BYTES) body.pause();
      } catch (error) {
        this.#failure ??= { error };
        body.pause();
      }
      this.#notify();
    });
    body.once('end', () => {
      this.#ended = true;
      this.#notify();
    });
    body.once('error', (error: unknown) => {
      this.#failure ??= { error };
      this.#notify();
    });
    body.once('close', () => {
      if (!this.#ended)
        this.#failure ??= {
          error: Object.assign(new Error('The body stream closed before it ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }),
        };
      this.#notify();
    });
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The next chunk, or `null` at the end of the stream; throws the stream's error. */
  async next(): Promise<Buffer | null> {
    for (;;) {
      const chunk = this.#chunks.shift();
      if (chunk !== undefined) {
        this.#queuedBytes -= chunk.length;
        if (this.#queuedBytes < READ_AHEAD_BYTES && this.#failure === undefined && this.#body.isPaused()) this.#body.resume();
        return chunk;
      }
      if (this.#failure !== undefined) throw this.#failure.error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#body.resume();
      });
    }
  }
}

/**
 * The first failure of a put, and the signal that stops every request in flight once it happens.
 * A failure (or cancel) also destroys the body, which unblocks a read that waits for data; the
 * loop then reports the first failure, not the close.
 */
class FailureLatch {
  readonly #controller = new AbortController();
  readonly #body: Readable;
  #failure: { error: unknown } | undefined;

  constructor(body: Readable) {
    this.#body = body;
  }

  /** Aborted on the first failure or on cancel. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** The first failure (the one the put reports). */
  get error(): unknown {
    return this.#failure?.error;
  }

  fail(error: unknown): void {
    this.#failure ??= { error };
    this.#controller.abort();
    if (!this.#body.destroyed) this.#body.destroy();
  }

  throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}

/**
 * The parts of one multipart upload in flight: each is sent from a buffer of a fixed pool, and its
 * buffer returns to the pool once the part is stored. A failed part fails the latch.
 */
class PartUploads {
  readonly #sink: PartSink;
  readonly #uploadId: string;
  #partSize: number;
  #maxBuffers: number;
  readonly #latch: FailureLatch;
  readonly #onProgress: ((storedBytes: number) => void) | undefined;
  readonly #inFlight = new Set<Promise<void>>();
  readonly #free: Buffer[] = [];
  readonly #parts: StoredPart[] = [];
  #allocated = 0;
  #partNumber = 0;
  #stored = 0;

  constructor(
    sink: PartSink,
    uploadId: string,
    settings: { partSize: number; maxBuffers: number; latch: FailureLatch; onProgress: ((storedBytes: number) => void) | undefined },
  ) {
    this.#sink = sink;
    this.#uploadId = uploadId;
    this.#partSize = settings.partSize;
    this.#maxBuffers = settings.maxBuffers;
    this.#latch = settings.latch;
    this.#onProgress = settings.onProgress;
  }

  /** The multipart upload's id. */
  get uploadId(): string {
    return this.#uploadId;
  }

  /** The size of the parts being filled now. */
  get partSize(): number {
    return this.#partSize;
  }

  /** Parts sent so far. */
  get sentParts(): number {
    return this.#partNumber;
  }

  /** Takes a buffer allocated outside the pool (the first part of an upload of unknown size) into it. */
  adopt(buffer: Buffer): void {
    if (buffer.length !== this.#partSize) throw new Error('An adopted buffer must have the part size');
    this.#allocated += 1;
  }

  /**
   * Moves to parts of `partSize` with a pool of `maxBuffers`: free buffers of another size are
   * dropped now, those still in flight when their part is stored.
   */
  resize(partSize: number, maxBuffers: number): void {
    this.#partSize = partSize;
    this.#maxBuffers = maxBuffers;
    const kept = this.#free.filter((buffer) => buffer.length === partSize);
    this.#allocated -= this.#free.length - kept.length;
    this.#free.splice(0, this.#free.length, ...kept);
  }

  /** A free buffer: a returned one, a new one while fewer than the pool's size exist, or the next one a part gives back. */
  async acquire(): Promise<Buffer> {
    for (;;) {
      this.#latch.throwIfFailed();
      const buffer = this.#free.pop();
      if (buffer !== undefined) return buffer;
      if (this.#allocated < this.#maxBuffers) {
        this.#allocated += 1;
        return Buffer.allocUnsafe(this.#partSize);
      }
      await Promise.race(this.#inFlight);
    }
  }

  /** Sends the first `length` bytes of `buffer` as the next part, without waiting for it. */
  send(buffer: Buffer, length: number): void {
    this.#partNumber += 1;
    const number = this.#partNumber;
    const task = (async () => {
      try {
        const etag = await this.#sink.uploadPart(
          this.#uploadId,
          number,
          length === buffer.length ? buffer : buffer.subarray(0, length),
          this.#latch.signal,
        );
        this.#parts.push({ PartNumber: number, ETag: etag });
        this.#stored += length;
        // A buffer of an earlier, smaller part size (or beyond a shrunk pool) leaves the pool.
        if (buffer.length === this.#partSize && this.#allocated <= this.#maxBuffers) this.#free.push(buffer);
        else this.#allocated -= 1;
        this.#onProgress?.(this.#stored);
      } catch (error) {
        this.#latch.fail(error);
      }
    })();
    this.#inFlight.add(task);
    void task.then(() => this.#inFlight.delete(task));
  }

  /** Waits until no part is in flight (parts never reject: a failure goes to the latch). */
  async settle(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
  }

  /** The stored parts, sorted by number, as CompleteMultipartUpload wants them. */
  storedParts(): StoredPart[] {
    return [...this.#parts].sort((a, b) => a.PartNumber - b.PartNumber);
  }
}

/** Reads the whole (small) body into one buffer of exactly `size` bytes. */
async function readWhole(reader: ChunkReader, latch: FailureLatch, key: string, size: number): Promise<Buffer> {
  const whole = Buffer.allocUnsafe(size);
  let filled = 0;
  for (let data = await reader.next(); data !== null; data = await reader.next()) {
    if (filled + data.length > size) throw sizeMismatch(key, size, filled + data.length, true);
    filled += data.copy(whole, filled);
  }
  latch.throwIfFailed();
  if (filled !== size) throw sizeMismatch(key, size, filled, false);
  return whole;
}

/** Copies the body into part buffers and sends each full one (and the last, shorter one). */
async function copyIntoParts(
  reader: ChunkReader,
  uploads: PartUploads,
  latch: FailureLatch,
  options: { key: string; size: number; partSize: number },
): Promise<void> {
  const { key, size, partSize } = options;
  let received = 0;
  let current: Buffer | undefined;
  let filled = 0;
  for (let data = await reader.next(); data !== null; data = await reader.next()) {
    received += data.length;
    if (received > size) throw sizeMismatch(key, size, received, true);
    let offset = 0;
    while (offset < data.length) {
      current ??= await uploads.acquire();
      const copied = data.copy(current, filled, offset);
      filled += copied;
      offset += copied;
      if (filled === partSize) {
        uploads.send(current, filled);
        current = undefined;
        filled = 0;
      }
    }
  }
  latch.throwIfFailed();
  if (received !== size) throw sizeMismatch(key, size, received, false);
  if (current !== undefined && filled > 0) uploads.send(current, filled);
}

/** What an upload of unknown size made of its body. */
type GrowingOutcome = { single: Buffer } | { uploads: PartUploads; size: number };

/**
 * Copies a body of unknown size into parts that grow ({@link growingPartSize}). The first part's
 * buffer is filled before anything is sent: a body that ends within it is returned whole (one
 * PutObject), and only a body that fills it starts the multipart upload (`start`).
 */
async function copyIntoGrowingParts(
  reader: ChunkReader,
  latch: FailureLatch,
  start: () => Promise<PartUploads>,
  options: { key: string; base: number; queueSize: number },
): Promise<GrowingOutcome> {
  const { key, base, queueSize } = options;
  let uploads: PartUploads | undefined;
  let current: Buffer | undefined = Buffer.allocUnsafe(base);
  let filled = 0;
  let received = 0;
  for (let data = await reader.next(); data !== null; data = await reader.next()) {
    received += data.length;
    let offset = 0;
    while (offset < data.length) {
      // A full buffer is sent only once more data comes: a body that ends with its first part is one PutObject.
      if (current !== undefined && filled === current.length) {
        if (uploads === undefined) {
          uploads = await start();
          uploads.adopt(current);
        }
        uploads.send(current, filled);
        current = undefined;
        filled = 0;
        const next = growingPartSize(uploads.sentParts + 1, base);
        if (next !== uploads.partSize) uploads.resize(next, growingBuffers(next, base, queueSize));
      }
      if (current === undefined) {
        // Only a sent part leaves no buffer, and the first one sent started the upload.
        const started = uploads as PartUploads;
        if (started.sentParts >= S3_MAX_PARTS) throw tooLargeForGrowingParts(key, base);
        current = await started.acquire();
      }
      const copied = data.copy(current, filled, offset);
      filled += copied;
      offset += copied;
    }
  }
  latch.throwIfFailed();
  if (uploads === undefined) return { single: (current as Buffer).subarray(0, filled) };
  if (current !== undefined && filled > 0) uploads.send(current, filled);
  return { uploads, size: received };
}

function tooLargeForGrowingParts(key: string, base: number): InstanceImagesError {
  const capacity = growingPartsCapacity(base);
  return new InstanceImagesError(
    'VALIDATION_FAILED',
    `The data for "${key}" is larger than ${capacity} bytes (${(capacity / 2 ** 30).toFixed(0)} GiB), the most S3's ${S3_MAX_PARTS} parts hold when the size is not known in advance; nothing was stored`,
    { fields: [{ path: 'size', message: 'is too large for S3 without a known size' }], details: { capacity } },
  );
}

/** Refuses a put before anything is read or sent: too many parts, or already cancelled. */
function checkBeforeStart(body: Readable, options: PartPutOptions): void {
  const { key, size, partSize, signal, mapError } = options;
  const partCount = size === undefined ? 0 : Math.ceil(size / partSize);
  if (partCount > S3_MAX_PARTS) {
    body.destroy();
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      `"${key}" would need ${partCount} parts of ${partSize} bytes; S3 allows at most ${S3_MAX_PARTS}`,
      {
        fields: [{ path: 'size', message: 'is too large for S3' }],
      },
    );
  }
  if (signal?.aborted) {
    body.destroy();
    throw mapError(abortError());
  }
}

/**
 * Uploads `body` (exactly `options.size` bytes, or as many as it has when the size is undefined)
 * through `sink`: one PutObject when it fits in one part, else a multipart upload with at most
 * `queueSize` parts in flight (parts growing when the size is unknown).
 *
 * Guarantees: nothing is stored unless the body has exactly the announced size (checked before
 * completing); any failure or cancel destroys the body, aborts the requests in flight and then the
 * multipart upload, and when even that abort fails the error's `details.incompleteUpload` names
 * the upload left behind.
 * @throws whatever `options.mapError` makes of the failure; VALIDATION_FAILED for a size mismatch
 * or an object that would need more than 10,000 parts (of unknown size: more than
 * {@link growingPartsCapacity}).
 */
export async function putInParts(body: Readable, sink: PartSink, options: PartPutOptions): Promise<{ size: number }> {
  const { key, size, partSize, queueSize, signal, onProgress, mapError } = options;
  checkBeforeStart(body, options);
  const latch = new FailureLatch(body);
  const onAbort = (): void => latch.fail(abortError());
  signal?.addEventListener('abort', onAbort, { once: true });

  const reader = new ChunkReader(body);
  let uploads: PartUploads | undefined;
  let uploadId: string | undefined;
  try {
    if (size === undefined) {
      const start = async (): Promise<PartUploads> => {
        uploadId = await sink.create();
        latch.throwIfFailed();
        uploads = new PartUploads(sink, uploadId, {
          partSize,
          // The first parts are of the base size: the whole queue, as with a known size.
          maxBuffers: queueSize,
          latch,
          onProgress,
        });
        return uploads;
      };
      const outcome = await copyIntoGrowingParts(reader, latch, start, { key, base: partSize, queueSize });
      if ('single' in outcome) {
        await sink.putObject(outcome.single, latch.signal);
        onProgress?.(outcome.single.length);
        return { size: outcome.single.length };
      }
      await outcome.uploads.settle();
      latch.throwIfFailed();
      await sink.complete(outcome.uploads.uploadId, outcome.uploads.storedParts());
      uploadId = undefined;
      return { size: outcome.size };
    }
    if (size <= partSize) {
      // One request with a Buffer body: cheaper than a multipart upload, and S3's minimum part size does not apply.
      await sink.putObject(await readWhole(reader, latch, key, size), latch.signal);
      onProgress?.(size);
      return { size };
    }
    uploadId = await sink.create();
    latch.throwIfFailed();
    uploads = new PartUploads(sink, uploadId, { partSize, maxBuffers: Math.min(queueSize, Math.ceil(size / partSize)), latch, onProgress });
    await copyIntoParts(reader, uploads, latch, { key, size, partSize });
    await uploads.settle();
    latch.throwIfFailed();
    await sink.complete(uploadId, uploads.storedParts());
    uploadId = undefined;
    return { size };
  } catch (error) {
    latch.fail(error);
    // Parts still being sent could land after an abort and keep the upload alive: wait for them.
    await uploads?.settle();
    const mapped = mapError(latch.error);
    if (uploadId !== undefined) {
      try {
        await sink.abort(uploadId);
      } catch {
        mapped.details.incompleteUpload = { key, id: uploadId };
      }
    }
    throw mapped;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
