/**
 * A client of libvirt's own RPC protocol (the one `virsh` speaks to the daemon), over any duplex
 * stream to the daemon's unix socket: an SSH stream-local channel to `/var/run/libvirt/libvirt-sock`
 * on a remote hypervisor, or the socket itself on a local one. It carries only the calls a chunked
 * capture makes at its start and end (domain state and XML, checkpoints, the QMP `query-block`, the
 * backup job's begin and abort, the guest agent's freeze and thaw), so that these cost a message
 * each instead of a `virsh` process start and a new daemon connection each.
 *
 * Wire format (libvirt's `src/rpc/virnetprotocol.x` and `src/remote/remote_protocol.x`): each
 * message is a 4-byte length (including itself), a header of six 32-bit words (program, version 1,
 * procedure, type, serial, status) and an XDR body. A call's reply carries its serial; status 1
 * (error) carries a `remote_error`. Events and streams (other message types) are not asked for and
 * are skipped. Names and XML travel as XDR strings: nothing here is ever parsed by a shell.
 * @module
 */
import type { Duplex } from 'node:stream';
import { XdrReader, XdrWriter } from './xdr';

/** libvirt's main RPC program. */
export const REMOTE_PROGRAM = 0x20008086;
/** libvirt's QEMU-specific RPC program (monitor commands). */
export const QEMU_PROGRAM = 0x20008087;

/** The procedures used here (numbers from libvirt's `remote_protocol.x` and `qemu_protocol.x`). */
export const Procedure = {
  connectOpen: 1,
  connectClose: 2,
  domainGetXmlDesc: 14,
  domainLookupByName: 23,
  authList: 66,
  authPolkit: 70,
  domainGetJobInfo: 163,
  domainAbortJob: 164,
  domainGetState: 212,
  domainFsFreeze: 335,
  domainFsThaw: 336,
  domainCheckpointGetXmlDesc: 412,
  domainCheckpointLookupByName: 415,
  domainCheckpointDelete: 417,
  domainBackupBegin: 421,
  /** In {@link QEMU_PROGRAM}. */
  qemuMonitorCommand: 1,
} as const;

/** libvirt error numbers (`virErrorNumber`) this module's callers tell apart. */
export const LibvirtErrorCode = {
  noDomain: 42,
  operationInvalid: 55,
  noDomainCheckpoint: 103,
} as const;

/** Job types of `virDomainGetJobInfo`: none, bounded, unbounded, completed, failed, cancelled. */
export const JOB_TYPES = ['none', 'bounded', 'unbounded', 'completed', 'failed', 'cancelled'] as const;

/** Domain states of `virDomainGetState`, as `virsh domstate` prints them. */
export const DOMAIN_STATES = ['no state', 'running', 'idle', 'paused', 'in shutdown', 'shut off', 'crashed', 'pmsuspended'] as const;

const MESSAGE_CALL = 0;
const MESSAGE_REPLY = 1;
const STATUS_OK = 0;
const STATUS_ERROR = 1;
const HEADER_BYTES = 28;
/** The daemon's own limit on a message (`VIR_NET_MESSAGE_MAX`, libvirt ≥ 8.3; older daemons send less). */
const MESSAGE_MAX = 32 * 1024 * 1024;
const AUTH_NONE = 0;
const AUTH_POLKIT = 2;

/** An error the daemon answered a call with (`virError`): its number, its domain and its message. */
export class LibvirtRpcError extends Error {
  constructor(
    message: string,
    /** `virErrorNumber`; 0 for a failure of the connection itself. */
    readonly code: number,
    /** `virErrorDomain` (which part of libvirt failed). */
    readonly domain: number,
  ) {
    super(message);
    this.name = 'LibvirtRpcError';
  }
}

/** Whether `error` is the connection's own failure (code 0), not an answer libvirt gave. */
export function isConnectionLost(error: unknown): boolean {
  return error instanceof LibvirtRpcError && error.code === 0;
}

/** A domain as the protocol names it (`remote_nonnull_domain`). */
export interface RpcDomain {
  name: string;
  uuid: Buffer;
  id: number;
}

interface Pending {
  resolve: (body: XdrReader) => void;
  reject: (error: Error) => void;
}

function writeDomain(writer: XdrWriter, domain: RpcDomain): XdrWriter {
  return writer.string(domain.name).fixedOpaque(domain.uuid, 16).int(domain.id);
}

function readDomain(reader: XdrReader): RpcDomain {
  return { name: reader.string(), uuid: reader.fixedOpaque(16), id: reader.int() };
}

/** Decodes a `remote_error` body into an error. */
export function decodeRpcError(reader: XdrReader): LibvirtRpcError {
  const code = reader.int();
  const domain = reader.int();
  const message = reader.optionalString();
  return new LibvirtRpcError(message ?? `libvirt error ${code}`, code, domain);
}

/** Frames one call message. */
export function encodeCall(program: number, procedure: number, serial: number, body: Buffer): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(HEADER_BYTES + body.length, 0);
  header.writeUInt32BE(program, 4);
  header.writeUInt32BE(1, 8);
  header.writeInt32BE(procedure, 12);
  header.writeInt32BE(MESSAGE_CALL, 16);
  header.writeUInt32BE(serial, 20);
  header.writeInt32BE(STATUS_OK, 24);
  return Buffer.concat([header, body]);
}

/** One connection to libvirt's daemon (see the module). */
export class LibvirtRpc {
  readonly #stream: Duplex;
  readonly #pending = new Map<number, Pending>();
  #serial = 0;
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #failure: Error | null = null;

  /** Wraps `stream` (not yet opened to a hypervisor: see {@link LibvirtRpc.open}). */
  constructor(
    stream: Duplex,
    readonly label: string,
  ) {
    this.#stream = stream;
    stream.on('data', (chunk: Buffer) => this.#receive(chunk));
    stream.on('error', (error: Error) => this.#fail(new LibvirtRpcError(`${label}: ${error.message}`, 0, 0)));
    stream.on('close', () => this.#fail(new LibvirtRpcError(`${label}: the connection to libvirt closed`, 0, 0)));
    stream.on('end', () => this.#fail(new LibvirtRpcError(`${label}: the connection to libvirt closed`, 0, 0)));
  }

  /**
   * Authenticates (none, or polkit: the daemon checks the peer's uid itself) and opens the
   * hypervisor connection `uri` on `stream`. On failure the stream is destroyed.
   * @throws LibvirtRpcError when the daemon refuses, asks for SASL, or the stream closes.
   */
  static async open(stream: Duplex, uri: string, label: string): Promise<LibvirtRpc> {
    const rpc = new LibvirtRpc(stream, label);
    try {
      const list = await rpc.call(REMOTE_PROGRAM, Procedure.authList);
      const count = list.uint();
      const types = Array.from({ length: Math.min(count, 20) }, () => list.int());
      if (types.length > 0 && !types.includes(AUTH_NONE)) {
        if (!types.includes(AUTH_POLKIT))
          throw new LibvirtRpcError(`${label}: libvirt asks for SASL authentication, which this client does not speak`, 0, 0);
        await rpc.call(REMOTE_PROGRAM, Procedure.authPolkit);
      }
      await rpc.call(REMOTE_PROGRAM, Procedure.connectOpen, new XdrWriter().optionalString(uri).uint(0));
      return rpc;
    } catch (error) {
      rpc.destroy();
      throw error;
    }
  }

  /** Whether the connection failed or was closed. */
  get closed(): boolean {
    return this.#failure !== null;
  }

  /** Sends one call and resolves with its reply's body. @throws LibvirtRpcError */
  call(program: number, procedure: number, args?: XdrWriter): Promise<XdrReader> {
    if (this.#failure !== null) return Promise.reject(this.#failure);
    this.#serial = (this.#serial + 1) >>> 0;
    const serial = this.#serial;
    return new Promise<XdrReader>((resolve, reject) => {
      this.#pending.set(serial, { resolve, reject });
      this.#stream.write(encodeCall(program, procedure, serial, args?.bytes() ?? Buffer.alloc(0)));
    });
  }

  #receive(chunk: Buffer): void {
    this.#buffered.push(chunk);
    this.#bufferedBytes += chunk.length;
    while (this.#bufferedBytes >= 4) {
      // The pieces are joined once per message, when all of it is there (not once per piece).
      const head = (this.#buffered[0] as Buffer).length >= 4 ? (this.#buffered[0] as Buffer) : Buffer.concat(this.#buffered, 4);
      const length = head.readUInt32BE(0);
      if (length < HEADER_BYTES || length > MESSAGE_MAX) {
        this.#fail(new LibvirtRpcError(`${this.label}: libvirt sent a message of ${length} bytes`, 0, 0));
        this.#stream.destroy();
        return;
      }
      if (this.#bufferedBytes < length) return;
      if (this.#buffered.length > 1) this.#buffered = [Buffer.concat(this.#buffered, this.#bufferedBytes)];
      const data = this.#buffered[0] as Buffer;
      const message = data.subarray(0, length);
      const rest = data.subarray(length);
      this.#buffered = rest.length > 0 ? [rest] : [];
      this.#bufferedBytes = rest.length;
      this.#dispatch(message);
    }
  }

  #dispatch(message: Buffer): void {
    const type = message.readInt32BE(16);
    if (type !== MESSAGE_REPLY) return; // an event or stream data: never asked for
    const serial = message.readUInt32BE(20);
    const status = message.readInt32BE(24);
    const pending = this.#pending.get(serial);
    if (!pending) return;
    this.#pending.delete(serial);
    const body = new XdrReader(message, HEADER_BYTES);
    if (status === STATUS_OK) pending.resolve(body);
    else if (status === STATUS_ERROR) {
      try {
        pending.reject(decodeRpcError(body));
      } catch {
        pending.reject(new LibvirtRpcError(`${this.label}: libvirt sent an unreadable error`, 0, 0));
      }
    } else pending.reject(new LibvirtRpcError(`${this.label}: libvirt answered with status ${status}`, 0, 0));
  }

  #fail(error: Error): void {
    this.#failure ??= error;
    for (const pending of this.#pending.values()) pending.reject(this.#failure);
    this.#pending.clear();
  }

  /** Closes the hypervisor connection (politely, then the stream); never throws. */
  async close(): Promise<void> {
    if (this.#failure === null) await this.call(REMOTE_PROGRAM, Procedure.connectClose).catch(() => undefined);
    this.destroy();
  }

  /** Drops the stream at once; pending calls reject. */
  destroy(): void {
    this.#fail(new LibvirtRpcError(`${this.label}: the connection to libvirt was closed`, 0, 0));
    this.#stream.destroy();
  }

  /** `virDomainLookupByName`. @throws LibvirtRpcError (code {@link LibvirtErrorCode.noDomain} when there is none) */
  async lookupDomain(name: string): Promise<RpcDomain> {
    return readDomain(await this.call(REMOTE_PROGRAM, Procedure.domainLookupByName, new XdrWriter().string(name)));
  }

  /** `virDomainGetState`: the state as `virsh domstate` prints it. */
  async domainState(domain: RpcDomain): Promise<string> {
    const reply = await this.call(REMOTE_PROGRAM, Procedure.domainGetState, writeDomain(new XdrWriter(), domain).uint(0));
    const state = reply.int();
    return DOMAIN_STATES[state] ?? `state ${state}`;
  }

  /** `virDomainGetXMLDesc` with no flags (what `virsh dumpxml` prints). */
  async domainXml(domain: RpcDomain): Promise<string> {
    return (await this.call(REMOTE_PROGRAM, Procedure.domainGetXmlDesc, writeDomain(new XdrWriter(), domain).uint(0))).string();
  }

  /**
   * Looks a checkpoint up and starts the arguments of a call on it: the checkpoint as the protocol
   * names it (`remote_nonnull_domain_checkpoint`: its name and domain), then flags 0.
   * @throws LibvirtRpcError ({@link LibvirtErrorCode.noDomainCheckpoint})
   */
  async #checkpointArgs(domain: RpcDomain, name: string): Promise<XdrWriter> {
    const found = await this.call(
      REMOTE_PROGRAM,
      Procedure.domainCheckpointLookupByName,
      writeDomain(new XdrWriter(), domain).string(name).uint(0),
    );
    const checkpointName = found.string();
    return writeDomain(new XdrWriter().string(checkpointName), readDomain(found)).uint(0);
  }

  /** A checkpoint's XML with no flags (what `virsh checkpoint-dumpxml` prints). @throws LibvirtRpcError ({@link LibvirtErrorCode.noDomainCheckpoint}) */
  async checkpointXml(domain: RpcDomain, name: string): Promise<string> {
    const args = await this.#checkpointArgs(domain, name);
    return (await this.call(REMOTE_PROGRAM, Procedure.domainCheckpointGetXmlDesc, args)).string();
  }

  /** Deletes a checkpoint (its bitmaps too: no flags). @throws LibvirtRpcError */
  async checkpointDelete(domain: RpcDomain, name: string): Promise<void> {
    await this.call(REMOTE_PROGRAM, Procedure.domainCheckpointDelete, await this.#checkpointArgs(domain, name));
  }

  /** `virDomainBackupBegin` with the backup XML and, when given, the checkpoint created with it. @throws LibvirtRpcError */
  async backupBegin(domain: RpcDomain, backupXml: string, checkpointXml: string | null): Promise<void> {
    await this.call(
      REMOTE_PROGRAM,
      Procedure.domainBackupBegin,
      writeDomain(new XdrWriter(), domain).string(backupXml).optionalString(checkpointXml).uint(0),
    );
  }

  /** `virDomainAbortJob`. @throws LibvirtRpcError ({@link LibvirtErrorCode.operationInvalid} when no job runs) */
  async abortJob(domain: RpcDomain): Promise<void> {
    await this.call(REMOTE_PROGRAM, Procedure.domainAbortJob, writeDomain(new XdrWriter(), domain));
  }

  /** The type of the domain's current job (`virDomainGetJobInfo`). */
  async jobType(domain: RpcDomain): Promise<(typeof JOB_TYPES)[number] | 'unknown'> {
    const type = (await this.call(REMOTE_PROGRAM, Procedure.domainGetJobInfo, writeDomain(new XdrWriter(), domain))).int();
    return JOB_TYPES[type] ?? 'unknown';
  }

  /** A QMP command through libvirt (`virsh qemu-monitor-command`): its JSON answer. @throws LibvirtRpcError */
  async monitorCommand(domain: RpcDomain, command: string): Promise<string> {
    return (
      await this.call(QEMU_PROGRAM, Procedure.qemuMonitorCommand, writeDomain(new XdrWriter(), domain).string(command).uint(0))
    ).string();
  }

  /** Freezes (or thaws) every guest filesystem through the guest agent. @throws LibvirtRpcError */
  async fsFreeze(domain: RpcDomain, freeze: boolean): Promise<void> {
    await this.call(
      REMOTE_PROGRAM,
      freeze ? Procedure.domainFsFreeze : Procedure.domainFsThaw,
      writeDomain(new XdrWriter(), domain).strings([]).uint(0),
    );
  }
}
