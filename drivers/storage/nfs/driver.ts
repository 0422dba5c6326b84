/**
 * The `nfs` driver: an NFS export mounted at a mount point on each bound hypervisor. Before any
 * file operation (and on every health check) it verifies with `findmnt` that the mount point
 * really is an NFS mount of the configured export, so that nothing is ever written to the local
 * directory underneath an unmounted share; file operations are those of the local driver.
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { Executor } from '../../../src/ports/executor';
import type { StorageCapabilities, StorageDriver } from '../../../src/ports/storage-driver';
import { createPathStorageDriver } from '../local/driver';
import { judgeMount, mountExport, readMount, type MountCheck } from './mount';
import type { NfsStorageOptions } from './options';

/** Capabilities of `nfs`: the same bytes from every bound hypervisor, with file paths. */
export const NFS_CAPABILITIES: StorageCapabilities = { shared: true, pathAccess: true };

/** Settings of {@link createNfsStorageDriver} besides the storage config. */
export interface NfsStorageSettings {
  /** How long a successful mount check is trusted before file operations check again (default 5 000 ms). */
  verifiedForMs?: number;
}

/** Creates an `nfs` driver instance acting through `executor` on one hypervisor. */
export function createNfsStorageDriver(options: NfsStorageOptions, executor: Executor, settings: NfsStorageSettings = {}): StorageDriver {
  const files = createPathStorageDriver({
    name: 'nfs',
    root: options.mountPoint,
    executor,
    capabilities: NFS_CAPABILITIES,
    directIo: options.directIo ?? false,
  });
  const verifiedForMs = settings.verifiedForMs ?? 5_000;
  const exportName = `${options.server}:${options.exportPath}`;
  let verifiedAt = -Infinity;
  let checking: Promise<MountCheck> | null = null;

  async function checkOnce(): Promise<MountCheck> {
    let verdict = judgeMount(options, await readMount(executor, options.mountPoint));
    // Mount only where nothing is mounted yet: never on top of another filesystem at the mount point.
    if (!verdict.ok && options.autoMount && verdict.mounted?.target !== options.mountPoint) {
      await mountExport(executor, options);
      verdict = judgeMount(options, await readMount(executor, options.mountPoint));
    }
    if (verdict.ok) verifiedAt = Date.now();
    return verdict;
  }

  /** One check at a time; concurrent callers share it. */
  function check(): Promise<MountCheck> {
    checking ??= checkOnce().finally(() => {
      checking = null;
    });
    return checking;
  }

  async function ensureMounted(): Promise<void> {
    if (Date.now() - verifiedAt < verifiedForMs) return;
    const verdict = await check();
    if (!verdict.ok) {
      throw new InstanceImagesError(
        'STORAGE_UNAVAILABLE',
        `The NFS storage ${exportName} is not usable on ${executor.label}: ${verdict.reason}${options.autoMount ? '' : ' (autoMount is off)'}`,
        {
          details: { mountPoint: options.mountPoint },
        },
      );
    }
  }

  const guarded =
    <Args extends unknown[], Result>(operation: (...args: Args) => Promise<Result>) =>
    async (...args: Args): Promise<Result> => {
      await ensureMounted();
      return operation(...args);
    };

  return {
    name: 'nfs',
    capabilities: NFS_CAPABILITIES,
    put: async (key, body, putOptions) => {
      try {
        await ensureMounted();
      } catch (error) {
        body.destroy();
        throw error;
      }
      return files.put(key, body, putOptions);
    },
    get: guarded(files.get),
    stat: guarded(files.stat),
    list: guarded(files.list),
    delete: guarded(files.delete),
    freeSpace: guarded(files.freeSpace),
    listIncomplete: guarded(files.listIncomplete),
    abortIncomplete: guarded(files.abortIncomplete),
    prepareKey: guarded(async (key: string) => files.prepareKey?.(key)),
    pathOf: (key) => `${options.mountPoint}/${key}`,
    pathRoot: () => options.mountPoint,
    async health() {
      let verdict: MountCheck;
      try {
        verdict = await check();
      } catch (error) {
        return { ok: false, message: error instanceof Error ? error.message : String(error) };
      }
      if (!verdict.ok) return { ok: false, message: `${exportName} is not usable on ${executor.label}: ${verdict.reason}` };
      const directory = await files.health();
      const mount = `${exportName} is mounted at ${options.mountPoint} (${verdict.mount.fstype}, ${verdict.mount.options})`;
      return { ok: directory.ok, message: `${mount}; ${directory.message}` };
    },
  };
}

/**
 * The former name of {@link createNfsStorageDriver}.
 * @deprecated Use {@link createNfsStorageDriver}.
 */
export const createNfsStorage: typeof createNfsStorageDriver = createNfsStorageDriver;
