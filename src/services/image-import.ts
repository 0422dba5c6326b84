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
import { openByteSource, openImportSource, type ImportSource } from '../import/source';
import { INITIAL_IMAGE_STATUS } from '../lifecycle';
import { IdSchema } from '../model/common';
import type { Image } from '../model/image';
import type { ImageStorage } from '../model/image-storage';
import type { Task } from '../model/task';
import { parseOrThrow } from '../util/validate';
import { checkActor, requireAdmin, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import { transitionImage, tryTransitionImage } from './image-state';
import { customImageKey, type ImageWithTask } from './images';
import { storeImport, type ImportTarget, type StoredImport } from './import-store';
import { fetchIntoPathStorage } from './import-fetch';
import { enqueueTask, jobParams, withdrawNewImage } from './task-jobs';
import { cancelQueuedTask, createTask, runTask, type TaskWork } from './task-runner';
import { failedImageMove } from './task-failures';
import { newStockImage } from './os-images';
import { ImportJobParamsSchema, sourceParams, type ImportBytesSource, type ImportJobParams } from './import-jobs';
import { startBilling } from './usage';
import { accountCaps, capReached, insertUnderCaps } from './image-metadata';
import { byteHoldOf, checkByteRoom, type ByteHold } from './import-hold';
import { pickLocationStorage, type LocationStorage } from './location-storage';
import { CUSTOM_IMAGE_TARGET_FIELDS, STOCK_IMAGE_TARGET_FIELDS } from './import-targets';
import { stockImportKeyBase } from './import-leftovers';

const UrlSchema = z
  .string()
  .min(1)
  .max(8192)
  .describe('An http:// or https:// URL of the image (raw, qcow2, vmdk, vhdx, vpc or iso; gz, xz, zst or bz2 compressed or not)');

/** Input of {@link ImageImportService.importImage}. */
export const ImportImageInputSchema = z.strictObject({ url: UrlSchema, ...CUSTOM_IMAGE_TARGET_FIELDS });
/** Input of {@link ImageImportService.importImage}. */
export type ImportImageInput = z.input<typeof ImportImageInputSchema>;

/** Input of {@link ImageImportService.importOsImage}. */
export const ImportOsImageInputSchema = z.strictObject({ url: UrlSchema, ...STOCK_IMAGE_TARGET_FIELDS });
/** Input of {@link ImageImportService.importOsImage}. */
export type ImportOsImageInput = z.input<typeof ImportOsImageInputSchema>;

/**
 * How import jobs read staged uploads in this process: given by the uploads service when
 * `uploads.directory` is set. @internal
 */
export interface StagedUploadReader {
  /** The staged bytes of a complete upload (NOT_FOUND when they are not in this process's directory). */
  read(uploadId: string, lengthBytes: number, work: TaskWork): Promise<AsyncIterable<Buffer>>;
  /** Removes the staged bytes once the import's task ended. */
  release(uploadId: string): Promise<void>;
}

/** A started stock import: the image is recorded (as `available`) under `imageId` when the task completes. */
export interface OsImageImport {
  imageId: string;
  task: Task;
}

/** What a custom import records, whatever brings its bytes. @internal */
export interface CustomImportRequest {
  accountId: string;
  name: string;
  description: string;
  locationId: string;
  /** Operators import regardless of the location's `urlImportEnabled`. */
  byAdmin: boolean;
}

/** The fields of a stock OS image import besides its source. @internal */
export type OsImportFields = Omit<z.output<typeof ImportOsImageInputSchema>, 'url'>;

/** Imports from URLs. Reached through `InstanceImages.imports`. */
export class ImageImportService {
  private readonly options: ResolvedImportOptions;
  private readonly rules: DestinationRules;
  private readonly decompressors: Decompressors;
  private stagedUploads: StagedUploadReader | null = null;

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
      try {
        if (params.stock) await this.runOsImport(task.id, task.subjectId, params.stock, params, signal);
        else await this.runCustomImport(task.id, task.subjectId, params, signal);
      } finally {
        // An upload's staged bytes go when its import ended, whatever the outcome.
        if (params.source === 'upload') await this.stagedUploads?.release(params.uploadId);
      }
    });
  }

  /** Lets import jobs read staged uploads (the uploads service of this process). @internal */
  readStagedUploads(reader: StagedUploadReader): void {
    this.stagedUploads = reader;
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
  private pickTarget(locationId: string): Promise<LocationStorage> {
    return pickLocationStorage(this.ctx, this.drivers, locationId);
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
    return this.startCustomImport(
      { accountId, name: data.name, description: data.description ?? '', locationId: data.locationId, byAdmin: actor.kind === 'admin' },
      { kind: 'url', url: url.href, sha256: data.sha256 ?? null },
    );
  }

  /**
   * Checks the location's switches and the account's cap, records the image in `creating` and
   * queues its `import` task, whose job stores the bytes of `source` (an upload's staged bytes
   * are removed when the task ended). Nothing is left when this throws but the source.
   * @internal Used by URL imports and uploads.
   */
  async startCustomImport(request: CustomImportRequest, source: ImportBytesSource): Promise<ImageWithTask> {
    const { accountId } = request;
    await this.checkCustomImport(request);
    const settings = await this.ctx.repos.settings.getLocation(request.locationId);
    const caps = await accountCaps(this.ctx, accountId, settings);
    const { storage, hypervisorId } = await this.pickTarget(request.locationId);
    const disk = await this.drivers.storage(storage, hypervisorId);
    const now = this.ctx.now();
    const id = this.ctx.newId();
    const image: Image = {
      id,
      kind: 'custom',
      name: request.name,
      description: request.description,
      osType: null,
      cloudInit: false,
      mediaGroupId: null,
      accountId,
      sourceInstanceId: null,
      sourceInstanceName: null,
      locationId: request.locationId,
      storageId: storage.id,
      hypervisorId: disk.capabilities.shared ? null : hypervisorId,
      fileKey: customImageKey(accountId, id, 'qcow2'),
      format: 'qcow2',
      sizeBytes: null,
      virtualSizeBytes: null,
      // An upload's length is held against the byte cap from now on; a URL's bytes as they arrive.
      reservedBytes: source.kind === 'upload' ? source.lengthBytes : null,
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
    const task = await createTask(this.ctx, {
      type: 'import',
      subjectKind: 'image',
      subjectId: id,
      accountId,
      hypervisorId: writer,
      storageId: storage.id,
    });
    await enqueueTask(
      this.ctx,
      {
        taskId: task.id,
        type: 'import',
        hypervisorId: writer,
        params: { ...sourceParams(source), viaHypervisorId: hypervisorId, stock: null },
      },
      withdrawNewImage(this.ctx, id),
    );
    return { image, task };
  }

  /**
   * The checks a custom import makes before anything is recorded (also at an upload's creation):
   * the location's switches (`imagesEnabled`; `urlImportEnabled` for customers, FEATURE_DISABLED)
   * and the account's caps (IMAGE_LIMIT_REACHED; held atomically only when the image is recorded):
   * the count, and the byte cap for an upload's declared length `bytes`.
   * @internal
   */
  async checkCustomImport(
    request: Pick<CustomImportRequest, 'accountId' | 'locationId' | 'byAdmin'>,
    bytes: number | null = null,
  ): Promise<void> {
    const settings = await this.ctx.repos.settings.getLocation(request.locationId);
    if (!settings?.imagesEnabled || (!request.byAdmin && settings.urlImportEnabled !== true))
      throw new InstanceImagesError('FEATURE_DISABLED', 'Importing images is not enabled in this location', {
        details: { locationId: request.locationId },
      });
    const caps = await accountCaps(this.ctx, request.accountId, settings);
    if (caps.max !== null && (await this.ctx.repos.images.countActive(request.accountId)) >= caps.max)
      throw await capReached(this.ctx, request.accountId, caps, 0);
    if (bytes !== null) await checkByteRoom(this.ctx, request.accountId, caps, bytes);
  }

  /**
   * Imports a stock OS image from a URL onto a template storage (operators). Returns the future
   * image id and the `import` task; the image is recorded, `available`, when the task completes.
   */
  async importOsImage(actor: Actor, input: ImportOsImageInput): Promise<OsImageImport> {
    requireAdmin(actor);
    const data = parseOrThrow(ImportOsImageInputSchema, input, 'The OS image import');
    const { url, sha256, ...fields } = data;
    return this.startOsImport(fields, { kind: 'url', url: this.checkUrl(url).href, sha256: sha256 ?? null });
  }

  /**
   * Checks an OS image import's fields (media group, a template storage, its hypervisor).
   * @internal Also used when an upload of an OS image is created.
   */
  async checkOsImport(data: OsImportFields): Promise<{ storage: ImageStorage; hypervisorId: string | null }> {
    if (data.mediaGroupId && !(await this.ctx.repos.mediaGroups.get(data.mediaGroupId))) throw notFound('Media group', data.mediaGroupId);
    const storage = await this.ctx.repos.storages.get(data.storageId);
    if (!storage) throw notFound('Image storage', data.storageId);
    if (storage.purpose !== 'templates')
      throw new InstanceImagesError('VALIDATION_FAILED', 'OS images live on a storage with purpose "templates"', {
        fields: [{ path: 'storageId', message: 'is not a template storage' }],
      });
    const hypervisorId = await this.drivers.viaHypervisor(storage, data.hypervisorId);
    return { storage, hypervisorId };
  }

  /**
   * Queues the `import` task of a stock OS image whose job stores the bytes of `source`.
   * @internal Used by URL imports and uploads.
   */
  async startOsImport(data: OsImportFields, source: ImportBytesSource): Promise<OsImageImport> {
    const { storage, hypervisorId } = await this.checkOsImport(data);
    const disk = await this.drivers.storage(storage, hypervisorId);
    const id = this.ctx.newId();
    const writer = disk.capabilities.pathAccess ? hypervisorId : null;
    // The task names the storage: the image is recorded only once complete, and recovery and the
    // browser find what the import writes meanwhile through it.
    const task = await createTask(this.ctx, {
      type: 'import',
      subjectKind: 'image',
      subjectId: id,
      accountId: null,
      hypervisorId: writer,
      storageId: storage.id,
    });
    await enqueueTask(this.ctx, {
      taskId: task.id,
      type: 'import',
      hypervisorId: writer,
      params: {
        ...sourceParams(source),
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

  /**
   * Where an import job writes: the storage's disk through the hypervisor the request picked
   * (which also converts VMDK, VHDX and VHD for an object storage, when hypervisors are configured).
   */
  private async targetOf(storageId: string, viaHypervisorId: string | null, keyBase: string): Promise<ImportTarget> {
    const storage = await this.ctx.repos.storages.get(storageId);
    if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The image storage of the import was removed');
    const disk = await this.drivers.storage(storage, viaHypervisorId);
    const converterId = this.ctx.hypervisorDriver && this.ctx.executors ? viaHypervisorId : null;
    return { disk, hypervisorId: disk.capabilities.pathAccess ? viaHypervisorId : null, keyBase, converterId };
  }

  /** The stock import task: open the source and store it, then record the image (`available`); nothing is left on a failure. */
  private async runOsImport(taskId: string, id: string, storageId: string, params: ImportJobParams, signal: AbortSignal): Promise<void> {
    const keys: string[] = [];
    let target: ImportTarget | null = null;
    const outcome = await runTask(this.ctx, taskId, signal, async (work) => {
      target = await this.targetOf(storageId, params.viaHypervisorId, stockImportKeyBase(id));
      const stored = await this.store(params, target, work, keys);
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

  /** The bytes of a job's source: a download (the URL checked again here), or a staged upload. */
  private async open(params: ImportJobParams, work: TaskWork, hold: ByteHold | null): Promise<ImportSource> {
    if (params.source === 'url') return this.openUrl(this.checkUrl(params.url), params.sha256, work, hold);
    if (!this.stagedUploads)
      throw new InstanceImagesError(
        'FEATURE_DISABLED',
        'This process cannot read staged uploads: set uploads.directory to the staging directory the panel processes share',
        { details: { option: 'uploads.directory' } },
      );
    const bytes = await this.stagedUploads.read(params.uploadId, params.lengthBytes, work);
    return this.openBytes(bytes, params.sha256, work.signal, hold);
  }

  /** Downloads, decompresses and detects the format: a URL import's bytes. */
  private openUrl(url: URL, sha256: string | null, work: TaskWork, hold: ByteHold | null): Promise<ImportSource> {
    const { signal, progress } = work;
    progress({ step: 'downloading', bytesDone: 0, bytesTotal: null });
    return openImportSource(url, {
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
      onDownloaded: (bytes, total) => {
        hold?.announce(total);
        progress({ step: 'downloading', bytesDone: bytes, bytesTotal: total });
      },
      ...(hold ? { admit: (bytes: number) => hold.admit(bytes) } : {}),
    });
  }

  /**
   * Decompresses and detects the format of bytes at hand (an upload): the same pipeline as a
   * URL's, with the same limits.
   * @internal
   */
  openBytes(bytes: AsyncIterable<Buffer>, sha256: string | null, signal: AbortSignal, hold: ByteHold | null = null): Promise<ImportSource> {
    return openByteSource(bytes, {
      signal,
      maxImageBytes: this.options.maxImageBytes,
      expectedSha256: sha256,
      decompressors: this.decompressors,
      ...(hold ? { admit: (size: number) => hold.admit(size) } : {}),
    });
  }

  /**
   * Opens the source and stores it: the work shared by every import. A URL into a path storage
   * is fetched by the hypervisor itself when `imports.fetchOnHypervisor` is on.
   */
  private async store(
    params: ImportJobParams,
    target: ImportTarget,
    work: TaskWork,
    keys: string[],
    hold: ByteHold | null = null,
  ): Promise<StoredImport> {
    const { signal, progress } = work;
    if (params.source === 'url' && this.options.fetchOnHypervisor && target.disk.capabilities.pathAccess)
      return fetchIntoPathStorage(this.drivers, target, {
        url: this.checkUrl(params.url),
        sha256: params.sha256,
        options: this.options,
        rules: this.rules,
        hold,
        signal,
        progress,
        onKey: (key) => keys.push(key),
      });
    const source = await this.open(params, work, hold);
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
      // A failed import's image ends in `error` (its hold released) with its task, in one write;
      // what it stored is removed after it, best effort.
      work.endWith({
        failImage: (error) => failedImageMove(this.ctx, imageId, { from: 'creating' }, 'import', error, { reservedBytes: null }),
        afterFailure: async () => {
          const current = await this.ctx.repos.images.get(imageId);
          if (target && current?.status !== 'available') await this.removeKeys(target, keys, imageId);
        },
      });
      const image = await this.ctx.repos.images.get(imageId);
      if (image?.status !== 'creating') throw new InstanceImagesError('CANCELLED', 'The import was cancelled');
      target = await this.targetOf(image.storageId, params.viaHypervisorId, image.fileKey.replace(/\.qcow2$/, ''));
      const stored = await this.store(params, target, work, keys, await byteHoldOf(this.ctx, image));
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
        reservedBytes: null, // the file's size counts from now on
        availableAt: now,
      };
      const available = await tryTransitionImage(this.ctx, current, 'available', patch, 'system');
      if (!available) throw new InstanceImagesError('CANCELLED', 'The image was cancelled while it was being stored');
      await startBilling(this.ctx, available, now);
    });
    const current = outcome.ok ? null : await this.ctx.repos.images.get(imageId);
    // Available and billed: something failed afterwards; keep the file and make sure billing runs.
    if (current?.status === 'available')
      await startBilling(this.ctx, current, current.availableAt ?? this.ctx.now()).catch(() => undefined);
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
      await transitionImage(this.ctx, image, 'error', { reservedBytes: null }, actor, failureReason('import', 'CANCELLED')).catch(
        () => undefined,
      );
    }
    return (await this.ctx.repos.tasks.get(task.id)) ?? task;
  }
}
