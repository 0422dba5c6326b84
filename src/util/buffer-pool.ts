/**
 * Buffers of one size handed back for reuse. A stream of large buffers (4 MiB chunks) allocated
 * afresh for each item lives outside the JS heap, and V8 answers that much external memory with a
 * full collection every few items; reusing a few buffers avoids it.
 * @module
 */

/** A bounded pool of `size`-byte buffers. */
export class BufferPool {
  readonly #free: Buffer[] = [];

  /**
   * @param size - The size of the buffers kept.
   * @param max - How many buffers are kept at most (more handed back are dropped).
   */
  constructor(
    readonly size: number,
    readonly max: number,
  ) {}

  /** A buffer of `length` bytes: a handed-back one when `length` is the pool's size, zero-filled when `zeroed`. */
  take(length: number, zeroed: boolean): Buffer {
    const reused = length === this.size ? this.#free.pop() : undefined;
    if (reused) return zeroed ? reused.fill(0) : reused;
    return zeroed ? Buffer.alloc(length) : Buffer.allocUnsafe(length);
  }

  /** Hands `bytes` back; the caller must not touch it afterwards. */
  give(bytes: Buffer): void {
    if (bytes.length === this.size && this.#free.length < this.max) this.#free.push(bytes);
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
