/**
 * A hostile peer on a real unix socket: a test script that writes NBD bytes by hand (not through the
 * client's encoders) so that it can break the protocol on purpose. It is not a server imitation:
 * it answers the negotiation minimally and then does exactly what each test tells it to.
 */
import { rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';

/** Pulls exact byte counts from the peer's side of the socket. */
export class PeerIo {
  #buffer = Buffer.alloc(0);
  #waiter: (() => void) | null = null;
  #closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiter?.();
    });
    socket.on('close', () => {
      this.#closed = true;
      this.#waiter?.();
    });
    socket.on('error', () => undefined);
  }

  /** Exactly `n` bytes from the client, or null when it closed first. */
  async read(n: number): Promise<Buffer | null> {
    while (this.#buffer.length < n) {
      if (this.#closed) return null;
      await new Promise<void>((resolve) => (this.#waiter = resolve));
      this.#waiter = null;
    }
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** True once the client has closed the connection. */
  get closed(): boolean {
    return this.#closed;
  }

  write(...parts: Buffer[]): void {
    this.socket.write(Buffer.concat(parts));
  }
}

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const u64 = (n: number | bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

export const bytes = { u16, u32, u64 };

/** Writes an option reply. */
export function optionReply(
  io: PeerIo,
  option: number,
  type: number,
  payload: Buffer = Buffer.alloc(0),
  declaredLength = payload.length,
): void {
  io.write(Buffer.from('0003e889045565a9', 'hex'), u32(option), u32(type), u32(declaredLength), payload);
}

/**
 * Answers a negotiation correctly: structured replies, `base:allocation` as context id 1, and an
 * export of `size` bytes. Returns false when the client went away.
 */
export async function acceptNegotiation(io: PeerIo, size: number): Promise<boolean> {
  io.write(Buffer.from('NBDMAGIC'), Buffer.from('IHAVEOPT'), u16(3));
  if (!(await io.read(4))) return false;
  for (;;) {
    const header = await io.read(16);
    if (!header) return false;
    const option = header.readUInt32BE(8);
    const payload = await io.read(header.readUInt32BE(12));
    if (!payload) return false;
    if (option === 8) optionReply(io, 8, 1);
    else if (option === 10) {
      optionReply(io, 10, 4, Buffer.concat([u32(1), Buffer.from('base:allocation')]));
      optionReply(io, 10, 1);
    } else if (option === 7) {
      optionReply(io, 7, 3, Buffer.concat([u16(0), u64(size), u16(1 | 2)]));
      optionReply(io, 7, 1);
      return true;
    } else optionReply(io, option, 0x80000001);
  }
}

/** One request as the peer sees it. */
export interface PeerRequest {
  type: number;
  handle: Buffer;
  offset: number;
  length: number;
}

/** The next request, or null when the client closed. */
export async function nextRequest(io: PeerIo): Promise<PeerRequest | null> {
  const header = await io.read(28);
  if (!header) return null;
  return {
    type: header.readUInt16BE(6),
    handle: header.subarray(8, 16),
    offset: Number(header.readBigUInt64BE(16)),
    length: header.readUInt32BE(24),
  };
}

/** Writes a structured reply chunk header (and payload), with an optionally false length. */
export function structuredChunk(
  io: PeerIo,
  handle: Buffer,
  type: number,
  flags: number,
  payload: Buffer,
  declaredLength = payload.length,
): void {
  io.write(u32(0x668e33ef), u16(flags), u16(type), handle, u32(declaredLength), payload);
}

/** A hostile peer listening on `path`; `behave` runs for each connection. */
export async function startHostilePeer(
  path: string,
  behave: (io: PeerIo) => Promise<void>,
): Promise<{ connections: PeerIo[]; close(): Promise<void> }> {
  rmSync(path, { force: true });
  const connections: PeerIo[] = [];
  const server: Server = createServer((socket) => {
    const io = new PeerIo(socket);
    connections.push(io);
    void behave(io).catch(() => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const io of connections) io.socket.destroy();
        server.close(() => resolve());
      }),
  };
}
