/**
 * Template files (stock OS image sources and ISOs): where they live (a storage with purpose
 * `templates`) and their size and checksum, measured by streaming them once.
 * @module
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { InstanceImagesError, notFound } from '../errors';
import type { ImageStorage } from '../model/image-storage';
import type { StorageDisk } from '../storage';
import { normalizeStorageKey } from '../storage';
import type { DriverCache, ServiceContext } from './context';

async function hashStream(stream: Readable): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(
    stream,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        size += chunk.length;
        callback();
      },
    }),
  );
  return { size, sha256: hash.digest('hex') };
}

/** Opens and measures template files for the OS image and ISO services. */
export class TemplateFiles {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
  ) {}

  private async templateStorage(storageId: string): Promise<ImageStorage> {
    const storage = await this.ctx.repos.storages.get(storageId);
    if (!storage) throw notFound('Image storage', storageId);
    if (storage.purpose !== 'templates')
      throw new InstanceImagesError('VALIDATION_FAILED', 'OS images and ISOs live on a storage with purpose "templates"', {
        fields: [{ path: 'storageId', message: 'is not a template storage' }],
      });
    return storage;
  }

  /** Where a template file (OS image source or ISO) lives: its normalized key, its template storage, opened. */
  async file(data: {
    storageId: string;
    hypervisorId?: string | null | undefined;
    fileKey: string;
  }): Promise<{ storage: ImageStorage; disk: StorageDisk; fileKey: string }> {
    const fileKey = normalizeStorageKey(data.fileKey, 'fileKey');
    const storage = await this.templateStorage(data.storageId);
    return { storage, disk: await this.drivers.storage(storage, data.hypervisorId), fileKey };
  }

  /** Verifies a template file exists and measures it (size, sha256 by streaming it once). */
  async measure(disk: StorageDisk, key: string): Promise<{ size: number; sha256: string }> {
    const stat = await disk.stat(key);
    if (!stat)
      throw new InstanceImagesError('VALIDATION_FAILED', `The file ${JSON.stringify(key)} does not exist on that storage`, {
        fields: [{ path: 'fileKey', message: 'no such file' }],
      });
    const measured = await hashStream(await disk.get(key));
    if (measured.size !== stat.size)
      throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The file changed while it was being read; try again');
    return measured;
  }
}
