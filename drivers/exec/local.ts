/**
 * The local executor: runs argv arrays with child_process.spawn, never through a shell.
 * @module
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { InstanceImagesError } from '../../src/errors';
import type { ExecOptions, ExecResult, ExecStream, Executor } from '../../src/ports/executor';
import { collect, DEFAULT_MAX_BUFFER } from './collect';

function start(
  argv: readonly string[],
  options: ExecOptions,
  pipeStdout: Writable | 'stream' | undefined,
): { stdout: Readable; done: Promise<ExecResult>; kill(): void } {
  const [program, ...args] = argv;
  if (program === undefined) throw new InstanceImagesError('VALIDATION_FAILED', 'A command needs a program name');
  if (options.signal?.aborted) throw new InstanceImagesError('CANCELLED', `Cancelled before running ${program}`);
  const child = spawn(program, args, { shell: false, stdio: ['pipe', 'pipe', 'pipe'] });
  const max = options.maxBuffer ?? DEFAULT_MAX_BUFFER;
  let ended: 'cancelled' | 'timeout' | null = null;
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  const onAbort = () => {
    ended ??= 'cancelled';
    kill();
  };
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const timer = options.timeoutMs
    ? setTimeout(() => {
        ended ??= 'timeout';
        kill();
      }, options.timeoutMs)
    : null;

  // stdin: always closed so that programs waiting on it end.
  child.stdin.on('error', () => undefined);
  const { stdin } = options;
  if (stdin === undefined) child.stdin.end();
  else if (typeof stdin === 'string' || Buffer.isBuffer(stdin)) child.stdin.end(stdin);
  else {
    stdin.on('error', () => kill());
    stdin.pipe(child.stdin);
  }

  let stdoutText: Promise<string> = Promise.resolve('');
  if (pipeStdout === undefined) stdoutText = collect(child.stdout, max);
  else if (pipeStdout !== 'stream') child.stdout.pipe(pipeStdout);
  const stderrText = collect(child.stderr, max);

  const done = new Promise<ExecResult>((resolve, reject) => {
    child.on('error', (error) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      reject(new InstanceImagesError('COMMAND_FAILED', `Could not start ${program}`, { cause: error }));
    });
    child.on('close', (code) => {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      void Promise.all([stdoutText, stderrText]).then(([stdout, stderr]) => {
        if (ended === 'cancelled') reject(new InstanceImagesError('CANCELLED', `${program} was cancelled`));
        else if (ended === 'timeout') reject(new InstanceImagesError('TIMEOUT', `${program} timed out after ${options.timeoutMs} ms`));
        else resolve({ exitCode: code, stdout, stderr });
      });
    });
  });
  return { stdout: child.stdout, done, kill };
}

/** Connects to a unix socket on this machine (see {@link Executor.openStreamLocal}). */
function openUnixSocket(socketPath: string, signal: AbortSignal | undefined): Promise<Duplex> {
  if (signal?.aborted) return Promise.reject(new InstanceImagesError('CANCELLED', `Cancelled before connecting to ${socketPath}`));
  return new Promise<Duplex>((resolve, reject) => {
    const socket = connect({ path: socketPath });
    const onAbort = () => {
      socket.destroy();
      reject(new InstanceImagesError('CANCELLED', `Cancelled while connecting to ${socketPath}`));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        new InstanceImagesError('COMMAND_FAILED', `Cannot connect to the unix socket ${socketPath} (${error.code ?? error.message})`, {
          cause: error,
        }),
      );
    });
  });
}

/** Options of {@link createLocalExecutor}. */
export interface LocalExecutorOptions {
  /** Label used in messages; default `local`. */
  label?: string;
}

/** Creates an executor that runs commands on this machine (argv only, no shell). */
export function createLocalExecutor(options: LocalExecutorOptions = {}): Executor {
  return {
    label: options.label ?? 'local',
    async run(argv, runOptions = {}) {
      return start(argv, runOptions, runOptions.stdout).done;
    },
    async stream(argv, streamOptions = {}): Promise<ExecStream> {
      const { stdout, done, kill } = start(argv, streamOptions, 'stream');
      done.catch(() => undefined);
      return { stdout, done, kill };
    },
    openStreamLocal(socketPath, streamOptions = {}) {
      return openUnixSocket(socketPath, streamOptions.signal);
    },
    async close() {
      // nothing pooled
    },
  };
}
