/**
 * The NBD client's WRITE, WRITE_ZEROES and FLUSH on the wire, against a peer scripted byte by byte
 * over an in-memory stream pair (no encoder of the client is used to check the client).
 */
import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { connectNbd, type NbdClient } from '../../../drivers/nbd';
import { codeOf } from '../../support/errors';

const u16 = (n: number) => Buffer.from([(n >> 8) & 0xff, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const hex = (b: Buffer) => b.toString('hex');

const HAS_FLAGS = 1;
const READ_ONLY = 2;
const SEND_FLUSH = 4;
const SEND_FUA = 8;
const SEND_WRITE_ZEROES = 64;
const WRITABLE = HAS_FLAGS | SEND_FLUSH | SEND_FUA | SEND_WRITE_ZEROES;

/** The server's side of an in-memory connection: exact reads of what the client sent, raw writes back. */
class Peer {
  #buffer = Buffer.alloc(0);
  #waiter: (() => void) | null = null;
  constructor(
    readonly fromClient: PassThrough,
    readonly toClient: PassThrough,
  ) {
    fromClient.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#waiter?.();
    });
    // A disconnecting client ends its side; the peer ends its own, as a server closing does.
    fromClient.on('end', () => toClient.end());
  }
  async read(n: number): Promise<Buffer> {
    while (this.#buffer.length < n) {
      await new Promise<void>((resolve) => (this.#waiter = resolve));
      this.#waiter = null;
    }
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }
  /** Bytes the client sent that were not read yet. */
  get pending(): number {
    return this.#buffer.length;
  }
  write(...parts: Buffer[]): void {
    this.toClient.write(Buffer.concat(parts));
  }
  simpleReply(handle: Buffer, error = 0): void {
    this.write(u32(0x67446698), u32(error), handle);
  }
  structured(handle: Buffer, type: number, flags: number, payload = Buffer.alloc(0)): void {
    this.write(u32(0x668e33ef), u16(flags), u16(type), handle, u32(payload.length), payload);
  }
  /** A request header as sent: [flags, type, handle, offset, length]. */
  async request(): Promise<{ raw: Buffer; flags: number; type: number; handle: Buffer; offset: number; length: number }> {
    const raw = await this.read(28);
    return {
      raw,
      flags: raw.readUInt16BE(4),
      type: raw.readUInt16BE(6),
      handle: raw.subarray(8, 16),
      offset: Number(raw.readBigUInt64BE(16)),
      length: raw.readUInt32BE(24),
    };
  }
}

const optionReply = (peer: Peer, option: number, type: number, payload = Buffer.alloc(0)) =>
  peer.write(Buffer.from('0003e889045565a9', 'hex'), u32(option), u32(type), u32(payload.length), payload);

/** A client connected to a scripted peer that negotiates an export of `size` bytes with `flags`. */
async function connected(size: number, flags: number, options: { maxInFlight?: number; maxWriteBytes?: number } = {}) {
  const fromClient = new PassThrough();
  const toClient = new PassThrough();
  const peer = new Peer(fromClient, toClient);
  const negotiation = (async () => {
    peer.write(Buffer.from('NBDMAGIC'), Buffer.from('IHAVEOPT'), u16(3));
    await peer.read(4);
    for (;;) {
      const header = await peer.read(16);
      const option = header.readUInt32BE(8);
      await peer.read(header.readUInt32BE(12));
      if (option === 8) optionReply(peer, 8, 1);
      else if (option === 10) {
        optionReply(peer, 10, 4, Buffer.concat([u32(1), Buffer.from('base:allocation')]));
        optionReply(peer, 10, 1);
      } else if (option === 7) {
        optionReply(peer, 7, 3, Buffer.concat([u16(0), u64(size), u16(flags)]));
        optionReply(peer, 7, 1);
        return;
      } else optionReply(peer, option, 0x80000001);
    }
  })();
  const client: NbdClient = await connectNbd(Duplex.from({ readable: toClient, writable: fromClient }), { label: 'peer', ...options });
  await negotiation;
  return { client, peer };
}

describe('NBD WRITE, WRITE_ZEROES and FLUSH on the wire', () => {
  it('sends WRITE as the 28-byte header (type 1, offset, payload length) followed at once by the payload', async () => {
    const { client, peer } = await connected(1 << 20, WRITABLE);
    const payload = Buffer.from('0123456789abcdef', 'hex');
    const writing = client.write(0x10000, payload);
    const request = await peer.request();
    expect(hex(request.raw.subarray(0, 8))).toBe('25609513' + '0000' + '0001');
    expect(hex(request.raw.subarray(16))).toBe('0000000000010000' + '00000008');
    expect(hex(await peer.read(8))).toBe('0123456789abcdef');
    peer.simpleReply(request.handle);
    await writing;
    // With forced unit access: flag 1.
    const fua = client.write(0, Buffer.alloc(4, 7), { fua: true });
    const second = await peer.request();
    expect(second.flags).toBe(1);
    expect(hex(await peer.read(4))).toBe('07070707');
    expect(hex(second.handle)).not.toBe(hex(request.handle));
    // A structured NONE chunk with DONE acknowledges a write as well as a simple reply does.
    peer.structured(second.handle, 0, 1);
    await fua;
    expect(client.stats).toMatchObject({ writeRequests: 2, dataBytesSent: 12 });
    await client.close();
  });

  it('sends WRITE_ZEROES (type 6, no payload; NO_HOLE with allocate) and FLUSH (type 3, offset and length 0)', async () => {
    const { client, peer } = await connected(1 << 30, WRITABLE);
    const zeroing = client.writeZeroes(4096, 1 << 28, { allocate: true });
    const zero = await peer.request();
    expect(hex(zero.raw.subarray(4, 8))).toBe('0002' + '0006');
    expect(zero.offset).toBe(4096);
    expect(zero.length).toBe(1 << 28);
    const flushing = client.flush();
    // The flush header comes right after: WRITE_ZEROES carried no payload.
    const flush = await peer.request();
    expect(hex(flush.raw.subarray(4, 8))).toBe('0000' + '0003');
    expect(hex(flush.raw.subarray(16))).toBe('0000000000000000' + '00000000');
    peer.simpleReply(flush.handle);
    peer.simpleReply(zero.handle);
    await Promise.all([zeroing, flushing]);
    expect(client.stats).toMatchObject({ writeZeroesRequests: 1, flushRequests: 1, writeRequests: 0 });
    await client.close();
  });

  it('reports a server error on a write with its errno (ENOSPC) and keeps the connection usable', async () => {
    const { client, peer } = await connected(1 << 20, WRITABLE);
    const writing = client.write(0, Buffer.alloc(512, 1)).catch((e: unknown) => e);
    const request = await peer.request();
    await peer.read(512);
    peer.simpleReply(request.handle, 28);
    expect(await writing).toMatchObject({ code: 'COMMAND_FAILED', details: { nbdError: 'ENOSPC' } });
    const flushing = client.flush();
    peer.simpleReply((await peer.request()).handle);
    await flushing;
    await client.close();
  });

  it('refuses to write a read-only export, or to use commands the server did not offer, without sending anything', async () => {
    const readOnly = await connected(1 << 20, HAS_FLAGS | READ_ONLY | SEND_FLUSH | SEND_WRITE_ZEROES);
    expect(await codeOf(readOnly.client.write(0, Buffer.alloc(512)))).toBe('INVALID_STATE');
    expect(await codeOf(readOnly.client.writeZeroes(0, 512))).toBe('INVALID_STATE');
    expect(await codeOf(readOnly.client.flush())).toBe('INVALID_STATE');
    const bare = await connected(1 << 20, HAS_FLAGS);
    expect(await codeOf(bare.client.writeZeroes(0, 512))).toBe('INVALID_STATE');
    expect(await codeOf(bare.client.flush())).toBe('INVALID_STATE');
    expect(await codeOf(bare.client.write(0, Buffer.alloc(512), { fua: true }))).toBe('INVALID_STATE');
    await new Promise((resolve) => setImmediate(resolve));
    expect(readOnly.peer.pending).toBe(0);
    expect(bare.peer.pending).toBe(0);
    readOnly.client.destroy();
    bare.client.destroy();
  });

  it('refuses writes outside the export or longer than the write limit', async () => {
    const { client, peer } = await connected(1 << 20, WRITABLE, { maxWriteBytes: 4096 });
    expect(client.maxWriteBytes).toBe(4096);
    expect(await codeOf(client.write(0, Buffer.alloc(8192)))).toBe('VALIDATION_FAILED');
    expect(await codeOf(client.write((1 << 20) - 10, Buffer.alloc(11)))).toBe('VALIDATION_FAILED');
    expect(await codeOf(client.writeZeroes(0, (1 << 20) + 1))).toBe('VALIDATION_FAILED');
    expect(peer.pending).toBe(0);
    client.destroy();
  });

  it('keeps at most maxInFlight requests on the wire: the next write waits for a reply (backpressure)', async () => {
    const { client, peer } = await connected(1 << 20, WRITABLE, { maxInFlight: 2 });
    const writes = [0, 1, 2].map((i) => client.write(i * 4096, Buffer.alloc(4096, i + 1)));
    const first = await peer.request();
    await peer.read(4096);
    const second = await peer.request();
    await peer.read(4096);
    await new Promise((resolve) => setImmediate(resolve));
    expect(peer.pending).toBe(0);
    peer.simpleReply(first.handle);
    const third = await peer.request();
    expect(third.offset).toBe(8192);
    expect((await peer.read(4096))[0]).toBe(3);
    peer.simpleReply(second.handle);
    peer.simpleReply(third.handle);
    await Promise.all(writes);
    await client.close();
  });

  it('treats read data in reply to a write as a protocol violation', async () => {
    const { client, peer } = await connected(1 << 20, WRITABLE);
    const writing = client.write(0, Buffer.alloc(16)).catch((e: unknown) => e);
    const request = await peer.request();
    await peer.read(16);
    peer.structured(request.handle, 1, 1, Buffer.concat([u64(0), Buffer.alloc(16)]));
    expect(await writing).toMatchObject({ code: 'COMMAND_FAILED', details: { nbd: 'protocol-violation' } });
  });
});
