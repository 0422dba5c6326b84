/**
 * One command on an SSH channel: stdin streamed with backpressure (and always ended), stdout
 * collected, streamed or piped, stderr collected, and a cancel or timeout that kills the command's
 * whole remote process group. A dropped connection fails it with HYPERVISOR_UNREACHABLE.
 * @module
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ClientChannel } from 'ssh2';
import { InstanceImagesError } from '../../src/errors';
import type { ExecOptions, ExecResult, ExecStream } from '../../src/ports/executor';
import { collect, DEFAULT_MAX_BUFFER } from './collect';
import { shellCommand } from './quote';
import { exitOf, type PooledConnection, type SshConnectionPool } from './ssh-pool';

/** Where a command's stdout goes. */
export type StdoutMode = Writable | 'stream' | 'collect';

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

/**
 * How a command ends early: a cancel (the signal) or the timeout kills it. OpenSSH refuses signal
 * requests for sessions without privilege separation (root logins), so the command's process group
 * is also killed from a second channel, once its pid (the first stderr line) is known.
 */
class CommandStop {
  /** Why the command was stopped, if it was. */
  ended: 'cancelled' | 'timeout' | null = null;
  /** The command's channel, once open. */
  channel: ClientChannel | null = null;
  readonly remotePid: Promise<number | null>;
  readonly #pool: SshConnectionPool;
  readonly #signal: AbortSignal | undefined;
  readonly #timer: NodeJS.Timeout | null;
  #resolvePid!: (pid: number | null) => void;
  #killed = false;

  constructor(pool: SshConnectionPool, signal: AbortSignal | undefined, timeoutMs: number | undefined) {
    this.#pool = pool;
    this.#signal = signal;
    this.remotePid = new Promise<number | null>((resolve) => (this.#resolvePid = resolve));
    this.#timer = timeoutMs
      ? setTimeout(() => {
          this.ended ??= 'timeout';
          this.kill();
        }, timeoutMs)
      : null;
    signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  readonly #onAbort = (): void => {
    this.ended ??= 'cancelled';
    this.kill();
  };

  /** Records the remote pid (or that none will come). */
  readonly resolvePid = (pid: number | null): void => this.#resolvePid(pid);

  /** Kills the command (once); before its channel is open, nothing happens yet. */
  readonly kill = (): void => {
    if (!this.channel || this.#killed) return;
    this.#killed = true;
    const target = this.channel;
    try {
      target.signal('KILL');
    } catch {
      // the channel may already be closing
    }
    void this.remotePid.then(async (pid) => {
      if (pid !== null) await this.#pool.killRemoteGroup(pid);
      target.close();
    });
  };

  /** Stops the timer and the signal listener. */
  cleanup(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }
}

/** What a command run needs to know for its messages. */
interface CommandInfo {
  program: string;
  label: string;
  execOptions: ExecOptions;
}

function destroyStdin(stdin: ExecOptions['stdin']): void {
  if (typeof stdin === 'object' && !Buffer.isBuffer(stdin)) stdin.destroy();
}

/** Reserves a channel slot and opens the command's channel; on failure nothing is left reserved. */
async function openCommandChannel(
  pool: SshConnectionPool,
  command: string,
  stop: CommandStop,
  info: CommandInfo,
): Promise<{ conn: PooledConnection; channel: ClientChannel }> {
  const { program, label, execOptions } = info;
  let conn: PooledConnection;
  try {
    conn = await pool.acquire(execOptions.signal);
  } catch (error) {
    stop.cleanup();
    destroyStdin(execOptions.stdin);
    if (stop.ended === 'timeout')
      throw new InstanceImagesError('TIMEOUT', `${program} on ${label} timed out after ${execOptions.timeoutMs} ms`, { cause: error });
    throw error;
  }
  try {
    return { conn, channel: await pool.openChannel(conn, command) };
  } catch (error) {
    stop.cleanup();
    pool.release(conn);
    destroyStdin(execOptions.stdin);
    throw error;
  }
}

/** Feeds stdin: always ended so that commands reading it finish; streams keep backpressure. */
function feedStdin(channel: ClientChannel, stdin: ExecOptions['stdin'], kill: () => void): void {
  if (stdin === undefined) channel.end();
  else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) channel.end(stdin);
  else {
    stdin.once('error', () => kill());
    stdin.pipe(channel);
  }
}

/** The outcome of a closed channel: its exit code and output, or why it ended early. */
function channelOutcome(
  stop: CommandStop,
  info: CommandInfo,
  pool: SshConnectionPool,
  exit: { code: number | null } | null,
  dropped: InstanceImagesError | null,
  output: { stdout: string; stderr: string },
): ExecResult {
  const { program, label, execOptions } = info;
  if (stop.ended === 'cancelled') throw new InstanceImagesError('CANCELLED', `${program} on ${label} was cancelled`);
  if (stop.ended === 'timeout')
    throw new InstanceImagesError('TIMEOUT', `${program} on ${label} timed out after ${execOptions.timeoutMs} ms`);
  if (dropped || exit === null) throw dropped ?? pool.unreachable(`the connection dropped while ${program} was running`);
  return { exitCode: exit.code, ...output };
}

/**
 * A streamed stdout: the channel can close while its readable side still buffers data that `out`
 * has not taken (a slow consumer), so `out` ends only once the channel's stdout is drained. A
 * consumer that stops early (destroys `out`) kills the command.
 */
function endStreamWhenDrained(channel: ClientChannel, out: PassThrough, done: Promise<ExecResult>, kill: () => void): void {
  const drained = finished(channel, { writable: false }).catch(() => undefined);
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

/** Runs `argv` on a pooled connection; see the module comment. */
export async function startSshCommand(
  pool: SshConnectionPool,
  label: string,
  argv: readonly string[],
  execOptions: ExecOptions,
  stdoutMode: StdoutMode,
): Promise<ExecStream> {
  // `$$` of the login shell's `-c` is the session leader (sshd calls setsid); `exec` keeps that
  // pid for the command, so the command's whole process group can be killed.
  const command = `printf '%s\\n' "$$" >&2; exec ${shellCommand(argv)}`;
  const info: CommandInfo = { program: argv[0] ?? '', label, execOptions };
  const { signal, stdin } = execOptions;
  if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `Cancelled before running ${info.program} on ${label}`);

  const stop = new CommandStop(pool, signal, execOptions.timeoutMs);
  const { conn, channel: active } = await openCommandChannel(pool, command, stop, info);
  stop.channel = active;
  if (stop.ended) stop.kill();

  let dropped: InstanceImagesError | null = null;
  const onDrop = (error: InstanceImagesError) => {
    dropped ??= error;
    active.destroy();
  };
  conn.onDrop.add(onDrop);

  active.on('error', () => undefined);
  feedStdin(active, stdin, stop.kill);

  const max = execOptions.maxBuffer ?? DEFAULT_MAX_BUFFER;
  let stdoutText: Promise<string> = Promise.resolve('');
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  if (stdoutMode === 'collect') stdoutText = collect(active, max);
  else if (stdoutMode === 'stream') active.pipe(out, { end: false });
  else active.pipe(stdoutMode);
  const stderrText = collect(stripPidLine(active.stderr, stop.resolvePid), max);

  const done = new Promise<ExecResult>((resolve, reject) => {
    active.once('close', () => {
      stop.resolvePid(null);
      stop.cleanup();
      conn.onDrop.delete(onDrop);
      pool.release(conn);
      if (typeof stdin === 'object' && !Buffer.isBuffer(stdin)) stdin.unpipe(active);
      void Promise.all([stdoutText, stderrText]).then(([stdout, stderr]) => {
        try {
          resolve(channelOutcome(stop, info, pool, exitOf(active), dropped, { stdout, stderr }));
        } catch (error) {
          reject(error);
        }
      });
    });
  });
  if (stdoutMode === 'stream') endStreamWhenDrained(active, out, done, stop.kill);
  done.catch(() => undefined);
  return { stdout: out, done, kill: stop.kill };
}
