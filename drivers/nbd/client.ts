/**
 * An NBD client over any Node Duplex (a unix socket to a local hypervisor, an SSH stream-local
 * channel to a remote one), in the transmission phase: READ, BLOCK_STATUS, WRITE, WRITE_ZEROES and
 * FLUSH with a bounded number of requests in flight (more wait for a slot: backpressure). Every reply is checked against the request it answers, so a broken or
 * hostile server can never make the client buffer more than it asked for.
 * @module
 */
import type { Duplex } from 'node:stream';
import { InstanceImagesError } from '../../src/errors';
import type { ByteReader } from './byte-reader';
import type { Settings } from './connect';
import { Coverage } from './coverage';
import type { NbdExportInfo } from './negotiate';
import type {
  NbdClient,
  NbdClientStats,
  NbdExtent,
  NbdReadOptions,
  NbdRequestOptions,
  NbdWriteOptions,
  NbdWriteZeroesOptions,
} from './types';
import {
  decodeBlockStatus,
  decodeErrorChunk,
  decodeSimpleReply,
  decodeStructuredHeader,
  encodeRequest,
  NBD_CMD_BLOCK_STATUS,
  NBD_CMD_DISC,
  NBD_CMD_FLAG_FUA,
  NBD_CMD_FLAG_NO_HOLE,
  NBD_CMD_FLUSH,
  NBD_CMD_READ,
  NBD_CMD_WRITE,
  NBD_CMD_WRITE_ZEROES,
  NBD_FLAG_SEND_FLUSH,
  NBD_FLAG_SEND_FUA,
  NBD_FLAG_SEND_WRITE_ZEROES,
  NBD_MAX_STRING,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR_BIT,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_STRUCTURED_REPLY_MAGIC,
  nbdErrnoName,
  nbdProtocolError,
  type BlockStatusDescriptor,
  type StructuredChunkHeader,
} from './protocol';

type Kind = 'read' | 'block-status' | 'write' | 'write-zeroes' | 'flush';

const COMMANDS: Record<Kind, number> = {
  read: NBD_CMD_READ,
  'block-status': NBD_CMD_BLOCK_STATUS,
  write: NBD_CMD_WRITE,
  'write-zeroes': NBD_CMD_WRITE_ZEROES,
  flush: NBD_CMD_FLUSH,
};

/** What one request sends: the command, its range and flags, where a read lands, a write's payload. */
interface RequestSpec {
  kind: Kind;
  offset: number;
  length: number;
  flags?: number;
  signal: AbortSignal | undefined;
  target?: Buffer | null;
  targetOffset?: number;
  payload?: Buffer;
}

interface Pending {
  kind: Kind;
  offset: number;
  length: number;
  target: Buffer | null;
  targetOffset: number;
  coverage: Coverage | null;
  statuses: Map<number, BlockStatusDescriptor[]>;
  error: InstanceImagesError | null;
  abandoned: boolean;
  settle(error: InstanceImagesError | null): void;
}

const MAX_ERROR_CHUNK = 6 + NBD_MAX_STRING + 8;
const MAX_BLOCK_STATUS_LENGTH = 0xffffffff;
/** The longest WRITE_ZEROES sent (the length field is 32 bits; kept a multiple of 64 KiB). */
const MAX_WRITE_ZEROES_LENGTH = 0xffff0000;

/** An NBD connection in the transmission phase (made by {@link connectNbd}). */
export class NbdConnection implements NbdClient {
  readonly label: string;
  readonly info: NbdExportInfo;
  readonly #stream: Duplex;
  readonly #reader: ByteReader;
  readonly #pending = new Map<bigint, Pending>();
  readonly #contextNames = new Map<number, string>();
  readonly #slotWaiters: Array<() => void> = [];
  readonly #maxInFlight: number;
  readonly maxReadBytes: number;
  readonly maxWriteBytes: number;
  readonly #maxExtents: number;
  readonly #timeoutMs: number;
  readonly #stats: NbdClientStats = {
    readRequests: 0,
    readBytesRequested: 0,
    dataBytesReceived: 0,
    blockStatusRequests: 0,
    writeRequests: 0,
    dataBytesSent: 0,
    writeZeroesRequests: 0,
    flushRequests: 0,
  };
  #nextHandle = 1n;
  #inFlight = 0;
  /** Requests accepted and not yet answered (waiting for a slot or in flight). */
  #accepted = 0;
  #failure: InstanceImagesError | null = null;
  #closing: Promise<void> | null = null;
  #drained: (() => void) | null = null;

  constructor(stream: Duplex, reader: ByteReader, info: NbdExportInfo, label: string, settings: Settings) {
    this.#stream = stream;
    this.#reader = reader;
    this.info = info;
    this.label = label;
    this.#maxInFlight = settings.maxInFlight;
    const limit = Math.min(settings.maxReadBytes, info.blockSize.maximum);
    this.maxReadBytes = Math.max(info.blockSize.minimum, limit - (limit % info.blockSize.minimum));
    const writeLimit = Math.min(settings.maxWriteBytes, info.blockSize.maximum);
    this.maxWriteBytes = Math.max(info.blockSize.minimum, writeLimit - (writeLimit % info.blockSize.minimum));
    this.#maxExtents = settings.maxExtents;
    this.#timeoutMs = settings.requestTimeoutMs;
    for (const [name, id] of info.metaContexts) this.#contextNames.set(id, name);
    this.#receive().catch((error: unknown) => this.#fail(error instanceof InstanceImagesError ? error : this.#dropped(error)));
  }

  get stats(): Readonly<NbdClientStats> {
    return { ...this.#stats };
  }

  /** The error a read from the stream gets once it has ended. */
  closedError(cause?: unknown): InstanceImagesError {
    if (this.#closing && this.#pending.size === 0)
      return new InstanceImagesError('INVALID_STATE', `${this.label}: the connection is closed`);
    return this.#dropped(cause);
  }

  #dropped(cause?: unknown): InstanceImagesError {
    const unanswered = this.#pending.size;
    return new InstanceImagesError(
      'HYPERVISOR_UNREACHABLE',
      `${this.label}: the connection to the NBD server dropped${unanswered > 0 ? ` with ${unanswered} request(s) unanswered` : ''}`,
      cause === undefined ? {} : { cause },
    );
  }

  #fail(error: InstanceImagesError): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const pending of this.#pending.values()) pending.settle(error);
    this.#pending.clear();
    this.#drained?.();
    for (const wake of this.#slotWaiters.splice(0)) wake();
    this.#stream.destroy();
    this.#reader.discardRest();
  }

  #usable(): void {
    if (this.#failure) throw this.#failure;
    if (this.#closing) throw new InstanceImagesError('INVALID_STATE', `${this.label}: the connection is closing`);
  }

  async #acquire(signal: AbortSignal | undefined): Promise<void> {
    while (this.#inFlight >= this.#maxInFlight) {
      if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `${this.label}: cancelled while waiting for a request slot`);
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          const index = this.#slotWaiters.indexOf(wake);
          if (index >= 0) this.#slotWaiters.splice(index, 1);
          resolve();
        };
        const wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.#slotWaiters.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
      if (this.#failure) throw this.#failure;
    }
    if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `${this.label}: cancelled before the request was sent`);
    this.#inFlight++;
  }

  #release(): void {
    this.#inFlight--;
    this.#slotWaiters.shift()?.();
  }

  #checkRange(offset: number, length: number, what: string): void {
    const bad = (message: string) =>
      new InstanceImagesError('VALIDATION_FAILED', `${this.label}: cannot ${what} ${length} bytes at ${offset}: ${message}`, {
        fields: [{ path: 'offset', message }],
      });
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 1)
      throw bad('offset and length must be integers, length at least 1');
    if (offset + length > this.info.size) throw bad(`the export has ${this.info.size} bytes`);
    const { minimum } = this.info.blockSize;
    if (offset % minimum !== 0 || (length % minimum !== 0 && offset + length !== this.info.size))
      throw bad(`the server requires multiples of ${minimum} bytes`);
  }

  /** Sends a request once a slot is free; close() waits for every request accepted before it. */
  async #request(spec: RequestSpec): Promise<Pending> {
    this.#usable();
    this.#accepted++;
    try {
      await this.#acquire(spec.signal);
      if (this.#failure || spec.signal?.aborted) {
        this.#release();
        throw (
          this.#failure ??
          new InstanceImagesError(
            'CANCELLED',
            `${this.label}: the ${spec.kind} of ${spec.length} bytes at ${spec.offset} was cancelled before it was sent`,
          )
        );
      }
      return await this.#send(spec);
    } finally {
      this.#accepted--;
      this.#checkDrained();
    }
  }

  #checkDrained(): void {
    if (this.#accepted === 0 && this.#pending.size === 0) this.#drained?.();
  }

  #send(spec: RequestSpec): Promise<Pending> {
    const { kind, offset, length, signal } = spec;
    const handle = this.#nextHandle++;
    return new Promise<Pending>((resolve, reject) => {
      let timer: NodeJS.Timeout | null = null;
      const onAbort = () => {
        if (pending.abandoned) return;
        pending.abandoned = true;
        pending.target = null;
        cleanup();
        reject(new InstanceImagesError('CANCELLED', `${this.label}: the ${kind} of ${length} bytes at ${offset} was cancelled`));
      };
      const cleanup = () => {
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const pending: Pending = {
        kind,
        offset,
        length,
        target: spec.target ?? null,
        targetOffset: spec.targetOffset ?? 0,
        coverage: kind === 'read' ? new Coverage(length) : null,
        statuses: new Map(),
        error: null,
        abandoned: false,
        settle: (error) => {
          cleanup();
          if (pending.abandoned) return;
          if (error) reject(error);
          else resolve(pending);
        },
      };
      this.#pending.set(handle, pending);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (this.#timeoutMs > 0) {
        timer = setTimeout(
          () =>
            this.#fail(
              new InstanceImagesError(
                'TIMEOUT',
                `${this.label}: no reply to a ${kind} of ${length} bytes at ${offset} within ${this.#timeoutMs} ms`,
              ),
            ),
          this.#timeoutMs,
        );
      }
      // A write's payload follows its header at once: the frame is never split by another request.
      this.#stream.write(encodeRequest({ flags: spec.flags ?? 0, type: COMMANDS[kind], handle, offset, length }));
      if (spec.payload) this.#stream.write(spec.payload);
    });
  }

  async read(offset: number, length: number, options: NbdReadOptions = {}): Promise<Buffer> {
    this.#checkRange(offset, length, 'read');
    if (length > this.maxReadBytes) {
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `${this.label}: a read of ${length} bytes is longer than the limit of ${this.maxReadBytes}; split it`,
        { fields: [{ path: 'length', message: `at most ${this.maxReadBytes}` }] },
      );
    }
    const discard = options.discard === true;
    const into = discard ? undefined : options.into;
    const intoOffset = options.intoOffset ?? 0;
    if (into && (!Number.isSafeInteger(intoOffset) || intoOffset < 0 || intoOffset + length > into.length)) {
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `${this.label}: the target buffer has no room for ${length} bytes at ${intoOffset}`,
        { fields: [{ path: 'into', message: 'too small' }] },
      );
    }
    const target = discard ? null : (into ?? Buffer.allocUnsafe(length));
    this.#stats.readRequests++;
    this.#stats.readBytesRequested += length;
    await this.#request({ kind: 'read', offset, length, signal: options.signal, target, targetOffset: into ? intoOffset : 0 });
    if (target === null) return Buffer.alloc(0);
    return into ? target.subarray(intoOffset, intoOffset + length) : target;
  }

  async blockStatus(offset: number, length: number, options: NbdRequestOptions = {}): Promise<Map<string, NbdExtent[]>> {
    if (this.#contextNames.size === 0)
      throw new InstanceImagesError('INVALID_STATE', `${this.label}: no metadata context was negotiated, so block status is not available`);
    this.#checkRange(offset, Math.min(length, MAX_BLOCK_STATUS_LENGTH), 'query block status of');
    if (length > MAX_BLOCK_STATUS_LENGTH)
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `${this.label}: block status of at most ${MAX_BLOCK_STATUS_LENGTH} bytes at once`,
        { fields: [{ path: 'length', message: 'too long' }] },
      );
    this.#stats.blockStatusRequests++;
    const pending = await this.#request({ kind: 'block-status', offset, length, signal: options.signal });
    const result = new Map<string, NbdExtent[]>();
    for (const [id, descriptors] of pending.statuses) {
      let at = offset;
      result.set(
        this.#contextNames.get(id) as string,
        descriptors.map((d) => {
          const extent = { offset: at, length: d.length, flags: d.flags };
          at += d.length;
          return extent;
        }),
      );
    }
    return result;
  }

  /** Refuses a write-type request the export cannot take. */
  #writable(what: string, flag = 0, flagName = ''): void {
    this.#usable();
    if (this.info.readOnly)
      throw new InstanceImagesError('INVALID_STATE', `${this.label}: the export is read-only; the server refuses to ${what}`);
    if (flag !== 0 && (this.info.transmissionFlags & flag) === 0)
      throw new InstanceImagesError('INVALID_STATE', `${this.label}: the server does not support ${flagName}`);
  }

  async write(offset: number, data: Buffer, options: NbdWriteOptions = {}): Promise<void> {
    this.#writable('write');
    if (options.fua) this.#writable('write', NBD_FLAG_SEND_FUA, 'forced unit access (FUA)');
    this.#checkRange(offset, data.length, 'write');
    if (data.length > this.maxWriteBytes) {
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `${this.label}: a write of ${data.length} bytes is longer than the limit of ${this.maxWriteBytes}; split it`,
        { fields: [{ path: 'length', message: `at most ${this.maxWriteBytes}` }] },
      );
    }
    this.#stats.writeRequests++;
    this.#stats.dataBytesSent += data.length;
    const flags = options.fua ? NBD_CMD_FLAG_FUA : 0;
    await this.#request({ kind: 'write', offset, length: data.length, flags, signal: options.signal, payload: data });
  }

  async writeZeroes(offset: number, length: number, options: NbdWriteZeroesOptions = {}): Promise<void> {
    this.#writable('write zeroes', NBD_FLAG_SEND_WRITE_ZEROES, 'WRITE_ZEROES');
    if (options.fua) this.#writable('write zeroes', NBD_FLAG_SEND_FUA, 'forced unit access (FUA)');
    this.#checkRange(offset, Math.min(length, MAX_WRITE_ZEROES_LENGTH), 'write zeroes to');
    if (length > MAX_WRITE_ZEROES_LENGTH)
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `${this.label}: write zeroes to at most ${MAX_WRITE_ZEROES_LENGTH} bytes at once`,
        {
          fields: [{ path: 'length', message: 'too long' }],
        },
      );
    this.#stats.writeZeroesRequests++;
    const flags = (options.fua ? NBD_CMD_FLAG_FUA : 0) | (options.allocate ? NBD_CMD_FLAG_NO_HOLE : 0);
    await this.#request({ kind: 'write-zeroes', offset, length, flags, signal: options.signal });
  }

  async flush(options: NbdRequestOptions = {}): Promise<void> {
    this.#writable('flush', NBD_FLAG_SEND_FLUSH, 'FLUSH');
    this.#stats.flushRequests++;
    await this.#request({ kind: 'flush', offset: 0, length: 0, signal: options.signal });
  }

  async #receive(): Promise<void> {
    for (;;) {
      const magic = (await this.#reader.read(4)).readUInt32BE(0);
      if (magic === NBD_SIMPLE_REPLY_MAGIC) await this.#simpleReply(await this.#reader.read(12));
      else if (magic === NBD_STRUCTURED_REPLY_MAGIC) await this.#structuredChunk(decodeStructuredHeader(await this.#reader.read(16)));
      else throw nbdProtocolError(this.label, `a reply with the unknown magic 0x${magic.toString(16).padStart(8, '0')}`);
    }
  }

  #lookup(handle: bigint): Pending {
    const pending = this.#pending.get(handle);
    if (!pending) throw nbdProtocolError(this.label, `a reply to handle ${handle}, which has no request in flight`);
    return pending;
  }

  #serverError(pending: Pending, errno: number, message: string): InstanceImagesError {
    const name = nbdErrnoName(errno);
    const text = message.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
    return new InstanceImagesError(
      'COMMAND_FAILED',
      `${this.label}: the NBD server failed the ${pending.kind} of ${pending.length} bytes at ${pending.offset}: ${name}${text ? ` (${text})` : ''}`,
      {
        details: { nbdError: name },
      },
    );
  }

  #finish(handle: bigint, pending: Pending, error: InstanceImagesError | null): void {
    this.#pending.delete(handle);
    this.#release();
    pending.settle(error);
    this.#checkDrained();
  }

  async #simpleReply(rest: Buffer): Promise<void> {
    const { error, handle } = decodeSimpleReply(rest);
    const pending = this.#lookup(handle);
    if (error !== 0) return this.#finish(handle, pending, this.#serverError(pending, error, ''));
    if (pending.kind === 'block-status') throw nbdProtocolError(this.label, 'a simple reply without status to BLOCK_STATUS');
    if (pending.kind !== 'read') return this.#finish(handle, pending, null);
    if ((pending.coverage as Coverage).covered > 0)
      throw nbdProtocolError(this.label, 'a simple reply after structured chunks for the same read');
    // A simple reply carries exactly the bytes asked for: bounded by the request.
    await this.#reader.consume(pending.length, (piece, at) => pending.target?.set(piece, pending.targetOffset + at));
    this.#stats.dataBytesReceived += pending.length;
    this.#finish(handle, pending, null);
  }

  async #structuredChunk(header: StructuredChunkHeader): Promise<void> {
    const pending = this.#lookup(header.handle);
    if (!this.info.structuredReplies) throw nbdProtocolError(this.label, 'a structured reply, which was not negotiated');
    const { type, length } = header;
    if (type === NBD_REPLY_TYPE_NONE) {
      if (length !== 0 || (header.flags & NBD_REPLY_FLAG_DONE) === 0)
        throw nbdProtocolError(this.label, 'NBD_REPLY_TYPE_NONE with a payload or without the DONE flag');
    } else if (type === NBD_REPLY_TYPE_OFFSET_DATA || type === NBD_REPLY_TYPE_OFFSET_HOLE) {
      await this.#contentChunk(pending, type, length);
    } else if (type === NBD_REPLY_TYPE_BLOCK_STATUS) {
      if (pending.kind !== 'block-status') throw nbdProtocolError(this.label, `block status in reply to a ${pending.kind}`);
      if (length > 4 + 8 * this.#maxExtents)
        throw nbdProtocolError(this.label, `a block status reply of ${length} bytes (more than ${this.#maxExtents} descriptors)`);
      const { contextId, descriptors } = decodeBlockStatus(await this.#reader.read(length), pending.length, this.label);
      if (!this.#contextNames.has(contextId))
        throw nbdProtocolError(this.label, `block status for context id ${contextId}, which was not negotiated`);
      if (pending.statuses.has(contextId)) throw nbdProtocolError(this.label, `two block status chunks for context id ${contextId}`);
      pending.statuses.set(contextId, descriptors);
    } else if (type & NBD_REPLY_TYPE_ERROR_BIT) {
      if (length > MAX_ERROR_CHUNK) throw nbdProtocolError(this.label, `an error chunk of ${length} bytes`);
      const chunk = decodeErrorChunk(type, await this.#reader.read(length), this.label);
      if (chunk.errno === 0) throw nbdProtocolError(this.label, 'an error chunk with error value 0');
      if (chunk.offset !== undefined && (chunk.offset < pending.offset || chunk.offset >= pending.offset + pending.length))
        throw nbdProtocolError(this.label, 'an error offset outside the request');
      pending.error ??= this.#serverError(pending, chunk.errno, chunk.message);
    } else {
      throw nbdProtocolError(this.label, `an unknown reply chunk type ${type}`);
    }
    if ((header.flags & NBD_REPLY_FLAG_DONE) === 0) return;
    if (!pending.error && pending.coverage && !pending.coverage.complete) {
      throw nbdProtocolError(this.label, `a read reported done after ${pending.coverage.covered} of ${pending.length} bytes`);
    }
    if (!pending.error && pending.kind === 'block-status' && pending.statuses.size !== this.#contextNames.size) {
      throw nbdProtocolError(this.label, `block status for ${pending.statuses.size} of ${this.#contextNames.size} negotiated contexts`);
    }
    this.#finish(header.handle, pending, pending.error);
  }

  async #contentChunk(pending: Pending, type: number, length: number): Promise<void> {
    const coverage = pending.coverage;
    if (!coverage) throw nbdProtocolError(this.label, `read data in reply to a ${pending.kind}`);
    const isData = type === NBD_REPLY_TYPE_OFFSET_DATA;
    // Never trust the chunk's length beyond the request: checked before any payload byte is taken.
    if (isData ? length < 9 || length - 8 > pending.length : length !== 12)
      throw nbdProtocolError(this.label, `a ${isData ? 'data' : 'hole'} chunk of ${length} bytes for a read of ${pending.length}`);
    const head = await this.#reader.read(isData ? 8 : 12);
    const offset = head.readBigUInt64BE(0);
    const size = isData ? length - 8 : head.readUInt32BE(8);
    const relative = offset - BigInt(pending.offset);
    const problem =
      relative < 0n || relative > BigInt(pending.length) ? 'an offset outside the request' : coverage.add(Number(relative), size);
    if (problem) throw nbdProtocolError(this.label, `a ${isData ? 'data' : 'hole'} chunk with ${problem}`);
    const at = pending.targetOffset + Number(relative);
    if (isData) {
      await this.#reader.consume(size, (piece, pieceAt) => pending.target?.set(piece, at + pieceAt));
      this.#stats.dataBytesReceived += size;
    } else {
      pending.target?.fill(0, at, at + size);
    }
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.#failure && (this.#accepted > 0 || this.#pending.size > 0)) await new Promise<void>((resolve) => (this.#drained = resolve));
      if (!this.#failure) {
        this.#stream.write(encodeRequest({ flags: 0, type: NBD_CMD_DISC, handle: this.#nextHandle++, offset: 0, length: 0 }));
        this.#stream.end();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5000);
          this.#stream.once('close', () => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      this.#fail(new InstanceImagesError('INVALID_STATE', `${this.label}: the connection is closed`));
    })();
    return this.#closing;
  }

  destroy(error?: InstanceImagesError): void {
    this.#fail(error ?? new InstanceImagesError('INVALID_STATE', `${this.label}: the connection was closed`));
  }
}
