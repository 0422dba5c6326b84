/**
 * The files an import writes while it runs, all named after its key base `K` (the image's file key
 * without its extension; an image id ends it, so no other image's files share the prefix `K.`):
 * the fallback marker `K.qcow2.prepare` of a storage driver without `prepareKey`, the received `K.qcow2.received` and converted `K.qcow2.part` of the
 * libvirt driver, the work directories `K.fetch-*` of a fetch on the hypervisor, the stored
 * `K.qcow2` or `K.raw`, and a multipart upload of an object storage under one of those keys. The
 * browser and reconcile tell them from orphans while their import runs; start-up recovery removes
 * them once it was interrupted.
 * @module
 */
import type { Image } from '../model/image';
import type { ImageStorage } from '../model/image-storage';
import type { Task } from '../model/task';
import type { StorageDisk } from '../storage';
import { eachPage } from '../util/pages';
import type { DriverCache } from './context';
import { removeFetchLeftovers } from './import-fetch';

/** The key base of a stock OS image imported under `imageId` (its file is `<key base>.qcow2` or `.raw`). */
export function stockImportKeyBase(imageId: string): string {
  return `os-images/imported/${imageId}`;
}

/**
 * The key base of an import task's files: a custom import's from its image (recorded `creating`
 * with its file key), a stock import's from the future image's id (the task's subject).
 */
export function importKeyBase(task: Pick<Task, 'subjectId'>, image: Pick<Image, 'kind' | 'fileKey'> | null): string {
  if (image?.kind === 'custom') return image.fileKey.replace(/\.(qcow2|raw)$/, '');
  return stockImportKeyBase(task.subjectId);
}

/** Whether `key` is one of the files of the import whose key base is `keyBase`. */
export function isImportKey(key: string, keyBase: string): boolean {
  return key.startsWith(`${keyBase}.`);
}

/**
 * Removes what an interrupted import left on its storage: every file next to its target named
 * after its key base, the fetch work directories on the hypervisor that wrote them (curl killed),
 * and incomplete uploads under its keys. Each removal is reported through `removed`.
 * @throws what the storage or the executor throws (the caller logs it; a reconcile finds the rest).
 */
export async function removeImportLeftovers(
  drivers: DriverCache,
  storage: ImageStorage,
  hypervisorId: string | null,
  keyBase: string,
  removed: (what: string) => void,
): Promise<void> {
  const disk: StorageDisk = await drivers.storage(storage, hypervisorId);
  const prefix = `${keyBase}.`;
  const files: string[] = [];
  for await (const page of eachPage((cursor) => disk.list({ prefix, cursor, limit: 500 }))) {
    // Files inside a fetch's work directory go with the directory.
    files.push(...page.map((file) => file.key).filter((key) => !key.slice(prefix.length).includes('/')));
  }
  for (const key of files) {
    await disk.delete(key);
    removed(key);
  }
  // A fetch on the hypervisor left its work directory next to the file (curl may still run).
  if (hypervisorId && disk.capabilities.pathAccess) {
    const executor = await drivers.executor(hypervisorId);
    const dirs = await removeFetchLeftovers(executor, disk.pathOf(keyBase));
    for (const dir of dirs) removed(`${dir} (work directory of the fetch)`);
  }
  for (const upload of await disk.listIncomplete()) {
    if (!isImportKey(upload.key, keyBase)) continue;
    await disk.abortIncomplete(upload);
    removed(`${upload.key} (incomplete upload ${upload.id})`);
  }
}
