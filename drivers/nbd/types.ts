/**
 * The public shapes of the NBD client: options, the client contract, extents and counters.
 * @module
 */
import type { InstanceImagesError } from '../../src/errors';
import type { NbdExportInfo } from './negotiate';

/** The metadata context of allocation status (`NBD_STATE_HOLE`, `NBD_STATE_ZERO`). */
export const BASE_ALLOCATION = 'base:allocation';

/** The metadata context name of a QEMU dirty bitmap exported under `bitmap` (`qemu:dirty-bitmap:NAME`). */
export function dirtyBitmapContext(bitmap: string): string {
  return `qemu:dirty-bitmap:${bitmap}`;
}

/** Settings of {@link connectNbd}. */
export interface NbdConnectOptions {
  /** The export to open (default `''`, the server's default export). */
  exportName?: string;
  /** Metadata contexts to negotiate for BLOCK_STATUS (default `['base:allocation']`). */
  metaContexts?: readonly string[];
  /** Label for messages (default `NBD export "NAME"`). */
  label?: string;
  /** Requests in flight at most; more wait for a free slot (default 16). */
  maxInFlight?: number;
  /** Longest READ accepted, in bytes; capped by the server's maximum block size (default 32 MiB). */
  maxReadBytes?: number;
  /** Longest WRITE sent, in bytes; capped by the server's maximum block size (default 32 MiB). */
  maxWriteBytes?: number;
  /** Descriptors accepted in one block status reply per context (default 131 072, QEMU's own limit). */
  maxExtentsPerReply?: number;
  /** Time allowed for the negotiation, in ms (default 30 000). */
  handshakeTimeoutMs?: number;
  /**
   * Time a request may wait for its reply, in ms (default 120 000; 0 for none). A server that does not
   * answer in time cannot be trusted to answer later, so the whole connection fails with TIMEOUT.
   */
  requestTimeoutMs?: number;
  /** Cancels the negotiation (CANCELLED); later requests take their own signals. */
  signal?: AbortSignal;
}

/** Options of one request. */
export interface NbdRequestOptions {
  /**
   * Gives up on the request (CANCELLED). The server still answers; the client reads the reply and
   * drops it, and the request keeps its in-flight slot until then.
   */
  signal?: AbortSignal;
}

/** Options of {@link NbdClient.read}. */
export interface NbdReadOptions extends NbdRequestOptions {
  /** Read into this buffer (at `intoOffset`) instead of a new one. */
  into?: Buffer;
  /** Position in `into` (default 0). */
  intoOffset?: number;
  /**
   * Take the reply and drop its bytes: no buffer is allocated and the read resolves to an empty
   * buffer (`into` is ignored). With structured replies, a read of a hole costs the server no data
   * (see `primeBytes` of {@link readNbdChunks}).
   */
  discard?: boolean;
}

/** Options of {@link NbdClient.write}. */
export interface NbdWriteOptions extends NbdRequestOptions {
  /** Forced unit access: the write is durable once acknowledged (INVALID_STATE when the server cannot). */
  fua?: boolean;
}

/** Options of {@link NbdClient.writeZeroes}. */
export interface NbdWriteZeroesOptions extends NbdWriteOptions {
  /** Allocate the range (`NBD_CMD_FLAG_NO_HOLE`) instead of letting the server punch a hole. */
  allocate?: boolean;
}

/** A run of bytes with one status in one metadata context. */
export interface NbdExtent {
  /** Start in the export. */
  offset: number;
  /** Bytes in the run. */
  length: number;
  /** The context's status flags (`NBD_STATE_HOLE | NBD_STATE_ZERO` for allocation, `NBD_STATE_DIRTY` for a bitmap). */
  flags: number;
}

/** What a client has asked and received (for tests, metrics and benchmarks). */
export interface NbdClientStats {
  /** READ requests sent. */
  readRequests: number;
  /** Bytes those READ requests asked for. */
  readBytesRequested: number;
  /** Data bytes received (holes the server skipped are not counted). */
  dataBytesReceived: number;
  /** BLOCK_STATUS requests sent. */
  blockStatusRequests: number;
  /** WRITE requests sent. */
  writeRequests: number;
  /** Payload bytes those WRITE requests carried. */
  dataBytesSent: number;
  /** WRITE_ZEROES requests sent. */
  writeZeroesRequests: number;
  /** FLUSH requests sent. */
  flushRequests: number;
}

/** An open NBD connection in the transmission phase. */
export interface NbdClient {
  /** Label used in messages. */
  readonly label: string;
  /** The export's size, flags, block size constraints and negotiated contexts. */
  readonly info: NbdExportInfo;
  /** Counters since the connection opened. */
  readonly stats: Readonly<NbdClientStats>;
  /** The longest READ this client sends: the configured limit, the server's maximum, a multiple of its minimum. */
  readonly maxReadBytes: number;
  /**
   * Reads `length` bytes at `offset`. Holes the server reports come back as zeroes.
   * @throws VALIDATION_FAILED for a range outside the export, unaligned to its minimum block size or
   * longer than the read limit; COMMAND_FAILED when the server reports an error (`details.nbdError`)
   * or breaks the protocol; HYPERVISOR_UNREACHABLE when the connection drops; TIMEOUT; CANCELLED;
   * INVALID_STATE after {@link NbdClient.close}.
   */
  read(offset: number, length: number, options?: NbdReadOptions): Promise<Buffer>;
  /**
   * Block status of `[offset, offset + length)` in every negotiated context, by context name. Each
   * list starts at `offset` and is contiguous; the server may describe less than asked (never
   * more), so callers continue from where a list ends.
   * @throws INVALID_STATE when no metadata context was negotiated; otherwise as {@link NbdClient.read}.
   */
  blockStatus(offset: number, length: number, options?: NbdRequestOptions): Promise<Map<string, NbdExtent[]>>;
  /** The longest WRITE this client sends: the configured limit, the server's maximum, a multiple of its minimum. */
  readonly maxWriteBytes: number;
  /**
   * Writes `data` at `offset`. The request takes an in-flight slot until the server acknowledges
   * it, so a caller that awaits a slot-bound number of writes gets backpressure; the buffer must
   * not change until the promise settles.
   * @throws INVALID_STATE for a read-only export (nothing is sent); otherwise as {@link NbdClient.read}
   * (VALIDATION_FAILED above {@link NbdClient.maxWriteBytes}; COMMAND_FAILED with
   * `details.nbdError` `ENOSPC` when the server's disk is full).
   */
  write(offset: number, data: Buffer, options?: NbdWriteOptions): Promise<void>;
  /**
   * Makes `[offset, offset + length)` read as zeroes without sending them.
   * @throws INVALID_STATE for a read-only export or a server without WRITE_ZEROES; otherwise as {@link NbdClient.write}.
   */
  writeZeroes(offset: number, length: number, options?: NbdWriteZeroesOptions): Promise<void>;
  /**
   * Makes every write the server acknowledged before it durable (NBD_CMD_FLUSH).
   * @throws INVALID_STATE for a read-only export or a server without FLUSH; otherwise as {@link NbdClient.read}.
   */
  flush(options?: NbdRequestOptions): Promise<void>;
  /** Waits for requests in flight, sends NBD_CMD_DISC and closes the stream. Idempotent. */
  close(): Promise<void>;
  /** Closes the stream at once (a hard disconnect); requests in flight fail with `error` or INVALID_STATE. */
  destroy(error?: InstanceImagesError): void;
}
