/**
 * Path-based storage over an executor: every file operation is a command on the hypervisor
 * (locally or over SSH). Used by the `local` driver directly and by `nfs` at its mount point.
 *
 * The operations live in their own modules over a shared {@link PathContext}: `write.ts` (put),
 * `read.ts` (get) and `listing.ts` (stat, list, temp files).
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { Executor } from '../../../src/ports/executor';
import type { IncompleteUpload, StorageCapabilities, StorageDriver } from '../../../src/ports/storage-driver';
import { DELETE_SCRIPT, FREE_SCRIPT, HEALTH_SCRIPT, PREPARE_SCRIPT, SYMLINK_EXIT, TEMP_NAME, commandFailure, shArgv } from './commands';
import { listFiles, listTempFiles, statFile } from './listing';
import type { LocalStorageOptions } from './options';
import { createPathContext, type PathContext } from './path-context';
import { readFile } from './read';
import { linkRefused, putFile } from './write';

/** Settings of {@link createPathStorageDriver}. */
export interface PathStorageSettings {
  /** Driver name reported (`local`, `nfs`). */
  name: string;
  /** The absolute, normalized root directory on the hypervisor. */
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
export function createPathStorageDriver(settings: PathStorageSettings): StorageDriver {
  const ctx = createPathContext(settings);
  return {
    name: settings.name,
    capabilities: settings.capabilities,
    put: (key, body, options) => putFile(ctx, key, body, options),
    get: (key, options) => readFile(ctx, key, options),
    stat: (key) => statFile(ctx, key),
    list: (options) => listFiles(ctx, options),
    delete: (key) => removeFile(ctx, key),
    freeSpace: () => freeSpace(ctx),
    health: () => checkDirectory(ctx),
    listIncomplete: (options) => listTempFiles(ctx, options),
    abortIncomplete: (upload) => removeTempFile(ctx, upload),
    pathOf: ctx.pathOf,
    pathRoot: () => ctx.root,
    prepareKey: (key) => prepareKey(ctx, key),
  };
}

/** Capabilities of `local`: per-hypervisor, with file paths. */
export const LOCAL_CAPABILITIES: StorageCapabilities = { shared: false, pathAccess: true };

/**
 * Creates a `local` driver instance: the directory `options.path` on the hypervisor that
 * `executor` reaches (direct I/O unless `options.directIo` is false).
 */
export function createLocalStorageDriver(options: LocalStorageOptions, executor: Executor): StorageDriver {
  return createPathStorageDriver({
    name: 'local',
    root: options.path,
    executor,
    capabilities: LOCAL_CAPABILITIES,
    directIo: options.directIo ?? true,
  });
}

/**
 * The former name of {@link createPathStorageDriver}.
 * @deprecated Use {@link createPathStorageDriver} (or {@link createLocalStorageDriver} for a `local` driver).
 */
export const createPathStorage: typeof createPathStorageDriver = createPathStorageDriver;

async function removeFile(ctx: PathContext, key: string): Promise<void> {
  await ctx.must(shArgv(DELETE_SCRIPT, ctx.root, key), `delete ${key}`);
}

/** Makes the directory of `key` in one command, refusing a symbolic link as a write does. */
async function prepareKey(ctx: PathContext, key: string): Promise<void> {
  const result = await ctx.exec(shArgv(PREPARE_SCRIPT, ctx.root, key), `prepare ${key}`);
  if (result.exitCode === SYMLINK_EXIT) throw linkRefused(ctx, key);
  if (result.exitCode !== 0) throw commandFailure(result, `prepare ${key}`, ctx.where);
}

async function freeSpace(ctx: PathContext): Promise<number> {
  const result = await ctx.must(shArgv(FREE_SCRIPT, ctx.root), 'read free space');
  const value = Number(result.stdout.trim().split('\n').pop());
  if (!Number.isSafeInteger(value)) throw new InstanceImagesError('STORAGE_UNAVAILABLE', `df printed no free space for ${ctx.where}`);
  return value;
}

/** Whether the root exists (or can be created) and is writable, with the free bytes; never throws. */
async function checkDirectory(ctx: PathContext): Promise<{ ok: boolean; message: string }> {
  const { root, executor } = ctx;
  try {
    const result = await ctx.exec(shArgv(HEALTH_SCRIPT, root), 'check the directory');
    if (result.exitCode !== 0) return { ok: false, message: commandFailure(result, 'check the directory', ctx.where).message };
    const [exists, writable, avail] = result.stdout.trim().split(' ');
    if (writable !== '1')
      return {
        ok: false,
        message: `${root} on ${executor.label} is not writable${exists === '1' ? '' : ' (it does not exist, and its parent is not writable)'}`,
      };
    const state = exists === '1' ? 'is writable' : 'does not exist yet and will be created on the first write';
    return { ok: true, message: `${root} on ${executor.label} ${state}; ${avail ?? '?'} bytes free` };
  } catch (error) {
    return { ok: false, message: error instanceof Error ? error.message : String(error) };
  }
}

/** Removes a temp file listed by `listIncomplete`; anything else is refused. */
async function removeTempFile(ctx: PathContext, upload: IncompleteUpload): Promise<void> {
  const segments = upload.id.split('/');
  const base = segments[segments.length - 1] ?? '';
  if (upload.id.startsWith('/') || segments.some((s) => s === '' || s === '.' || s === '..') || !TEMP_NAME.test(base)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'This is not a temp file of this storage', {
      fields: [{ path: 'id', message: 'must be a temp file id returned by listIncomplete' }],
    });
  }
  await removeFile(ctx, upload.id);
}
