/**
 * A minimal panel of the import restart test: the SDK on a SQLite file, the local hypervisor
 * (libvirt and qemu-img on this machine, reached by the local executor), a local template storage,
 * URL imports allowed from 127.0.0.2. Used by the panel child process (import-child.ts) and by the
 * test process that plays the panel started again, or another panel beside it.
 */
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { createInstanceImages, type InstanceImages, type InstanceImagesOptions } from '../../../src';
import { localHypervisor } from '../libvirt/setup';

/** Where a test panel keeps its state. */
export interface ImportPanelPaths {
  database: string;
  images: string;
  scratch: string;
}

/** Opens the panel's SDK (the same wiring each time it starts); `fetch`: URL imports run curl on the hypervisor. */
export function openImportPanel(paths: ImportPanelPaths, tasks: InstanceImagesOptions['tasks'], fetch: boolean): InstanceImages {
  const hypervisor = localHypervisor(paths.scratch);
  const executor = createLocalExecutor();
  return createInstanceImages({
    repositories: createSqliteRepositories({ filename: paths.database }),
    hostDirectory: { getInstance: async () => null, getHypervisor: async (id) => (id === hypervisor.id ? hypervisor : null) },
    storageDrivers: builtinStorageDrivers,
    executors: () => executor,
    hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec),
    imports: { allowNetworks: ['127.0.0.2/32'], idleTimeoutMs: 60_000, fetchOnHypervisor: fetch },
    tasks,
  });
}

/** First start: the template storage and its binding. @returns the storage id. */
export async function configureImportPanel(ii: InstanceImages, paths: ImportPanelPaths): Promise<string> {
  const storage = await ii.storages.createStorage(
    { kind: 'admin' },
    { name: 'templates', driver: 'local', purpose: 'templates', config: { path: paths.images } },
  );
  await ii.storages.bindHypervisor({ kind: 'admin' }, storage.id, 'hv-local');
  return storage.id;
}
