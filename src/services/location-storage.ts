/**
 * Which storage of a location receives a new custom image when the caller names a location, not
 * a storage (imports, copies to another location).
 * @module
 */
import { InstanceImagesError } from '../errors';
import type { ImageStorage } from '../model/image-storage';
import type { DriverCache, ServiceContext } from './context';

/** A storage of a location and the hypervisor of that location it is reached through. */
export interface LocationStorage {
  storage: ImageStorage;
  hypervisorId: string;
  /** Free bytes, when the storage can tell. */
  free: number | null;
}

/**
 * An enabled custom-images storage bound to a hypervisor of `locationId`, the one with the most
 * free space first (a storage that cannot answer is skipped, with a warning). `except` leaves out
 * one storage (and hypervisor, for per-hypervisor storages): where an image already is.
 * @throws NO_IMAGE_STORAGE when the location has none.
 */
export async function pickLocationStorage(
  ctx: ServiceContext,
  drivers: DriverCache,
  locationId: string,
  except?: { storageId: string; hypervisorId: string | null },
): Promise<LocationStorage> {
  const storages = (await ctx.repos.storages.list({ purpose: 'custom-images' })).filter((s) => s.enabled);
  let best: LocationStorage | null = null;
  for (const storage of storages) {
    for (const binding of await ctx.repos.storages.listBindings({ storageId: storage.id })) {
      const hypervisor = await ctx.host.getHypervisor(binding.hypervisorId).catch(() => null);
      if (hypervisor?.locationId !== locationId) continue;
      const disk = await drivers.storage(storage, hypervisor.id).catch(() => null);
      const here = except?.storageId === storage.id && (disk === null || disk.capabilities.shared || except.hypervisorId === hypervisor.id);
      if (here) continue;
      try {
        if (!disk) throw new Error('the storage driver could not be created');
        const free = await disk.freeSpace();
        if (best === null || (best.free !== null && (free === null || free > best.free)))
          best = { storage, hypervisorId: hypervisor.id, free };
      } catch (error) {
        ctx.logger.warn('image storage not usable here', { storageId: storage.id, error: String(error) });
      }
      if (disk?.capabilities.shared) break;
    }
  }
  if (!best)
    throw new InstanceImagesError('NO_IMAGE_STORAGE', 'No usable image storage is bound to a hypervisor of this location', {
      details: { locationId },
    });
  return best;
}
