/**
 * The TCP connection under an SSH connection, read in large pieces.
 *
 * A plain `net.Socket` reads into a fresh 64 KiB buffer each time, and ssh2 decrypts its packets in
 * place there; a packet (up to about 32 KiB of channel data) that straddles two such reads is copied
 * once more into a buffer of its own. Measured reading 256 MiB through four channels: about half
 * of the bytes were copied that way, so the read allocated about 1.5 bytes of `ArrayBuffer` per
 * byte received, which is what starts V8's full collections on a bulk read (on Node 24 whatever
 * the heap: "external memory pressure"; docs/measurements.md, "The panel's garbage collector").
 *
 * {@link connectSshSocket} reads into one reused buffer of {@link SSH_READ_BUFFER_BYTES} (the
 * kernel hands over all it holds, up to that, in one read) and passes each read on as a new buffer
 * of exactly its length: one allocation and one copy per read, and so few packets straddle two
 * reads that the bytes allocated are about one per byte received. Each buffer handed on is its
 * own, so ssh2 may keep views of it (it does: channel data are views of the decrypted packet) for
 * as long as it likes.
 * @module
 */
import { connect, type Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** The default size of the buffer each SSH connection reads its TCP socket into: 1 MiB (see `SshExecutorOptions.readBufferBytes`). */
export const SSH_READ_BUFFER_BYTES = 1024 * 1024;

/**
 * A duplex over a TCP connection to `host:port` (connecting when made), read as the module says.
 * It emits `connect` once connected (ssh2 starts its handshake then), and ends, closes and fails
 * as the socket does. `setNoDelay` and `setKeepAlive` reach the socket.
 */
export class SshSocket extends Duplex {
  readonly #socket: Socket;
  /** Whether the socket stopped reading because this stream's buffer is full. */
  #stopped = false;

  constructor(host: string, port: number, readBufferBytes = SSH_READ_BUFFER_BYTES) {
    // ssh2 ends its side itself; an end from the peer ends both.
    super({ allowHalfOpen: false });
    const buffer = Buffer.allocUnsafe(readBufferBytes);
    this.#socket = connect({
      host,
      port,
      onread: {
        buffer,
        callback: (bytes: number, read: Uint8Array): boolean => {
          // Not Buffer.copyBytesFrom: Node 20's copies twice (a slice, then a copy of it).
          const copy = Buffer.allocUnsafe(bytes);
          copy.set(read.subarray(0, bytes));
          if (this.push(copy)) return true;
          this.#stopped = true;
          return false;
        },
      },
    });
    const socket = this.#socket;
    socket.once('connect', () => this.emit('connect'));
    socket.once('end', () => this.push(null));
    socket.on('error', (error) => this.destroy(error));
    socket.once('close', () => this.destroy());
  }

  /** Whether the socket is still connecting (ssh2 waits for `connect` while it is). */
  get connecting(): boolean {
    return this.#socket.connecting;
  }

  override _read(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#socket.resume();
  }

  /**
   * Hands each write to the socket at once, as ssh2 does with its own socket, and asks for the next
   * only while the socket's buffer has room: a write that waited for the previous one to reach the
   * kernel queued the next packets here, to be joined into one more copy (a chunked deploy writes a
   * GiB through this).
   */
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.#socket.write(chunk)) callback();
    else this.#socket.once('drain', () => callback());
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    callback(error);
  }

  /** As `net.Socket#setNoDelay`. */
  setNoDelay(noDelay = true): this {
    this.#socket.setNoDelay(noDelay);
    return this;
  }

  /** As `net.Socket#setKeepAlive`. */
  setKeepAlive(enable = false, initialDelayMs = 0): this {
    this.#socket.setKeepAlive(enable, initialDelayMs);
    return this;
  }
}

/** Opens an {@link SshSocket} to `host:port`. */
export function connectSshSocket(host: string, port: number, readBufferBytes = SSH_READ_BUFFER_BYTES): SshSocket {
  return new SshSocket(host, port, readBufferBytes);
}
