/**
 * The fixed newstyle negotiation: structured replies, metadata contexts, then `NBD_OPT_GO` with the
 * export's size, flags and block size constraints. Every option reply is bounded in size and count.
 * @module
 */
import type { Writable } from 'node:stream';
import { InstanceImagesError } from '../../src/errors';
import type { ByteReader } from './byte-reader';
import {
  decodeGreeting,
  decodeInfo,
  decodeMetaContext,
  decodeOptionReplyHeader,
  encodeClientFlags,
  encodeGoPayload,
  encodeMetaContextPayload,
  encodeOption,
  NBD_FLAG_CAN_MULTI_CONN,
  NBD_FLAG_HAS_FLAGS,
  NBD_FLAG_READ_ONLY,
  NBD_INFO_BLOCK_SIZE,
  NBD_MAX_STRING,
  NBD_OPT_GO,
  NBD_OPT_SET_META_CONTEXT,
  NBD_OPT_STRUCTURED_REPLY,
  NBD_REP_ACK,
  NBD_REP_FLAG_ERROR,
  NBD_REP_INFO,
  NBD_REP_META_CONTEXT,
  nbdProtocolError,
  optionErrorName,
  type OptionReplyHeader,
} from './protocol';

/** Block size constraints an export announced (`NBD_INFO_BLOCK_SIZE`). */
export interface NbdBlockSize {
  /** Offsets and lengths of requests are multiples of this (1 when not announced). */
  minimum: number;
  /** The size the server handles best. */
  preferred: number;
  /** The longest request the server accepts. */
  maximum: number;
}

/** What the negotiation established about the export. */
export interface NbdExportInfo {
  /** The export's name. */
  name: string;
  /** Size in bytes. */
  size: number;
  /** True when the server refuses writes. */
  readOnly: boolean;
  /** True when the server allows several connections to the export to be used together. */
  canMultiConn: boolean;
  /** Raw transmission flags (`NBD_FLAG_*`). */
  transmissionFlags: number;
  /** Block size constraints (defaults of the protocol when the server announced none). */
  blockSize: NbdBlockSize;
  /** True when structured replies (sparse reads, block status) were negotiated. */
  structuredReplies: boolean;
  /** The metadata contexts the server agreed to, by name, with the id it gave each. */
  metaContexts: ReadonlyMap<string, number>;
}

/** The largest option reply payload accepted: a context name or message of the longest allowed string. */
const MAX_OPTION_REPLY = 8 + NBD_MAX_STRING;
/** Informational replies (NAME, DESCRIPTION, unknown infos) accepted before the final one. */
const MAX_INFO_REPLIES = 16;
/** The protocol's default request limit when a server announces none. */
const DEFAULT_MAX_REQUEST = 32 * 1024 * 1024;

/** An option reply: its header and its (bounded) payload. */
async function readOptionReply(reader: ByteReader, option: number, label: string): Promise<OptionReplyHeader & { payload: Buffer }> {
  const header = decodeOptionReplyHeader(await reader.read(20), label);
  if (header.option !== option) throw nbdProtocolError(label, `a reply to option ${header.option} while option ${option} was asked`);
  if (header.length > MAX_OPTION_REPLY)
    throw nbdProtocolError(label, `an option reply of ${header.length} bytes (at most ${MAX_OPTION_REPLY} accepted)`);
  return { ...header, payload: await reader.read(header.length) };
}

/** The server's text of an option error, made printable and short. */
function serverText(payload: Buffer): string {
  const text = payload
    .toString('utf8')
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 200);
  return text.length > 0 ? ` (${text})` : '';
}

function optionRefused(label: string, what: string, reply: OptionReplyHeader & { payload: Buffer }): InstanceImagesError {
  const name = optionErrorName(reply.type);
  const hint =
    name === 'NBD_REP_ERR_UNKNOWN'
      ? ' — no export by that name'
      : name === 'NBD_REP_ERR_TLS_REQD'
        ? ' — the server requires TLS, which this client does not speak'
        : '';
  return new InstanceImagesError('COMMAND_FAILED', `${label}: the NBD server refused ${what}: ${name}${hint}${serverText(reply.payload)}`, {
    details: { nbd: name },
  });
}

async function negotiateStructuredReplies(reader: ByteReader, out: Writable, label: string): Promise<boolean> {
  out.write(encodeOption(NBD_OPT_STRUCTURED_REPLY));
  const reply = await readOptionReply(reader, NBD_OPT_STRUCTURED_REPLY, label);
  if (reply.type === NBD_REP_ACK) {
    if (reply.length !== 0) throw nbdProtocolError(label, 'NBD_REP_ACK with a payload');
    return true;
  }
  if (reply.type & NBD_REP_FLAG_ERROR) return false; // an old server: simple replies only
  throw nbdProtocolError(label, `reply type ${reply.type} to NBD_OPT_STRUCTURED_REPLY`);
}

async function negotiateMetaContexts(
  reader: ByteReader,
  out: Writable,
  exportName: string,
  queries: readonly string[],
  label: string,
): Promise<Map<string, number>> {
  const contexts = new Map<string, number>();
  out.write(encodeOption(NBD_OPT_SET_META_CONTEXT, encodeMetaContextPayload(exportName, queries, label)));
  for (;;) {
    const reply = await readOptionReply(reader, NBD_OPT_SET_META_CONTEXT, label);
    if (reply.type === NBD_REP_ACK) return contexts;
    if (reply.type === NBD_REP_META_CONTEXT) {
      const { id, name } = decodeMetaContext(reply.payload, label);
      // Only exact names are queried, so the server may only agree to those, each once.
      if (!queries.includes(name) || contexts.has(name))
        throw nbdProtocolError(label, `a metadata context that was not asked for: ${JSON.stringify(name.slice(0, 100))}`);
      if ([...contexts.values()].includes(id)) throw nbdProtocolError(label, `context id ${id} given twice`);
      contexts.set(name, id);
      continue;
    }
    if (reply.type & NBD_REP_FLAG_ERROR) {
      if (optionErrorName(reply.type) === 'NBD_REP_ERR_UNSUP') return new Map();
      throw optionRefused(label, 'the metadata contexts', reply);
    }
    throw nbdProtocolError(label, `reply type ${reply.type} to NBD_OPT_SET_META_CONTEXT`);
  }
}

async function go(reader: ByteReader, out: Writable, exportName: string, label: string) {
  out.write(encodeOption(NBD_OPT_GO, encodeGoPayload(exportName, [NBD_INFO_BLOCK_SIZE], label)));
  let exportInfo: { size: number; transmissionFlags: number } | null = null;
  let blockSize: NbdBlockSize | null = null;
  for (let replies = 0; ; replies++) {
    const reply = await readOptionReply(reader, NBD_OPT_GO, label);
    if (reply.type === NBD_REP_ACK) {
      if (!exportInfo) throw nbdProtocolError(label, 'NBD_OPT_GO succeeded without NBD_INFO_EXPORT');
      return { ...exportInfo, blockSize };
    }
    if (reply.type & NBD_REP_FLAG_ERROR) throw optionRefused(label, `the export ${JSON.stringify(exportName)}`, reply);
    if (reply.type !== NBD_REP_INFO) throw nbdProtocolError(label, `reply type ${reply.type} to NBD_OPT_GO`);
    if (replies >= MAX_INFO_REPLIES) throw nbdProtocolError(label, `more than ${MAX_INFO_REPLIES} info replies to NBD_OPT_GO`);
    const info = decodeInfo(reply.payload, label);
    if (info.type === 'export') exportInfo = { size: info.size, transmissionFlags: info.transmissionFlags };
    else if (info.type === 'block-size') blockSize = { minimum: info.minimum, preferred: info.preferred, maximum: info.maximum };
  }
}

/**
 * Runs the whole negotiation on a fresh connection and returns the export's facts.
 * @throws COMMAND_FAILED when the peer is not a fixed-newstyle NBD server, breaks the protocol or
 * refuses the export; the reader's closed error when the connection ends.
 */
export async function negotiate(
  reader: ByteReader,
  out: Writable,
  exportName: string,
  queries: readonly string[],
  label: string,
): Promise<NbdExportInfo> {
  const { handshakeFlags } = decodeGreeting(await reader.read(18), label);
  out.write(encodeClientFlags(handshakeFlags));
  const structuredReplies = await negotiateStructuredReplies(reader, out, label);
  const metaContexts =
    structuredReplies && queries.length > 0
      ? await negotiateMetaContexts(reader, out, exportName, queries, label)
      : new Map<string, number>();
  const exported = await go(reader, out, exportName, label);
  if ((exported.transmissionFlags & NBD_FLAG_HAS_FLAGS) === 0)
    throw nbdProtocolError(label, 'transmission flags without NBD_FLAG_HAS_FLAGS');
  return {
    name: exportName,
    size: exported.size,
    readOnly: (exported.transmissionFlags & NBD_FLAG_READ_ONLY) !== 0,
    canMultiConn: (exported.transmissionFlags & NBD_FLAG_CAN_MULTI_CONN) !== 0,
    transmissionFlags: exported.transmissionFlags,
    blockSize: exported.blockSize ?? { minimum: 1, preferred: 4096, maximum: DEFAULT_MAX_REQUEST },
    structuredReplies,
    metaContexts,
  };
}
