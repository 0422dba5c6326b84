/**
 * A minimal panel of the restart tests: the SDK on a SQLite file, the local hypervisor (libvirt on
 * this machine), a local image storage, one instance of one test guest. Used by the panel child
 * process (panel-child.ts) and by the test process that plays the panel started again.
 */
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { createLocalExecutor } from '../../../drivers/exec/local';
import { createLibvirtDriver, type LibvirtDriverHooks } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { createInstanceImages, type Actor, type InstanceImages, type InstanceImagesOptions } from '../../../src';
import { localHypervisor } from './setup';

export const panelAdmin: Actor = { kind: 'admin', userId: 'operator' };
export const panelCustomer: Actor = { kind: 'customer', accountId: 'acct-restart' };

/** Where a test panel keeps its state. */
export interface PanelPaths {
  database: string;
  images: string;
  scratch: string;
  domainName: string;
}

/** Opens the panel's SDK (the same wiring each time it starts). */
export function openPanel(paths: PanelPaths, tasks: InstanceImagesOptions['tasks'], hooks: LibvirtDriverHooks = {}): InstanceImages {
  const hypervisor = localHypervisor(paths.scratch);
  const executor = createLocalExecutor();
  return createInstanceImages({
    repositories: createSqliteRepositories({ filename: paths.database }),
    hostDirectory: {
      getInstance: async (id) =>
        id === 'vm-1'
          ? {
              id,
              name: 'restart-test',
              accountId: 'acct-restart',
              locationId: 'loc',
              hypervisorId: hypervisor.id,
              domainName: paths.domainName,
            }
          : null,
      getHypervisor: async (id) => (id === hypervisor.id ? hypervisor : null),
    },
    storageDrivers: builtinStorageDrivers,
    executors: () => executor,
    hypervisorDriver: (hv, exec) => createLibvirtDriver(hv, exec, { method: 'pull-backup', hooks }),
    tasks,
  });
}

/** First start: the location, the storage and its binding. @returns the storage id. */
export async function configurePanel(ii: InstanceImages, paths: PanelPaths): Promise<string> {
  await ii.settings.setLocationSettings(panelAdmin, 'loc', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 10 });
  const storage = await ii.storages.createStorage(panelAdmin, { name: 'local', driver: 'local', config: { path: paths.images } });
  await ii.storages.bindHypervisor(panelAdmin, storage.id, 'hv-local');
  return storage.id;
}
