/**
 * The SSH executor (ssh2): key authentication, the host key always verified against the pinned
 * key, a small per-hypervisor pool of kept-alive connections with a bounded number of channels
 * each ({@link SshConnectionPool}), streamed stdin/stdout with backpressure, timeouts and
 * AbortSignal ({@link startSshCommand}), and a dropped connection reported as
 * HYPERVISOR_UNREACHABLE. Commands are built by `shellCommand` (the one quoting function).
 * @module
 */
import type { Duplex } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { InstanceImagesError } from '../../src/errors';
import type { Executor } from '../../src/ports/executor';
import { parseHostKeyPin } from './host-key';
import { startSshCommand } from './ssh-command';
import { SshConnectionPool, type SshConnection } from './ssh-pool';
import { SSH_READ_BUFFER_BYTES } from './ssh-socket';
import { SSH_DEFAULT_RECEIVE_WINDOW, widenReceiveWindow } from './ssh-window';

export type { SshConnection } from './ssh-pool';
export { SSH_DEFAULT_RECEIVE_WINDOW } from './ssh-window';
export { SSH_READ_BUFFER_BYTES } from './ssh-socket';

/** Pool and timing settings of {@link createSshExecutor}. */
export interface SshExecutorOptions {
  /** Label for messages (default `ssh USER@HOST:PORT`). */
  label?: string;
  /** Connections kept to the host at most (default 2). */
  maxConnections?: number;
  /** Concurrent channels (commands) per connection (default 8; OpenSSH's MaxSessions is 10). */
  maxChannelsPerConnection?: number;
  /** Keepalive interval in ms (default 15 000). */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalives before the connection counts as dropped (default 3). */
  keepaliveCountMax?: number;
  /** Time allowed for connecting and authenticating, in ms (default 20 000). */
  readyTimeoutMs?: number;
  /** An unused connection is closed after this many ms (default 60 000). */
  idleTimeoutMs?: number;
  /**
   * Receive window kept per channel, in bytes (default 4 MiB, {@link SSH_DEFAULT_RECEIVE_WINDOW}):
   * how much the host may send ahead of what the consumer has read. ssh2's own 2 MiB window makes a
   * bulk read (a captured image streamed out) wait on flow control; each channel may buffer up to
   * this much (plus 2 MiB) when its consumer is slow. 2 MiB or less keeps ssh2's window. More than
   * 4 MiB can cost OpenSSH's sshd seconds of CPU per connection (see `drivers/exec/ssh-window.ts`).
   */
  receiveWindowBytes?: number;
  /**
   * Bytes of the buffer each connection reads its TCP socket into (default 1 MiB,
   * {@link SSH_READ_BUFFER_BYTES}; from 16 KiB to 64 MiB, or 0). Each read is passed on as a buffer
   * of its own length, so a bulk read allocates about one byte per byte received instead of about
   * 1.5 with Node's 64 KiB reads, and starts a third fewer garbage collections (see
   * `drivers/exec/ssh-socket.ts`). Each open connection keeps its buffer (2 MiB per host with the
   * default two connections). 0 lets ssh2 open its own socket, as before.
   */
  readBufferBytes?: number;
}

/** An SSH executor; also reports how many connections it holds (for tests and metrics). */
export interface SshExecutor extends Executor {
  /** Open (or opening) connections right now. */
  readonly connectionCount: number;
  /**
   * Opens an OpenSSH stream-local channel to a unix socket on the host (e.g. an NBD export), on a
   * pooled connection: the channel takes one channel slot until it emits 'close', which ssh2 does
   * only once its readable side has ended (read it to the end, or destroy it and resume it); a
   * dropped connection destroys it.
   * @throws HYPERVISOR_UNREACHABLE when the host cannot be reached; COMMAND_FAILED when sshd refuses
   * the channel (no such socket, or stream-local forwarding disabled); CANCELLED.
   */
  openStreamLocal(socketPath: string, options?: { signal?: AbortSignal }): Promise<Duplex>;
}

function positiveInteger(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new InstanceImagesError('VALIDATION_FAILED', `${field} must be a positive integer`, {
      fields: [{ path: field, message: 'must be a positive integer' }],
    });
  }
  return value;
}

/**
 * Creates an executor that runs commands on a host over SSH. Nothing connects until the first
 * command. The private key and passphrase never appear in labels, messages or errors.
 * @throws VALIDATION_FAILED when the host key pin or a setting is not valid.
 */
export function createSshExecutor(connection: SshConnection, options: SshExecutorOptions = {}): SshExecutor {
  const port = connection.port ?? 22;
  const label = options.label ?? `ssh ${connection.username}@${connection.host}:${port}`;
  const pin = parseHostKeyPin(connection.hostKey);
  const receiveWindowBytes = positiveInteger(options.receiveWindowBytes, SSH_DEFAULT_RECEIVE_WINDOW, 'receiveWindowBytes');
  const readBufferBytes = options.readBufferBytes ?? SSH_READ_BUFFER_BYTES;
  if (readBufferBytes !== 0 && (!Number.isInteger(readBufferBytes) || readBufferBytes < 16 * 1024 || readBufferBytes > 64 * 1024 * 1024)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'readBufferBytes must be 0 or a whole number of bytes from 16 KiB to 64 MiB', {
      fields: [{ path: 'readBufferBytes', message: 'must be 0 or from 16384 to 67108864' }],
    });
  }
  const pool = new SshConnectionPool(connection, pin, {
    label,
    port,
    maxConnections: positiveInteger(options.maxConnections, 2, 'maxConnections'),
    maxChannels: positiveInteger(options.maxChannelsPerConnection, 8, 'maxChannelsPerConnection'),
    keepaliveIntervalMs: options.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: options.keepaliveCountMax ?? 3,
    readyTimeoutMs: options.readyTimeoutMs ?? 20_000,
    idleTimeoutMs: options.idleTimeoutMs ?? 60_000,
    receiveWindowBytes,
    readBufferBytes,
  });

  async function openStreamLocal(socketPath: string, signal: AbortSignal | undefined): Promise<Duplex> {
    const conn = await pool.acquire(signal);
    let channel: ClientChannel;
    try {
      channel = await new Promise<ClientChannel>((resolve, reject) => {
        try {
          conn.client.openssh_forwardOutStreamLocal(socketPath, (error, opened) => {
            if (error)
              reject(
                new InstanceImagesError(
                  'COMMAND_FAILED',
                  `${label}: sshd refused a channel to the unix socket ${socketPath} (${error.message}); check that it exists and that stream-local forwarding is allowed`,
                  { cause: error },
                ),
              );
            else {
              widenReceiveWindow(opened, receiveWindowBytes);
              resolve(opened);
            }
          });
        } catch (error) {
          reject(pool.unreachable('cannot open a channel', error));
        }
      });
    } catch (error) {
      pool.release(conn);
      throw error;
    }
    const onDrop = () => channel.destroy();
    conn.onDrop.add(onDrop);
    channel.once('close', () => {
      conn.onDrop.delete(onDrop);
      pool.release(conn);
    });
    return channel;
  }

  return {
    label,
    get connectionCount() {
      return pool.size;
    },
    openStreamLocal(socketPath, streamOptions = {}) {
      return openStreamLocal(socketPath, streamOptions.signal);
    },
    async run(argv, runOptions = {}) {
      const running = await startSshCommand(pool, label, argv, runOptions, runOptions.stdout ?? 'collect');
      return running.done;
    },
    stream(argv, streamOptions = {}) {
      return startSshCommand(pool, label, argv, streamOptions, 'stream');
    },
    async close() {
      pool.closeAll(pool.unreachable('the executor was closed'));
    },
  };
}
