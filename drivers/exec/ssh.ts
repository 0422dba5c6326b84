/**
 * The SSH executor (ssh2): key authentication, the host key always verified against the pinned
 * key, a small per-hypervisor pool of kept-alive connections with a bounded number of channels
 * each, streamed stdin/stdout with backpressure, timeouts and AbortSignal, and a dropped
 * connection reported as HYPERVISOR_UNREACHABLE. Commands are built by {@link shellCommand}.
 * @module
 */
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { Client, type ClientChannel, type ConnectConfig } from 'ssh2';
import { InstanceImagesError } from '../../src/errors';
import type { ExecOptions, ExecResult, ExecStream, Executor } from '../../src/ports/executor';
import type { HypervisorConnection } from '../../src/ports/host-directory';
import { hostKeyFingerprint, hostKeyMatches, parseHostKeyPin } from './host-key';
import { shellCommand } from './quote';
import { collect, DEFAULT_MAX_BUFFER } from './collect';

/** How to reach the host: the `ssh` variant of a hypervisor's connection. */
export type SshConnection = Extract<HypervisorConnection, { type: 'ssh' }>;

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

interface PooledConnection {
  client: Client;
  ready: Promise<void>;
  channels: number;
  closed: boolean;
  idleTimer: NodeJS.Timeout | null;
  /** Called when the connection drops, for each command running on it. */
  onDrop: Set<(error: InstanceImagesError) => void>;
}

/** Reads the remote pid from the first stderr line and passes the rest of stderr through. */
function stripPidLine(stderr: Readable, onPid: (pid: number | null) => void): Readable {
  const out = new PassThrough();
  let head: Buffer | null = Buffer.alloc(0);
  stderr.on('data', (chunk: Buffer) => {
    if (head === null) {
      out.write(chunk);
      return;
    }
    head = Buffer.concat([head, chunk]);
    const newline = head.indexOf(10);
    if (newline < 0 && head.length < 32) return;
    const line = newline < 0 ? '' : head.subarray(0, newline).toString('latin1');
    onPid(/^[0-9]{1,10}$/.test(line) ? Number(line) : null);
    const rest = newline < 0 ? head : head.subarray(newline + 1);
    head = null;
    if (rest.length > 0) out.write(rest);
  });
  const finish = () => {
    if (out.writableEnded) return;
    if (head !== null && head.length > 0) out.write(head);
    head = null;
    onPid(null);
    out.end();
  };
  stderr.once('end', finish);
  stderr.once('close', finish);
  return out;
}

function positiveInteger(value: number | undefined, fallback: number, field: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new InstanceImagesError('VALIDATION_FAILED', `${field} must be a positive integer`, { fields: [{ path: field, message: 'must be a positive integer' }] });
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
  const maxConnections = positiveInteger(options.maxConnections, 2, 'maxConnections');
  const maxChannels = positiveInteger(options.maxChannelsPerConnection, 8, 'maxChannelsPerConnection');
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  const readyTimeoutMs = options.readyTimeoutMs ?? 20_000;

  const pool: PooledConnection[] = [];
  const waiters: Array<() => void> = [];

  const unreachable = (message: string, cause?: unknown) =>
    new InstanceImagesError('HYPERVISOR_UNREACHABLE', `${label}: ${message}`, cause === undefined ? { details: { host: connection.host, port } } : { cause, details: { host: connection.host, port } });

  function wakeOne(): void {
    waiters.shift()?.();
  }

  function discard(conn: PooledConnection, error: InstanceImagesError): void {
    if (conn.closed) return;
    conn.closed = true;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    const index = pool.indexOf(conn);
    if (index >= 0) pool.splice(index, 1);
    for (const drop of [...conn.onDrop]) drop(error);
    conn.onDrop.clear();
    conn.client.end();
    // Waiters may now open a fresh connection.
    while (waiters.length > 0) wakeOne();
  }

  function connect(): PooledConnection {
    const client = new Client();
    let presented: string | null = null;
    let rejectedKey = false;
    const conn: PooledConnection = { client, ready: Promise.resolve(), channels: 0, closed: false, idleTimer: null, onDrop: new Set() };
    const config: ConnectConfig = {
      host: connection.host,
      port,
      username: connection.username,
      privateKey: connection.privateKey,
      keepaliveInterval: options.keepaliveIntervalMs ?? 15_000,
      keepaliveCountMax: options.keepaliveCountMax ?? 3,
      readyTimeout: readyTimeoutMs,
      // aes128-gcm is about twice as fast as chacha20-poly1305 for bulk bytes on AES-NI hosts.
      algorithms: { cipher: { remove: 'aes128-gcm@openssh.com', prepend: 'aes128-gcm@openssh.com', append: [] } },
      hostVerifier: (key: Buffer) => {
        presented = hostKeyFingerprint(key);
        rejectedKey = !hostKeyMatches(pin, key);
        return !rejectedKey;
      },
    };
    if (connection.passphrase !== undefined) config.passphrase = connection.passphrase;
    conn.ready = new Promise<void>((resolve, reject) => {
      let settled = false;
      client.once('ready', () => {
        settled = true;
        resolve();
      });
      const fail = (error: Error & { level?: string }) => {
        let mapped: InstanceImagesError;
        if (rejectedKey) {
          mapped = new InstanceImagesError('HOST_KEY_MISMATCH', `${label} presented the host key ${presented ?? 'unknown'}, which is not the pinned key; refusing to connect (update the pinned key only if the host was really re-keyed)`, {
            details: { host: connection.host, port, presented },
          });
        } else if (error.level === 'client-authentication') {
          mapped = unreachable(`authentication as ${connection.username} failed; check that the key is authorised on the host`, error);
        } else if (error.level === 'client-timeout') {
          mapped = unreachable(`no SSH handshake within ${readyTimeoutMs} ms`, error);
        } else {
          mapped = unreachable(settled ? `the connection dropped (${error.message})` : `cannot connect (${error.message})`, error);
        }
        if (!settled) {
          settled = true;
          reject(mapped);
        }
        discard(conn, mapped);
      };
      client.on('error', fail);
      client.once('close', () => fail(Object.assign(new Error('connection closed'), { level: 'client-socket' })));
      try {
        client.connect(config);
      } catch (error) {
        // ssh2 throws synchronously for an unreadable key; its message never contains the key.
        const mapped = new InstanceImagesError('VALIDATION_FAILED', `${label}: the private key cannot be used (${error instanceof Error ? error.message : 'unknown reason'})`, {
          fields: [{ path: 'connection.privateKey', message: 'cannot be parsed (or the passphrase is wrong)' }],
        });
        settled = true;
        reject(mapped);
        discard(conn, mapped);
      }
    });
    conn.ready.catch(() => undefined);
    pool.push(conn);
    return conn;
  }

  /** Reserves a channel slot, connecting when needed; waits when every slot is busy. */
  async function acquire(signal: AbortSignal | undefined): Promise<PooledConnection> {
    for (;;) {
      if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `${label}: cancelled while waiting for a connection`);
      let conn = pool.find((c) => !c.closed && c.channels < maxChannels);
      if (!conn && pool.length < maxConnections) conn = connect();
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
          throw unreachable('the connection dropped');
        }
        return conn;
      }
      await new Promise<void>((resolve) => {
        const onAbort = () => {
          const index = waiters.indexOf(wake);
          if (index >= 0) waiters.splice(index, 1);
          resolve();
        };
        const wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        waiters.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  function release(conn: PooledConnection): void {
    conn.channels--;
    if (!conn.closed && conn.channels === 0 && idleTimeoutMs > 0) {
      conn.idleTimer = setTimeout(() => discard(conn, unreachable('closed after being idle')), idleTimeoutMs);
      conn.idleTimer.unref();
    }
    wakeOne();
  }

  function openChannel(conn: PooledConnection, command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      try {
        conn.client.exec(command, (error, channel) => {
          if (error) reject(unreachable(`cannot start a command (${error.message})`, error));
          else resolve(channel);
        });
      } catch (error) {
        reject(unreachable('cannot start a command', error));
      }
    });
  }

  /** Kills a remote process group from a fresh channel (beyond the channel limit: it is short). */
  async function killRemoteGroup(pid: number): Promise<void> {
    const conn = pool.find((c) => !c.closed);
    if (!conn) return; // the connection is gone, and the session with it
    try {
      await conn.ready;
      const channel = await openChannel(conn, `kill -KILL -- -${pid} 2>/dev/null || kill -KILL ${pid} 2>/dev/null`);
      channel.on('error', () => undefined);
      channel.resume();
      channel.stderr.resume();
      await new Promise<void>((resolve) => channel.once('close', () => resolve()));
    } catch {
      // best effort: the command may have ended on its own
    }
  }

  async function start(argv: readonly string[], execOptions: ExecOptions, stdoutMode: Writable | 'stream' | 'collect'): Promise<ExecStream> {
    // `$$` of the login shell's `-c` is the session leader (sshd calls setsid); `exec` keeps that
    // pid for the command, so the command's whole process group can be killed.
    const command = `printf '%s\\n' "$$" >&2; exec ${shellCommand(argv)}`;
    const program = argv[0] ?? '';
    const { signal } = execOptions;
    if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `Cancelled before running ${program} on ${label}`);

    let ended: 'cancelled' | 'timeout' | null = null;
    let channel: ClientChannel | null = null;
    let resolvePid!: (pid: number | null) => void;
    const remotePid = new Promise<number | null>((resolve) => (resolvePid = resolve));
    let killed = false;
    const kill = () => {
      if (!channel || killed) return;
      killed = true;
      const target = channel;
      // OpenSSH refuses signal requests for sessions without privilege separation (root logins),
      // so the command's process group is also killed from a second channel.
      try {
        target.signal('KILL');
      } catch {
        // the channel may already be closing
      }
      void remotePid.then(async (pid) => {
        if (pid !== null) await killRemoteGroup(pid);
        target.close();
      });
    };
    const onAbort = () => {
      ended ??= 'cancelled';
      kill();
    };
    const timer = execOptions.timeoutMs
      ? setTimeout(() => {
          ended ??= 'timeout';
          kill();
        }, execOptions.timeoutMs)
      : null;
    signal?.addEventListener('abort', onAbort, { once: true });
    const cleanupSignal = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    };

    const { stdin } = execOptions;
    const destroyStdin = () => {
      if (typeof stdin === 'object' && !Buffer.isBuffer(stdin)) stdin.destroy();
    };
    let conn: PooledConnection;
    try {
      conn = await acquire(signal);
    } catch (error) {
      cleanupSignal();
      destroyStdin();
      if (ended === 'timeout') throw new InstanceImagesError('TIMEOUT', `${program} on ${label} timed out after ${execOptions.timeoutMs} ms`, { cause: error });
      throw error;
    }
    try {
      channel = await openChannel(conn, command);
    } catch (error) {
      cleanupSignal();
      release(conn);
      destroyStdin();
      throw error;
    }
    const active = channel;
    if (ended) kill();

    let dropped: InstanceImagesError | null = null;
    const onDrop = (error: InstanceImagesError) => {
      dropped ??= error;
      active.destroy();
    };
    conn.onDrop.add(onDrop);

    // stdin: always ended so that commands reading it finish; streams keep backpressure.
    active.on('error', () => undefined);
    if (stdin === undefined) active.end();
    else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) active.end(stdin);
    else {
      stdin.once('error', () => kill());
      stdin.pipe(active);
    }

    const max = execOptions.maxBuffer ?? DEFAULT_MAX_BUFFER;
    let stdoutText: Promise<string> = Promise.resolve('');
    const out = new PassThrough({ highWaterMark: 256 * 1024 });
    if (stdoutMode === 'collect') stdoutText = collect(active, max);
    else if (stdoutMode === 'stream') active.pipe(out, { end: false });
    else active.pipe(stdoutMode);
    const stderrText = collect(stripPidLine(active.stderr, resolvePid), max);

    let exit: { code: number | null } | null = null;
    active.on('exit', (code: number | null) => {
      exit = { code: typeof code === 'number' ? code : null };
    });

    const done = new Promise<ExecResult>((resolve, reject) => {
      active.once('close', () => {
        resolvePid(null);
        cleanupSignal();
        conn.onDrop.delete(onDrop);
        release(conn);
        if (typeof stdin === 'object' && !Buffer.isBuffer(stdin)) stdin.unpipe(active);
        void Promise.all([stdoutText, stderrText]).then(([stdout, stderr]) => {
          if (ended === 'cancelled') reject(new InstanceImagesError('CANCELLED', `${program} on ${label} was cancelled`));
          else if (ended === 'timeout') reject(new InstanceImagesError('TIMEOUT', `${program} on ${label} timed out after ${execOptions.timeoutMs} ms`));
          else if (dropped || exit === null) reject(dropped ?? unreachable(`the connection dropped while ${program} was running`));
          else resolve({ exitCode: exit.code, stdout, stderr });
        });
      });
    });
    if (stdoutMode === 'stream') {
      // The channel can close while its readable side still buffers data that `out` has not taken
      // (a slow consumer): end `out` only once the channel's stdout is drained.
      const drained = finished(active, { writable: false }).catch(() => undefined);
      done.then(
        async () => {
          await drained;
          out.end();
        },
        (error: unknown) => out.destroy(error instanceof Error ? error : new Error(String(error))),
      );
      out.once('close', () => {
        if (!out.writableFinished) kill();
      });
    }
    done.catch(() => undefined);
    return { stdout: out, done, kill };
  }

  async function openStreamLocal(socketPath: string, signal: AbortSignal | undefined): Promise<Duplex> {
    const conn = await acquire(signal);
    let channel: ClientChannel;
    try {
      channel = await new Promise<ClientChannel>((resolve, reject) => {
        try {
          conn.client.openssh_forwardOutStreamLocal(socketPath, (error, opened) => {
            if (error) reject(new InstanceImagesError('COMMAND_FAILED', `${label}: sshd refused a channel to the unix socket ${socketPath} (${error.message}); check that it exists and that stream-local forwarding is allowed`, { cause: error }));
            else resolve(opened);
          });
        } catch (error) {
          reject(unreachable('cannot open a channel', error));
        }
      });
    } catch (error) {
      release(conn);
      throw error;
    }
    const onDrop = () => channel.destroy();
    conn.onDrop.add(onDrop);
    channel.once('close', () => {
      conn.onDrop.delete(onDrop);
      release(conn);
    });
    return channel;
  }

  return {
    label,
    get connectionCount() {
      return pool.length;
    },
    openStreamLocal(socketPath, streamOptions = {}) {
      return openStreamLocal(socketPath, streamOptions.signal);
    },
    async run(argv, runOptions = {}) {
      const running = await start(argv, runOptions, runOptions.stdout ?? 'collect');
      return running.done;
    },
    stream(argv, streamOptions = {}) {
      return start(argv, streamOptions, 'stream');
    },
    async close() {
      for (const conn of [...pool]) discard(conn, unreachable('the executor was closed'));
    },
  };
}
