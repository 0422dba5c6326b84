/**
 * Import from a URL: a customer's custom image (where the operator allows it per location,
 * `urlImportEnabled`) or an operator's stock OS image. The URL is checked at once (http/https, no
 * credentials, no refused address literal); the download, decompression, format detection and
 * storing run as an `import` task with byte progress, cancellable, leaving nothing behind on any
 * failure. A custom image counts against the account's cap from the request and is billed from
 * `available`; a stock image is recorded only once it is complete (its lifecycle has no
 * `creating`).
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { failureReason } from '../messages';
import { refusedAddress, type DestinationRules } from '../import/address';
import { localDecompressors, type Decompressors } from '../import/decompress';
import { checkImportUrl } from '../import/download';
import { ImportOptionsSchema, rulesOf, type ImportOptions, type ResolvedImportOptions } from '../import/options';
import { openImportSource } from '../import/source';
import { INITIAL_IMAGE_STATUS } from '../lifecycle';
import { DescriptionSchema, IdSchema, NameSchema, Sha256Schema } from '../model/common';
import { OsTypeSchema, type Image } from '../model/image';
import type { ImageStorage } from '../model/image-storage';
import type { Task } from '../model/task';
import { parseOrThrow } from '../util/validate';
import { checkActor, requireAdmin, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import { transitionImage, tryTransitionImage } from './image-state';
import { customImageKey, type ImageWithTask } from './images';
import { storeImport, type ImportTarget, type StoredImport } from './import-store';
import { enqueueTask, jobParams, withdrawNewImage } from './task-jobs';
import { cancelQueuedTask, createTask, runTask, type TaskWork } from './task-runner';
import { newStockImage } from './os-images';
import { startBilling } from './usage';
import { accountCaps, capReached, insertUnderCaps } from './image-metadata';

const UrlSchema = z
  .string()
  .min(1)
  .max(8192)
  .describe('An http:// or https:// URL of the image (raw, qcow2, vmdk, vhdx, vpc or iso; gz, xz, zst or bz2 compressed or not)');

/** Input of {@link ImageImportService.importImage}. */
export const ImportImageInputSchema = z.strictObject({
  url: UrlSchema,
  name: NameSchema,
  description: DescriptionSchema.optional(),
  /** The location the image belongs to (its storage, price and cap). */
  locationId: IdSchema,
  /** Admins only: the account that will own the image (customers import into their own). */
  accountId: IdSchema.optional(),
  /** The expected sha256 of the (decompressed) image; a mismatch fails the import. */
  sha256: Sha256Schema.optional(),
});
/** Input of {@link ImageImportService.importImage}. */
export type ImportImageInput = z.input<typeof ImportImageInputSchema>;

/** Input of {@link ImageImportService.importOsImage}. */
export const ImportOsImageInputSchema = z.strictObject({
  url: UrlSchema,
  name: NameSchema,
  description: DescriptionSchema.optional(),
  osType: OsTypeSchema,
  cloudInit: z.boolean().default(false),
  mediaGroupId: IdSchema.nullish(),
  /** A storage with purpose `templates` that receives the file. */
  storageId: IdSchema,
  /** For per-hypervisor storages (local), and path storages in general: the hypervisor that writes the file. */
  hypervisorId: IdSchema.nullish(),
  sha256: Sha256Schema.optional(),
});
/** Input of {@link ImageImportService.importOsImage}. */
export type ImportOsImageInput = z.input<typeof ImportOsImageInputSchema>;

/**
 * The inputs of an import job its task does not hold. `stock` is the template storage of a stock
 * import (null for a custom one, whose image record holds its storage), with the stock image's
 * details.
 */
const ImportJobParamsSchema = z.object({
  url: z.string(),
  sha256: Sha256Schema.nullable(),
  viaHypervisorId: IdSchema.nullable(),
  stock: IdSchema.nullable(),
  name: NameSchema.optional(),
  description: DescriptionSchema.nullable().optional(),
  osType: OsTypeSchema.optional(),
  cloudInit: z.boolean().optional(),
  mediaGroupId: IdSchema.nullable().optional(),
});
type ImportJobParams = z.output<typeof ImportJobParamsSchema>;

/** A started stock import: the image is recorded (as `available`) under `imageId` when the task completes. */
export interface OsImageImport {
  imageId: string;
  task: Task;
}

/** Imports from URLs. Reached through `InstanceImages.imports`. */
export class ImageImportService {
  private readonly options: ResolvedImportOptions;
  private readonly rules: DestinationRules;
  private readonly decompressors: Decompressors;

  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
    options: ImportOptions = {},
    decompressors: Decompressors = localDecompressors(),
  ) {
    this.options = parseOrThrow(ImportOptionsSchema, options, 'The import options');
    this.rules = rulesOf(this.options);
    this.decompressors = decompressors;
    // Jobs as data: the image (recorded, or to be recorded for a stock import) is the task's
    // subject; the URL, checksum and the hypervisor that writes are the job's inputs.
    ctx.jobs.register('import', async (job, signal) => {
      const params = jobParams(job, ImportJobParamsSchema);
      const task = await ctx.repos.tasks.get(job.taskId);
      if (!task) return;
      if (params.stock) await this.runOsImport(task.id, task.subjectId, params.stock, params, signal);
      else await this.runCustomImport(task.id, task.subjectId, params, signal);
    });
  }

  /** The URL, checked before anything is recorded: http(s), no credentials, no refused address literal. */
  private checkUrl(text: string): URL {
    const url = checkImportUrl(text);
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const category = /^[\d.]+$|:/.test(host) ? refusedAddress(host, this.rules) : null;
    if (category !== null)
      throw new InstanceImagesError('DESTINATION_REFUSED', `Imports may not connect to ${host}: it is a ${category} address`, {
        details: { category },
      });
    return url;
  }

  /** A custom-images storage bound to a hypervisor of the location (most free space first). */
  private async pickTarget(locationId: string): Promise<{ storage: ImageStorage; hypervisorId: string; free: number | null }> {
    const storages = (await this.ctx.repos.storages.list({ purpose: 'custom-images' })).filter((s) => s.enabled);
    let best: { storage: ImageStorage; hypervisorId: string; free: number | null } | null = null;
    for (const storage of storages) {
      for (const binding of await this.ctx.repos.storages.listBindings({ storageId: storage.id })) {
        const hypervisor = await this.ctx.host.getHypervisor(binding.hypervisorId).catch(() => null);
        if (hypervisor?.locationId !== locationId) continue;
        try {
          const free = await (await this.drivers.storage(storage, hypervisor.id)).freeSpace();
          if (best === null || (best.free !== null && (free === null || free > best.free)))
            best = { storage, hypervisorId: hypervisor.id, free };
        } catch (error) {
          this.ctx.logger.warn('image storage not usable for an import', { storageId: storage.id, error: String(error) });
        }
        break;
      }
    }
    if (!best)
      throw new InstanceImagesError('NO_IMAGE_STORAGE', 'No usable image storage is bound to a hypervisor of this location', {
        details: { locationId },
      });
    return best;
  }

  /**
   * Imports a custom image from a URL. Checks, in order: input and URL, the location's switches
   * (`imagesEnabled` and `urlImportEnabled`, FEATURE_DISABLED; operators import regardless of
   * `urlImportEnabled`), the account's cap (IMAGE_LIMIT_REACHED, held atomically), a storage
   * bound to a hypervisor of the location (NO_IMAGE_STORAGE). Returns the image in `creating`
   * and its `import` task at once.
   */
  async importImage(actor: Actor, input: ImportImageInput): Promise<ImageWithTask> {
    checkActor(actor);
    const data = parseOrThrow(ImportImageInputSchema, input, 'The import');
    if (actor.kind === 'customer' && data.accountId !== undefined && data.accountId !== actor.accountId)
      throw new InstanceImagesError('FORBIDDEN', 'Customers import into their own account only');
    const accountId = actor.kind === 'customer' ? actor.accountId : data.accountId;
    if (accountId === undefined)
      throw new InstanceImagesError('VALIDATION_FAILED', 'An administrator importing a custom image names its account', {
        fields: [{ path: 'accountId', message: 'is required for administrators' }],
      });
    const url = this.checkUrl(data.url);
    const settings = await this.ctx.repos.settings.getLocation(data.locationId);
    if (!settings?.imagesEnabled || (actor.kind === 'customer' && settings.urlImportEnabled !== true))
      throw new InstanceImagesError('FEATURE_DISABLED', 'Importing images from a URL is not enabled in this location', {
        details: { locationId: data.locationId },
      });
    const caps = await accountCaps(this.ctx, accountId, settings);
    if (caps.max !== null && (await this.ctx.repos.images.countActive(accountId)) >= caps.max)
      throw await capReached(this.ctx, accountId, caps, 0);
    const { storage, hypervisorId } = await this.pickTarget(data.locationId);
    const disk = await this.drivers.storage(storage, hypervisorId);
    const now = this.ctx.now();
    const id = this.ctx.newId();
    const image: Image = {
      id,
      kind: 'custom',
      name: data.name,
      description: data.description ?? '',
      osType: null,
      cloudInit: false,
      mediaGroupId: null,
      accountId,
      sourceInstanceId: null,
      sourceInstanceName: null,
      locationId: data.locationId,
      storageId: storage.id,
      hypervisorId: disk.capabilities.shared ? null : hypervisorId,
      fileKey: customImageKey(accountId, id, 'qcow2'),
      format: 'qcow2',
      sizeBytes: null,
      virtualSizeBytes: null,
      sha256: null,
      consistency: null,
      compressed: null,
      status: INITIAL_IMAGE_STATUS.custom,
      statusReason: null,
      createdAt: now,
      updatedAt: now,
      availableAt: null,
      deletedAt: null,
    };
    await insertUnderCaps(this.ctx, image, accountId, caps);
    const writer = disk.capabilities.pathAccess ? hypervisorId : null;
    const task = await createTask(this.ctx, { type: 'import', subjectKind: 'image', subjectId: id, accountId, hypervisorId: writer });
    await enqueueTask(
      this.ctx,
      {
        taskId: task.id,
        type: 'import',
        hypervisorId: writer,
        params: { url: url.href, sha256: data.sha256 ?? null, viaHypervisorId: hypervisorId, stock: null },
      },
      withdrawNewImage(this.ctx, id),
    );
    return { image, task };
  }

  /**
   * Imports a stock OS image from a URL onto a template storage (operators). Returns the future
   * image id and the `import` task; the image is recorded, `available`, when the task completes.
   */
  async importOsImage(actor: Actor, input: ImportOsImageInput): Promise<OsImageImport> {
    requireAdmin(actor);
    const data = parseOrThrow(ImportOsImageInputSchema, input, 'The OS image import');
    const url = this.checkUrl(data.url);
    if (data.mediaGroupId && !(await this.ctx.repos.mediaGroups.get(data.mediaGroupId))) throw notFound('Media group', data.mediaGroupId);
    const storage = await this.ctx.repos.storages.get(data.storageId);
    if (!storage) throw notFound('Image storage', data.storageId);
    if (storage.purpose !== 'templates')
      throw new InstanceImagesError('VALIDATION_FAILED', 'OS images live on a storage with purpose "templates"', {
        fields: [{ path: 'storageId', message: 'is not a template storage' }],
      });
    const hypervisorId = await this.drivers.viaHypervisor(storage, data.hypervisorId);
    const disk = await this.drivers.storage(storage, hypervisorId);
    const id = this.ctx.newId();
    const writer = disk.capabilities.pathAccess ? hypervisorId : null;
    const task = await createTask(this.ctx, { type: 'import', subjectKind: 'image', subjectId: id, accountId: null, hypervisorId: writer });
    await enqueueTask(this.ctx, {
      taskId: task.id,
      type: 'import',
      hypervisorId: writer,
      params: {
        url: url.href,
        sha256: data.sha256 ?? null,
        viaHypervisorId: hypervisorId ?? null,
        stock: storage.id,
        name: data.name,
        description: data.description ?? null,
        osType: data.osType,
        cloudInit: data.cloudInit,
        mediaGroupId: data.mediaGroupId ?? null,
      },
    });
    return { imageId: id, task };
  }

  /** Where an import job writes: the storage's disk through the hypervisor the request picked. */
  private async targetOf(storageId: string, viaHypervisorId: string | null, keyBase: string): Promise<ImportTarget> {
    const storage = await this.ctx.repos.storages.get(storageId);
    if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The image storage of the import was removed');
    const disk = await this.drivers.storage(storage, viaHypervisorId);
    return { disk, hypervisorId: disk.capabilities.pathAccess ? viaHypervisorId : null, keyBase };
  }

  /** The stock import task: download and store, then record the image (`available`); nothing is left on a failure. */
  private async runOsImport(taskId: string, id: string, storageId: string, params: ImportJobParams, signal: AbortSignal): Promise<void> {
    const keys: string[] = [];
    let target: ImportTarget | null = null;
    const outcome = await runTask(this.ctx, taskId, signal, async (work) => {
      const url = this.checkUrl(params.url);
      target = await this.targetOf(storageId, params.viaHypervisorId, `os-images/imported/${id}`);
      const stored = await this.download(url, params.sha256, target, work, keys);
      if (signal.aborted) throw new InstanceImagesError('CANCELLED', 'The import was cancelled');
      const details = {
        name: params.name ?? id,
        description: params.description,
        osType: params.osType ?? 'linux',
        cloudInit: params.cloudInit ?? false,
        mediaGroupId: params.mediaGroupId,
      };
      const hypervisorId = target.disk.capabilities.shared ? null : params.viaHypervisorId;
      await this.ctx.repos.images.insert(newStockImage({ id, now: this.ctx.now(), details, storageId, hypervisorId, file: stored }));
    });
    if (!outcome.ok && target) await this.removeKeys(target, keys, id);
  }

  /** Download, decompress, detect and store: the work shared by both imports. */
  private async download(url: URL, sha256: string | null, target: ImportTarget, work: TaskWork, keys: string[]): Promise<StoredImport> {
    const { signal, progress } = work;
    progress({ step: 'downloading', bytesDone: 0, bytesTotal: null });
    const source = await openImportSource(url, {
      rules: this.rules,
      maxRedirects: this.options.maxRedirects,
      maxBytes: this.options.maxDownloadBytes,
      maxResumes: this.options.maxResumes,
      idleTimeoutMs: this.options.idleTimeoutMs,
      ...(this.options.resolveHost ? { resolve: this.options.resolveHost } : {}),
      signal,
      maxImageBytes: this.options.maxImageBytes,
      expectedSha256: sha256,
      decompressors: this.decompressors,
      onDownloaded: (bytes, total) => progress({ step: 'downloading', bytesDone: bytes, bytesTotal: total }),
    });
    try {
      return await storeImport(this.drivers, target, source, { signal, progress, onKey: (key) => keys.push(key) });
    } finally {
      source.stream.destroy();
    }
  }

  private async removeKeys(target: ImportTarget, keys: string[], imageId: string): Promise<void> {
    for (const key of keys)
      await target.disk
        .delete(key)
        .catch((error: unknown) => this.ctx.logger.warn('cleanup of a failed import failed', { imageId, error: String(error) }));
  }

  /** The custom import task: download and store, then `available` (billing starts) or `error`, leaving no file. */
  private async runCustomImport(taskId: string, imageId: string, params: ImportJobParams, signal: AbortSignal): Promise<void> {
    const keys: string[] = [];
    let target: ImportTarget | null = null;
    const outcome = await runTask(this.ctx, taskId, signal, async (work) => {
      const image = await this.ctx.repos.images.get(imageId);
      if (image?.status !== 'creating') throw new InstanceImagesError('CANCELLED', 'The import was cancelled');
      const url = this.checkUrl(params.url);
      target = await this.targetOf(image.storageId, params.viaHypervisorId, image.fileKey.replace(/\.qcow2$/, ''));
      const stored = await this.download(url, params.sha256, target, work, keys);
      const current = await this.ctx.repos.images.get(image.id);
      if (signal.aborted || current?.status !== 'creating') throw new InstanceImagesError('CANCELLED', 'The import was cancelled');
      const now = this.ctx.now();
      const patch = {
        fileKey: stored.key,
        format: stored.format,
        sizeBytes: stored.sizeBytes,
        virtualSizeBytes: stored.virtualSizeBytes,
        minDiskBytes: stored.virtualSizeBytes,
        sha256: stored.sha256,
        availableAt: now,
      };
      const available = await tryTransitionImage(this.ctx, current, 'available', patch, 'system');
      if (!available) throw new InstanceImagesError('CANCELLED', 'The image was cancelled while it was being stored');
      await startBilling(this.ctx, available, now);
    });
    if (outcome.ok) return;
    const current = await this.ctx.repos.images.get(imageId);
    if (current?.status === 'available') {
      // Available and billed: something failed afterwards; keep the file and make sure billing runs.
      await startBilling(this.ctx, current, current.availableAt ?? this.ctx.now()).catch(() => undefined);
      return;
    }
    if (target) await this.removeKeys(target, keys, imageId);
    if (current?.status === 'creating') {
      const code = outcome.error.code;
      await transitionImage(this.ctx, current, 'error', {}, 'system', failureReason('import', code)).catch((error: unknown) =>
        this.ctx.logger.warn('import error transition lost a race', { imageId, error: String(error) }),
      );
    }
  }

  /**
   * Cancels an import (by its task id). A custom image being imported ends in `error` with reason
   * CANCELLED; nothing downloaded is kept. Idempotent for a task that already ended.
   */
  async cancelImport(actor: Actor, taskId: string): Promise<Task> {
    checkActor(actor);
    parseOrThrow(IdSchema, taskId, 'The task id');
    const task = await this.ctx.repos.tasks.get(taskId);
    if (!task || task.type !== 'import' || (actor.kind === 'customer' && task.accountId !== actor.accountId))
      throw notFound('Task', taskId);
    if (task.status === 'queued') await cancelQueuedTask(this.ctx, task.id);
    this.ctx.queue.cancel(task.id);
    const image = await this.ctx.repos.images.get(task.subjectId);
    if (image?.status === 'creating') {
      await transitionImage(this.ctx, image, 'error', {}, actor, failureReason('import', 'CANCELLED')).catch(() => undefined);
    }
    return (await this.ctx.repos.tasks.get(task.id)) ?? task;
  }
}
