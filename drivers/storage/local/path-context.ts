/**
 * What every operation of a path storage shares: the root and the executor, the command runners
 * that map executor failures, and the NOT_FOUND error customers see.
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { ExecOptions, ExecResult, Executor } from '../../../src/ports/executor';
import { commandFailure, executorFailure } from './commands';

/** The shared state of one path storage (see {@link createPathContext}). */
export interface PathContext {
  /** The driver name (`local`, `nfs`). */
  readonly name: string;
  /** The absolute, normalized root directory on the hypervisor. */
  readonly root: string;
  /** Runs the file commands on the hypervisor. */
  readonly executor: Executor;
  /** `<name> storage <root> (<executor>)`: where, for operators' messages. */
  readonly where: string;
  /** Timeout of metadata commands in ms. */
  readonly metadataTimeoutMs: number;
  /** How the write scripts write: `direct` (O_DIRECT where supported) or `buffered`. */
  readonly writeMode: 'direct' | 'buffered';
  /** The path of `key` on the hypervisor. */
  pathOf(key: string): string;
  /**
   * NOT_FOUND for a key. Customers see its message and details: they name the key and "the image
   * storage", never the root or the hypervisor (`where` is in the cause, for operators).
   */
  missing(key: string): InstanceImagesError;
  /** Runs a command; executor errors are mapped, non-zero exits are returned. */
  exec(argv: string[], what: string, options?: ExecOptions): Promise<ExecResult>;
  /** Runs a command that must succeed. */
  must(argv: string[], what: string, options?: ExecOptions): Promise<ExecResult>;
  /** Removes a file, ignoring any failure. */
  removeQuietly(path: string): Promise<void>;
}

/** The settings {@link createPathContext} reads. */
export interface PathContextSettings {
  name: string;
  root: string;
  executor: Executor;
  metadataTimeoutMs?: number;
  directIo?: boolean;
}

/** Creates the shared state of a path storage. */
export function createPathContext(settings: PathContextSettings): PathContext {
  const { executor, root, name } = settings;
  const where = `${name} storage ${root} (${executor.label})`;
  const metadataTimeoutMs = settings.metadataTimeoutMs ?? 120_000;

  const exec = async (argv: string[], what: string, options: ExecOptions = {}): Promise<ExecResult> => {
    try {
      return await executor.run(argv, { timeoutMs: metadataTimeoutMs, ...options });
    } catch (error) {
      throw executorFailure(error, what, where);
    }
  };

  return {
    name,
    root,
    executor,
    where,
    metadataTimeoutMs,
    writeMode: settings.directIo === false ? 'buffered' : 'direct',
    pathOf: (key) => `${root}/${key}`,
    missing: (key) =>
      new InstanceImagesError('NOT_FOUND', `The file ${key} does not exist on the image storage`, {
        details: { key },
        cause: new Error(`${key} does not exist on the ${where}`),
      }),
    exec,
    async must(argv, what, options = {}) {
      const result = await exec(argv, what, options);
      if (result.exitCode !== 0) throw commandFailure(result, what, where);
      return result;
    },
    async removeQuietly(path) {
      await executor.run(['rm', '-f', '--', path], { timeoutMs: metadataTimeoutMs }).catch(() => undefined);
    },
  };
}
