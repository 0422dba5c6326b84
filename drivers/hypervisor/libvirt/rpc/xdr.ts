/**
 * The XDR encoding (RFC 4506) of the few types libvirt's RPC protocol uses here: 32-bit signed and
 * unsigned integers, 64-bit unsigned integers, strings and fixed opaque data (padded to 4 bytes),
 * optional values (a boolean word, then the value) and counted arrays. A reader never reads past
 * its buffer: a length that does not fit is an error, not an allocation.
 * @module
 */

/** A malformed XDR value (a length past the end, a string over its limit). */
export class XdrError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XdrError';
  }
}

/** Padding after `length` bytes of opaque data or string. */
const pad = (length: number): number => (4 - (length % 4)) % 4;

/** Builds an XDR value, part by part. */
export class XdrWriter {
  readonly #parts: Buffer[] = [];
  #length = 0;

  #push(part: Buffer): this {
    this.#parts.push(part);
    this.#length += part.length;
    return this;
  }

  /** A signed 32-bit integer. */
  int(value: number): this {
    const word = Buffer.allocUnsafe(4);
    word.writeInt32BE(value);
    return this.#push(word);
  }

  /** An unsigned 32-bit integer. */
  uint(value: number): this {
    const word = Buffer.allocUnsafe(4);
    word.writeUInt32BE(value);
    return this.#push(word);
  }

  /** Fixed-length opaque data of exactly `length` bytes. @throws XdrError for another length. */
  fixedOpaque(bytes: Buffer, length: number): this {
    if (bytes.length !== length) throw new XdrError(`expected ${length} bytes of opaque data, got ${bytes.length}`);
    this.#push(bytes);
    return this.#push(Buffer.alloc(pad(length)));
  }

  /** A string (UTF-8), its length first. */
  string(value: string): this {
    const bytes = Buffer.from(value, 'utf8');
    this.uint(bytes.length);
    this.#push(bytes);
    return this.#push(Buffer.alloc(pad(bytes.length)));
  }

  /** An optional string: `null` is absent. */
  optionalString(value: string | null): this {
    if (value === null) return this.uint(0);
    return this.uint(1).string(value);
  }

  /** A counted array of strings. */
  strings(values: readonly string[]): this {
    this.uint(values.length);
    for (const value of values) this.string(value);
    return this;
  }

  /** The value's bytes. */
  bytes(): Buffer {
    return Buffer.concat(this.#parts, this.#length);
  }
}

/** Reads an XDR value from a buffer, in order. */
export class XdrReader {
  #at: number;

  constructor(
    readonly buffer: Buffer,
    offset = 0,
  ) {
    this.#at = offset;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.buffer.length - this.#at;
  }

  #take(length: number): Buffer {
    if (length > this.remaining) throw new XdrError(`a value of ${length} bytes runs past the end of the message`);
    const part = this.buffer.subarray(this.#at, this.#at + length);
    this.#at += length;
    return part;
  }

  /** A signed 32-bit integer. */
  int(): number {
    return this.#take(4).readInt32BE(0);
  }

  /** An unsigned 32-bit integer. */
  uint(): number {
    return this.#take(4).readUInt32BE(0);
  }

  /** An unsigned 64-bit integer (as a bigint: it may exceed 2^53). */
  uhyper(): bigint {
    return this.#take(8).readBigUInt64BE(0);
  }

  /** An XDR boolean (an optional value's presence). @throws XdrError for a word other than 0 or 1. */
  bool(): boolean {
    const word = this.uint();
    if (word > 1) throw new XdrError(`expected a boolean, got ${word}`);
    return word === 1;
  }

  /** Fixed-length opaque data (a copy). */
  fixedOpaque(length: number): Buffer {
    const bytes = Buffer.from(this.#take(length));
    this.#take(pad(length));
    return bytes;
  }

  /** A string of at most `max` bytes (UTF-8). */
  string(max = 4 * 1024 * 1024): string {
    const length = this.uint();
    if (length > max) throw new XdrError(`a string of ${length} bytes is over the limit of ${max}`);
    const text = this.#take(length).toString('utf8');
    this.#take(pad(length));
    return text;
  }

  /** An optional string: null when absent. */
  optionalString(): string | null {
    return this.bool() ? this.string() : null;
  }
}
