/**
 * Exact-length reads from a byte stream, pulling from it only as much as a caller asks for. The
 * stream stays in paused mode, so bytes nobody has asked for stay in the socket (TCP/SSH window
 * backpressure) instead of piling up in memory.
 * @module
 */
import type { Readable } from 'node:stream';

/** Pulls exact byte counts from a Readable; `closed` says why no more bytes can come. */
export class ByteReader {
  readonly #stream: Readable;
  readonly #chunks: Buffer[] = [];
  #available = 0;
  #end: Error | null = null;
  #wake: (() => void) | null = null;
  readonly #closedError: () => Error;
  readonly #onReadable: () => void;

  /** @param closedError - builds the error a read gets once the stream has ended, closed or failed. */
  constructor(stream: Readable, closedError: () => Error) {
    this.#stream = stream;
    this.#closedError = closedError;
    const wake = () => {
      const resolve = this.#wake;
      this.#wake = null;
      resolve?.();
    };
    const ended = () => {
      this.#end ??= this.#closedError();
      wake();
    };
    this.#onReadable = wake;
    stream.on('readable', wake);
    stream.once('end', ended);
    stream.once('close', ended);
    stream.once('error', ended);
  }

  /**
   * Stops reading for good and lets whatever the stream still holds drain away, so that it can
   * end and close (an SSH channel emits 'close' only after its readable side has ended). Reads
   * waiting now, or made later, get the closed error.
   */
  discardRest(): void {
    this.#stream.off('readable', this.#onReadable);
    this.#end ??= this.#closedError();
    this.#chunks.length = 0;
    this.#available = 0;
    const resolve = this.#wake;
    this.#wake = null;
    resolve?.();
    this.#stream.resume();
  }

  /** Bytes taken from the stream and not yet handed out. */
  get buffered(): number {
    return this.#available;
  }

  async #more(): Promise<void> {
    for (;;) {
      const chunk = this.#stream.read() as Buffer | null;
      if (chunk !== null && chunk.length > 0) {
        this.#chunks.push(chunk);
        this.#available += chunk.length;
        return;
      }
      if (this.#end) throw this.#end;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Takes up to `max` bytes from the first held chunk (at least one byte; waits for it). */
  async #take(max: number): Promise<Buffer> {
    if (this.#chunks.length === 0) await this.#more();
    const first = this.#chunks[0] as Buffer;
    if (first.length <= max) {
      this.#chunks.shift();
      this.#available -= first.length;
      return first;
    }
    this.#chunks[0] = first.subarray(max);
    this.#available -= max;
    return first.subarray(0, max);
  }

  /** Exactly `length` bytes (a view when they sit in one received chunk, a copy otherwise). */
  async read(length: number): Promise<Buffer> {
    if (length === 0) return Buffer.alloc(0);
    const first = await this.#take(length);
    if (first.length === length) return first;
    const out = Buffer.allocUnsafe(length);
    first.copy(out, 0);
    let filled = first.length;
    while (filled < length) {
      const part = await this.#take(length - filled);
      part.copy(out, filled);
      filled += part.length;
    }
    return out;
  }

  /**
   * Hands exactly `length` bytes to `sink` piece by piece (`at` is the piece's position within the
   * `length` bytes), without collecting them; the sink may drop them.
   */
  async consume(length: number, sink: (piece: Buffer, at: number) => void): Promise<void> {
    let done = 0;
    while (done < length) {
      const piece = await this.#take(length - done);
      sink(piece, done);
      done += piece.length;
    }
  }
}
