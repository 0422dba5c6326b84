/**
 * The connections of one SSH executor: opened on demand (host key verified against the pin), at
 * most `maxConnections` with at most `maxChannels` commands each, closed after being idle, and
 * discarded (failing every command on them) when they drop.
 * @module
 */
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { InstanceImagesError } from '../../src/errors';
import type { HypervisorConnection } from '../../src/ports/host-directory';
import { hostKeyFingerprint, hostKeyMatches, type HostKeyPin } from './host-key';
import { connectSshSocket } from './ssh-socket';
import { widenReceiveWindow } from './ssh-window';

/** How to reach the host: the `ssh` variant of a hypervisor's connection. */
export type SshConnection = Extract<HypervisorConnection, { type: 'ssh' }>;

/** One pooled connection. */
export interface PooledConnection {
  client: Client;
  ready: Promise<void>;
  channels: number;
  closed: boolean;
  idleTimer: NodeJS.Timeout | null;
  /** Called when the connection drops, for each command running on it. */
  onDrop: Set<(error: InstanceImagesError) => void>;
}

/** The pool's settings, resolved (see `SshExecutorOptions`). */
export interface SshPoolSettings {
  label: string;
  port: number;
  maxConnections: number;
  maxChannels: number;
  keepaliveIntervalMs: number;
  keepaliveCountMax: number;
  readyTimeoutMs: number;
  idleTimeoutMs: number;
  /** Receive window kept per channel (see `widenReceiveWindow`). */
  receiveWindowBytes: number;
  /** The TCP connection's reused read buffer (see `connectSshSocket`); 0: ssh2's own socket. */
  readBufferBytes: number;
}

/** What a connection attempt learned from the host key it was shown. */
interface HostKeyCheck {
  presented: string | null;
  rejected: boolean;
}

/** How often {@link SshConnectionPool.openChannel} asks again for a channel the server refused (about 0.5 s in all). */
const CHANNEL_OPEN_RETRIES = 9;

/** The exit status of each channel's command, recorded as soon as the channel exists. */
const exits = new WeakMap<ClientChannel, { code: number | null }>();

/**
 * How the command of a channel opened by {@link SshConnectionPool.openChannel} exited: its code
 * (null when it ended on a signal), or null when the server sent no exit status (yet). ssh2 emits
 * `exit` while it parses the packet; a short command's exit status often arrives in the same read
 * as the reply to the exec request, before an `await`ing caller could listen, so the pool records
 * it from the exec callback on, which ssh2 calls synchronously with that reply.
 */
export function exitOf(channel: ClientChannel): { code: number | null } | null {
  return exits.get(channel) ?? null;
}

/** The connections to one host, and the commands waiting for a channel. */
export class SshConnectionPool {
  readonly #connection: SshConnection;
  readonly #settings: SshPoolSettings;
  readonly #pin: HostKeyPin;
  readonly #pool: PooledConnection[] = [];
  readonly #waiters: Array<() => void> = [];

  /** `pin` is the connection's host key, parsed (`parseHostKeyPin`). */
  constructor(connection: SshConnection, pin: HostKeyPin, settings: SshPoolSettings) {
    this.#connection = connection;
    this.#pin = pin;
    this.#settings = settings;
  }

  /** Open (or opening) connections. */
  get size(): number {
    return this.#pool.length;
  }

  /** HYPERVISOR_UNREACHABLE for this host, labelled. */
  unreachable(message: string, cause?: unknown): InstanceImagesError {
    const details = { host: this.#connection.host, port: this.#settings.port };
    return new InstanceImagesError(
      'HYPERVISOR_UNREACHABLE',
      `${this.#settings.label}: ${message}`,
      cause === undefined ? { details } : { cause, details },
    );
  }

  #wakeOne(): void {
    this.#waiters.shift()?.();
  }

  /** Closes a connection and fails every command running on it with `error`. */
  discard(conn: PooledConnection, error: InstanceImagesError): void {
    if (conn.closed) return;
    conn.closed = true;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    const index = this.#pool.indexOf(conn);
    if (index >= 0) this.#pool.splice(index, 1);
    for (const drop of [...conn.onDrop]) drop(error);
    conn.onDrop.clear();
    conn.client.end();
    // Waiters may now open a fresh connection.
    while (this.#waiters.length > 0) this.#wakeOne();
  }

  /** Closes every connection. */
  closeAll(error: InstanceImagesError): void {
    for (const conn of [...this.#pool]) this.discard(conn, error);
  }

  #config(hostKey: HostKeyCheck): ConnectConfig {
    const connection = this.#connection;
    const { port, readBufferBytes } = this.#settings;
    const config: ConnectConfig = {
      // The TCP connection read in large pieces (ssh-socket.ts), unless turned off.
      ...(readBufferBytes > 0 ? { sock: connectSshSocket(connection.host, port, readBufferBytes) } : { host: connection.host, port }),
      username: connection.username,
      privateKey: connection.privateKey,
      keepaliveInterval: this.#settings.keepaliveIntervalMs,
      keepaliveCountMax: this.#settings.keepaliveCountMax,
      readyTimeout: this.#settings.readyTimeoutMs,
      // aes128-gcm is about twice as fast as chacha20-poly1305 for bulk bytes on AES-NI hosts.
      algorithms: { cipher: { remove: 'aes128-gcm@openssh.com', prepend: 'aes128-gcm@openssh.com', append: [] } },
      hostVerifier: (key: Buffer) => {
        hostKey.presented = hostKeyFingerprint(key);
        hostKey.rejected = !hostKeyMatches(this.#pin, key);
        return !hostKey.rejected;
      },
    };
    if (connection.passphrase !== undefined) config.passphrase = connection.passphrase;
    return config;
  }

  /** The coded error of a failed or dropped connection. */
  #connectionFailure(error: Error & { level?: string }, hostKey: HostKeyCheck, wasReady: boolean): InstanceImagesError {
    const { label, port, readyTimeoutMs } = this.#settings;
    if (hostKey.rejected) {
      return new InstanceImagesError(
        'HOST_KEY_MISMATCH',
        `${label} presented the host key ${hostKey.presented ?? 'unknown'}, which is not the pinned key; refusing to connect (update the pinned key only if the host was really re-keyed)`,
        {
          details: { host: this.#connection.host, port, presented: hostKey.presented },
        },
      );
    }
    if (error.level === 'client-authentication')
      return this.unreachable(`authentication as ${this.#connection.username} failed; check that the key is authorized on the host`, error);
    if (error.level === 'client-timeout') return this.unreachable(`no SSH handshake within ${readyTimeoutMs} ms`, error);
    return this.unreachable(wasReady ? `the connection dropped (${error.message})` : `cannot connect (${error.message})`, error);
  }

  #connect(): PooledConnection {
    const client = new Client();
    const hostKey: HostKeyCheck = { presented: null, rejected: false };
    const conn: PooledConnection = { client, ready: Promise.resolve(), channels: 0, closed: false, idleTimer: null, onDrop: new Set() };
    const config = this.#config(hostKey);
    conn.ready = new Promise<void>((resolve, reject) => {
      let settled = false;
      client.once('ready', () => {
        settled = true;
        resolve();
      });
      const fail = (error: Error & { level?: string }) => {
        const mapped = this.#connectionFailure(error, hostKey, settled);
        if (!settled) {
          settled = true;
          reject(mapped);
        }
        this.discard(conn, mapped);
      };
      client.on('error', fail);
      client.once('close', () => fail(Object.assign(new Error('connection closed'), { level: 'client-socket' })));
      try {
        client.connect(config);
        // SSH sends many small packets that wait for an answer (channel open, exec, exit status,
        // window adjusts, an NBD handshake's options): with Nagle's algorithm each one waited for
        // the peer's delayed ACK, about 40 ms on Linux, so every remote command cost ~88 ms of
        // idle latency and an NBD handshake over a channel ~130 ms. Measured: 88 ms -> 4 ms per
        // `true` over the test sshd. Bulk transfers are unaffected (their segments are full).
        client.setNoDelay(true);
      } catch (error) {
        // The socket ssh2 did not take: closed here (its connection's failure would reach no one).
        config.sock?.destroy();
        // ssh2 throws synchronously for an unreadable key; its message never contains the key.
        const mapped = new InstanceImagesError(
          'VALIDATION_FAILED',
          `${this.#settings.label}: the private key cannot be used (${error instanceof Error ? error.message : 'unknown reason'})`,
          {
            fields: [{ path: 'connection.privateKey', message: 'cannot be parsed (or the passphrase is wrong)' }],
          },
        );
        settled = true;
        reject(mapped);
        this.discard(conn, mapped);
      }
    });
    conn.ready.catch(() => undefined);
    this.#pool.push(conn);
    return conn;
  }

  /** Waits until a channel may be free (a release or a dropped connection), or the signal aborts. */
  #waitForChannel(signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve) => {
      const onAbort = () => {
        const index = this.#waiters.indexOf(wake);
        if (index >= 0) this.#waiters.splice(index, 1);
        resolve();
      };
      const wake = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      this.#waiters.push(wake);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Reserves a channel slot, connecting when needed; waits when every slot is busy. */
  async acquire(signal: AbortSignal | undefined): Promise<PooledConnection> {
    for (;;) {
      if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `${this.#settings.label}: cancelled while waiting for a connection`);
      let conn = this.#pool.find((c) => !c.closed && c.channels < this.#settings.maxChannels);
      if (!conn && this.#pool.length < this.#settings.maxConnections) conn = this.#connect();
      if (conn) {
        conn.channels++;
        if (conn.idleTimer) {
          clearTimeout(conn.idleTimer);
          conn.idleTimer = null;
        }
        try {
          await conn.ready;
        } catch (error) {
          conn.channels--;
          throw error;
        }
        if (conn.closed) {
          conn.channels--;
          throw this.unreachable('the connection dropped');
        }
        return conn;
      }
      await this.#waitForChannel(signal);
    }
  }

  /** Gives a channel slot back; an unused connection closes after the idle timeout. */
  release(conn: PooledConnection): void {
    conn.channels--;
    const { idleTimeoutMs } = this.#settings;
    if (!conn.closed && conn.channels === 0 && idleTimeoutMs > 0) {
      conn.idleTimer = setTimeout(() => this.discard(conn, this.unreachable('closed after being idle')), idleTimeoutMs);
      conn.idleTimer.unref();
    }
    this.#wakeOne();
  }

  /**
   * Starts `command` on a new channel of `conn`; its exit status is recorded from the start ({@link
   * exitOf}). A server that refuses the channel (OpenSSH: "open failed" once a connection holds
   * `MaxSessions`, default 10, which channels that just closed still count against until its main
   * loop frees them) is asked again, {@link CHANNEL_OPEN_RETRIES} times at most, a little later
   * each time.
   */
  async openChannel(conn: PooledConnection, command: string): Promise<ClientChannel> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#openChannelOnce(conn, command);
      } catch (error) {
        const refused = typeof (error as { reason?: unknown }).reason === 'number';
        if (!refused || attempt >= CHANNEL_OPEN_RETRIES || conn.closed)
          throw this.unreachable(`cannot start a command (${(error as Error).message})`, error);
        await new Promise((resolve) => setTimeout(resolve, 10 * (attempt + 1)));
      }
    }
  }

  #openChannelOnce(conn: PooledConnection, command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      try {
        conn.client.exec(command, (error, channel) => {
          if (error) reject(error);
          else {
            // Synchronously, before ssh2 parses the next packet (see exitOf).
            channel.once('exit', (code: unknown) => exits.set(channel, { code: typeof code === 'number' ? code : null }));
            widenReceiveWindow(channel, this.#settings.receiveWindowBytes);
            resolve(channel);
          }
        });
      } catch (error) {
        reject(error);
      }
    });
  }

  /** Kills a remote process group from a fresh channel (beyond the channel limit: it is short). */
  async killRemoteGroup(pid: number): Promise<void> {
    const conn = this.#pool.find((c) => !c.closed);
    if (!conn) return; // the connection is gone, and the session with it
    try {
      await conn.ready;
      const channel = await this.openChannel(conn, `kill -KILL -- -${pid} 2>/dev/null || kill -KILL ${pid} 2>/dev/null`);
      channel.on('error', () => undefined);
      channel.resume();
      channel.stderr.resume();
      await new Promise<void>((resolve) => channel.once('close', () => resolve()));
    } catch {
      // best effort: the command may have ended on its own
    }
  }
}
