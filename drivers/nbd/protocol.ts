/**
 * The NBD wire format (fixed newstyle negotiation, transmission requests, simple and structured
 * replies) as pure encode/decode functions over Buffers. Nothing here does I/O; every decoder checks
 * the lengths it is given and throws a protocol error for anything a correct server cannot send.
 * Numbers are big-endian; 64-bit offsets and sizes are kept as JS numbers and refused above 2^53.
 * @module
 */
import { InstanceImagesError } from '../../src/errors';

/** `NBDMAGIC`, the first 8 bytes every server sends. */
export const NBD_MAGIC = 0x4e42444d41474943n;
/** `IHAVEOPT`: newstyle negotiation follows (and prefixes every client option). */
export const NBD_OPTS_MAGIC = 0x49484156454f5054n;
/** The oldstyle greeting's second magic (not supported: no option haggling is possible). */
export const NBD_OLDSTYLE_MAGIC = 0x00420281861253n;
/** Prefix of every option reply. */
export const NBD_OPT_REPLY_MAGIC = 0x3e889045565a9n;
/** Prefix of every transmission request. */
export const NBD_REQUEST_MAGIC = 0x25609513;
/** Prefix of a simple reply. */
export const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
/** Prefix of a structured reply chunk. */
export const NBD_STRUCTURED_REPLY_MAGIC = 0x668e33ef;

/** Handshake flag: the server speaks the fixed newstyle negotiation. */
export const NBD_FLAG_FIXED_NEWSTYLE = 1 << 0;
/** Handshake flag: the server can skip the 124 zero bytes of NBD_OPT_EXPORT_NAME. */
export const NBD_FLAG_NO_ZEROES = 1 << 1;
/** Client flag: the client speaks the fixed newstyle negotiation. */
export const NBD_FLAG_C_FIXED_NEWSTYLE = 1 << 0;
/** Client flag: no zero padding wanted. */
export const NBD_FLAG_C_NO_ZEROES = 1 << 1;

/** Option: end the negotiation. */
export const NBD_OPT_ABORT = 2;
/** Option: choose the export and enter the transmission phase, with infos. */
export const NBD_OPT_GO = 7;
/** Option: structured replies. */
export const NBD_OPT_STRUCTURED_REPLY = 8;
/** Option: select metadata contexts for block status. */
export const NBD_OPT_SET_META_CONTEXT = 10;

/** Option reply: done (or accepted). */
export const NBD_REP_ACK = 1;
/** Option reply: one info item about the export. */
export const NBD_REP_INFO = 3;
/** Option reply: one agreed metadata context. */
export const NBD_REP_META_CONTEXT = 4;
/** Bit 31 of an option reply type marks an error. */
export const NBD_REP_FLAG_ERROR = 0x80000000;

/** Info item: export size and transmission flags. */
export const NBD_INFO_EXPORT = 0;
/** Info item: block size constraints. */
export const NBD_INFO_BLOCK_SIZE = 3;

/** Transmission flag: always set by a server. */
export const NBD_FLAG_HAS_FLAGS = 1 << 0;
/** Transmission flag: the export is read-only. */
export const NBD_FLAG_READ_ONLY = 1 << 1;
/** Transmission flag: the server accepts NBD_CMD_FLUSH. */
export const NBD_FLAG_SEND_FLUSH = 1 << 2;
/** Transmission flag: the server accepts NBD_CMD_FLAG_FUA. */
export const NBD_FLAG_SEND_FUA = 1 << 3;
/** Transmission flag: the server accepts NBD_CMD_WRITE_ZEROES. */
export const NBD_FLAG_SEND_WRITE_ZEROES = 1 << 6;
/** Transmission flag: several connections may be used together. */
export const NBD_FLAG_CAN_MULTI_CONN = 1 << 8;

/** Command: read. */
export const NBD_CMD_READ = 0;
/** Command: write the payload that follows the request. */
export const NBD_CMD_WRITE = 1;
/** Command: soft disconnect (no reply). */
export const NBD_CMD_DISC = 2;
/** Command: make every completed write durable. */
export const NBD_CMD_FLUSH = 3;
/** Command: write zeroes (no payload). */
export const NBD_CMD_WRITE_ZEROES = 6;
/** Command: block status in the negotiated contexts. */
export const NBD_CMD_BLOCK_STATUS = 7;

/** Command flag: force unit access (the write is durable when acknowledged). */
export const NBD_CMD_FLAG_FUA = 1 << 0;
/** Command flag of WRITE_ZEROES: allocate the range instead of punching a hole. */
export const NBD_CMD_FLAG_NO_HOLE = 1 << 1;

/** Structured reply flag: the last chunk of the reply. */
export const NBD_REPLY_FLAG_DONE = 1 << 0;
/** Chunk type: nothing (ends a reply). */
export const NBD_REPLY_TYPE_NONE = 0;
/** Chunk type: data at an offset. */
export const NBD_REPLY_TYPE_OFFSET_DATA = 1;
/** Chunk type: a run of zeroes at an offset. */
export const NBD_REPLY_TYPE_OFFSET_HOLE = 2;
/** Chunk type: block status descriptors of one context. */
export const NBD_REPLY_TYPE_BLOCK_STATUS = 5;
/** Chunk type: an error. */
export const NBD_REPLY_TYPE_ERROR = 0x8001;
/** Chunk type: an error at an offset. */
export const NBD_REPLY_TYPE_ERROR_OFFSET = 0x8002;
/** Bit 15 of a chunk type marks an error chunk (known or not). */
export const NBD_REPLY_TYPE_ERROR_BIT = 0x8000;

/** `base:allocation` status flag: not allocated (a hole). */
export const NBD_STATE_HOLE = 1 << 0;
/** `base:allocation` status flag: reads as zeroes. */
export const NBD_STATE_ZERO = 1 << 1;
/** `qemu:dirty-bitmap:*` status flag. */
export const NBD_STATE_DIRTY = 1 << 0;

/** The longest string (export name, context name, message) the protocol allows. */
export const NBD_MAX_STRING = 4096;
/** Size of a transmission request header. */
export const NBD_REQUEST_SIZE = 28;

const OPTION_REPLY_ERRORS: Record<number, string> = {
  1: 'NBD_REP_ERR_UNSUP',
  2: 'NBD_REP_ERR_POLICY',
  3: 'NBD_REP_ERR_INVALID',
  4: 'NBD_REP_ERR_PLATFORM',
  5: 'NBD_REP_ERR_TLS_REQD',
  6: 'NBD_REP_ERR_UNKNOWN',
  7: 'NBD_REP_ERR_SHUTDOWN',
  8: 'NBD_REP_ERR_BLOCK_SIZE_REQD',
  9: 'NBD_REP_ERR_TOO_BIG',
};

const ERRNO_NAMES: Record<number, string> = {
  1: 'EPERM',
  5: 'EIO',
  12: 'ENOMEM',
  22: 'EINVAL',
  28: 'ENOSPC',
  75: 'EOVERFLOW',
  95: 'ENOTSUP',
  108: 'ESHUTDOWN',
};

/** The name of an NBD error value (`EIO`), or `error N` for one the protocol does not define. */
export function nbdErrnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `error ${errno}`;
}

/** The name of an option reply error type (`NBD_REP_ERR_UNKNOWN`). */
export function optionErrorName(type: number): string {
  const code = type & 0x7fffffff;
  return OPTION_REPLY_ERRORS[code] ?? `option error ${code}`;
}

/**
 * A protocol violation by the peer (or a peer that is not an NBD server): COMMAND_FAILED, with the
 * reason in `details.nbd`. The connection is unusable afterwards.
 */
export function nbdProtocolError(label: string, message: string, details: Record<string, unknown> = {}): InstanceImagesError {
  return new InstanceImagesError('COMMAND_FAILED', `${label}: the NBD server broke the protocol: ${message}`, {
    details: { ...details, nbd: 'protocol-violation' },
  });
}

function u64(buffer: Buffer, at: number, label: string, field: string): number {
  const value = buffer.readBigUInt64BE(at);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw nbdProtocolError(label, `${field} ${value} is beyond 2^53`);
  return Number(value);
}

function utf8(value: string, label: string, field: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > NBD_MAX_STRING || value.includes('\0')) {
    throw new InstanceImagesError('VALIDATION_FAILED', `${label}: ${field} must be at most ${NBD_MAX_STRING} UTF-8 bytes without NUL`, {
      fields: [{ path: field, message: `at most ${NBD_MAX_STRING} bytes, no NUL` }],
    });
  }
  return bytes;
}

/** Decodes the 18-byte server greeting; returns the handshake flags. */
export function decodeGreeting(buffer: Buffer, label: string): { handshakeFlags: number } {
  if (buffer.length !== 18) throw nbdProtocolError(label, `greeting of ${buffer.length} bytes`);
  if (buffer.readBigUInt64BE(0) !== NBD_MAGIC)
    throw nbdProtocolError(label, 'the peer did not greet with NBDMAGIC (is this an NBD socket?)');
  const second = buffer.readBigUInt64BE(8);
  if (second === NBD_OLDSTYLE_MAGIC)
    throw nbdProtocolError(label, 'the server speaks the oldstyle handshake, which cannot negotiate structured replies or block status');
  if (second !== NBD_OPTS_MAGIC) throw nbdProtocolError(label, 'unknown handshake magic');
  const handshakeFlags = buffer.readUInt16BE(16);
  if ((handshakeFlags & NBD_FLAG_FIXED_NEWSTYLE) === 0)
    throw nbdProtocolError(label, 'the server does not offer the fixed newstyle handshake');
  return { handshakeFlags };
}

/** The 4-byte client flags answering a greeting. */
export function encodeClientFlags(handshakeFlags: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(NBD_FLAG_C_FIXED_NEWSTYLE | (handshakeFlags & NBD_FLAG_NO_ZEROES ? NBD_FLAG_C_NO_ZEROES : 0));
  return buffer;
}

/** An option request: `IHAVEOPT`, option, payload length, payload. */
export function encodeOption(option: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(16);
  header.writeBigUInt64BE(NBD_OPTS_MAGIC, 0);
  header.writeUInt32BE(option, 8);
  header.writeUInt32BE(payload.length, 12);
  return Buffer.concat([header, payload]);
}

/** The payload of `NBD_OPT_GO`: the export name and the info items asked for. */
export function encodeGoPayload(exportName: string, infos: readonly number[], label: string): Buffer {
  const name = utf8(exportName, label, 'exportName');
  const buffer = Buffer.alloc(4 + name.length + 2 + 2 * infos.length);
  buffer.writeUInt32BE(name.length, 0);
  name.copy(buffer, 4);
  buffer.writeUInt16BE(infos.length, 4 + name.length);
  infos.forEach((info, i) => buffer.writeUInt16BE(info, 6 + name.length + 2 * i));
  return buffer;
}

/** The payload of `NBD_OPT_SET_META_CONTEXT`: the export name and the context queries. */
export function encodeMetaContextPayload(exportName: string, queries: readonly string[], label: string): Buffer {
  const parts: Buffer[] = [];
  const name = utf8(exportName, label, 'exportName');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(name.length);
  parts.push(head, name);
  const count = Buffer.alloc(4);
  count.writeUInt32BE(queries.length);
  parts.push(count);
  for (const query of queries) {
    const bytes = utf8(query, label, 'metaContexts');
    const length = Buffer.alloc(4);
    length.writeUInt32BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}

/** The 20-byte header of an option reply. */
export interface OptionReplyHeader {
  /** The option this replies to. */
  option: number;
  /** `NBD_REP_*`; bit 31 set for errors. */
  type: number;
  /** Payload bytes that follow. */
  length: number;
}

/** Decodes an option reply header. */
export function decodeOptionReplyHeader(buffer: Buffer, label: string): OptionReplyHeader {
  if (buffer.length !== 20) throw nbdProtocolError(label, `option reply header of ${buffer.length} bytes`);
  if (buffer.readBigUInt64BE(0) !== NBD_OPT_REPLY_MAGIC) throw nbdProtocolError(label, 'bad option reply magic');
  return { option: buffer.readUInt32BE(8), type: buffer.readUInt32BE(12), length: buffer.readUInt32BE(16) };
}

/** One `NBD_REP_INFO` item this client understands (others are reported as `other`). */
export type ExportInfoItem =
  | { type: 'export'; size: number; transmissionFlags: number }
  | { type: 'block-size'; minimum: number; preferred: number; maximum: number }
  | { type: 'other'; info: number };

const isPowerOfTwo = (n: number) => n > 0 && (n & (n - 1)) === 0;

/** Decodes the payload of `NBD_REP_INFO`, checking the sizes the protocol fixes. */
export function decodeInfo(payload: Buffer, label: string): ExportInfoItem {
  if (payload.length < 2) throw nbdProtocolError(label, 'NBD_REP_INFO without an info type');
  const info = payload.readUInt16BE(0);
  if (info === NBD_INFO_EXPORT) {
    if (payload.length !== 12) throw nbdProtocolError(label, `NBD_INFO_EXPORT of ${payload.length} bytes (12 expected)`);
    return { type: 'export', size: u64(payload, 2, label, 'export size'), transmissionFlags: payload.readUInt16BE(10) };
  }
  if (info === NBD_INFO_BLOCK_SIZE) {
    if (payload.length !== 14) throw nbdProtocolError(label, `NBD_INFO_BLOCK_SIZE of ${payload.length} bytes (14 expected)`);
    const minimum = payload.readUInt32BE(2);
    const preferred = payload.readUInt32BE(6);
    const maximum = payload.readUInt32BE(10);
    if (
      !isPowerOfTwo(minimum) ||
      minimum > 65536 ||
      !isPowerOfTwo(preferred) ||
      preferred < minimum ||
      maximum < minimum ||
      (maximum !== 0xffffffff && maximum % minimum !== 0)
    ) {
      throw nbdProtocolError(label, `inconsistent block size constraints (minimum ${minimum}, preferred ${preferred}, maximum ${maximum})`);
    }
    return { type: 'block-size', minimum, preferred, maximum };
  }
  return { type: 'other', info };
}

/** Decodes the payload of `NBD_REP_META_CONTEXT`: the id the server gave a context and its name. */
export function decodeMetaContext(payload: Buffer, label: string): { id: number; name: string } {
  if (payload.length < 5 || payload.length > 4 + NBD_MAX_STRING)
    throw nbdProtocolError(label, `NBD_REP_META_CONTEXT of ${payload.length} bytes`);
  return { id: payload.readUInt32BE(0), name: payload.subarray(4).toString('utf8') };
}

/** A transmission request. */
export interface NbdRequest {
  /** `NBD_CMD_FLAG_*`. */
  flags: number;
  /** `NBD_CMD_*`. */
  type: number;
  /** The 64-bit handle (cookie) the reply echoes. */
  handle: bigint;
  /** Byte offset in the export. */
  offset: number;
  /** Byte length (32-bit). */
  length: number;
}

/** Encodes a 28-byte request header. */
export function encodeRequest(request: NbdRequest): Buffer {
  const buffer = Buffer.alloc(NBD_REQUEST_SIZE);
  buffer.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  buffer.writeUInt16BE(request.flags, 4);
  buffer.writeUInt16BE(request.type, 6);
  buffer.writeBigUInt64BE(request.handle, 8);
  buffer.writeBigUInt64BE(BigInt(request.offset), 16);
  buffer.writeUInt32BE(request.length, 24);
  return buffer;
}

/** The rest of a simple reply after its magic: the error value and the handle (12 bytes). */
export function decodeSimpleReply(buffer: Buffer): { error: number; handle: bigint } {
  return { error: buffer.readUInt32BE(0), handle: buffer.readBigUInt64BE(4) };
}

/** The rest of a structured reply chunk header after its magic (16 bytes). */
export interface StructuredChunkHeader {
  /** `NBD_REPLY_FLAG_*`. */
  flags: number;
  /** `NBD_REPLY_TYPE_*`. */
  type: number;
  /** The request's handle. */
  handle: bigint;
  /** Payload bytes that follow. */
  length: number;
}

/** Decodes the rest of a structured reply chunk header. */
export function decodeStructuredHeader(buffer: Buffer): StructuredChunkHeader {
  return {
    flags: buffer.readUInt16BE(0),
    type: buffer.readUInt16BE(2),
    handle: buffer.readBigUInt64BE(4),
    length: buffer.readUInt32BE(12),
  };
}

/** One block status descriptor: a run of bytes and its status flags. */
export interface BlockStatusDescriptor {
  /** Bytes in the run (never 0). */
  length: number;
  /** Status flags; their meaning depends on the context. */
  flags: number;
}

/** Decodes an `NBD_REPLY_TYPE_BLOCK_STATUS` payload, checking that the runs fit in `requested` bytes. */
export function decodeBlockStatus(
  payload: Buffer,
  requested: number,
  label: string,
): { contextId: number; descriptors: BlockStatusDescriptor[] } {
  if (payload.length < 12 || (payload.length - 4) % 8 !== 0)
    throw nbdProtocolError(label, `block status payload of ${payload.length} bytes`);
  const contextId = payload.readUInt32BE(0);
  const descriptors: BlockStatusDescriptor[] = [];
  let total = 0;
  for (let at = 4; at < payload.length; at += 8) {
    const length = payload.readUInt32BE(at);
    if (length === 0) throw nbdProtocolError(label, 'a block status descriptor of length 0');
    total += length;
    if (total > requested) throw nbdProtocolError(label, `block status describes ${total} bytes, more than the ${requested} asked for`);
    descriptors.push({ length, flags: payload.readUInt32BE(at + 4) });
  }
  return { contextId, descriptors };
}

/** Decodes an error chunk payload (`NBD_REPLY_TYPE_ERROR`, `_ERROR_OFFSET` or an unknown error type). */
export function decodeErrorChunk(type: number, payload: Buffer, label: string): { errno: number; message: string; offset?: number } {
  if (payload.length < 6) throw nbdProtocolError(label, `error chunk of ${payload.length} bytes`);
  const errno = payload.readUInt32BE(0);
  const messageLength = payload.readUInt16BE(4);
  if (6 + messageLength > payload.length) throw nbdProtocolError(label, 'an error message longer than its chunk');
  const message = payload.subarray(6, 6 + messageLength).toString('utf8');
  if (type === NBD_REPLY_TYPE_ERROR_OFFSET) {
    if (payload.length !== 6 + messageLength + 8) throw nbdProtocolError(label, 'NBD_REPLY_TYPE_ERROR_OFFSET of the wrong size');
    return { errno, message, offset: u64(payload, 6 + messageLength, label, 'error offset') };
  }
  return { errno, message };
}
