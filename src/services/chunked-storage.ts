/**
 * The services side of the chunked layout: which storages may use it, opening a storage's chunk
 * store, and the operator's tasks on it (garbage collection, verification) with what they find.
 * @module
 */
import { z } from 'zod';
import { createChunkStore, isZstdAvailable, type ChunkScope, type ChunkStore } from '../chunks';
import { isReservedKey } from '../chunks/keys';
import { InstanceImagesError, validationFailed } from '../errors';
import { ChunkLayoutSchema, type ChunkLayout, type ImageStorage, type StorageLayout } from '../model/image-storage';
import type { Image } from '../model/image';
import type { Task } from '../model/task';
import type { StorageCapabilities } from '../ports/storage-driver';
import type { StorageDisk } from '../storage/disk';
import { eachPage } from '../util/pages';
import { parseOrThrow } from '../util/validate';
import { requireAdmin, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import { transitionImage } from './image-state';
import { enqueueTask, jobParams } from './task-jobs';
import { createTask, runTask } from './task-runner';
import { stopBilling } from './usage';
import { draft, recordEvents } from './outbox-events';
import type { ReconcileFinding } from '../events';
import { failureReason } from '../messages';

/** Whether this runtime's zlib has zstd (Node ≥ 22.15). */
export function zstdAvailable(): boolean {
  return isZstdAvailable();
}

/**
 * Checks a storage's layout against its driver and purpose, and fills the chunked layout's
 * defaults. Chunks need a storage without path access (object storage such as S3; path storages
 * would move every byte through the panel twice) holding custom images.
 * @throws VALIDATION_FAILED naming `layout` or `chunks.codec`.
 */
export function checkStorageLayout(
  capabilities: StorageCapabilities,
  purpose: ImageStorage['purpose'],
  layout: StorageLayout,
  chunks: ChunkLayout | undefined,
): Pick<ImageStorage, 'layout' | 'chunks'> {
  if (layout === 'files') return { layout, ...(chunks ? { chunks } : {}) };
  if (capabilities.pathAccess)
    throw validationFailed(
      [{ path: 'layout', message: 'chunks needs a storage without path access (e.g. s3); local and nfs storages keep files' }],
      'The image storage',
    );
  if (purpose !== 'custom-images')
    throw validationFailed([{ path: 'layout', message: 'chunks is for storages of custom images' }], 'The image storage');
  const settings = ChunkLayoutSchema.parse(chunks ?? {});
  if (settings.codec === 'zstd' && !zstdAvailable())
    throw validationFailed(
      [{ path: 'chunks.codec', message: `zstd needs a Node.js whose zlib has it (22.15 or later; this is ${process.version})` }],
      'The image storage',
    );
  return { layout, chunks: settings };
}

/** Whether a storage keeps its images as chunks and manifests. */
export function isChunkedStorage(storage: ImageStorage): boolean {
  return storage.layout === 'chunks';
}

/** The manifest key of a custom image's capture attempt in a chunked storage (from its file key). */
export function manifestKeyOf(fileKey: string): string {
  return fileKey.replace(/\.(qcow2|raw)$/, '') + '.manifest.json';
}

/** Whether a storage key is the chunked layout's own data (a chunk, a lease, the GC marker), never an image of its own. */
export function isChunkDataKey(key: string): boolean {
  return isReservedKey(key);
}

/** Where custom images (files and manifests) live in a storage: `customImageKey` puts them below it. */
const MANIFEST_PREFIX = 'images/';

/** Where a capture of `accountId` writes its chunks on a chunked storage. */
export function chunkScopeOf(storage: ImageStorage, accountId: string | null): ChunkScope {
  return storage.chunks?.scope === 'account' && accountId !== null ? { kind: 'account', accountId } : { kind: 'storage' };
}

/**
 * The chunk store of a chunked storage. `accountId`: the account whose chunks a capture writes
 * (used when the storage deduplicates per account); manifests record their own scope for reads.
 */
export function chunkStoreOf(ctx: ServiceContext, storage: ImageStorage, disk: StorageDisk, accountId: string | null = null): ChunkStore {
  const settings = storage.chunks ?? ChunkLayoutSchema.parse({});
  const scope = chunkScopeOf(storage, accountId);
  return createChunkStore(disk, {
    scope,
    codec: settings.codec,
    manifestPrefix: MANIFEST_PREFIX,
    logger: ctx.logger,
    now: () => ctx.now(),
  });
}

/** What the storage health and browse reports: the storage's manifests and chunks. */
export interface ChunkStorageStats {
  manifests: number;
  chunks: number;
  /** The sum of the images' standalone sizes (what they would take as files). */
  logicalBytes: number;
  /** Bytes of the stored chunks (what the storage really holds). */
  uniqueBytes: number;
  /** logicalBytes / uniqueBytes as a decimal string, e.g. `"3.41"`. */
  dedupRatio: string;
  /** Manifests that could not be read (run verify); not counted above. */
  unreadableManifests: number;
}

/** Options of `StorageService.collectGarbage`. */
export const ChunkGcOptionsSchema = z.strictObject({
  /** Only count what would be deleted. @default false */
  dryRun: z.boolean().default(false),
});
/** Options of `StorageService.collectGarbage`. */
export type ChunkGcOptions = z.input<typeof ChunkGcOptionsSchema>;

/** The reason an image gets when verify finds its data broken (customer-readable; no keys or digests). */
const BROKEN_DATA_REASON = {
  missing: failureReason('storage', 'IMAGE_DATA_MISSING'),
  corrupt: failureReason('storage', 'IMAGE_DATA_CORRUPT'),
} as const;

/** Operator tasks of chunked storages: garbage collection, verification, statistics. */
export class ChunkedStorageService {
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
  ) {
    // Jobs as data: the storage is the task's subject; a dry run is the GC job's one input.
    ctx.jobs.register('chunk-gc', async (job, signal) => {
      const { dryRun } = jobParams(job, ChunkGcOptionsSchema);
      const task = await ctx.repos.tasks.get(job.taskId);
      if (task) await this.runGarbageCollection(task, dryRun, signal);
    });
    ctx.jobs.register('chunk-verify', async (job, signal) => {
      const task = await ctx.repos.tasks.get(job.taskId);
      if (task) await this.runVerification(task, signal);
    });
  }

  /** The chunked storage and its store (storage-wide scope: GC, verify and stats see every chunk). */
  private async open(storageId: string): Promise<{ storage: ImageStorage; store: ChunkStore }> {
    const storage = await this.ctx.repos.storages.get(storageId);
    if (!storage) throw new InstanceImagesError('NOT_FOUND', `Image storage ${storageId} not found`);
    if (!isChunkedStorage(storage))
      throw new InstanceImagesError('INVALID_STATE', `Storage ${JSON.stringify(storage.name)} keeps files, not chunks`);
    const disk = await this.drivers.storage(storage, await this.drivers.viaHypervisor(storage));
    return { storage, store: chunkStoreOf(this.ctx, storage, disk) };
  }

  /** Logical bytes, unique bytes and the dedup ratio of a chunked storage; null for a files storage. */
  async stats(storage: ImageStorage): Promise<ChunkStorageStats | null> {
    if (!isChunkedStorage(storage)) return null;
    return (await this.open(storage.id)).store.stats();
  }

  /** Starts (or returns the running) `chunk-gc` or `chunk-verify` task of a storage: one of each at a time. */
  private async start(storageId: string, type: 'chunk-gc' | 'chunk-verify', params: { dryRun: boolean } | undefined) {
    await this.open(storageId);
    const active = await this.ctx.repos.tasks.list({ subjectId: storageId, type, statuses: ['queued', 'running'] }, { limit: 1 });
    if (active.items[0]) return active.items[0];
    const task = await createTask(this.ctx, { type, subjectKind: 'storage', subjectId: storageId, accountId: null, hypervisorId: null });
    await enqueueTask(this.ctx, { taskId: task.id, type, hypervisorId: null, ...(params ? { params } : {}) });
    return task;
  }

  /**
   * Starts garbage collection of a chunked storage as a `chunk-gc` task: chunks that no manifest
   * and no live capture or deploy names are deleted. Safe alongside captures and deploys.
   * @throws INVALID_STATE for a files storage.
   */
  async startGarbageCollection(actor: Actor, storageId: string, options: ChunkGcOptions = {}): Promise<Task> {
    requireAdmin(actor);
    const opts = parseOrThrow(ChunkGcOptionsSchema, options, 'The garbage collection options');
    return this.start(storageId, 'chunk-gc', { dryRun: opts.dryRun });
  }

  private async runGarbageCollection(task: Task, dryRun: boolean, signal: AbortSignal): Promise<void> {
    const storageId = task.subjectId;
    await runTask(this.ctx, task.id, signal, async ({ progress }) => {
      progress({ step: 'collecting' });
      const { store } = await this.open(storageId);
      const result = await store.collectGarbage({ dryRun, signal });
      this.ctx.logger.info('chunk garbage collection finished', { storageId, dryRun, ...result });
      progress({ step: 'collecting', bytesDone: result.bytesFreed, bytesTotal: result.bytesFreed });
    });
  }

  /**
   * Starts a `chunk-verify` task: every stored chunk is re-hashed; the images that name a missing
   * or corrupt chunk go to `error` (IMAGE_DATA_MISSING / IMAGE_DATA_CORRUPT) and their billing
   * stops. Each broken image is also reported as a `reconcile.finding` event.
   */
  async startVerification(actor: Actor, storageId: string): Promise<Task> {
    requireAdmin(actor);
    return this.start(storageId, 'chunk-verify', undefined);
  }

  private async runVerification(task: Task, signal: AbortSignal): Promise<void> {
    const storageId = task.subjectId;
    await runTask(this.ctx, task.id, signal, async ({ progress }) => {
      progress({ step: 'verifying' });
      const { storage, store } = await this.open(storageId);
      const result = await store.verify({ signal });
      this.ctx.logger.info('chunk verification finished', {
        storageId,
        checked: result.checked,
        corrupt: result.corrupt.length,
        missing: result.missing.length,
      });
      await this.failBrokenImages(storage, result);
    });
  }

  /** Moves the available images naming a missing or corrupt chunk to `error`, billing stopped. */
  private async failBrokenImages(
    storage: ImageStorage,
    result: { corrupt: Array<{ manifests: string[] }>; missing: Array<{ manifests: string[] }> },
  ): Promise<void> {
    const broken = new Map<string, 'missing' | 'corrupt'>();
    for (const entry of result.corrupt) for (const key of entry.manifests) broken.set(key, 'corrupt');
    for (const entry of result.missing) for (const key of entry.manifests) broken.set(key, 'missing');
    if (broken.size === 0) return;
    const images: Image[] = [];
    for await (const page of eachPage((cursor) => this.ctx.repos.images.list({ storageId: storage.id }, { cursor, limit: 1000 })))
      images.push(...page.filter((image) => broken.has(image.fileKey)));
    for (const image of images) {
      const why = broken.get(image.fileKey) ?? 'missing';
      const finding: ReconcileFinding = {
        storageId: storage.id,
        hypervisorId: null,
        kind: 'missing',
        key: image.fileKey,
        imageId: image.id,
        message: `Image ${image.name} names a ${why} chunk`,
        action: image.status === 'available' ? 'marked-error' : 'none',
        dryRun: false,
      };
      const events = [draft('reconcile.finding', storage.id, { finding })];
      if (image.status !== 'available') {
        await recordEvents(this.ctx, events);
        continue;
      }
      // available -> deleting -> error: the lifecycle has no direct edge, and billing stops for data that is gone.
      const deleting = await transitionImage(this.ctx, image, 'deleting', {}, 'system');
      await stopBilling(this.ctx, image.id, deleting.updatedAt);
      // The finding is recorded with the move to error it caused.
      await transitionImage(this.ctx, deleting, 'error', {}, 'system', BROKEN_DATA_REASON[why], () => events);
    }
  }
}

/**
 * Deletes a chunked image's manifest (its chunks go at the next garbage collection) and, best
 * effort, the checkpoint its capture left on the source disk while that instance still exists.
 */
export async function deleteChunkedImage(ctx: ServiceContext, drivers: DriverCache, image: Image, store: ChunkStore): Promise<void> {
  const manifest = await store.readManifest(image.fileKey).catch(() => null);
  await store.deleteManifest(image.fileKey);
  const source = manifest?.source;
  if (!source?.checkpoint || !image.sourceInstanceId) return;
  try {
    const instance = await ctx.host.getInstance(image.sourceInstanceId);
    if (!instance || instance.hypervisorId !== source.hypervisorId || instance.domainName !== source.domainName) return;
    const hv = await drivers.hypervisorDriver(instance.hypervisorId);
    await hv.deleteCheckpoints?.(instance.domainName, [source.checkpoint]);
  } catch (error) {
    ctx.logger.warn('the checkpoint of a deleted image was left', { imageId: image.id, error: String(error) });
  }
}
