/**
 * The `local` storage driver: a directory on each bound hypervisor, reached through that
 * hypervisor's executor (SSH, or the local executor when the panel runs on the same host).
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriverFactory } from '../../../src/ports/storage-driver';
import { LOCAL_CAPABILITIES, createLocalStorageDriver } from './driver';
import { LocalStorageOptionsSchema, type LocalStorageOptions } from './options';

export { LocalStorageOptionsSchema, AbsoluteDirectorySchema, type LocalStorageOptions } from './options';
export {
  createLocalStorageDriver,
  createPathStorageDriver,
  createPathStorage,
  LOCAL_CAPABILITIES,
  type PathStorageSettings,
} from './driver';

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
    return createLocalStorageDriver(options, context.executor);
  },
};
