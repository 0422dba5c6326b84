/**
 * The `nfs` storage driver: an export (server, export path, mount options) mounted at a mount
 * point on each bound hypervisor; shared between them, with file paths.
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { StorageDriverFactory } from '../../../src/ports/storage-driver';
import { NFS_CAPABILITIES, createNfsStorageDriver } from './driver';
import { NfsStorageOptionsSchema, type NfsStorageOptions } from './options';

export { NfsStorageOptionsSchema, type NfsStorageOptions } from './options';
export { createNfsStorageDriver, createNfsStorage, NFS_CAPABILITIES, type NfsStorageSettings } from './driver';
export { judgeMount, parseNfsSource, readMount, mountExport, type MountCheck, type MountState } from './mount';

/** The `nfs` storage driver factory (register it with `createStorageRegistry().register`). */
export const nfsStorageDriver: StorageDriverFactory<NfsStorageOptions> = {
  name: 'nfs',
  optionsSchema: NfsStorageOptionsSchema,
  secretFields: [],
  capabilities: NFS_CAPABILITIES,
  needsHypervisor: true,
  create(options, context) {
    if (!context.executor) {
      throw new InstanceImagesError('INVALID_STATE', 'The nfs storage driver needs the executor of the hypervisor it is bound to');
    }
    return createNfsStorageDriver(options, context.executor);
  },
};
