import { createInstanceImages, type Actor, type InstanceImages, type InstanceImagesEvents, type Repositories } from '../../../src';
import { FakeWorld } from '../../support/fakes';

export const admin: Actor = { kind: 'admin', userId: 'op' };
export const alice: Actor = { kind: 'customer', accountId: 'acct-alice' };
export const bob: Actor = { kind: 'customer', accountId: 'acct-bob' };

export interface Harness {
  world: FakeWorld;
  ii: InstanceImages;
  clock: { now: Date };
  events: { type: keyof InstanceImagesEvents; payload: unknown }[];
  storageId: string;
}

/** An SDK on fakes of our own ports: one stream storage (or a path storage) bound to hv-1, location enabled. */
export async function setup(
  options: {
    storage?: 'stream' | 'path';
    limit?: number | null;
    price?: string;
    deploy?: { maxDiskBytes?: number };
    repositories?: Repositories;
    imageCopies?: { allowCustomers?: boolean; billed?: boolean };
  } = {},
): Promise<Harness> {
  const world = new FakeWorld();
  world.addHypervisor('hv-1');
  world.addHypervisor('hv-2');
  const clock = { now: new Date('2026-11-03T10:15:00.000Z') };
  const ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver: world.hypervisorFactory(),
    storageDrivers: [
      world.storageFactory('fake-s3', { shared: true, pathAccess: false }),
      world.storageFactory('fake-local', { shared: false, pathAccess: true }),
    ],
    tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
    clock: () => new Date(clock.now.getTime()),
    ...(options.deploy ? { deploy: options.deploy } : {}),
    ...(options.repositories ? { repositories: options.repositories } : {}),
    ...(options.imageCopies ? { imageCopies: options.imageCopies } : {}),
  });
  const events: Harness['events'] = [];
  ii.events.on('*', (type, payload) => events.push({ type, payload }));
  await ii.settings.setLocationSettings(admin, 'loc-1', {
    imagesEnabled: true,
    pricePerGbMonth: options.price ?? '0.05',
    defaultImageLimit: options.limit === undefined ? 5 : options.limit,
  });
  const storage = await ii.storages.createStorage(
    admin,
    options.storage === 'path'
      ? { name: 'local', driver: 'fake-local', config: { root: '/images' } }
      : { name: 's3', driver: 'fake-s3', config: { root: 'bucket', secret: 'top-secret-key' } },
  );
  await ii.storages.bindHypervisor(admin, storage.id, 'hv-1');
  world.addInstance('web-1', 'acct-alice');
  world.addInstance('db-1', 'acct-alice', { state: 'shutoff' });
  world.addInstance('bob-1', 'acct-bob');
  return { world, ii, clock, events, storageId: storage.id };
}

export { codeOf } from '../../support/errors';
