import {
  createInstanceImages,
  InstanceImagesError,
  type Actor,
  type DeployInput,
  type ErrorCode,
  type InstanceImages,
  type InstanceImagesEvents,
  type MaterializeResult,
  type Repositories,
  type Task,
  type TelemetryOptions,
  type TaskQueue,
  type ImportOptions,
  type Logger,
} from '../../../src';
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
    telemetry?: TelemetryOptions;
    imageCopies?: { allowCustomers?: boolean; billed?: boolean };
    queue?: TaskQueue;
    imports?: ImportOptions;
    logger?: Logger;
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
    ...(options.telemetry ? { telemetry: options.telemetry } : {}),
    ...(options.imageCopies ? { imageCopies: options.imageCopies } : {}),
    ...(options.queue ? { queue: options.queue } : {}),
    ...(options.imports ? { imports: options.imports } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
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

/**
 * Deploys and waits for the task (deploys answer at once): the completed task and the new disk
 * from the `image.deployed` event; a failed or cancelled deploy throws its task's error code.
 */
export async function deployAndWait(
  ii: InstanceImages,
  actor: Actor,
  input: DeployInput,
): Promise<{ task: Task; result: MaterializeResult }> {
  const results = new Map<string, MaterializeResult>();
  const onDeployed = ({ task, result }: { task: Task; result: MaterializeResult }) => results.set(task.id, result);
  ii.events.on('image.deployed', onDeployed);
  try {
    const { task } = await ii.catalog.deployImage(actor, input);
    const finished = await ii.images.waitForTask(actor, task.id);
    const result = results.get(task.id);
    if (finished.status !== 'completed' || !result)
      throw new InstanceImagesError((finished.errorCode ?? 'DEPLOY_FAILED') as ErrorCode, finished.errorMessage ?? 'The deploy failed');
    return { task: finished, result };
  } finally {
    ii.events.off('image.deployed', onDeployed);
  }
}
