/**
 * The `local` storage driver: a directory on each bound hypervisor, reached through that
 * hypervisor's executor (SSH, or the local executor when the panel runs on the same host).
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriverFactory } from '../../../src/ports/storage-driver';
import { createPathStorage } from './driver';
import { LocalStorageOptionsSchema, type LocalStorageOptions } from './options';

export { LocalStorageOptionsSchema, AbsoluteDirectorySchema, type LocalStorageOptions } from './options';
export { createPathStorage, type PathStorageSettings } from './driver';

/** Capabilities of `local`: per-hypervisor, with file paths. */
const LOCAL_CAPABILITIES = { shared: false, pathAccess: true } as const;

/** The `local` storage driver factory (register it with `createStorageRegistry().register`). */
export const localStorageDriver: StorageDriverFactory<LocalStorageOptions> = {
  name: 'local',
  optionsSchema: LocalStorageOptionsSchema,
  secretFields: [],
  capabilities: LOCAL_CAPABILITIES,
  needsHypervisor: true,
  create(options, context) {
    if (!context.executor) {
      throw new InstanceImagesError('INVALID_STATE', 'The local storage driver needs the executor of the hypervisor it is bound to');
    }
    return createPathStorage({ name: 'local', root: options.path, executor: context.executor, capabilities: LOCAL_CAPABILITIES, directIo: options.directIo ?? true });
  },
};
