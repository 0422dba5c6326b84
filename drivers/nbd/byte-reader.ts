/**
 * Exact-length reads from a byte stream. The stream flows, and each piece it emits is kept as it
 * came (never joined with the next: a paused stream's `read()` would concatenate everything it
 * holds into a new buffer, about a quarter of the bytes read over SSH copied once more); once
 * {@link ByteReader.HOLD_BYTES} are held that nobody has asked for yet, the stream is paused, so
 * bytes nobody asks for stay in the socket (TCP/SSH window backpressure) instead of piling up in
 * memory.
 * @module
 */
import type { Readable } from 'node:stream';

/** Pulls exact byte counts from a Readable; `closed` says why no more bytes can come. */
export class ByteReader {
  /** Bytes held before the stream is paused (it is resumed once a read takes them below). */
  static readonly HOLD_BYTES = 256 * 1024;
  readonly #stream: Readable;
  readonly #chunks: Buffer[] = [];
  /** Index of the first chunk of `#chunks` not yet handed out (the array is compacted now and then). */
  #head = 0;
  #available = 0;
  #paused = false;
  #end: Error | null = null;
  #wake: (() => void) | null = null;
  readonly #closedError: () => Error;
  readonly #onData: (chunk: Buffer) => void;

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
    this.#onData = (chunk: Buffer) => {
      if (chunk.length === 0) return;
      this.#chunks.push(chunk);
      this.#available += chunk.length;
      if (this.#available >= ByteReader.HOLD_BYTES && !this.#paused) {
        this.#paused = true;
        stream.pause();
      }
      wake();
    };
    stream.once('end', ended);
    stream.once('close', ended);
    stream.once('error', ended);
    stream.on('data', this.#onData);
    // A stream paused before (explicitly) does not flow for a new 'data' listener.
    if (stream.isPaused()) stream.resume();
  }

  /**
   * Stops reading for good and lets whatever the stream still holds drain away, so that it can
   * end and close (an SSH channel emits 'close' only after its readable side has ended). Reads
   * waiting now, or made later, get the closed error.
   */
  discardRest(): void {
    this.#stream.off('data', this.#onData);
    this.#end ??= this.#closedError();
    this.#chunks.length = 0;
    this.#head = 0;
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

  /** Waits until a chunk is held (the stream flows then: it is paused only while chunks are held). */
  async #more(): Promise<void> {
    while (this.#head === this.#chunks.length) {
      if (this.#end) throw this.#end;
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Takes up to `max` bytes from the first held chunk (at least one byte; waits for it). */
  async #take(max: number): Promise<Buffer> {
    if (this.#head === this.#chunks.length) await this.#more();
    const first = this.#chunks[this.#head] as Buffer;
    let taken = first;
    if (first.length <= max) {
      this.#head += 1;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      } else if (this.#head >= 1024) {
        this.#chunks.splice(0, this.#head);
        this.#head = 0;
      }
    } else {
      this.#chunks[this.#head] = first.subarray(max);
      taken = first.subarray(0, max);
    }
    this.#available -= taken.length;
    if (this.#paused && this.#available < ByteReader.HOLD_BYTES) {
      this.#paused = false;
      this.#stream.resume();
    }
    return taken;
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
