/**
 * A broken or malicious NBD server: a real socket peer (a test script writing bytes by hand) that
 * sends garbage, truncates, lies about lengths, answers unknown handles or never answers. The
 * client must fail each with a typed error promptly — never by waiting for (or buffering) bytes a
 * lying length announced — and the connection must be unusable afterwards.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectNbdUnix, type NbdClient, type NbdConnectOptions } from '../../../drivers/nbd';
import { isInstanceImagesError } from '../../../src/errors';
import { codeOf } from '../../support/errors';
import {
  acceptNegotiation,
  bytes,
  nextRequest,
  optionReply,
  structuredChunk,
  startHostilePeer,
  type PeerIo,
  type PeerRequest,
} from './hostile-peer';
import { freshDir } from './qemu';

const MiB = 1024 * 1024;
const DONE = 1;
const DATA = 1;
const HOLE = 2;
const BLOCK_STATUS = 5;
const ERROR = 0x8001;
// Long enough that waiting for announced bytes would show up as TIMEOUT instead of the right code.
const patient: NbdConnectOptions = { exportName: 'vda', handshakeTimeoutMs: 20_000, requestTimeoutMs: 20_000 };

let dir: string;
let peer: Awaited<ReturnType<typeof startHostilePeer>> | null = null;
const clients: NbdClient[] = [];

async function withPeer(behave: (io: PeerIo) => Promise<void>, options: NbdConnectOptions = {}): Promise<NbdClient> {
  peer = await startHostilePeer(`${dir}/peer.sock`, behave);
  const client = await connectNbdUnix(`${dir}/peer.sock`, { ...patient, ...options });
  clients.push(client);
  return client;
}

/** A peer that negotiates correctly, then answers each request with `answer`. */
function transmission(answer: (io: PeerIo, request: PeerRequest, count: number) => void, size = 16 * MiB) {
  return async (io: PeerIo) => {
    if (!(await acceptNegotiation(io, size))) return;
    for (let count = 0; ; count++) {
      const request = await nextRequest(io);
      if (!request) return;
      answer(io, request, count);
    }
  };
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await promise;
  } catch (error) {
    return isInstanceImagesError(error)
      ? { code: error.code, message: error.message }
      : { code: `not typed: ${String(error)}`, message: '' };
  }
  return { code: 'resolved', message: '' };
}

async function handshakeFailure(behave: (io: PeerIo) => Promise<void>, options: NbdConnectOptions = {}) {
  peer = await startHostilePeer(`${dir}/peer.sock`, behave);
  return failure(connectNbdUnix(`${dir}/peer.sock`, { ...patient, ...options }));
}

describe('NBD client against a hostile peer', { timeout: 60_000 }, () => {
  beforeAll(() => {
    dir = freshDir('hostile');
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.destroy();
    await peer?.close();
    peer = null;
  });

  it('a peer that is not an NBD server (an SSH banner) is COMMAND_FAILED', async () => {
    const result = await handshakeFailure(async (io) => io.write(Buffer.from('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n')));
    expect(result.code).toBe('COMMAND_FAILED');
    expect(result.message).toContain('NBDMAGIC');
  });

  it('a greeting cut short is HYPERVISOR_UNREACHABLE', async () => {
    const result = await handshakeFailure(async (io) => {
      io.write(Buffer.from('NBDMAGIC'), Buffer.from('IHAV'));
      io.socket.end();
    });
    expect(result.code).toBe('HYPERVISOR_UNREACHABLE');
  });

  it('an option reply announcing 1 GiB is refused at once, without waiting for the bytes', async () => {
    const result = await handshakeFailure(async (io) => {
      io.write(Buffer.from('NBDMAGIC'), Buffer.from('IHAVEOPT'), bytes.u16(3));
      await io.read(4);
      await io.read(16);
      optionReply(io, 8, 1, Buffer.alloc(0), 1024 * MiB);
    });
    expect(result).toMatchObject({ code: 'COMMAND_FAILED' });
    expect(result.message).toContain('option reply of 1073741824 bytes');
  });

  it('a server that never greets is TIMEOUT; an aborted handshake is CANCELLED', async () => {
    expect((await handshakeFailure(async () => undefined, { handshakeTimeoutMs: 200 })).code).toBe('TIMEOUT');
    await peer?.close();
    const controller = new AbortController();
    peer = await startHostilePeer(`${dir}/peer.sock`, async () => controller.abort());
    expect(await codeOf(connectNbdUnix(`${dir}/peer.sock`, { exportName: 'vda', signal: controller.signal }))).toBe('CANCELLED');
  });

  it('NBD_OPT_GO without the export size is COMMAND_FAILED', async () => {
    const result = await handshakeFailure(async (io) => {
      io.write(Buffer.from('NBDMAGIC'), Buffer.from('IHAVEOPT'), bytes.u16(3));
      await io.read(4);
      for (;;) {
        const header = await io.read(16);
        if (!header) return;
        const option = header.readUInt32BE(8);
        await io.read(header.readUInt32BE(12));
        optionReply(io, option, 1);
      }
    });
    expect(result.code).toBe('COMMAND_FAILED');
    expect(result.message).toContain('NBD_INFO_EXPORT');
  });

  it('a data chunk longer than the read asked for is refused before its payload is read', async () => {
    const client = await withPeer(
      transmission((io, request) => {
        // Announces 1 MiB more than asked and sends only the header and offset.
        structuredChunk(io, request.handle, DATA, DONE, bytes.u64(request.offset), 8 + request.length + MiB);
      }),
    );
    const result = await failure(client.read(0, 4096));
    expect(result.code).toBe('COMMAND_FAILED');
    expect(result.message).toContain('data chunk of');
    // The connection is unusable afterwards, with the same error.
    expect(await codeOf(client.read(0, 4096))).toBe('COMMAND_FAILED');
  });

  it.each([
    [
      'outside the request',
      (io: PeerIo, r: PeerRequest) =>
        structuredChunk(io, r.handle, DATA, DONE, Buffer.concat([bytes.u64(r.offset + r.length), Buffer.alloc(16)])),
      'outside',
    ],
    [
      'overlapping an earlier chunk',
      (io: PeerIo, r: PeerRequest) => {
        structuredChunk(io, r.handle, DATA, 0, Buffer.concat([bytes.u64(r.offset), Buffer.alloc(2048, 1)]));
        structuredChunk(io, r.handle, HOLE, DONE, Buffer.concat([bytes.u64(r.offset + 1024), bytes.u32(2048)]));
      },
      'overlap',
    ],
    [
      'done before every byte was sent',
      (io: PeerIo, r: PeerRequest) =>
        structuredChunk(io, r.handle, DATA, DONE, Buffer.concat([bytes.u64(r.offset), Buffer.alloc(r.length - 1)])),
      'reported done after',
    ],
    [
      'for a handle nobody asked',
      (io: PeerIo) => structuredChunk(io, Buffer.from('ffffffffffffffff', 'hex'), 0, DONE, Buffer.alloc(0)),
      'no request in flight',
    ],
    ['with an unknown magic', (io: PeerIo) => io.write(Buffer.from('deadbeef', 'hex'), Buffer.alloc(12)), 'unknown magic'],
    [
      'with an unknown chunk type',
      (io: PeerIo, r: PeerRequest) => structuredChunk(io, r.handle, 77, DONE, Buffer.alloc(4)),
      'unknown reply chunk type',
    ],
    [
      'as block status for a read',
      (io: PeerIo, r: PeerRequest) =>
        structuredChunk(io, r.handle, BLOCK_STATUS, DONE, Buffer.concat([bytes.u32(1), bytes.u32(r.length), bytes.u32(0)])),
      'block status in reply to a read',
    ],
  ])('a read answered %s is COMMAND_FAILED', async (_name, answer, text) => {
    const client = await withPeer(transmission(answer));
    const result = await failure(client.read(4096, 8192));
    expect(result.code).toBe('COMMAND_FAILED');
    expect(result.message).toContain(text);
  });

  it('block status describing more than asked, an unknown context, or too many extents is COMMAND_FAILED', async () => {
    const cases: Array<[(io: PeerIo, r: PeerRequest) => void, string, NbdConnectOptions]> = [
      [
        (io, r) =>
          structuredChunk(
            io,
            r.handle,
            BLOCK_STATUS,
            DONE,
            Buffer.concat([bytes.u32(1), bytes.u32(r.length), bytes.u32(0), bytes.u32(512), bytes.u32(3)]),
          ),
        'more than the',
        {},
      ],
      [
        (io, r) => structuredChunk(io, r.handle, BLOCK_STATUS, DONE, Buffer.concat([bytes.u32(9), bytes.u32(r.length), bytes.u32(0)])),
        'context id 9',
        {},
      ],
      [
        (io, r) => structuredChunk(io, r.handle, BLOCK_STATUS, DONE, Buffer.alloc(0), 4 + 8 * 1000),
        'more than 100 descriptors',
        { maxExtentsPerReply: 100 },
      ],
    ];
    for (const [answer, text, options] of cases) {
      const client = await withPeer(transmission(answer), options);
      const result = await failure(client.blockStatus(0, MiB));
      expect(result.code).toBe('COMMAND_FAILED');
      expect(result.message).toContain(text);
      client.destroy();
      await peer?.close();
    }
  });

  it('a reply cut off in the middle of its data is HYPERVISOR_UNREACHABLE for every request in flight', async () => {
    const client = await withPeer(
      transmission((io, r, count) => {
        if (count === 0) return; // the first request is never answered
        structuredChunk(io, r.handle, DATA, DONE, Buffer.concat([bytes.u64(r.offset), Buffer.alloc(100)]), 8 + r.length);
        io.socket.end();
      }),
    );
    const [first, second] = await Promise.all([failure(client.read(0, 4096)), failure(client.read(4096, 4096))]);
    expect(first.code).toBe('HYPERVISOR_UNREACHABLE');
    expect(second.code).toBe('HYPERVISOR_UNREACHABLE');
    expect(first.message).toContain('2 request(s) unanswered');
  });

  it('a server that does not answer in time fails the connection with TIMEOUT', async () => {
    const client = await withPeer(
      transmission(() => undefined),
      { requestTimeoutMs: 200 },
    );
    expect(await codeOf(client.read(0, 4096))).toBe('TIMEOUT');
    expect(await codeOf(client.read(0, 4096))).toBe('TIMEOUT');
  });

  it('an error chunk is COMMAND_FAILED with the NBD error, and the connection stays usable', async () => {
    const client = await withPeer(
      transmission((io, r, count) => {
        if (count === 0) {
          const message = Buffer.from('disk on fire');
          structuredChunk(io, r.handle, ERROR, DONE, Buffer.concat([bytes.u32(5), bytes.u16(message.length), message]));
        } else structuredChunk(io, r.handle, DATA, DONE, Buffer.concat([bytes.u64(r.offset), Buffer.alloc(r.length, 0x42)]));
      }),
    );
    const error = await client.read(0, 4096).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'COMMAND_FAILED', details: { nbdError: 'EIO' } });
    expect(String((error as Error).message)).toContain('disk on fire');
    expect((await client.read(0, 4096)).equals(Buffer.alloc(4096, 0x42))).toBe(true);
  });
});
