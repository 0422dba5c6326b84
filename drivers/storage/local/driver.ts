/**
 * Path-based storage over an executor: every file operation is a command on the hypervisor
 * (locally or over SSH). Used by the `local` driver directly and by `nfs` at its mount point.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { finished } from 'node:stream/promises';
import { InstanceImagesError, isInstanceImagesError } from '../../../src/errors';
import type { ExecOptions, ExecResult, Executor } from '../../../src/ports/executor';
import type { IncompleteUpload, PutOptions, StorageCapabilities, StorageDriver, StoredObject } from '../../../src/ports/storage-driver';
import {
  COMMIT_BYTE,
  DELETE_SCRIPT,
  FREE_SCRIPT,
  HEALTH_SCRIPT,
  LIST_SCRIPT,
  LIST_TEMP_SCRIPT,
  MISSING_EXIT,
  NOT_COMMITTED_EXIT,
  READ_RANGE_SCRIPT,
  READ_SCRIPT,
  SIZE_MISMATCH_EXIT,
  STAT_SCRIPT,
  SYMLINK_EXIT,
  TEMP_NAME,
  WRITE_GUARD_SCRIPT,
  WRITE_SCRIPT,
  WRITE_SIZED_SCRIPT,
  commandFailure,
  executorFailure,
  shArgv,
} from './commands';

/** Settings of {@link createPathStorage}. */
export interface PathStorageSettings {
  /** Driver name reported (`local`, `nfs`). */
  name: string;
  /** The absolute, normalised root directory on the hypervisor. */
  root: string;
  /** Runs the file commands on the hypervisor. */
  executor: Executor;
  /** Capability flags reported. */
  capabilities: StorageCapabilities;
  /** Timeout of metadata commands (stat, list, df, rm, mv) in ms. Default 120 000. */
  metadataTimeoutMs?: number;
  /**
   * Write files with direct I/O (O_DIRECT, 4 MiB blocks) where the filesystem supports it, else
   * buffered with a background write-back. Default true. Either way a file is fsynced before it
   * is renamed into place.
   */
  directIo?: boolean;
}

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

  constructor(private readonly size: number, private readonly key: string, private readonly mayCommit: () => boolean) {
    super({ highWaterMark: 256 * 1024 });
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.size) {
      callback(new InstanceImagesError('VALIDATION_FAILED', `The data for ${this.key} is longer than the announced ${this.size} bytes`, { fields: [{ path: 'size', message: `announced ${this.size}, got more` }] }));
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

function parseMtime(value: string | undefined): Date {
  const seconds = Number(value);
  return new Date(Number.isFinite(seconds) ? Math.round(seconds * 1000) : 0);
}

function encodeListCursor(key: string): string {
  return Buffer.from(key, 'utf8').toString('base64url');
}

function decodeListCursor(cursor: string): string {
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  // eslint-disable-next-line no-control-regex -- a key never holds control characters; they would break the listing
  if (key === '' || encodeListCursor(key) !== cursor || /[\u0000-\u001f\u007f]/.test(key)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'The page cursor is not valid', { fields: [{ path: 'cursor', message: 'is not valid' }] });
  }
  return key;
}

/**
 * Creates a storage driver over a directory reached through `executor`. Writes stream into a temp
 * file next to the target (direct I/O where possible, fsynced), which is renamed into place only
 * when complete.
 *
 * Symbolic links inside the root are never followed (the root itself may be one): a key that is a
 * link, or that passes through a linked directory, counts as absent (`get` NOT_FOUND, `stat` null,
 * `list` and `listIncomplete` skip it, `delete` and `abortIncomplete` do nothing) and is never
 * written (`put` STORAGE_UNAVAILABLE, for the operator to remove the link). NOT_FOUND rather than
 * VALIDATION_FAILED: the key itself is valid, there just is no file of this storage under it.
 * `pathOf` only names the path; a hypervisor driver writing or reading there directly checks it
 * against `pathRoot` itself (the libvirt driver does).
 */
export function createPathStorage(settings: PathStorageSettings): StorageDriver {
  const { executor, root, name } = settings;
  const where = `${name} storage ${root} (${executor.label})`;
  const metadataTimeoutMs = settings.metadataTimeoutMs ?? 120_000;
  const writeMode = settings.directIo === false ? 'buffered' : 'direct';

  const pathOf = (key: string): string => `${root}/${key}`;

  /**
   * NOT_FOUND for a key. Customers see its message and details: they name the key and "the image
   * storage", never the root or the hypervisor (`where` is in the cause, for operators).
   */
  const missing = (key: string): InstanceImagesError =>
    new InstanceImagesError('NOT_FOUND', `The file ${key} does not exist on the image storage`, { details: { key }, cause: new Error(`${key} does not exist on the ${where}`) });

  /** Runs a command; executor errors are mapped, non-zero exits are returned. */
  async function exec(argv: string[], what: string, options: ExecOptions = {}): Promise<ExecResult> {
    try {
      return await executor.run(argv, { timeoutMs: metadataTimeoutMs, ...options });
    } catch (error) {
      throw executorFailure(error, what, where);
    }
  }

  /** Runs a command that must succeed. */
  async function must(argv: string[], what: string, options: ExecOptions = {}): Promise<ExecResult> {
    const result = await exec(argv, what, options);
    if (result.exitCode !== 0) throw commandFailure(result, what, where);
    return result;
  }

  async function stat(key: string): Promise<StoredObject | null> {
    const result = await exec(shArgv(STAT_SCRIPT, root, key), `stat ${key}`);
    if (result.exitCode !== 0) {
      if (/No such file or directory|Not a directory/.test(result.stderr)) return null;
      throw commandFailure(result, `stat ${key}`, where);
    }
    const [size, mtime] = result.stdout.trim().split('\t');
    if (size === undefined || size === '') return null;
    return { key, size: Number(size), modifiedAt: parseMtime(mtime) };
  }

  async function removeQuietly(path: string): Promise<void> {
    await executor.run(['rm', '-f', '--', path], { timeoutMs: metadataTimeoutMs }).catch(() => undefined);
  }

  async function put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    const target = pathOf(key);
    const dir = posix.dirname(target);
    const base = posix.basename(target);
    if (TEMP_NAME.test(base)) {
      body.destroy();
      throw new InstanceImagesError('VALIDATION_FAILED', `The key ${JSON.stringify(key)} looks like a temp file of this storage`, { fields: [{ path: 'key', message: 'must not look like a temp file (.NAME.STAMP-HEX.part)' }] });
    }
    // The write scripts create directories and files wherever a symlinked directory points: refuse
    // a key that is, or passes through, a symbolic link before anything is written.
    try {
      const guard = await exec(shArgv(WRITE_GUARD_SCRIPT, root, key), `write ${key}`);
      if (guard.exitCode === SYMLINK_EXIT) {
        throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Refusing to write ${key} on ${where}: the key is, or passes through, a symbolic link (symbolic links inside the root are never followed; remove it)`, { details: { key } });
      }
      if (guard.exitCode !== 0) throw commandFailure(guard, `write ${key}`, where);
    } catch (error) {
      body.destroy();
      throw error;
    }
    const temp = `${dir}/.${truncateUtf8(base, TEMP_BASE_MAX_BYTES)}.${Date.now().toString(36)}-${randomBytes(4).toString('hex')}.part`;
    // Count through a transform (not a 'data' listener, which would start the flow before the
    // executor is ready to take it).
    let bodyError: Error | null = null;
    let bodyEnded = false;
    const counter = new ByteCounter();
    body.once('error', (error) => {
      bodyError = error;
      counter.destroy(error);
    });
    counter.once('end', () => (bodyEnded = true));
    body.pipe(counter);

    const cleanup = async (error: unknown): Promise<never> => {
      body.destroy();
      counter.destroy();
      await removeQuietly(temp);
      throw error;
    };

    if (options.size !== undefined) {
      // One command: the remote side commits only after exactly `size` bytes and then the commit
      // byte, which is sent only when the body ended cleanly; so no abort, kill or dropped
      // connection can ever rename a partial file into place. A cancel that comes after the
      // commit byte was handed over is too late, as with a completed multipart upload.
      const size = options.size;
      const commit = new AbortController();
      const framer = new CommitFramer(size, key, () => !commit.signal.aborted);
      const onAbort = () => {
        if (!framer.committing) commit.abort();
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted) onAbort();
      counter.once('error', (error) => framer.destroy(error));
      counter.pipe(framer);
      const stdin = framer;
      let framingError: unknown = null;
      framer.once('error', (error) => (framingError = error));
      try {
        const written = await exec(shArgv(WRITE_SIZED_SCRIPT, dir, temp, target, String(size), writeMode), `write ${key}`, { stdin, signal: commit.signal, timeoutMs: undefined });
        if (written.exitCode === 0 && framer.committing) return { size: counter.bytes };
        if (bodyError) throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Writing ${key} failed: the data stream broke`, { cause: bodyError });
        if (framingError) throw framingError;
        if (written.exitCode === SIZE_MISMATCH_EXIT || (written.exitCode === NOT_COMMITTED_EXIT && counter.bytes !== size)) {
          throw new InstanceImagesError('VALIDATION_FAILED', `The data for ${key} had ${counter.bytes} bytes, but ${size} were announced`, { fields: [{ path: 'size', message: `announced ${size}, received ${counter.bytes}` }] });
        }
        if (written.exitCode !== 0) throw commandFailure(written, `write ${key}`, where);
        throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Writing ${key} ended before all data was sent`);
      } catch (error) {
        if (isInstanceImagesError(error, 'CANCELLED') || options.signal?.aborted) return cleanup(new InstanceImagesError('CANCELLED', `Writing ${key} was cancelled`, { cause: error }));
        return cleanup(error);
      } finally {
        options.signal?.removeEventListener('abort', onAbort);
      }
    }

    try {
      const runOptions: ExecOptions = { stdin: counter, timeoutMs: undefined };
      if (options.signal) runOptions.signal = options.signal;
      const written = await exec(shArgv(WRITE_SCRIPT, dir, temp, writeMode), `write ${key}`, runOptions);
      if (options.signal?.aborted) throw new InstanceImagesError('CANCELLED', `Writing ${key} was cancelled`);
      if (bodyError) throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Writing ${key} failed: the data stream broke`, { cause: bodyError });
      if (written.exitCode !== 0) throw commandFailure(written, `write ${key}`, where);
      if (!bodyEnded) throw new InstanceImagesError('STORAGE_UNAVAILABLE', `Writing ${key} ended before all data was sent`);
      // Only now is the body known to be complete: rename it into place.
      await must(['mv', '-f', '-T', '--', temp, target], `move ${key} into place`);
      return { size: counter.bytes };
    } catch (error) {
      return cleanup(error);
    }
  }

  async function get(key: string, options: { range?: { start: number; end?: number }; signal?: AbortSignal } = {}): Promise<Readable> {
    const { range } = options;
    const argv = range ? shArgv(READ_RANGE_SCRIPT, root, key, String(range.start), range.end === undefined ? '' : String(range.end - range.start + 1)) : shArgv(READ_SCRIPT, root, key);
    const streamOptions: Omit<ExecOptions, 'stdout'> = {};
    if (options.signal) streamOptions.signal = options.signal;
    let running;
    try {
      running = await executor.stream(argv, streamOptions);
    } catch (error) {
      throw executorFailure(error, `read ${key}`, where);
    }
    const out = new PassThrough({ highWaterMark: 256 * 1024 });
    running.stdout.pipe(out, { end: false });
    const failure = (result: ExecResult) =>
      result.exitCode === MISSING_EXIT ? missing(key) : commandFailure(result, `read ${key}`, where);
    // Resolve once the command has produced data or ended, so that a missing file is NOT_FOUND here.
    type Opening = { kind: 'data' } | { kind: 'ended'; result: ExecResult } | { kind: 'failed'; error: unknown };
    const first = await Promise.race<Opening>([
      new Promise((resolve) => out.once('readable', () => resolve({ kind: 'data' }))),
      running.done.then(
        (result): Opening => ({ kind: 'ended', result }),
        (error: unknown): Opening => ({ kind: 'failed', error }),
      ),
    ]);
    out.removeAllListeners('readable');
    if (first.kind === 'failed') {
      out.destroy();
      throw executorFailure(first.error, `read ${key}`, where);
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
      (error: unknown) => out.destroy(executorFailure(error, `read ${key}`, where)),
    );
    // A consumer that stops early (destroys the stream) ends the remote command too.
    out.once('close', () => {
      if (!out.writableFinished) running.kill();
    });
    return out;
  }

  async function list(options: { prefix?: string; cursor?: string | null; limit?: number } = {}): Promise<{ items: StoredObject[]; nextCursor: string | null }> {
    const prefix = options.prefix ?? '';
    const limit = options.limit ?? 50;
    const after = options.cursor ? decodeListCursor(options.cursor) : '';
    const slash = prefix.lastIndexOf('/');
    const start = slash < 0 ? '.' : `./${prefix.slice(0, slash)}`;
    // The window variables travel as environment assignments of `env`, quoted like any argument.
    const argv = ['env', `II_PREFIX=${prefix}`, `II_AFTER=${after}`, `II_LIMIT=${limit}`, ...shArgv(LIST_SCRIPT, root, start)];
    const result = await must(argv, 'list files');
    const items: StoredObject[] = [];
    for (const line of result.stdout.split('\n')) {
      if (line === '') continue;
      const [key, size, mtime] = line.split('\t');
      if (key === undefined || size === undefined) continue;
      items.push({ key, size: Number(size), modifiedAt: parseMtime(mtime) });
    }
    const page = items.slice(0, limit);
    const last = page[page.length - 1];
    return { items: page, nextCursor: items.length > limit && last ? encodeListCursor(last.key) : null };
  }

  async function remove(key: string): Promise<void> {
    await must(shArgv(DELETE_SCRIPT, root, key), `delete ${key}`);
  }

  async function freeSpace(): Promise<number> {
    const result = await must(shArgv(FREE_SCRIPT, root), 'read free space');
    const value = Number(result.stdout.trim().split('\n').pop());
    if (!Number.isSafeInteger(value)) throw new InstanceImagesError('STORAGE_UNAVAILABLE', `df printed no free space for ${where}`);
    return value;
  }

  async function health(): Promise<{ ok: boolean; message: string }> {
    try {
      const result = await exec(shArgv(HEALTH_SCRIPT, root), 'check the directory');
      if (result.exitCode !== 0) return { ok: false, message: commandFailure(result, 'check the directory', where).message };
      const [exists, writable, avail] = result.stdout.trim().split(' ');
      if (writable !== '1') return { ok: false, message: `${root} on ${executor.label} is not writable${exists === '1' ? '' : ' (it does not exist, and its parent is not writable)'}` };
      const state = exists === '1' ? 'is writable' : 'does not exist yet and will be created on the first write';
      return { ok: true, message: `${root} on ${executor.label} ${state}; ${avail ?? '?'} bytes free` };
    } catch (error) {
      return { ok: false, message: error instanceof Error ? error.message : String(error) };
    }
  }

  async function listIncomplete(options: { olderThan?: Date } = {}): Promise<IncompleteUpload[]> {
    const result = await must(shArgv(LIST_TEMP_SCRIPT, root), 'list temp files');
    const uploads: IncompleteUpload[] = [];
    for (const line of result.stdout.split('\n')) {
      const [relative, mtime] = line.split('\t');
      if (!relative) continue;
      const base = posix.basename(relative);
      const match = TEMP_NAME.exec(base);
      if (!match) continue;
      const stamp = parseInt(match[2] ?? '', 36);
      const startedAt = Number.isFinite(stamp) ? new Date(stamp) : parseMtime(mtime);
      if (options.olderThan && startedAt >= options.olderThan) continue;
      const dir = posix.dirname(relative);
      uploads.push({ key: dir === '.' ? (match[1] ?? '') : `${dir}/${match[1] ?? ''}`, id: relative, startedAt });
    }
    return uploads.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  async function abortIncomplete(upload: IncompleteUpload): Promise<void> {
    const segments = upload.id.split('/');
    const base = segments[segments.length - 1] ?? '';
    if (upload.id.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..') || !TEMP_NAME.test(base)) {
      throw new InstanceImagesError('VALIDATION_FAILED', 'This is not a temp file of this storage', { fields: [{ path: 'id', message: 'must be a temp file id returned by listIncomplete' }] });
    }
    await remove(upload.id);
  }

  return {
    name,
    capabilities: settings.capabilities,
    put,
    get,
    stat,
    list,
    delete: remove,
    freeSpace,
    health,
    listIncomplete,
    abortIncomplete,
    pathOf,
    pathRoot: () => root,
  };
}
