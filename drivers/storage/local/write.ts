/**
 * The put of a path storage: the body streams into a temp file next to the target (direct I/O
 * where possible, fsynced), which is renamed into place only when complete. With a known size the
 * remote side itself commits; without one, the rename follows the body's clean end.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { InstanceImagesError, isInstanceImagesError } from '../../../src/errors';
import type { ExecOptions } from '../../../src/ports/executor';
import type { PutOptions } from '../../../src/ports/storage-driver';
import {
  COMMIT_BYTE,
  NOT_COMMITTED_EXIT,
  SIZE_MISMATCH_EXIT,
  SYMLINK_EXIT,
  TEMP_NAME,
  WRITE_GUARD_SCRIPT,
  WRITE_SCRIPT,
  WRITE_SIZED_SCRIPT,
  commandFailure,
  shArgv,
} from './commands';
import type { PathContext } from './path-context';

/** Counts the bytes passing through. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    callback(null, chunk);
  }
}

/**
 * Passes exactly `size` bytes and then, if the data ended cleanly with that many bytes and the
 * write may still commit, the commit byte. More data than announced is an error.
 */
class CommitFramer extends Transform {
  private bytes = 0;
  /** Whether the commit byte has been handed on (from then on the write cannot be called back). */
  committing = false;

  constructor(
    private readonly size: number,
    private readonly key: string,
    private readonly mayCommit: () => boolean,
  ) {
    super({ highWaterMark: 256 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.size) {
      callback(
        new InstanceImagesError('VALIDATION_FAILED', `The data for ${this.key} is longer than the announced ${this.size} bytes`, {
          fields: [{ path: 'size', message: `announced ${this.size}, got more` }],
        }),
      );
      return;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    if (this.bytes === this.size && this.mayCommit()) {
      this.committing = true;
      callback(null, COMMIT_BYTE);
      return;
    }
    callback();
  }
}

/** Longest part of a key's base name kept in its temp file name (NAME_MAX is 255 bytes). */
const TEMP_BASE_MAX_BYTES = 200;

function truncateUtf8(text: string, maxBytes: number): string {
  let out = text;
  while (Buffer.byteLength(out, 'utf8') > maxBytes) out = out.slice(0, -1);
  return out;
}

/** Where one put writes: the key's directory, its temp file and its final path. */
interface WritePaths {
  dir: string;
  temp: string;
  target: string;
}

/** The body as the write command reads it, counted, with what became of the body itself. */
interface CountedBody {
  counter: ByteCounter;
  /** The body's own error, when it failed. */
  error: Error | null;
  /** Whether all of the body passed through the counter. */
  ended: boolean;
}

/** Refuses a key whose base name looks like a temp file of this storage. */
function refuseTempLookalike(key: string, base: string, body: Readable): void {
  if (!TEMP_NAME.test(base)) return;
  body.destroy();
  throw new InstanceImagesError('VALIDATION_FAILED', `The key ${JSON.stringify(key)} looks like a temp file of this storage`, {
    fields: [{ path: 'key', message: 'must not look like a temp file (.NAME.STAMP-HEX.part)' }],
  });
}

/** The error of a write refused because `key` is, or passes through, a symbolic link. */
export function linkRefused(ctx: PathContext, key: string): InstanceImagesError {
  return new InstanceImagesError(
    'STORAGE_UNAVAILABLE',
    `Refusing to write ${key} on ${ctx.where}: the key is, or passes through, a symbolic link (symbolic links inside the root are never followed; remove it)`,
    { details: { key } },
  );
}

/**
 * The write scripts create directories and files wherever a symlinked directory points: refuse a
 * key that is, or passes through, a symbolic link before anything is written.
 */
async function refuseSymbolicLinks(ctx: PathContext, key: string, body: Readable): Promise<void> {
  try {
    const guard = await ctx.exec(shArgv(WRITE_GUARD_SCRIPT, ctx.root, key), `write ${key}`);
    if (guard.exitCode === SYMLINK_EXIT) throw linkRefused(ctx, key);
    if (guard.exitCode !== 0) throw commandFailure(guard, `write ${key}`, ctx.where);
  } catch (error) {
    body.destroy();
    throw error;
  }
}

/**
 * Pipes the body through a counter. Counting happens in a transform (not a 'data' listener, which
 * would start the flow before the executor is ready to take it).
 */
function countBody(body: Readable): CountedBody {
  const counted: CountedBody = { counter: new ByteCounter(), error: null, ended: false };
  body.once('error', (error) => {
    counted.error = error;
    counted.counter.destroy(error);
  });
  counted.counter.once('end', () => (counted.ended = true));
  body.pipe(counted.counter);
  return counted;
}

/**
 * One command: the remote side commits only after exactly `size` bytes and then the commit byte,
 * which is sent only when the body ended cleanly; so no abort, kill or dropped connection can ever
 * rename a partial file into place. A cancel that comes after the commit byte was handed over is
 * too late, as with a completed multipart upload.
 */
async function writeSized(
  ctx: PathContext,
  key: string,
  paths: WritePaths,
  counted: CountedBody,
  size: number,
  signal: AbortSignal | undefined,
): Promise<{ size: number }> {
  const { counter } = counted;
  const commit = new AbortController();
  const framer = new CommitFramer(size, key, () => !commit.signal.aborted);
  const onAbort = () => {
    if (!framer.committing) commit.abort();
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  counter.once('error', (error) => framer.destroy(error));
  counter.pipe(framer);
  let framingError: unknown = null;
  framer.once('error', (error) => (framingError = error));
  try {
    const written = await ctx.exec(
      shArgv(WRITE_SIZED_SCRIPT, paths.dir, paths.temp, paths.target, String(size), ctx.writeMode),
      `write ${key}`,
      { stdin: framer, signal: commit.signal, timeoutMs: undefined },
    );
    if (written.exitCode === 0 && framer.committing) return { size: counter.bytes };
    if (counted.error)
      throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Writing ${key} failed: the data stream broke`, { cause: counted.error });
    if (framingError) throw framingError;
    if (written.exitCode === SIZE_MISMATCH_EXIT || (written.exitCode === NOT_COMMITTED_EXIT && counter.bytes !== size)) {
      throw new InstanceImagesError('VALIDATION_FAILED', `The data for ${key} had ${counter.bytes} bytes, but ${size} were announced`, {
        fields: [{ path: 'size', message: `announced ${size}, received ${counter.bytes}` }],
      });
    }
    if (written.exitCode !== 0) throw commandFailure(written, `write ${key}`, ctx.where);
    throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Writing ${key} ended before all data was sent`);
  } catch (error) {
    if (isInstanceImagesError(error, 'CANCELLED') || signal?.aborted)
      throw new InstanceImagesError('CANCELLED', `Writing ${key} was cancelled`, { cause: error });
    throw error;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** Writes the temp file until the body ends, then (only then) renames it into place. */
async function writeUnsized(
  ctx: PathContext,
  key: string,
  paths: WritePaths,
  counted: CountedBody,
  signal: AbortSignal | undefined,
): Promise<{ size: number }> {
  const runOptions: ExecOptions = { stdin: counted.counter, timeoutMs: undefined };
  if (signal) runOptions.signal = signal;
  const written = await ctx.exec(shArgv(WRITE_SCRIPT, paths.dir, paths.temp, ctx.writeMode), `write ${key}`, runOptions);
  if (signal?.aborted) throw new InstanceImagesError('CANCELLED', `Writing ${key} was cancelled`);
  if (counted.error)
    throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Writing ${key} failed: the data stream broke`, { cause: counted.error });
  if (written.exitCode !== 0) throw commandFailure(written, `write ${key}`, ctx.where);
  if (!counted.ended) throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Writing ${key} ended before all data was sent`);
  await ctx.must(['mv', '-f', '-T', '--', paths.temp, paths.target], `move ${key} into place`);
  return { size: counted.counter.bytes };
}

/** Stores `body` under `key`: the path storage's `put`. On any failure the temp file is removed. */
export async function putFile(ctx: PathContext, key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
  const target = ctx.pathOf(key);
  const dir = posix.dirname(target);
  const base = posix.basename(target);
  refuseTempLookalike(key, base, body);
  await refuseSymbolicLinks(ctx, key, body);
  const temp = `${dir}/.${truncateUtf8(base, TEMP_BASE_MAX_BYTES)}.${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.part`;
  const counted = countBody(body);
  const paths: WritePaths = { dir, temp, target };
  try {
    if (options.size !== undefined) return await writeSized(ctx, key, paths, counted, options.size, options.signal);
    return await writeUnsized(ctx, key, paths, counted, options.signal);
  } catch (error) {
    body.destroy();
    counted.counter.destroy();
    await ctx.removeQuietly(temp);
    throw error;
  }
}
