/**
 * Fixed-size chunks of an NBD export, in order, for content-addressed storage: block status says
 * which chunks hold data (only those are read), which read as zeroes, and — with a dirty bitmap —
 * which have not changed since the bitmap was started. Data chunks are hashed (SHA-256) as soon as
 * they arrive. A bounded number of chunks is read ahead; a slow consumer slows the reads.
 * @module
 */
import { createHash } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { InstanceImagesError } from '../../src/errors';
import { sharedBufferPool, type BufferPool } from '../../src/util/buffer-pool';
import { isZeroRange } from '../../src/util/zero';
import { BASE_ALLOCATION, type NbdClient, type NbdExtent } from './types';
import { NBD_STATE_DIRTY, NBD_STATE_ZERO } from './protocol';

/** The default chunk size: 4 MiB, as Proxmox Backup Server uses for VM images. */
export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;

/**
 * The default `primeBytes` of {@link readNbdChunks}: 16 MiB. glibc raises its dynamic mmap
 * threshold to a freed mapping's size only up to 32 MiB, and the reads in flight (8 MiB with four
 * connections) must stay below the trim threshold it sets (twice that).
 */
export const DEFAULT_PRIME_BYTES = 16 * 1024 * 1024;

/** Fields every chunk has. */
export interface ChunkPosition {
  /** Position in the export, counting from 0 (`offset = index * chunkSize`). */
  index: number;
  /** Start in the export. */
  offset: number;
  /** Bytes (the chunk size; less for the last chunk of an export whose size is not a multiple). */
  length: number;
}

/** One chunk of the export. */
export type NbdChunk =
  | (ChunkPosition & {
      /** Every byte reads as zero (per block status, or found so after reading). */
      kind: 'zero';
    })
  | (ChunkPosition & {
      /** Not touched by any dirty extent: the caller takes it from the previous image. */
      kind: 'unchanged';
    })
  | (ChunkPosition & {
      /** The chunk holds data. */
      kind: 'data';
      /** The chunk's bytes (owned by the consumer until it calls `release`). */
      bytes: Buffer;
      /** SHA-256 of `bytes`, lowercase hex. */
      sha256: string;
      /**
       * Hands `bytes` back to the reader for a later chunk once the consumer is done with them (it
       * must not touch them afterwards). Optional: a chunk never released is garbage collected.
       */
      release(): void;
    });

/** Progress of {@link readNbdChunks}, reported as each chunk is handed out. */
export interface ChunkProgress {
  /** Bytes of the export handed out so far (all kinds). */
  processedBytes: number;
  /** The export's size. */
  totalBytes: number;
  /** Bytes read from the server so far (READ requests, holes inside them included). */
  readBytes: number;
}

/** Settings of {@link readNbdChunks}. */
export interface ReadNbdChunksOptions {
  /** Chunk size in bytes (default 4 MiB); a multiple of the export's minimum block size. */
  chunkSize?: number;
  /**
   * A negotiated dirty-bitmap context (e.g. `dirtyBitmapContext('backup-vda')`): only chunks that
   * some dirty extent touches are read; the others are `unchanged`.
   */
  dirtyContext?: string;
  /** Chunks read ahead of the consumer at most (default 4, or twice the connections when more). */
  parallel?: number;
  /**
   * Further connections to the same export (each its own stream, e.g. its own SSH channel): the
   * reads are spread over `client` and these, whichever has the fewest bytes asked and not yet
   * answered; block status is asked on `client` only. Each must show the same size and minimum
   * block size (VALIDATION_FAILED otherwise). The caller opens and closes them.
   */
  connections?: readonly NbdClient[];
  /** Stops reading (CANCELLED). */
  signal?: AbortSignal;
  /** Called before each chunk is handed out. */
  onProgress?: (progress: ChunkProgress) => void;
  /**
   * Bytes asked per BLOCK_STATUS request: a multiple of the chunk size below 4 GiB (default the
   * largest such, so the extents of a disk up to 4 GiB are asked once).
   */
  blockStatusWindow?: number;
  /**
   * Before its first read, asks one read of this many bytes of a hole that block status reported
   * (0: never). Default 16 MiB ({@link DEFAULT_PRIME_BYTES}). Only with structured replies and a
   * `base:allocation` context, when a hole that long exists; its answer carries no data, and a
   * failure of it is ignored (what broke fails the reads). Why: QEMU's NBD server allocates a
   * buffer the size of each read request from glibc's malloc, which takes buffers of 128 KiB and
   * more from fresh mappings until a freed one raises its dynamic threshold; the server then faults
   * in every page of every reply. One large buffer freed raises the threshold (and the heap's
   * trim threshold to twice that) for the process's life, so the next requests reuse heap memory.
   * See docs/drivers.md ("QEMU's request buffers").
   */
  primeBytes?: number;
  /**
   * Called once every chunk has been planned and read (nothing more is asked of the server), while
   * the last chunks may still wait for the consumer: the caller may close the connections and end
   * the export then. Not called when the read fails or stops early.
   */
  onReadsDone?: () => void;
}

/** What to do for one chunk, decided from block status alone. */
interface ChunkPlan extends ChunkPosition {
  action: 'zero' | 'unchanged' | 'read';
  /** For `read`: the span holding every data extent of the chunk (holes inside it come back cheaply). */
  readFrom: number;
  readTo: number;
}

/** Known extents of one context, from the current chunk on. */
interface ContextExtents {
  name: string;
  extents: NbdExtent[];
  head: number;
  /** How far the extents reach. */
  end: number;
}

function invalid(field: string, message: string): InstanceImagesError {
  return new InstanceImagesError('VALIDATION_FAILED', `readNbdChunks: ${field} ${message}`, { fields: [{ path: field, message }] });
}

function wholeNumber(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw invalid(field, 'must be a positive integer');
  return value;
}

/** Appends the part of `extents` beyond what `known` already reaches. */
function extend(known: ContextExtents, extents: readonly NbdExtent[]): void {
  for (const extent of extents) {
    const end = extent.offset + extent.length;
    if (end <= known.end) continue;
    const start = Math.max(extent.offset, known.end);
    known.extents.push({ offset: start, length: end - start, flags: extent.flags });
    known.end = end;
  }
}

/** Extents of `known` that overlap `[start, end)`, after dropping those wholly before `start`. */
function overlapping(known: ContextExtents, start: number, end: number): NbdExtent[] {
  while (
    known.head < known.extents.length &&
    (known.extents[known.head] as NbdExtent).offset + (known.extents[known.head] as NbdExtent).length <= start
  )
    known.head++;
  if (known.head > 1024) {
    known.extents.splice(0, known.head);
    known.head = 0;
  }
  const out: NbdExtent[] = [];
  for (let i = known.head; i < known.extents.length; i++) {
    const extent = known.extents[i] as NbdExtent;
    if (extent.offset >= end) break;
    out.push(extent);
  }
  return out;
}

/**
 * Reads `bytes` of the first hole in `extents` that holds them, dropping the answer (see
 * `primeBytes` in {@link ReadNbdChunksOptions}). Nothing without structured replies (the hole's
 * zeroes would be sent) or without such a hole.
 */
async function primeServer(client: NbdClient, extents: readonly NbdExtent[], bytes: number, signal: AbortSignal): Promise<void> {
  if (!client.info.structuredReplies) return;
  const minimum = client.info.blockSize.minimum;
  const longest = Math.min(bytes, client.maxReadBytes);
  const length = longest - (longest % minimum);
  if (length <= 0) return;
  for (const extent of extents) {
    if ((extent.flags & NBD_STATE_ZERO) === 0) continue;
    const start = Math.ceil(extent.offset / minimum) * minimum;
    if (start + length > extent.offset + extent.length) continue;
    await client.read(start, length, { discard: true, signal }).catch(() => undefined);
    return;
  }
}

/** Decides, chunk by chunk, what to read; asks block status one window ahead at most. */
async function* planChunks(
  client: NbdClient,
  chunkSize: number,
  window: number,
  dirtyContext: string | undefined,
  signal: AbortSignal,
  primeBytes: number,
): AsyncGenerator<ChunkPlan> {
  const { size, blockSize } = client.info;
  const allocation: ContextExtents | null = client.info.metaContexts.has(BASE_ALLOCATION)
    ? { name: BASE_ALLOCATION, extents: [], head: 0, end: 0 }
    : null;
  const dirty: ContextExtents | null = dirtyContext === undefined ? null : { name: dirtyContext, extents: [], head: 0, end: 0 };
  const used = [allocation, dirty].filter((c): c is ContextExtents => c !== null);
  let prime = allocation ? primeBytes : 0;
  for (let index = 0, start = 0; start < size; index++, start += chunkSize) {
    const end = Math.min(size, start + chunkSize);
    for (;;) {
      const from = Math.min(...used.map((c) => c.end));
      if (used.length === 0 || from >= end) break;
      const status = await client.blockStatus(from, Math.min(window, size - from), { signal });
      for (const known of used) extend(known, status.get(known.name) ?? []);
      if (prime > 0) {
        await primeServer(client, status.get(BASE_ALLOCATION) ?? [], prime, signal);
        prime = 0;
      }
      if (Math.min(...used.map((c) => c.end)) <= from)
        throw new InstanceImagesError('COMMAND_FAILED', `${client.label}: block status at ${from} described nothing`);
    }
    const position = { index, offset: start, length: end - start };
    if (dirty && !overlapping(dirty, start, end).some((e) => e.flags & NBD_STATE_DIRTY)) {
      yield { ...position, action: 'unchanged', readFrom: 0, readTo: 0 };
      continue;
    }
    if (!allocation) {
      yield { ...position, action: 'read', readFrom: start, readTo: end };
      continue;
    }
    const data = overlapping(allocation, start, end).filter((e) => (e.flags & NBD_STATE_ZERO) === 0);
    const first = data[0];
    const last = data[data.length - 1];
    if (!first || !last) {
      yield { ...position, action: 'zero', readFrom: 0, readTo: 0 };
      continue;
    }
    const alignDown = (n: number) => n - (n % blockSize.minimum);
    const readFrom = Math.max(start, alignDown(first.offset));
    const readTo = Math.min(end, alignDown(last.offset + last.length + blockSize.minimum - 1));
    yield { ...position, action: 'read', readFrom, readTo };
  }
}

/**
 * Pieces a connection has asked for and not yet received. QEMU's NBD server answers the requests
 * outstanding on a connection in no particular order (traced here: often the newest first), so a
 * chunk whose pieces were asked first could arrive last among eight read ahead, and the chunks
 * then became ready all at once, after every one of them was read. With two outstanding per
 * connection, pieces arrive in about the order they were asked, chunk after chunk, while each
 * connection still has a piece to send as soon as it finishes one.
 */
export const PIECES_IN_FLIGHT = 2;

/** A piece waiting for a connection. */
interface QueuedPiece {
  bytes: Buffer;
  intoOffset: number;
  at: number;
  length: number;
  signal: AbortSignal;
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The connections a read can go to. Pieces are asked in the order they were queued, each on the
 * first connection with fewer than {@link PIECES_IN_FLIGHT} outstanding.
 */
class Readers {
  readonly #clients: Array<{ client: NbdClient; inFlight: number }>;
  readonly #queue: QueuedPiece[] = [];
  #head = 0;
  /** The longest read asked at once: with several connections, pieces small enough to spread a chunk over them. */
  readonly pieceBytes: number;

  constructor(clients: readonly NbdClient[], chunkSize: number) {
    this.#clients = clients.map((client) => ({ client, inFlight: 0 }));
    const minimum = (clients[0] as NbdClient).info.blockSize.minimum;
    const limit = Math.min(...clients.map((c) => c.maxReadBytes));
    const spread = clients.length === 1 ? limit : Math.max(minimum, Math.ceil(chunkSize / clients.length / minimum) * minimum);
    this.pieceBytes = Math.min(limit, spread);
  }

  /** Reads `[from, to)` into `bytes` (at `from - base`), in pieces asked in order as connections are free. */
  read(bytes: Buffer, base: number, from: number, to: number, signal: AbortSignal): Array<Promise<void>> {
    const reads: Array<Promise<void>> = [];
    for (let at = from; at < to; at += this.pieceBytes) {
      const length = Math.min(this.pieceBytes, to - at);
      reads.push(
        new Promise<void>((resolve, reject) => this.#queue.push({ bytes, intoOffset: at - base, at, length, signal, resolve, reject })),
      );
    }
    this.#pump();
    return reads;
  }

  /** Hands queued pieces to free connections. */
  #pump(): void {
    while (this.#head < this.#queue.length) {
      const reader = this.#clients.find((c) => c.inFlight < PIECES_IN_FLIGHT);
      if (!reader) return;
      const piece = this.#queue[this.#head] as QueuedPiece;
      this.#head += 1;
      if (this.#head >= 1024) {
        this.#queue.splice(0, this.#head);
        this.#head = 0;
      }
      if (piece.signal.aborted) {
        piece.reject(new InstanceImagesError('CANCELLED', `${reader.client.label}: reading chunks was cancelled`));
        continue;
      }
      reader.inFlight += 1;
      reader.client
        .read(piece.at, piece.length, { into: piece.bytes, intoOffset: piece.intoOffset, signal: piece.signal })
        .then(() => piece.resolve(), piece.reject)
        .finally(() => {
          reader.inFlight -= 1;
          this.#pump();
        });
    }
  }
}

/** Reads a planned chunk (zeroes outside its data span) and classifies it. */
async function readChunk(readers: Readers, buffers: BufferPool, plan: ChunkPlan, signal: AbortSignal): Promise<NbdChunk> {
  const position = { index: plan.index, offset: plan.offset, length: plan.length };
  if (plan.action !== 'read') return { ...position, kind: plan.action };
  // Not zero-filled as a whole: the reads cover the data span completely (the client fails a read
  // whose replies leave any byte of it unaccounted for, and fills the holes they report), so only
  // the rest, which block status said reads as zeroes, is filled here. Zero-filling every fresh
  // 4 MiB buffer was most of the panel's allocation cost in a recapture (a memset and a page fault
  // per page: about 28 ms of CPU per 64 MiB here).
  const bytes = buffers.take(plan.length, false);
  const spanFrom = plan.readFrom - plan.offset;
  const spanTo = plan.readTo - plan.offset;
  if (spanFrom > 0) bytes.fill(0, 0, spanFrom);
  if (spanTo < plan.length) bytes.fill(0, Math.max(spanFrom, spanTo), plan.length);
  await Promise.all(readers.read(bytes, plan.offset, plan.readFrom, plan.readTo, signal));
  if (isZeroRange(bytes)) {
    buffers.give(bytes);
    return { ...position, kind: 'zero' };
  }
  return { ...position, kind: 'data', bytes, sha256: createHash('sha256').update(bytes).digest('hex'), release: buffers.releaser(bytes) };
}

/**
 * The export's chunks in order: `zero` (never read when block status says so), `unchanged` (with
 * `dirtyContext`: not dirty), or `data` with its bytes and SHA-256. Reads up to `parallel` chunks
 * ahead, over `options.connections` too when given; holds at most `parallel + 1` chunks' bytes
 * whatever the export's size. Breaking out of the loop stops the reads.
 * @throws VALIDATION_FAILED for bad options; INVALID_STATE when `dirtyContext` was not negotiated
 * (an incremental read is then impossible: read everything instead); the client's errors otherwise.
 */
export async function* readNbdChunks(client: NbdClient, options: ReadNbdChunksOptions = {}): AsyncGenerator<NbdChunk, void, undefined> {
  const chunkSize = wholeNumber(options.chunkSize, DEFAULT_CHUNK_SIZE, 'chunkSize');
  const clients = [client, ...(options.connections ?? [])];
  const parallel = wholeNumber(options.parallel, Math.max(4, 2 * clients.length), 'parallel');
  for (const [i, other] of clients.entries()) {
    if (other.info.size !== client.info.size || other.info.blockSize.minimum !== client.info.blockSize.minimum)
      throw invalid(`connections[${i - 1}]`, 'must show the same export (size and minimum block size) as the client');
  }
  const window = wholeNumber(options.blockStatusWindow, Math.max(chunkSize, 0xffffffff - (0xffffffff % chunkSize)), 'blockStatusWindow');
  if (chunkSize % client.info.blockSize.minimum !== 0)
    throw invalid('chunkSize', `must be a multiple of the export's minimum block size ${client.info.blockSize.minimum}`);
  if (chunkSize > 1024 * 1024 * 1024) throw invalid('chunkSize', 'must be at most 1 GiB');
  if (window % chunkSize !== 0 || window > 0xffffffff)
    throw invalid('blockStatusWindow', 'must be a multiple of the chunk size below 4 GiB');
  const { dirtyContext } = options;
  if (dirtyContext !== undefined && !client.info.metaContexts.has(dirtyContext)) {
    throw new InstanceImagesError(
      'INVALID_STATE',
      `${client.label}: the server did not agree to the context ${JSON.stringify(dirtyContext)}, so the changed chunks cannot be known; read the whole export instead`,
      {
        details: { context: dirtyContext },
      },
    );
  }

  const controller = new AbortController();
  const readers = new Readers(clients, chunkSize);
  // Every read in flight listens on it: up to `parallel` chunks, each in pieces.
  setMaxListeners(16 + parallel * Math.ceil(chunkSize / readers.pieceBytes), controller.signal);
  const onAbort = () => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) controller.abort();
  const primeBytes = options.primeBytes === 0 ? 0 : wholeNumber(options.primeBytes, DEFAULT_PRIME_BYTES, 'primeBytes');
  const plans = planChunks(client, chunkSize, window, dirtyContext, controller.signal, primeBytes);
  // Enough for the chunks read ahead and those a consumer stores at once; more are allocated.
  const buffers = sharedBufferPool(chunkSize, 2 * parallel + 4);
  const ahead: Array<{ plan: ChunkPlan; chunk: Promise<NbdChunk> }> = [];
  /** The chunks of `ahead` being read (counted, not filtered: an incremental plan queues hundreds of unchanged chunks ahead). */
  let reading = 0;
  let planned = true;
  let processedBytes = 0;
  let readBytes = 0;
  try {
    for (;;) {
      if (controller.signal.aborted) throw new InstanceImagesError('CANCELLED', `${client.label}: reading chunks was cancelled`);
      // Read ahead up to `parallel` chunks that need reading (chunks that need none cost nothing).
      while (planned && reading < parallel && ahead.length < 1024) {
        const next = await plans.next();
        if (next.done) {
          planned = false;
          // Every read is asked: once they are all in, the server is not needed any more.
          const { onReadsDone } = options;
          if (onReadsDone)
            void Promise.all(ahead.map((a) => a.chunk)).then(
              () => {
                if (!controller.signal.aborted) onReadsDone();
              },
              () => undefined,
            );
          break;
        }
        const chunk = readChunk(readers, buffers, next.value, controller.signal);
        chunk.catch(() => undefined);
        ahead.push({ plan: next.value, chunk });
        if (next.value.action === 'read') reading += 1;
      }
      const first = ahead.shift();
      if (!first) return;
      if (first.plan.action === 'read') reading -= 1;
      const chunk = await first.chunk;
      processedBytes += chunk.length;
      if (first.plan.action === 'read') readBytes += first.plan.readTo - first.plan.readFrom;
      options.onProgress?.({ processedBytes, totalBytes: client.info.size, readBytes });
      yield chunk;
    }
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    controller.abort();
    await Promise.allSettled(ahead.map((a) => a.chunk));
    await plans.return(undefined);
  }
}
