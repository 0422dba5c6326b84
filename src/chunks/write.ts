/**
 * Storing a capture's chunks (the writer of the GC protocol, W1–W5): dedup by digest, zero chunks
 * never stored, unchanged chunks taken from the base image, bounded parallel uploads with
 * backpressure, and the manifest written last.
 * @module
 */
import { createHash } from 'node:crypto';
import { InstanceImagesError, toInstanceImagesError, validationFailed } from '../errors';
import type { CapturedChunk, ChunkSourceInfo } from '../ports/hypervisor-driver';
import { codecOfStoredSize, encodeChunk } from './codec';
import { followSignal, putBuffer, throwIfAborted, type ChunkContext } from './context';
import { readManifestAt } from './catalog';
import { isZeroRange } from '../util/zero';
import { checkLeaseId, checkManifestKey, chunkKey } from './keys';
import { COVER_READ_BOUND_MS, ChunkLease, readSweepState, waitForSweep, type SweepState } from './lease';
import {
  CHUNK_MANIFEST_FORMAT,
  ChunkManifestSourceSchema,
  SHA256_PATTERN,
  chunkCount,
  chunkLength,
  isValidChunkSize,
  manifestDigest,
  serializeManifest,
  type ChunkCodec,
  type ChunkManifest,
  type ManifestChunk,
} from './manifest';

/** Options of {@link ChunkStore.writeImage}. */
export interface WriteImageOptions {
  /** The lease this capture holds until commit/abandon (`[A-Za-z0-9._-]`, e.g. the task id). */
  leaseId: string;
  /**
   * The image unchanged chunks come from; required when `info.incrementalSince` is set. Also useful
   * for a full read of the same disk (the dedup-only path): its chunks are known stored.
   */
  base?: ChunkManifest | null;
  /**
   * The key `base` was read from (addition). When given, the base's chunks are proven present by one
   * read of that manifest after the lease is written (W3b) instead of a `stat` per chunk; when the
   * manifest is gone or changed by then, each chunk is checked as without it.
   */
  baseKey?: string | null;
  /** Recorded in the manifest. */
  source?: ChunkManifest['source'];
  signal?: AbortSignal;
  /** Bytes of the disk handled, of the disk in all, and bytes uploaded. */
  onProgress?: (p: { bytesDone: number; bytesTotal: number; uploadedBytes: number }) => void;
}

/** Options of {@link PendingImage.commit}. */
export interface CommitOptions {
  /**
   * Resolve once the manifest is stored (W4), deleting the lease (W5) in the background; await
   * {@link PendingImage.settled} for it. A capture marks its image available meanwhile: the lease
   * only protects chunks the stored manifest already names. @default false (the lease is deleted
   * before `commit` resolves)
   */
  releaseLater?: boolean;
}

/** A stored but not yet committed image. */
export interface PendingImage {
  manifest: ChunkManifest;
  /** Bytes this run uploaded (as stored, so compressed where zstd was used). */
  uploadedBytes: number;
  /** Non-zero chunk entries of the image that this run did not upload (found stored, repeated, or unchanged). */
  reusedChunks: number;
  /** Chunk objects this run uploaded. */
  uploadedChunks: number;
  /**
   * Writes the manifest at `key` atomically (last), then drops the lease. `key` must end in
   * `.manifest.json`. @throws VALIDATION_FAILED (key), STORAGE_UNAVAILABLE (retryable: the lease
   * lapsed, or the storage failed), INVALID_STATE (already committed or abandoned).
   */
  commit(key: string, options?: CommitOptions): Promise<void>;
  /** Drops the lease (the chunks become collectable if nothing else names them). */
  abandon(): Promise<void>;
  /**
   * Resolves once the lease is deleted after a commit with `releaseLater` (at once otherwise). Never
   * rejects: a lease that could not be deleted is logged and expires on its own.
   */
  settled(): Promise<void>;
}

/**
 * A capture's write begun before its chunks exist ({@link ChunkStore.prepareImage}): the lease is
 * being written and the base proven while the hypervisor starts the job.
 */
export interface PreparedImage {
  /**
   * Stores the chunks, as {@link ChunkStore.writeImage} does with the options given to
   * `prepareImage`. Once only (INVALID_STATE after). On failure the lease is dropped.
   */
  write(chunks: AsyncIterable<CapturedChunk>, info: ChunkSourceInfo): Promise<PendingImage>;
  /**
   * Drops the lease of a preparation whose `write` was never called or failed; a no-op once `write`
   * handed over its pending image (abandon that instead).
   */
  abandon(): Promise<void>;
}

type StoredChunk = { storedBytes: number; codec: ChunkCodec };

/** Presence checks (a `stat` each) of unchanged chunks allowed in flight per upload slot. */
const CHECKS_PER_SLOT = 8;

/**
 * How long a failed write waits for its uploads to settle and its lease to be dropped before it
 * throws. On a storage that is down those retry for a long time; the failure is known already, and
 * it must reach the task at once. The clean-up goes on in the background, and a lease it could not
 * drop expires on its own (the chunks it covered are collected later).
 */
const FAILED_CLEANUP_WAIT_MS = 2_000;

/** Runs `cleanUp`, waiting for it at most `ms` (it goes on in the background after that, its failure logged). */
async function cleanUpWithin(ctx: ChunkContext, ms: number, cleanUp: () => Promise<void>): Promise<void> {
  const done = cleanUp().catch((error: unknown) =>
    ctx.logger.warn('Cleaning up after a failed chunk write failed', { error: String(error) }),
  );
  const deadline = new AbortController();
  await Promise.race([done, ctx.sleep(ms, deadline.signal).catch(() => undefined)]);
  deadline.abort();
}
type DataChunk = { index: number; sha256: string; bytes: Buffer; release: (() => void) | undefined };

/** A data chunk's wait for a cover round (below). */
type CoverRequest = {
  promise: Promise<SweepState>;
  stored: boolean;
  resolve: (state: SweepState) => void;
  reject: (error: unknown) => void;
};

/**
 * The lease's cover rounds of a capture: each round writes the digests added before it began as a
 * new lease part (W1) and reads the sweep marker once beside it (Wc; again after the part when the
 * part took longer than {@link COVER_READ_BOUND_MS}). A data chunk is stored (W2) as soon
 * as it comes and asks for a round at the same time; the two run side by side. A round begins when
 * `parallel` chunks wait for one, when a chunk that waits is stored already while the source waits
 * for an upload slot (the chunk holds its slot only for the cover then), for the first chunk of the
 * capture, and once the source ended; so a round usually covers `parallel` chunks (half the
 * requests of a round per stored chunk), and no upload ever waits for one. The timing of rounds is
 * not part of the protocol's safety: each covers the digests added before it began. Rounds do not
 * wait for each other: each writes its own part, so the round of the last chunks starts as soon as
 * they come, not after the round before it.
 */
class CoverRounds {
  #waiting: CoverRequest[] = [];
  #first = true;
  #finishing = false;
  #sourceWaits = false;

  constructor(
    readonly ctx: ChunkContext,
    readonly lease: ChunkLease,
    readonly threshold: number,
    readonly onRead: (state: SweepState) => void,
    readonly signal: AbortSignal | undefined,
  ) {}

  /** A round that begins after this call (so its lease write names every digest added so far). */
  request(): CoverRequest {
    let resolve!: (state: SweepState) => void;
    let reject!: (error: unknown) => void;
    const promise = new Promise<SweepState>((res, rej) => ((resolve = res), (reject = rej)));
    promise.catch(() => undefined); // awaited by its chunk once stored; a failed round must not be unhandled meanwhile
    const request: CoverRequest = { promise, stored: false, resolve, reject };
    this.#waiting.push(request);
    this.#beginIfDue();
    return request;
  }

  /** The chunk of `request` is stored: it waits for its round alone now. */
  stored(request: CoverRequest): void {
    request.stored = true;
    this.#beginIfDue();
  }

  /** The source ended: every chunk still waiting is covered at once. */
  finishing(): void {
    this.#finishing = true;
    this.#beginIfDue();
  }

  /** The write failed: the chunks still waiting get no round (their stores end, and the lease is dropped). */
  fail(error: unknown): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const request of waiting) request.reject(error);
  }

  /** Whether the source waits for an upload slot: a stored chunk then holds one only for its cover. */
  sourceWaits(waits: boolean): void {
    this.#sourceWaits = waits;
    if (waits) this.#beginIfDue();
  }

  #beginIfDue(): void {
    const waiting = this.#waiting;
    if (waiting.length === 0) return;
    const due =
      this.#first ||
      this.#finishing ||
      waiting.length >= this.threshold ||
      (this.#sourceWaits && waiting.some((request) => request.stored));
    if (!due) return;
    this.#first = false;
    this.#waiting = [];
    void (async () => {
      try {
        // Wc is sent beside W1 and counts when W1 was stored within COVER_READ_BOUND_MS of sending
        // it (a collection that began after the read waits longer than that before it lists leases);
        // otherwise the marker is read again, after W1.
        const sentAt = this.ctx.elapsed();
        const beside = readSweepState(this.ctx, this.signal); // Wc
        beside.catch(() => undefined); // awaited below, after W1
        await this.lease.write(); // W1
        let state = await beside;
        if (this.ctx.elapsed() - sentAt > COVER_READ_BOUND_MS) {
          this.ctx.logger.debug('A lease part took longer than a cover round may wait; the sweep marker is read again', {
            lease: this.lease.key,
          });
          state = await readSweepState(this.ctx, this.signal); // Wc after W1
        }
        this.onRead(state);
        for (const request of waiting) request.resolve(state);
      } catch (error) {
        for (const request of waiting) request.reject(error);
      }
    })();
  }
}

function sourceBroke(message: string, details: Record<string, unknown>): InstanceImagesError {
  return new InstanceImagesError('CAPTURE_FAILED', `The chunk source broke its contract: ${message}`, { details });
}

/**
 * W3b: the base's chunks are present when its manifest is still stored, unchanged, after the lease
 * naming them was covered: a stored manifest names only present chunks, and from the cover on no
 * collection can delete them. Returns them as stored; null (each is checked then) when it is not so.
 */
async function proveBase(
  ctx: ChunkContext,
  base: ChunkManifest | null,
  options: WriteImageOptions,
): Promise<Map<string, StoredChunk> | null> {
  if (!base || options.baseKey == null) return null;
  const stored = await readManifestAt(ctx, options.baseKey, options.signal).catch(() => null);
  if (stored?.imageSha256 !== base.imageSha256) {
    ctx.logger.info('The base manifest of a capture is gone or changed; its chunks are checked one by one', {
      key: options.baseKey,
    });
    return null;
  }
  const proven = new Map<string, StoredChunk>();
  for (const entry of base.chunks) if (entry !== null) proven.set(entry.sha256, { storedBytes: entry.storedBytes, codec: entry.codec });
  return proven;
}

/** One run of writeImage: what is stored, in flight and waiting. */
class ImageWriter {
  readonly total: number;
  /** Per chunk index: its digest, or null for a zero chunk. */
  readonly digests: (string | null)[] = [];
  /** Digests known stored in this run, with how. */
  readonly stored = new Map<string, StoredChunk>();
  /** Digests being stored or checked now. */
  readonly scheduled = new Set<string>();
  readonly inflight = new Set<Promise<void>>();
  /** The presence checks among `inflight` (unchanged chunks: they hold no bytes). */
  readonly checks = new Set<Promise<void>>();
  /**
   * The newest collection's id as of the latest sweep-marker read that found none running (the
   * preparation's Wm, then each cover round's): the baseline a data chunk's store (W2) is checked
   * against once its lease is written.
   */
  sweepId: string | null = null;
  readonly rounds: CoverRounds;
  failure: InstanceImagesError | null = null;
  uploadedBytes = 0;
  uploadedChunks = 0;
  bytesDone = 0;

  constructor(
    readonly ctx: ChunkContext,
    readonly info: ChunkSourceInfo,
    readonly base: ChunkManifest | null,
    readonly lease: ChunkLease,
    readonly options: WriteImageOptions,
  ) {
    this.total = chunkCount(info.virtualSizeBytes, info.chunkSizeBytes);
    const onRead = (state: SweepState) => {
      if (!state.running) this.sweepId = state.gcId;
    };
    this.rounds = new CoverRounds(ctx, lease, ctx.parallel, onRead, options.signal);
  }

  /** Takes one chunk from the source; returns when there is room for the next. */
  async take(chunk: CapturedChunk): Promise<void> {
    const { info } = this;
    const index = this.digests.length;
    const length = index < this.total ? chunkLength(info.virtualSizeBytes, info.chunkSizeBytes, index) : 0;
    if (chunk.index !== index || chunk.offset !== index * info.chunkSizeBytes || chunk.length !== length || index >= this.total) {
      throw sourceBroke(`expected chunk ${index} of ${this.total} at offset ${index * info.chunkSizeBytes} with ${length} bytes`, {
        index: chunk.index,
        offset: chunk.offset,
        length: chunk.length,
      });
    }
    if (chunk.kind === 'zero') this.digests.push(null);
    else if (chunk.kind === 'unchanged') this.takeUnchanged(index, length);
    else this.takeData(index, length, chunk.bytes, chunk.sha256, chunk.release?.bind(chunk));
    this.bytesDone += length;
    this.report();
    await this.makeRoom();
  }

  takeUnchanged(index: number, length: number): void {
    const { base } = this;
    if (!base || this.info.incrementalSince === null)
      throw sourceBroke(`chunk ${index} is unchanged, but the read is not incremental`, { index });
    const entry = base.chunks[index];
    if (entry === undefined || chunkLength(base.virtualSizeBytes, base.chunkSizeBytes, index) !== length) {
      throw new InstanceImagesError(
        'INVALID_STATE',
        `Chunk ${index} is unchanged, but the base image has no chunk of ${length} bytes there (the disk was resized); capture it fully`,
        { details: { index } },
      );
    }
    this.digests.push(entry?.sha256 ?? null);
    if (entry === null || this.stored.has(entry.sha256) || this.scheduled.has(entry.sha256)) return;
    this.start(entry.sha256, () => this.checkPresent(entry.sha256, length, index), true);
  }

  /** Takes a data chunk; its bytes go back to the source (`release`) as soon as they are not needed. */
  takeData(index: number, length: number, bytes: Buffer, sha256: string, release: (() => void) | undefined): void {
    if (!SHA256_PATTERN.test(sha256) || bytes.length !== length)
      throw sourceBroke(`chunk ${index} has ${bytes.length} bytes and digest ${JSON.stringify(sha256)}`, { index });
    if (isZeroRange(bytes)) {
      this.digests.push(null);
      release?.();
      return;
    }
    this.digests.push(sha256);
    if (this.stored.has(sha256) || this.scheduled.has(sha256)) {
      release?.();
      return;
    }
    this.lease.add([sha256]);
    const chunk: DataChunk = { index, sha256, bytes, release };
    this.start(sha256, () => this.storeData(chunk));
  }

  /**
   * A data chunk: stored (W2) at once while a cover round writes the lease naming it (W1) and reads
   * the sweep marker (Wc). The chunk counts as stored only when that read finds no collection
   * running and the same newest collection as the read before its W2 (`sweepId`): no collection
   * started between the two, and any later one reads the lease. Otherwise one may have deleted it
   * before reading the lease: the chunk is checked again once that collection is over (Wm, then W2
   * as in a reader's order), and uploaded again from the bytes still held when it is gone. The
   * bytes go back to the source only then.
   */
  async storeData(chunk: DataChunk): Promise<void> {
    const baseline = this.sweepId;
    const cover = this.rounds.request();
    await this.storeChunk(chunk, this.info.incrementalSince === null); // W2
    this.rounds.stored(cover);
    const state = await cover.promise; // W1, Wc
    if (state.running || state.gcId !== baseline) {
      this.ctx.logger.info('A chunk garbage collection started while a capture stored a chunk; the chunk is checked again', {
        gcId: state.gcId,
        chunk: chunk.sha256,
      });
      const settled = await waitForSweep(this.ctx, this.options.signal); // Wm, after the lease named the chunk
      if (!settled.running) this.sweepId = settled.gcId;
      await this.storeChunk(chunk, true); // W2 again
    }
    // Stored and covered: the bytes are no longer needed. A failed put or round keeps them, since
    // a request may still hold them; they are collected then.
    chunk.release?.();
  }

  /**
   * Backpressure: at most `parallel` data chunks are stored or wait for their cover round besides
   * the one the source is reading. Presence checks of unchanged chunks hold no bytes and are counted
   * apart, {@link CHECKS_PER_SLOT} per slot: an incremental recapture without a provable base checks
   * every chunk of it and would otherwise wait on them one `parallel` batch at a time.
   */
  async makeRoom(): Promise<void> {
    const { parallel } = this.ctx;
    while (this.checks.size >= CHECKS_PER_SLOT * parallel) {
      this.throwIfFailed();
      await Promise.race(this.checks);
    }
    while (this.held() >= parallel) {
      this.throwIfFailed();
      this.rounds.sourceWaits(true);
      await Promise.race(this.inflight);
    }
    this.rounds.sourceWaits(false);
    this.throwIfFailed();
  }

  /** Data chunks held: being stored or waiting for their cover. */
  held(): number {
    return this.inflight.size - this.checks.size;
  }

  start(sha256: string, task: () => Promise<void>, check = false): void {
    this.scheduled.add(sha256);
    const run: Promise<void> = task()
      .catch((error: unknown) => {
        this.failure ??= toInstanceImagesError(error, 'STORAGE_UNAVAILABLE', `Storing chunk ${sha256} failed`);
      })
      .finally(() => {
        this.inflight.delete(run);
        this.checks.delete(run);
        this.scheduled.delete(sha256);
      });
    this.inflight.add(run);
    if (check) this.checks.add(run);
  }

  /**
   * W2 for a data chunk: stat (when `check`), and upload when absent (or damaged beyond repair by
   * size). In an incremental read every data chunk changed since the checkpoint, so it is almost
   * always new: it is put at once (a put of a chunk that exists writes the same bytes under the same
   * name), which saves a round trip per changed chunk where a rare duplicate costs one chunk's upload.
   */
  async storeChunk(chunk: DataChunk, check: boolean): Promise<void> {
    const { ctx } = this;
    const key = chunkKey(ctx.scope, chunk.sha256);
    const length = chunk.bytes.length;
    const existing = check ? await ctx.disk.stat(key) : null;
    if (existing && existing.size > 0 && existing.size <= length) {
      this.stored.set(chunk.sha256, { storedBytes: existing.size, codec: codecOfStoredSize(existing.size, length) });
      return;
    }
    throwIfAborted(this.options.signal, 'The capture');
    const encoded = await encodeChunk(chunk.bytes, ctx.codec);
    if (encoded.codec !== 'none' && createHash('sha256').update(chunk.bytes).digest('hex') !== chunk.sha256)
      throw sourceBroke(`chunk ${chunk.index}'s bytes do not hash to its digest`, { index: chunk.index });
    const signal = this.options.signal;
    // Uncompressed, the chunk's digest is the stored object's: a storage that checks digests (S3) is
    // given it, and the bytes are not hashed again nor read back.
    await ctx.disk.putBytes(key, encoded.stored, {
      ...(encoded.codec === 'none' ? { expectedSha256: chunk.sha256 } : {}),
      ...(signal ? { signal } : {}),
    });
    this.stored.set(chunk.sha256, { storedBytes: encoded.stored.length, codec: encoded.codec });
    this.uploadedBytes += encoded.stored.length;
    this.uploadedChunks += 1;
    this.report();
  }

  /** W2 for an unchanged chunk: it must still be stored. */
  async checkPresent(sha256: string, length: number, index: number): Promise<void> {
    const key = chunkKey(this.ctx.scope, sha256);
    const existing = await this.ctx.disk.stat(key);
    if (!existing || existing.size === 0 || existing.size > length) {
      throw new InstanceImagesError(
        'NOT_FOUND',
        `Chunk ${index} of the base image (${key}) is missing from the storage; capture the disk fully`,
        {
          details: { key, sha256, index },
        },
      );
    }
    this.stored.set(sha256, { storedBytes: existing.size, codec: codecOfStoredSize(existing.size, length) });
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  report(): void {
    this.options.onProgress?.({ bytesDone: this.bytesDone, bytesTotal: this.info.virtualSizeBytes, uploadedBytes: this.uploadedBytes });
  }

  /** Stores what still waits and waits for everything in flight. */
  async finish(): Promise<void> {
    if (this.digests.length !== this.total)
      throw sourceBroke(`it ended after ${this.digests.length} of ${this.total} chunks`, {
        chunks: this.digests.length,
        expected: this.total,
      });
    this.rounds.finishing();
    while (this.inflight.size > 0) await Promise.race(this.inflight);
    this.throwIfFailed();
    this.lease.assertHeld();
  }

  manifest(): ChunkManifest {
    const chunks: ManifestChunk[] = this.digests.map((sha256) => {
      if (sha256 === null) return null;
      const stored = this.stored.get(sha256);
      if (!stored) throw new InstanceImagesError('INVALID_STATE', `Chunk ${sha256} was never stored`);
      return { sha256, ...stored };
    });
    const body = {
      format: CHUNK_MANIFEST_FORMAT,
      virtualSizeBytes: this.info.virtualSizeBytes,
      chunkSizeBytes: this.info.chunkSizeBytes,
      scope: this.ctx.scope,
      chunks,
    } as const;
    return { ...body, imageSha256: manifestDigest(body), source: this.options.source ?? null, createdAt: this.ctx.now().toISOString() };
  }
}

/** The checks of the options alone, before anything is written. @returns the base. */
function checkPrepareInput(ctx: ChunkContext, options: WriteImageOptions): ChunkManifest | null {
  checkLeaseId(options.leaseId);
  const fields = [];
  const base = options.base ?? null;
  if (base !== null && JSON.stringify(base.scope) !== JSON.stringify(ctx.scope))
    fields.push({ path: 'base.scope', message: "must be the store's scope" });
  if (options.baseKey != null) {
    if (base === null) fields.push({ path: 'baseKey', message: 'needs base (the manifest read from it)' });
    try {
      checkManifestKey(options.baseKey);
    } catch {
      fields.push({ path: 'baseKey', message: 'must be a manifest key (ending in .manifest.json)' });
    }
  }
  if (options.source != null && !ChunkManifestSourceSchema.safeParse(options.source).success)
    fields.push({
      path: 'source',
      message: 'must be { hypervisorId, domainName, checkpoint } (1–200 characters each, no control characters)',
    });
  if (fields.length > 0) throw validationFailed(fields, 'The chunked capture');
  return base;
}

/** The checks of the source's info against the options. */
function checkSourceInfo(info: ChunkSourceInfo, base: ChunkManifest | null): void {
  const fields = [];
  if (!Number.isSafeInteger(info.virtualSizeBytes) || info.virtualSizeBytes < 0)
    fields.push({ path: 'info.virtualSizeBytes', message: 'must be a non-negative integer' });
  if (!isValidChunkSize(info.chunkSizeBytes))
    fields.push({ path: 'info.chunkSizeBytes', message: 'must be a power of two from 64 KiB to 64 MiB' });
  if (info.incrementalSince !== null && base === null)
    fields.push({ path: 'base', message: 'is required for an incremental read (info.incrementalSince is set)' });
  if (base !== null && base.chunkSizeBytes !== info.chunkSizeBytes)
    fields.push({ path: 'base.chunkSizeBytes', message: `must be ${info.chunkSizeBytes}, as the capture's` });
  if (fields.length > 0) throw validationFailed(fields, 'The chunked capture');
}

/** The writer of {@link ChunkStore.writeImage}. */
export async function writeImage(
  ctx: ChunkContext,
  chunks: AsyncIterable<CapturedChunk>,
  info: ChunkSourceInfo,
  options: WriteImageOptions,
): Promise<PendingImage> {
  // The options are checked before the info, and before anything is written.
  checkSourceInfo(info, checkPrepareInput(ctx, options));
  return prepareImage(ctx, options).write(chunks, info);
}

/**
 * {@link ChunkStore.prepareImage}: checks the options, then writes the lease (W1, Wm) and proves the
 * base (W3b) in the background; `write` waits for both before it takes the first chunk.
 */
export function prepareImage(ctx: ChunkContext, callerOptions: WriteImageOptions): PreparedImage {
  const base = checkPrepareInput(ctx, callerOptions);
  const linked = callerOptions.signal ? followSignal(callerOptions.signal, ctx.parallel) : null;
  const options: WriteImageOptions = { ...callerOptions, ...(linked ? { signal: linked.controller.signal } : {}) };
  const lease = new ChunkLease(ctx, options.leaseId, ctx.scope);
  if (base) lease.add(base.chunks.flatMap((chunk) => (chunk ? [chunk.sha256] : [])));
  lease.startRefreshing();
  const ready = (async () => {
    const sweep = await lease.cover(options.signal); // W1, Wm
    return { sweep, proven: await proveBase(ctx, base, options) }; // W3b
  })();
  ready.catch(() => undefined);
  let state: 'prepared' | 'writing' | 'failed' | 'handed over' | 'abandoned' = 'prepared';
  let writing: Promise<unknown> = Promise.resolve();
  const write = async (chunks: AsyncIterable<CapturedChunk>, info: ChunkSourceInfo): Promise<PendingImage> => {
    let writer: ImageWriter | null = null;
    try {
      checkSourceInfo(info, base);
      writer = new ImageWriter(ctx, info, base, lease, options);
      const { sweep, proven } = await ready;
      writer.sweepId = sweep.gcId;
      if (proven) for (const [digest, stored] of proven) writer.stored.set(digest, stored);
      for await (const chunk of chunks) {
        throwIfAborted(options.signal, 'The capture');
        await writer.take(chunk);
      }
      throwIfAborted(options.signal, 'The capture');
      await writer.finish();
    } catch (error) {
      state = 'failed';
      const failure = toInstanceImagesError(error, 'CAPTURE_FAILED', 'Storing the chunks of the capture failed');
      if (writer) {
        writer.failure ??= failure;
        writer.rounds.fail(writer.failure);
      }
      const inflight = writer?.inflight ?? new Set<Promise<void>>();
      await cleanUpWithin(ctx, FAILED_CLEANUP_WAIT_MS, async () => {
        while (inflight.size > 0) await Promise.allSettled([...inflight]);
        await ready.catch(() => undefined);
        await lease.release();
      });
      linked?.detach();
      throw failure;
    }
    state = 'handed over';
    linked?.detach();
    return pendingImage(ctx, writer.manifest(), lease, writer);
  };
  return {
    write(chunks, info) {
      if (state !== 'prepared') return Promise.reject(new InstanceImagesError('INVALID_STATE', `This chunked write was already ${state}`));
      state = 'writing';
      const written = write(chunks, info);
      writing = written.catch(() => undefined);
      return written;
    },
    async abandon() {
      await writing;
      if (state === 'handed over' || state === 'abandoned') return;
      state = 'abandoned';
      await ready.catch(() => undefined);
      linked?.detach();
      await lease.release();
    },
  };
}

function pendingImage(ctx: ChunkContext, manifest: ChunkManifest, lease: ChunkLease, writer: ImageWriter): PendingImage {
  let state: 'pending' | 'committing' | 'committed' | 'abandoned' = 'pending';
  let releasing: Promise<void> = Promise.resolve();
  const nonZero = manifest.chunks.filter((chunk) => chunk !== null).length;
  return {
    manifest,
    uploadedBytes: writer.uploadedBytes,
    uploadedChunks: writer.uploadedChunks,
    reusedChunks: nonZero - writer.uploadedChunks,
    async commit(rawKey, options = {}) {
      const key = checkManifestKey(rawKey);
      if (!key.startsWith(ctx.manifestPrefix)) {
        throw new InstanceImagesError(
          'VALIDATION_FAILED',
          `A chunk manifest key must lie below "${ctx.manifestPrefix}", where this store looks for manifests`,
          {
            fields: [{ path: 'key', message: `must start with ${ctx.manifestPrefix}` }],
          },
        );
      }
      if (state !== 'pending')
        throw new InstanceImagesError(
          'INVALID_STATE',
          `This chunked image was already ${state === 'committing' ? 'being committed' : state}`,
        );
      state = 'committing';
      try {
        await lease.refreshIfDue();
        lease.assertHeld();
        await putBuffer(ctx, key, serializeManifest(manifest)); // W4
        try {
          lease.assertHeld();
        } catch (error) {
          await ctx.disk.delete(key).catch(() => undefined);
          throw error;
        }
      } catch (error) {
        state = 'pending';
        throw error;
      }
      state = 'committed';
      releasing = lease.release(); // W5 (never rejects)
      if (options.releaseLater !== true) await releasing;
    },
    async abandon() {
      if (state === 'committed' || state === 'abandoned') return;
      state = 'abandoned';
      await lease.release();
    },
    settled: () => releasing,
  };
}
