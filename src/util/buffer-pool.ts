/**
 * Buffers of one size handed back for reuse. A stream of large buffers (4 MiB chunks) allocated
 * afresh for each item lives outside the JS heap, and V8 answers that much external memory with a
 * full collection every few items; reusing a few buffers avoids it.
 * @module
 */

/** A bounded pool of `size`-byte buffers. */
export class BufferPool {
  readonly #free: Buffer[] = [];
  readonly #idleMs: number | null;
  #timer: NodeJS.Timeout | null = null;

  /**
   * @param size - The size of the buffers kept.
   * @param max - How many buffers are kept at most (more handed back are dropped).
   * @param idleMs - When set, the kept buffers are dropped once none was handed back for this long.
   */
  constructor(
    readonly size: number,
    public max: number,
    idleMs?: number,
  ) {
    this.#idleMs = idleMs ?? null;
  }

  /** Buffers kept now. */
  get kept(): number {
    return this.#free.length;
  }

  /** A buffer of `length` bytes: a handed-back one when `length` is the pool's size, zero-filled when `zeroed`. */
  take(length: number, zeroed: boolean): Buffer {
    const reused = length === this.size ? this.#free.pop() : undefined;
    if (reused) return zeroed ? reused.fill(0) : reused;
    return zeroed ? Buffer.alloc(length) : Buffer.allocUnsafe(length);
  }

  /** Hands `bytes` back; the caller must not touch it afterwards. */
  give(bytes: Buffer): void {
    if (bytes.length !== this.size || this.#free.length >= this.max) return;
    this.#free.push(bytes);
    if (this.#idleMs === null) return;
    if (this.#timer) this.#timer.refresh();
    else {
      this.#timer = setTimeout(() => {
        this.#timer = null;
        this.#free.length = 0;
      }, this.#idleMs);
      this.#timer.unref();
    }
  }

  /** A function that hands `bytes` back the first time it is called. */
  releaser(bytes: Buffer): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give(bytes);
    };
  }
}

/** How long the shared pools keep their buffers after the last one was handed back. */
export const SHARED_POOL_IDLE_MS = 10_000;

const sharedPools = new Map<number, BufferPool>();

/**
 * The process's pool of `size`-byte buffers, shared by every chunked capture and deploy, keeping
 * at most the largest `max` asked for, and dropping what it keeps {@link SHARED_POOL_IDLE_MS}
 * after the last buffer came back. Captures and deploys that follow each other (a night's
 * recaptures of many instances) reuse the same memory: a 4 MiB buffer allocated afresh costs its
 * page faults (and, on a VM whose balloon reports free pages, a host fault per page) and counts
 * as external memory that V8 answers with collections; a 64 MiB recapture spent ~0.1 s of panel CPU
 * on them. A lone capture allocates its buffers as before, and nothing is held once the work stops.
 */
export function sharedBufferPool(size: number, max: number): BufferPool {
  let pool = sharedPools.get(size);
  if (!pool) {
    pool = new BufferPool(size, max, SHARED_POOL_IDLE_MS);
    sharedPools.set(size, pool);
  }
  if (max > pool.max) pool.max = max;
  return pool;
}
