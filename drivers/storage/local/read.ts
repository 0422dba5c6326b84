/**
 * The get of a path storage: the file streams from a command on the hypervisor; a missing file is
 * NOT_FOUND before the stream is handed out, and a failure later destroys the stream.
 * @module
 */
import { PassThrough, type Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { ExecOptions, ExecResult, ExecStream } from '../../../src/ports/executor';
import { MISSING_EXIT, READ_RANGE_SCRIPT, READ_SCRIPT, commandFailure, executorFailure, shArgv } from './commands';
import type { PathContext } from './path-context';

/** How a read command started: with data, by ending, or by failing to run. */
type Opening = { kind: 'data' } | { kind: 'ended'; result: ExecResult } | { kind: 'failed'; error: unknown };

/** Resolves once the command has produced data or ended, so that a missing file is NOT_FOUND at once. */
async function firstOutput(running: ExecStream, out: PassThrough): Promise<Opening> {
  const first = await Promise.race<Opening>([
    new Promise((resolve) => out.once('readable', () => resolve({ kind: 'data' }))),
    running.done.then(
      (result): Opening => ({ kind: 'ended', result }),
      (error: unknown): Opening => ({ kind: 'failed', error }),
    ),
  ]);
  out.removeAllListeners('readable');
  return first;
}

/** Opens `key` for reading, optionally a byte range: the path storage's `get`. */
export async function readFile(
  ctx: PathContext,
  key: string,
  options: { range?: { start: number; end?: number }; signal?: AbortSignal } = {},
): Promise<Readable> {
  const { range } = options;
  const argv = range
    ? shArgv(READ_RANGE_SCRIPT, ctx.root, key, String(range.start), range.end === undefined ? '' : String(range.end - range.start + 1))
    : shArgv(READ_SCRIPT, ctx.root, key);
  const streamOptions: Omit<ExecOptions, 'stdout'> = {};
  if (options.signal) streamOptions.signal = options.signal;
  let running;
  try {
    running = await ctx.executor.stream(argv, streamOptions);
  } catch (error) {
    throw executorFailure(error, `read ${key}`, ctx.where);
  }
  const out = new PassThrough({ highWaterMark: 256 * 1024 });
  running.stdout.pipe(out, { end: false });
  const failure = (result: ExecResult) =>
    result.exitCode === MISSING_EXIT ? ctx.missing(key) : commandFailure(result, `read ${key}`, ctx.where);
  const first = await firstOutput(running, out);
  if (first.kind === 'failed') {
    out.destroy();
    throw executorFailure(first.error, `read ${key}`, ctx.where);
  }
  if (first.kind === 'ended' && first.result.exitCode !== 0) {
    out.destroy();
    throw failure(first.result);
  }
  // The command can end while its stdout still holds data that `out` has not taken yet
  // (backpressure from a slow consumer): end `out` only once that stdout is drained.
  // `finished` also settles for a stdout that has already ended (an empty file, a fast command).
  const drained = finished(running.stdout).catch(() => undefined);
  running.done.then(
    async (result) => {
      if (result.exitCode !== 0) return out.destroy(failure(result));
      await drained;
      out.end();
    },
    (error: unknown) => out.destroy(executorFailure(error, `read ${key}`, ctx.where)),
  );
  // A consumer that stops early (destroys the stream) ends the remote command too.
  out.once('close', () => {
    if (!out.writableFinished) running.kill();
  });
  return out;
}
