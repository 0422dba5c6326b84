/**
 * The core wrapper around a storage driver. Drivers implement raw primitives; this wrapper owns,
 * once for all drivers: key normalization (before any I/O), the sha256 and size of what is written,
 * byte progress, retries of transient errors on idempotent operations, verification after put, and
 * operation events.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { InstanceImagesError, isInstanceImagesError, toInstanceImagesError, type ErrorCode } from '../errors';
import type { IncompleteUpload, PutOptions, StorageCapabilities, StorageDriver, StoredObject } from '../ports/storage-driver';
import type { StoragePath } from '../ports/hypervisor-driver';
import { pageSize } from '../util/cursor';
import { normalizeStorageKey, normalizeStoragePrefix } from './keys';

/** Byte progress of a put. */
export interface StorageProgress {
  /** The (normalized) key being written. */
  key: string;
  /** Bytes passed to the driver so far. */
  bytesDone: number;
  /** The announced total, when known. */
  bytesTotal: number | null;
}

/** An operation event of a wrapped storage (no secrets, no file contents). */
export type StorageOperationEvent =
  | { type: 'put.completed'; driver: string; key: string; size: number; sha256: string }
  | { type: 'put.failed'; driver: string; key: string; code: ErrorCode; message: string }
  | { type: 'delete.completed'; driver: string; key: string }
  | { type: 'retry'; driver: string; operation: string; key: string | null; attempt: number; code: ErrorCode; message: string };

/** How transient errors (STORAGE_UNAVAILABLE) are retried on idempotent operations. */
export interface StorageRetryPolicy {
  /** Total attempts including the first (default 3; 1 disables retries). */
  attempts: number;
  /** Delay before the first retry in ms, doubled for each further one (default 200). */
  baseDelayMs: number;
}

/** Options of {@link wrapStorageDriver}. */
export interface StorageDiskOptions {
  /** Receives operation events (completed/failed puts, deletes, retries). Must not throw. */
  onEvent?(event: StorageOperationEvent): void;
  /** Default progress listener for every put (a put's own `onProgress` wins). */
  onProgress?(progress: StorageProgress): void;
  /** Retry policy for idempotent operations. */
  retries?: Partial<StorageRetryPolicy>;
  /** Report progress at most once per this many bytes, plus the final count (default 1 MiB). */
  progressIntervalBytes?: number;
}

/** Options of {@link StorageDisk.put}. */
export interface DiskPutOptions extends PutOptions {
  /** Progress listener for this put. */
  onProgress?(progress: StorageProgress): void;
  /** When given, the written bytes must hash to this (hex); otherwise the object is removed and CHECKSUM_MISMATCH thrown. */
  expectedSha256?: string;
  /**
   * The sha256 (hex) of `body`, hashed by the caller over exactly the bytes the body yields, asked
   * for once the driver stored them (addition). When given, the bytes are not hashed a second time
   * (an import's source hashes them as they go by: one SHA-256 pass per byte instead of two); the
   * result's `sha256` is this. A function that answers null (the caller's hash is not complete) or
   * something that is not 64 hex digits fails the put with CHECKSUM_MISMATCH, the object removed.
   */
  bodySha256?: () => string | null;
}

/** Options of {@link StorageDisk.putBytes}. */
export interface DiskPutBytesOptions {
  /** When given, the bytes must hash to this (hex); otherwise nothing is stored and CHECKSUM_MISMATCH thrown. */
  expectedSha256?: string;
  /** Cancels the put (CANCELLED); nothing is stored. */
  signal?: AbortSignal;
}

/** What a put wrote. */
export interface DiskPutResult {
  /** The normalized key. */
  key: string;
  /** Bytes written (verified against the stored object's size). */
  size: number;
  /** Hex sha256 of the bytes written. */
  sha256: string;
}

/** A storage driver behind the core wrapper. Keys are validated and normalized before any I/O. */
export interface StorageDisk {
  /** The wrapped driver. */
  readonly driver: StorageDriver;
  /** The driver name. */
  readonly name: string;
  /** The driver's capabilities. */
  readonly capabilities: StorageCapabilities;
  /**
   * Streams `body` to `key` atomically, hashing it on the way, then verifies the stored size.
   * @throws VALIDATION_FAILED (bad key, or a body that does not match `size`), CANCELLED,
   *   STORAGE_FULL, STORAGE_UNAVAILABLE, CHECKSUM_MISMATCH.
   */
  put(key: string, body: Readable, options?: DiskPutOptions): Promise<DiskPutResult>;
  /**
   * Writes a small object held in memory atomically, without a stream: the driver's own
   * {@link StorageDriver.putBytes} where it has one, a put of the buffer otherwise. A digest the
   * storage checks itself ({@link StorageCapabilities.verifiesSha256}) is not computed again and the
   * object is not read back; otherwise the bytes are hashed before anything is written and the
   * stored size is verified after.
   * @throws VALIDATION_FAILED (bad key or digest), CANCELLED, STORAGE_FULL, STORAGE_UNAVAILABLE,
   *   CHECKSUM_MISMATCH (nothing stored).
   */
  putBytes(key: string, bytes: Buffer, options?: DiskPutBytesOptions): Promise<DiskPutResult>;
  /** Opens a read stream (retried while opening). @throws NOT_FOUND, VALIDATION_FAILED, STORAGE_UNAVAILABLE. */
  get(key: string, options?: { range?: { start: number; end?: number }; signal?: AbortSignal }): Promise<Readable>;
  /**
   * Reads the whole object into the start of `into` and returns a view of the bytes read, or `null`
   * when it does not exist: the driver's {@link StorageDriver.getBytes} where it has one (retried as
   * a whole), its stream copied into `into` otherwise.
   * @throws VALIDATION_FAILED (bad key, or an object longer than `into`), CANCELLED, STORAGE_UNAVAILABLE.
   */
  getBytes(key: string, into: Buffer, options?: { signal?: AbortSignal }): Promise<Buffer | null>;
  /** Metadata, or `null` when missing. */
  stat(key: string): Promise<StoredObject | null>;
  /** A page of objects under `prefix`, ordered by key. */
  list(options?: {
    prefix?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<{ items: StoredObject[]; nextCursor: string | null }>;
  /** Removes `key`; idempotent. */
  delete(key: string): Promise<void>;
  /** Free bytes, or `null` when unlimited/unknown. */
  freeSpace(): Promise<number | null>;
  /** Never throws. */
  health(): Promise<{ ok: boolean; message: string }>;
  /** Leftover temp files / multipart uploads. */
  listIncomplete(options?: { olderThan?: Date }): Promise<IncompleteUpload[]>;
  /** Removes one leftover; idempotent. */
  abortIncomplete(upload: IncompleteUpload): Promise<void>;
  /** The path of `key` on the bound hypervisor. @throws INVALID_STATE when the driver has no path access. */
  pathOf(key: string): string;
  /**
   * Makes the directory `key` would be written into, for a tool on the hypervisor that writes its
   * {@link StorageDisk.pathOf} path: the driver's {@link StorageDriver.prepareKey} where it has
   * one, otherwise a put (which makes directories with its checks) and a delete of the empty
   * marker `<key>.prepare`. Does nothing on a storage without paths.
   * @throws VALIDATION_FAILED (bad key), CANCELLED, STORAGE_UNAVAILABLE, STORAGE_FULL.
   */
  prepareKey(key: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * The path of `key` on the bound hypervisor with the storage root below which no symbolic link
   * may be followed, as hypervisor drivers take it. @throws INVALID_STATE like {@link StorageDisk.pathOf}.
   */
  storagePath(key: string): StoragePath;
  /** Releases the driver's clients/connections. */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Hashes and counts bytes on their way to the driver. */
class HashingCounter extends Transform {
  /** Null when the caller hashes the body itself ({@link DiskPutOptions.bodySha256}). */
  readonly hash: Hash | null;
  bytes = 0;
  private reported = 0;

  constructor(
    private readonly report: ((bytes: number) => void) | null,
    private readonly interval: number,
    hashing = true,
  ) {
    super();
    this.hash = hashing ? createHash('sha256') : null;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.hash?.update(chunk);
    this.bytes += chunk.length;
    if (this.report && this.bytes - this.reported >= this.interval) {
      this.reported = this.bytes;
      this.report(this.bytes);
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.report && this.reported !== this.bytes) this.report(this.bytes);
    this.reported = this.bytes;
    callback();
  }
}

function checkRange(range: { start: number; end?: number } | undefined): void {
  if (!range) return;
  const fields = [];
  if (!Number.isSafeInteger(range.start) || range.start < 0)
    fields.push({ path: 'range.start', message: 'must be a non-negative integer' });
  if (range.end !== undefined && (!Number.isSafeInteger(range.end) || range.end < range.start))
    fields.push({ path: 'range.end', message: 'must be an integer not below range.start' });
  if (fields.length > 0)
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      `The byte range is not valid: ${fields.map((f) => `${f.path} ${f.message}`).join('; ')}`,
      { fields },
    );
}

/** The parts of a wrapped driver that its operations share. */
interface DiskCore {
  driver: StorageDriver;
  emit(event: StorageOperationEvent): void;
  /** `error` as an InstanceImagesError, STORAGE_UNAVAILABLE when it is not one yet. */
  unavailable(error: unknown, what: string): InstanceImagesError;
  /** Runs an idempotent operation, retrying STORAGE_UNAVAILABLE with exponential backoff. */
  withRetries<T>(operation: string, key: string | null, run: () => Promise<T>): Promise<T>;
}

function createDiskCore(driver: StorageDriver, options: StorageDiskOptions): DiskCore {
  const policy: StorageRetryPolicy = { attempts: options.retries?.attempts ?? 3, baseDelayMs: options.retries?.baseDelayMs ?? 200 };
  const emit = (event: StorageOperationEvent) => {
    try {
      options.onEvent?.(event);
    } catch {
      // a listener's failure must not change the outcome of a storage operation
    }
  };
  const unavailable = (error: unknown, what: string) =>
    toInstanceImagesError(error, 'STORAGE_UNAVAILABLE', `The ${driver.name} storage failed to ${what}`);
  return {
    driver,
    emit,
    unavailable,
    async withRetries(operation, key, run) {
      for (let attempt = 1; ; attempt++) {
        try {
          return await run();
        } catch (caught) {
          const error = unavailable(caught, operation);
          // A storage that went silent (the driver timed it out: `details.timeout`) is not asked again:
          // each attempt would wait out the whole timeout once more.
          const timedOut = error.details.timeout !== undefined;
          if (error.code !== 'STORAGE_UNAVAILABLE' || timedOut || attempt >= policy.attempts) throw error;
          emit({ type: 'retry', driver: driver.name, operation, key, attempt, code: error.code, message: error.message });
          await sleep(policy.baseDelayMs * 2 ** (attempt - 1));
        }
      }
    },
  };
}

/** Refuses a put whose announced size is not a byte count, or that was cancelled before it started. */
function checkPutStart(key: string, body: Readable, putOptions: DiskPutOptions): void {
  if (putOptions.size !== undefined && (!Number.isSafeInteger(putOptions.size) || putOptions.size < 0)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The announced size must be a non-negative integer', {
      fields: [{ path: 'size', message: 'must be a non-negative integer' }],
    });
  }
  if (putOptions.signal?.aborted) {
    body.destroy();
    throw new InstanceImagesError('CANCELLED', `Writing ${key} was cancelled before it started`);
  }
}

/** Pipes the body through a hashing counter that reports progress; a failing body fails the counter. */
function hashBody(key: string, body: Readable, putOptions: DiskPutOptions, options: StorageDiskOptions): HashingCounter {
  const listener = putOptions.onProgress ?? options.onProgress;
  const total = putOptions.size ?? null;
  const counter = new HashingCounter(
    listener ? (bytes) => listener({ key, bytesDone: bytes, bytesTotal: total }) : null,
    options.progressIntervalBytes ?? 1024 * 1024,
    putOptions.bodySha256 === undefined,
  );
  // Forward a failing body into the driver's input so that the driver aborts its write.
  body.once('error', (error) => counter.destroy(error));
  counter.once('error', () => body.destroy());
  body.pipe(counter);
  return counter;
}

/**
 * Checks what the driver stored against what was sent (size, announced size, expected sha256,
 * and the stored object's size); on any mismatch the object is removed and the error thrown.
 */
async function verifyPut(
  core: DiskCore,
  key: string,
  written: { size: number },
  sent: { size: number; sha256: string },
  putOptions: DiskPutOptions,
): Promise<void> {
  const { driver } = core;
  const { size, sha256 } = sent;
  const discard = async (error: InstanceImagesError): Promise<never> => {
    await driver.delete(key).catch(() => undefined);
    throw error;
  };
  if (written.size !== size) {
    await discard(
      new InstanceImagesError(
        'CHECKSUM_MISMATCH',
        `The ${driver.name} storage reported ${written.size} bytes written for ${key}, but ${size} were sent`,
        { details: { key, sent: size, written: written.size } },
      ),
    );
  }
  if (putOptions.size !== undefined && putOptions.size !== size) {
    await discard(
      new InstanceImagesError('VALIDATION_FAILED', `The data for ${key} had ${size} bytes, but ${putOptions.size} were announced`, {
        fields: [{ path: 'size', message: `announced ${putOptions.size}, received ${size}` }],
      }),
    );
  }
  if (putOptions.expectedSha256 !== undefined && putOptions.expectedSha256.toLowerCase() !== sha256) {
    await discard(
      new InstanceImagesError('CHECKSUM_MISMATCH', `The data written to ${key} does not match the expected sha256`, {
        details: { key, expected: putOptions.expectedSha256, actual: sha256 },
      }),
    );
  }
  const stored = await core.withRetries('stat', key, () => driver.stat(key));
  if (!stored || stored.size !== size) {
    await discard(
      new InstanceImagesError(
        'CHECKSUM_MISMATCH',
        `Verification of ${key} failed: the ${driver.name} storage holds ${stored ? `${stored.size} bytes` : 'nothing'}, ${size} were written`,
        { details: { key, expected: size, stored: stored?.size ?? null } },
      ),
    );
  }
}

/** The sha256 of what was sent: hashed on the way, or the caller's ({@link DiskPutOptions.bodySha256}; checked, the object removed when it has none). */
async function sentSha256(core: DiskCore, key: string, counter: HashingCounter, putOptions: DiskPutOptions): Promise<string> {
  if (counter.hash) return counter.hash.digest('hex');
  const given = putOptions.bodySha256?.() ?? null;
  if (given !== null && /^[0-9a-f]{64}$/.test(given)) return given;
  await core.driver.delete(key).catch(() => undefined);
  throw new InstanceImagesError('CHECKSUM_MISMATCH', `The sha256 of the data written to ${key} is not known, so it cannot be verified`, {
    details: { key },
  });
}

/** The wrapped put: hash on the way, write, verify, emit. */
async function putVerified(
  core: DiskCore,
  options: StorageDiskOptions,
  rawKey: string,
  body: Readable,
  putOptions: DiskPutOptions,
): Promise<DiskPutResult> {
  const { driver } = core;
  const key = normalizeStorageKey(rawKey);
  checkPutStart(key, body, putOptions);
  const counter = hashBody(key, body, putOptions, options);
  try {
    const driverOptions: PutOptions = {};
    if (putOptions.size !== undefined) driverOptions.size = putOptions.size;
    if (putOptions.signal) driverOptions.signal = putOptions.signal;
    let written: { size: number };
    try {
      written = await driver.put(key, counter, driverOptions);
    } catch (caught) {
      if (putOptions.signal?.aborted) throw new InstanceImagesError('CANCELLED', `Writing ${key} was cancelled`, { cause: caught });
      throw core.unavailable(caught, `write ${key}`);
    }
    const sent = { size: counter.bytes, sha256: await sentSha256(core, key, counter, putOptions) };
    await verifyPut(core, key, written, sent, putOptions);
    core.emit({ type: 'put.completed', driver: driver.name, key, size: sent.size, sha256: sent.sha256 });
    return { key, ...sent };
  } catch (caught) {
    const error = core.unavailable(caught, `write ${key}`);
    if (!body.destroyed) body.destroy();
    core.emit({ type: 'put.failed', driver: driver.name, key, code: error.code, message: error.message });
    throw error;
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The wrapped putBytes (see {@link StorageDisk.putBytes}). */
async function putBytesVerified(
  core: DiskCore,
  options: StorageDiskOptions,
  rawKey: string,
  bytes: Buffer,
  putOptions: DiskPutBytesOptions,
): Promise<DiskPutResult> {
  const { driver } = core;
  const key = normalizeStorageKey(rawKey);
  const expected = putOptions.expectedSha256?.toLowerCase();
  const { signal } = putOptions;
  if (expected !== undefined && !SHA256_HEX.test(expected)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The expected sha256 must be 64 hexadecimal digits', {
      fields: [{ path: 'expectedSha256', message: 'must be 64 hexadecimal digits' }],
    });
  }
  if (!driver.putBytes) {
    const fallback: DiskPutOptions = {
      size: bytes.length,
      ...(signal ? { signal } : {}),
      ...(expected ? { expectedSha256: expected } : {}),
    };
    return putVerified(core, options, key, Readable.from([bytes]), fallback);
  }
  if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `Writing ${key} was cancelled before it started`);
  const storageChecks = expected !== undefined && driver.capabilities.verifiesSha256 === true;
  const sha256 = storageChecks ? expected : createHash('sha256').update(bytes).digest('hex');
  try {
    if (expected !== undefined && sha256 !== expected) {
      throw new InstanceImagesError('CHECKSUM_MISMATCH', `The data for ${key} does not match the expected sha256; nothing was written`, {
        details: { key, expected, actual: sha256 },
      });
    }
    let written: { size: number; sha256Verified: boolean };
    try {
      written = await driver.putBytes(key, bytes, { sha256, ...(signal ? { signal } : {}) });
    } catch (caught) {
      if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `Writing ${key} was cancelled`, { cause: caught });
      throw core.unavailable(caught, `write ${key}`);
    }
    if (!written.sha256Verified || written.size !== bytes.length)
      await verifyPut(core, key, written, { size: bytes.length, sha256 }, { size: bytes.length });
    options.onProgress?.({ key, bytesDone: bytes.length, bytesTotal: bytes.length });
    core.emit({ type: 'put.completed', driver: driver.name, key, size: bytes.length, sha256 });
    return { key, size: bytes.length, sha256 };
  } catch (caught) {
    const error = core.unavailable(caught, `write ${key}`);
    core.emit({ type: 'put.failed', driver: driver.name, key, code: error.code, message: error.message });
    throw error;
  }
}

/** VALIDATION_FAILED for an object longer than the buffer it is read into. */
function longerThan(key: string, limit: number): InstanceImagesError {
  return new InstanceImagesError('VALIDATION_FAILED', `The object ${key} is larger than the ${limit} bytes allowed for it`, {
    fields: [{ path: 'key', message: `holds more than ${limit} bytes` }],
  });
}

/** The wrapped getBytes (see {@link StorageDisk.getBytes}). */
async function getBytesInto(core: DiskCore, rawKey: string, into: Buffer, options: { signal?: AbortSignal }): Promise<Buffer | null> {
  const { driver } = core;
  const key = normalizeStorageKey(rawKey);
  const { signal } = options;
  const cancelled = (cause?: unknown) => new InstanceImagesError('CANCELLED', `Reading ${key} was cancelled`, { cause });
  if (signal?.aborted) throw cancelled();
  if (driver.getBytes) {
    const read = driver.getBytes.bind(driver);
    const length = await core.withRetries('read', key, () => read(key, into, signal ? { signal } : {}));
    if (length !== null && (!Number.isSafeInteger(length) || length < 0 || length > into.length))
      throw new InstanceImagesError('STORAGE_UNAVAILABLE', `The ${driver.name} storage reported ${String(length)} bytes read for ${key}`);
    return length === null ? null : into.subarray(0, length);
  }
  let stream: Readable;
  try {
    stream = await core.withRetries('read', key, () => driver.get(key, signal ? { signal } : {}));
  } catch (error) {
    if (isInstanceImagesError(error, 'NOT_FOUND')) return null;
    throw error;
  }
  let length = 0;
  try {
    for await (const part of stream) {
      const chunk = Buffer.isBuffer(part) ? part : Buffer.from(part as Uint8Array);
      if (length + chunk.length > into.length) throw longerThan(key, into.length);
      chunk.copy(into, length);
      length += chunk.length;
    }
  } catch (error) {
    if (signal?.aborted) throw cancelled(error);
    throw core.unavailable(error, `read ${key}`);
  } finally {
    if (!stream.destroyed) stream.destroy();
  }
  return into.subarray(0, length);
}

/**
 * The empty marker {@link StorageDisk.prepareKey} puts and deletes next to `key` on a driver
 * without its own `prepareKey`; callers that remove what a failed write left list it too.
 */
export function prepareMarkerKey(key: string): string {
  return `${key}.prepare`;
}

/** Wraps a driver with the core's key safety, checksums, progress, retries and events. */
export function wrapStorageDriver(driver: StorageDriver, options: StorageDiskOptions = {}): StorageDisk {
  const core = createDiskCore(driver, options);
  const { withRetries, emit } = core;

  const disk: StorageDisk = {
    driver,
    name: driver.name,
    capabilities: driver.capabilities,

    put: (rawKey, body, putOptions = {}) => putVerified(core, options, rawKey, body, putOptions),

    putBytes: (rawKey, bytes, putOptions = {}) => putBytesVerified(core, options, rawKey, bytes, putOptions),

    async get(rawKey, getOptions = {}) {
      const key = normalizeStorageKey(rawKey);
      checkRange(getOptions.range);
      return withRetries('read', key, () => driver.get(key, getOptions));
    },

    getBytes: (rawKey, into, getOptions = {}) => getBytesInto(core, rawKey, into, getOptions),

    async stat(rawKey) {
      const key = normalizeStorageKey(rawKey);
      return withRetries('stat', key, () => driver.stat(key));
    },

    async list(listOptions = {}) {
      const prefix = normalizeStoragePrefix(listOptions.prefix);
      const limit = pageSize(listOptions.limit);
      const cursor = listOptions.cursor ?? null;
      return withRetries('list', prefix || null, () => driver.list({ prefix, cursor, limit }));
    },

    async delete(rawKey) {
      const key = normalizeStorageKey(rawKey);
      await withRetries('delete', key, () => driver.delete(key));
      emit({ type: 'delete.completed', driver: driver.name, key });
    },

    freeSpace: () => withRetries('read free space', null, () => driver.freeSpace()),

    async health() {
      try {
        return await driver.health();
      } catch (error) {
        return { ok: false, message: isInstanceImagesError(error) || error instanceof Error ? error.message : String(error) };
      }
    },

    listIncomplete: (incompleteOptions = {}) =>
      withRetries('list incomplete uploads', null, () => driver.listIncomplete(incompleteOptions)),

    abortIncomplete: (upload) => withRetries('abort an incomplete upload', upload.key, () => driver.abortIncomplete(upload)),

    pathOf(rawKey) {
      const key = normalizeStorageKey(rawKey);
      if (!driver.capabilities.pathAccess || !driver.pathOf) {
        throw new InstanceImagesError('INVALID_STATE', `The ${driver.name} storage has no file paths; stream its objects instead`);
      }
      return driver.pathOf(key);
    },

    async prepareKey(rawKey, prepareOptions = {}) {
      const key = normalizeStorageKey(rawKey);
      if (!driver.capabilities.pathAccess) return;
      if (driver.prepareKey) {
        const prepare = driver.prepareKey.bind(driver);
        await withRetries('prepare', key, () => prepare(key, prepareOptions));
        return;
      }
      const marker = prepareMarkerKey(key);
      await disk.put(marker, Readable.from([Buffer.alloc(0)]), { ...prepareOptions, size: 0 });
      await disk.delete(marker);
    },

    storagePath(key) {
      const path = disk.pathOf(key);
      const root = driver.pathRoot?.();
      return root === undefined ? { kind: 'path', path } : { kind: 'path', path, root };
    },

    async close() {
      await driver.close?.();
    },
  };
  return disk;
}
