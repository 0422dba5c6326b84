/**
 * An SDK for the upload and import unit tests: in-process fakes, one shared fake-S3 custom-images
 * storage bound to `hv-1` in `loc-1`, imports on there, and uploads staged in a fresh directory
 * (removed by {@link UploadWorld.remove}).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInstanceImages, type Actor, type InstanceImages, type InstanceImagesOptions, type LocationSettingsInput } from '../../src';
import { FakeWorld } from './fakes';

const ADMIN: Actor = { kind: 'admin' };

/** What {@link uploadWorld} made. */
export interface UploadWorld {
  world: FakeWorld;
  ii: InstanceImages;
  /** The upload staging directory. */
  dir: string;
  /** Removes the staging directory (after `ii.close()`). */
  remove(): void;
}

/**
 * Builds the SDK. `options` are added to (and `uploads` merged into) the defaults; `location`
 * is added to the location's settings (`imagesEnabled` and `urlImportEnabled` are on).
 */
export async function uploadWorld(
  options: Partial<InstanceImagesOptions> = {},
  location: LocationSettingsInput = {},
): Promise<UploadWorld> {
  const world = new FakeWorld();
  world.addHypervisor('hv-1');
  const dir = mkdtempSync(join(tmpdir(), 'ii-uploads-'));
  const ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver: world.hypervisorFactory(),
    storageDrivers: [world.storageFactory('fake-s3', { shared: true, pathAccess: false })],
    tasks: { progressIntervalMs: 0 },
    ...options,
    uploads: { directory: dir, sweepIntervalMs: 0, ...options.uploads },
  });
  await ii.settings.setLocationSettings(ADMIN, 'loc-1', { imagesEnabled: true, urlImportEnabled: true, ...location });
  const storage = await ii.storages.createStorage(ADMIN, { name: 's3', driver: 'fake-s3', config: { root: 'bucket' } });
  await ii.storages.bindHypervisor(ADMIN, storage.id, 'hv-1');
  return { world, ii, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
