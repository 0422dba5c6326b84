import { createHash, randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { connectSshSocket, SSH_READ_BUFFER_BYTES, type SshSocket } from '../../../drivers/exec/ssh-socket';
import { expectRefusedOptions, UNCONNECTED } from './unconnected';

const MiB = 2 ** 20;
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP server on 127.0.0.1 that hands each accepted socket to `onSocket`. */
async function server(onSocket: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const srv = createServer(onSocket);
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return { server: srv, port: (srv.address() as AddressInfo).port };
}

const open: Array<{ close: () => void }> = [];
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});

async function collect(socket: SshSocket): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of socket) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('SshSocket (the TCP connection under an SSH connection)', () => {
  it('passes every byte on in order, each read as a buffer of its own, and ends when the peer does', async () => {
    const data = randomBytes(24 * MiB + 12345);
    const { server: srv, port } = await server((peer) => peer.end(data));
    open.push(srv);
    const socket = connectSshSocket('127.0.0.1', port, 64 * 1024);
    let connected = false;
    socket.once('connect', () => (connected = true));
    expect(socket.connecting).toBe(true);
    const pieces: Buffer[] = [];
    socket.on('data', (piece: Buffer) => pieces.push(piece));
    await new Promise((resolve) => socket.once('close', resolve));
    expect(connected).toBe(true);
    const received = Buffer.concat(pieces);
    expect(received.length).toBe(data.length);
    expect(sha(received)).toBe(sha(data));
    // No two pieces overlap in memory (small ones may come from Node's shared pool, each its own
    // part of it): ssh2 may keep views of one while the socket reads the next. The pieces were all
    // kept until now, so the comparison above also shows none was overwritten by a later read.
    const regions = pieces.map((p) => ({ buffer: p.buffer, from: p.byteOffset, to: p.byteOffset + p.length }));
    regions.sort((a, b) => a.from - b.from);
    for (const [i, a] of regions.entries())
      for (const b of regions.slice(i + 1)) if (a.buffer === b.buffer) expect(b.from).toBeGreaterThanOrEqual(a.to);
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThanOrEqual(64 * 1024);
  });

  it('stops reading while its consumer does not read (the peer is held back), and resumes when it reads', async () => {
    const data = randomBytes(48 * MiB);
    let written = 0;
    const { server: srv, port } = await server((peer) => {
      // Writes as fast as the connection takes it, counting what the kernel accepted.
      const send = (at: number) => {
        while (at < data.length) {
          const piece = data.subarray(at, at + MiB);
          at += piece.length;
          const more = peer.write(piece, () => (written += piece.length));
          if (!more) return void peer.once('drain', () => send(at));
        }
        peer.end();
      };
      send(0);
    });
    open.push(srv);
    const socket = connectSshSocket('127.0.0.1', port);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.pause();
    await tick(300);
    // Held: at most the stream's buffer plus one read, and the peer stopped short of the data.
    expect(socket.readableLength).toBeLessThanOrEqual(socket.readableHighWaterMark + SSH_READ_BUFFER_BYTES);
    expect(written).toBeLessThan(data.length);
    const received = await collect(socket);
    expect(sha(received)).toBe(sha(data));
  });

  it('sends what is written, and ends its side when ended', async () => {
    const got: Buffer[] = [];
    let ended!: () => void;
    const peerEnded = new Promise<void>((resolve) => (ended = resolve));
    const { server: srv, port } = await server((peer) => {
      peer.on('data', (chunk: Buffer) => got.push(chunk));
      peer.on('end', () => {
        ended();
        peer.end();
      });
    });
    open.push(srv);
    const socket = connectSshSocket('127.0.0.1', port);
    socket.setNoDelay(true).setKeepAlive(true, 1000);
    socket.write('SSH-2.0-test\r\n');
    socket.write(Buffer.alloc(3 * MiB, 7));
    socket.end();
    socket.resume();
    await peerEnded;
    await new Promise((resolve) => socket.once('close', resolve));
    const all = Buffer.concat(got);
    expect(all.subarray(0, 14).toString()).toBe('SSH-2.0-test\r\n');
    expect(all.length).toBe(14 + 3 * MiB);
  });

  it('fails with the socket error when the connection is refused, and closes', async () => {
    const { server: srv, port } = await server(() => undefined);
    await new Promise((resolve) => srv.close(resolve));
    const socket = connectSshSocket('127.0.0.1', port);
    const error = await new Promise<Error & { code?: string }>((resolve) => socket.once('error', resolve));
    expect(error.code).toBe('ECONNREFUSED');
    await new Promise((resolve) => (socket.closed ? resolve(null) : socket.once('close', resolve)));
  });

  it('closes the connection when destroyed', async () => {
    let peerClosed!: () => void;
    const closed = new Promise<void>((resolve) => (peerClosed = resolve));
    const { server: srv, port } = await server((peer) => {
      peer.on('close', () => peerClosed());
      peer.on('error', () => undefined);
      peer.resume();
    });
    open.push(srv);
    const socket = connectSshSocket('127.0.0.1', port);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.destroy();
    await closed;
  });

  it('is 1 MiB by default, and the executor option is validated', () => {
    expect(SSH_READ_BUFFER_BYTES).toBe(MiB);
    for (const readBufferBytes of [-1, 1024, 1.5 * MiB + 0.5, 65 * MiB]) expectRefusedOptions({ readBufferBytes });
    expect(() => createSshExecutor(UNCONNECTED, { readBufferBytes: 0 })).not.toThrow();
    expect(() => createSshExecutor(UNCONNECTED, { readBufferBytes: 16 * 1024 })).not.toThrow();
  });
});
