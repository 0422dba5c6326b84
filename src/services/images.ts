/**
 * Customer workflows of custom images: create from an instance (the capture), retry, cancel,
 * My Images, delete; and the tasks page.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, isInstanceImagesError, notFound } from '../errors';
import { failureReason } from '../messages';
import { DescriptionSchema, DiskFormatSchema, IdSchema, NameSchema, type Page } from '../model/common';
import { INITIAL_IMAGE_STATUS } from '../lifecycle';
import type { Image, ImageStatus } from '../model/image';
import type { ImageStorage } from '../model/image-storage';
import { TaskTypeSchema, type Task, type TaskStatus, type TaskType } from '../model/task';
import { DEFAULT_SCRATCH_DIR, type HostInstance } from '../ports/host-directory';
import type { ImageFilter, ImageSort, ListPage } from '../ports/repositories';
import { parseOrThrow } from '../util/validate';
import { checkActor, ownsAccount, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import { transitionImage, tryTransitionImage } from './image-state';
import { startBilling, stopBilling } from './usage';
import { cancelQueuedTask, createTask, runTask } from './task-runner';
import { failedImageMove, removeCaptureLeftovers, type CaptureAttempt } from './task-failures';
import { waitForTaskEnd, type WaitForTaskOptions } from './task-wait';
import { assertAccountActive } from './accounts';
import { revokeSharesOf } from './image-sharing';
import { cancelTransfersOf } from './image-transfers';
import { captureIntoChunks } from './chunked-capture';
import { captureIntoFile } from './file-capture';
import { chunkStoreOf, deleteChunkedImage, isChunkedStorage, manifestKeyOf } from './chunked-storage';
import { enqueueTask, withdrawNewImage } from './task-jobs';
import { accountCaps, assertNotProtected, capReached, capturedCapabilities, insertUnderCaps } from './image-metadata';

/** Input of {@link ImageService.createImage}. */
export const CreateImageInputSchema = z.strictObject({
  instanceId: IdSchema,
  name: NameSchema,
  description: DescriptionSchema.optional(),
  /** Output format; default from the service settings (qcow2). */
  format: DiskFormatSchema.optional(),
  /** Compress a qcow2 output. */
  compress: z.boolean().optional(),
});
/** Input of {@link ImageService.createImage}. */
export type CreateImageInput = z.input<typeof CreateImageInputSchema>;

/** Query of {@link ImageService.listImages}. */
export const ListImagesQuerySchema = z.strictObject({
  cursor: z.string().max(1000).nullish(),
  limit: z.number().int().min(1).max(1000).optional(),
  sort: z.enum(['createdAt', 'name']).optional(),
  direction: z.enum(['asc', 'desc']).optional(),
  status: z.enum(['creating', 'available', 'error', 'deleting']).optional(),
  /** Admins only: filter by account. */
  accountId: IdSchema.optional(),
  /** Admins only: include `deleted` images too, for history (a customer asking gets FORBIDDEN). */
  includeDeleted: z.boolean().optional().describe('Admins only: include deleted images too (history)'),
});
/** Query of {@link ImageService.listImages}. */
export type ListImagesQuery = z.input<typeof ListImagesQuerySchema>;

/** Query of {@link ImageService.listTasks}. */
export const ListTasksQuerySchema = z.strictObject({
  cursor: z.string().max(1000).nullish(),
  limit: z.number().int().min(1).max(1000).optional(),
  status: z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']).optional(),
  type: TaskTypeSchema.optional(),
  subjectId: IdSchema.optional(),
  /** Admins only: filter by account. */
  accountId: IdSchema.optional(),
});
/** Query of {@link ImageService.listTasks}. */
export type ListTasksQuery = z.input<typeof ListTasksQuerySchema>;

/** An image and the task working on it. */
export interface ImageWithTask {
  image: Image;
  task: Task;
}

/** Makes one key segment safe: keeps letters, digits, dot, dash and underscore. */
function keySegment(value: string): string {
  const safe = value.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_');
  return safe.slice(0, 120) || '_';
}

/** The storage key of a custom image. */
export function customImageKey(accountId: string, imageId: string, format: 'qcow2' | 'raw'): string {
  return `images/${keySegment(accountId)}/${keySegment(imageId)}.${format}`;
}

/** Customer workflows of custom images, and the tasks page. */
export class ImageService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
  ) {
    // Jobs as data: capture and delete jobs are rebuilt from the task and its image (a job whose
    // image is gone runs too, so that its task ends).
    ctx.jobs.register('capture', async (job, signal) => {
      const task = await ctx.repos.tasks.get(job.taskId);
      if (!task) return;
      const image = await ctx.repos.images.get(task.subjectId);
      const { fileKey, compress } = job.params ?? {};
      await this.runCapture(
        task.id,
        task.subjectId,
        typeof fileKey === 'string' ? fileKey : (image?.fileKey ?? ''),
        typeof compress === 'boolean' ? compress : (image?.compressed ?? ctx.settings.captureCompress),
        signal,
      );
    });
    ctx.jobs.register('delete', async (job, signal) => {
      const task = await ctx.repos.tasks.get(job.taskId);
      if (task) await this.runDelete(task.id, task.subjectId, signal);
    });
  }

  /** The instance, when the actor may use it; NOT_FOUND otherwise (foreign looks like missing). */
  async instanceFor(actor: Actor, instanceId: string): Promise<HostInstance> {
    checkActor(actor);
    parseOrThrow(IdSchema, instanceId, 'The instance id');
    const instance = await this.ctx.host.getInstance(instanceId);
    if (!instance || !ownsAccount(actor, instance.accountId)) throw notFound('Instance', instanceId);
    return instance;
  }

  /** The image, when the actor may see it (own custom image, or any image for an admin). */
  async imageFor(actor: Actor, imageId: string, options: { includeDeleted?: boolean } = {}): Promise<Image> {
    checkActor(actor);
    parseOrThrow(IdSchema, imageId, 'The image id');
    const image = await this.ctx.repos.images.get(imageId);
    if (
      !image ||
      (image.status === 'deleted' && !options.includeDeleted) ||
      (actor.kind === 'customer' && (image.kind !== 'custom' || image.accountId !== actor.accountId))
    ) {
      throw notFound('Image', imageId);
    }
    return image;
  }

  /** Storages with purpose custom-images, enabled and bound to the hypervisor. */
  private async boundStorages(hypervisorId: string): Promise<ImageStorage[]> {
    const bindings = await this.ctx.repos.storages.listBindings({ hypervisorId });
    const storages = await Promise.all(bindings.map((b) => this.ctx.repos.storages.get(b.storageId)));
    return storages.filter((s): s is ImageStorage => s !== null && s.enabled && s.purpose === 'custom-images');
  }

  /** Picks the bound storage with the most free space (unknown/unlimited counts as most). */
  private async pickStorage(hypervisorId: string): Promise<{ storage: ImageStorage; free: number | null }> {
    const candidates = await this.boundStorages(hypervisorId);
    if (candidates.length === 0)
      throw new InstanceImagesError(
        'NO_IMAGE_STORAGE',
        'No image storage is bound to the hypervisor of this instance; ask your provider to configure one',
      );
    let best: { storage: ImageStorage; free: number | null } | null = null;
    let lastError: unknown = null;
    for (const storage of candidates) {
      try {
        const disk = await this.drivers.storage(storage, hypervisorId);
        const free = await disk.freeSpace();
        if (best === null || (best.free !== null && (free === null || free > best.free))) best = { storage, free };
      } catch (error) {
        lastError = error;
        this.ctx.logger.warn('image storage not usable', { storageId: storage.id, error: String(error) });
      }
    }
    if (!best)
      throw isInstanceImagesError(lastError)
        ? lastError
        : new InstanceImagesError('STORAGE_UNAVAILABLE', 'No bound image storage is reachable', { cause: lastError });
    return best;
  }

  /**
   * Creates an image from an instance. Checks, in order: input, ownership, the location's feature
   * switch (FEATURE_DISABLED), the account's cap (IMAGE_LIMIT_REACHED), a storage bound to the
   * instance's hypervisor (NO_IMAGE_STORAGE), free space against the disk's allocation
   * (STORAGE_FULL). Returns the image in `creating` and its task at once; the capture runs in the
   * background. The cap is held atomically.
   */
  async createImage(actor: Actor, input: CreateImageInput): Promise<ImageWithTask> {
    checkActor(actor);
    const data = parseOrThrow(CreateImageInputSchema, input, 'The image');
    const instance = await this.instanceFor(actor, data.instanceId);
    await assertAccountActive(this.ctx, instance.accountId);
    const settings = await this.ctx.repos.settings.getLocation(instance.locationId);
    if (!settings?.imagesEnabled)
      throw new InstanceImagesError('FEATURE_DISABLED', 'Image feature is not enabled', { details: { locationId: instance.locationId } });
    const caps = await accountCaps(this.ctx, instance.accountId, settings);
    if (caps.max !== null && (await this.ctx.repos.images.countActive(instance.accountId)) >= caps.max)
      throw await capReached(this.ctx, instance.accountId, caps, 0);

    const { storage, free } = await this.pickStorage(instance.hypervisorId);
    const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
    const domain = await hv.inspect(instance.domainName);
    const needed = domain.primaryDisk.allocationBytes;
    if (free !== null && free < needed) {
      throw new InstanceImagesError(
        'STORAGE_FULL',
        `Not enough free space on the image storage: the disk needs up to ${needed} bytes, ${free} are free`,
        { details: { needed, free } },
      );
    }
    const disk = await this.drivers.storage(storage, instance.hypervisorId);
    const chunked = isChunkedStorage(storage);
    // A chunked capture reads the disk through NBD: no scratch file on the hypervisor.
    if (!disk.capabilities.pathAccess && !chunked) {
      const hypervisor = await this.drivers.hypervisor(instance.hypervisorId);
      const scratchFree = await hv.freeSpace(hypervisor.scratchDir ?? DEFAULT_SCRATCH_DIR).catch(() => null);
      if (scratchFree !== null && scratchFree < needed) {
        throw new InstanceImagesError(
          'STORAGE_FULL',
          `Not enough free space in the hypervisor's scratch directory: the disk needs up to ${needed} bytes, ${scratchFree} are free`,
          { details: { needed, free: scratchFree } },
        );
      }
    }

    const now = this.ctx.now();
    const id = this.ctx.newId();
    // A chunked image is the raw disk, cut into chunks (compressed per chunk by the storage's codec).
    const format = chunked ? 'raw' : (data.format ?? this.ctx.settings.captureFormat);
    const compressed = chunked ? false : (data.compress ?? this.ctx.settings.captureCompress);
    const image: Image = {
      id,
      kind: 'custom',
      name: data.name,
      description: data.description ?? '',
      mediaGroupId: null,
      accountId: instance.accountId,
      sourceInstanceId: instance.id,
      sourceInstanceName: instance.name,
      locationId: instance.locationId,
      storageId: storage.id,
      hypervisorId: disk.capabilities.shared ? null : instance.hypervisorId,
      fileKey: chunked ? manifestKeyOf(customImageKey(instance.accountId, id, format)) : customImageKey(instance.accountId, id, format),
      format,
      sizeBytes: null,
      virtualSizeBytes: domain.primaryDisk.virtualSizeBytes,
      ...capturedCapabilities(domain, instance),
      sha256: null,
      consistency: null,
      compressed,
      status: INITIAL_IMAGE_STATUS.custom,
      statusReason: null,
      createdAt: now,
      updatedAt: now,
      availableAt: null,
      deletedAt: null,
    };
    await insertUnderCaps(this.ctx, image, instance.accountId, caps);
    const task = await this.startCapture(image, instance, withdrawNewImage(this.ctx, image.id));
    return { image, task };
  }

  /** Starts a capture of `image`, compressed as its request chose (the current default for images recorded without that choice). */
  private async startCapture(image: Image, instance: HostInstance, onRefused?: () => Promise<unknown>): Promise<Task> {
    const compress = image.compressed ?? this.ctx.settings.captureCompress;
    const task = await createTask(this.ctx, {
      type: 'capture',
      subjectKind: 'image',
      subjectId: image.id,
      accountId: image.accountId,
      hypervisorId: instance.hypervisorId,
    });
    await enqueueTask(
      this.ctx,
      {
        taskId: task.id,
        type: 'capture',
        hypervisorId: instance.hypervisorId,
        params: { fileKey: image.fileKey, compress },
      },
      onRefused ?? (() => this.failRefusedRetry(image)),
    );
    return task;
  }

  /** A retry whose task could not be queued: the image goes back to `error` (INTERRUPTED). */
  private async failRefusedRetry(image: Image): Promise<void> {
    const current = await this.ctx.repos.images.get(image.id);
    if (current?.status !== 'creating' || current.fileKey !== image.fileKey) return;
    await tryTransitionImage(this.ctx, current, 'error', {}, 'system', {
      code: 'INTERRUPTED',
      message: 'The capture could not be queued; retry the image in a moment.',
    });
  }

  /**
   * The capture task: capture, store, verify, then available (billing starts) or error. `fileKey`
   * identifies the attempt: a retry gets a fresh key, so a late attempt never touches a newer one.
   */
  private async runCapture(taskId: string, imageId: string, fileKey: string, compress: boolean, signal: AbortSignal): Promise<void> {
    const attempt: CaptureAttempt = { fileKey, disk: null, deferred: [] };
    const outcome = await runTask(this.ctx, taskId, signal, async ({ progress, annotate, endWith }) => {
      // A failed attempt's image ends in `error` with its task, in one write; what the attempt
      // stored is removed after it (best effort: a storage that died must not hold the end back).
      endWith({
        failImage: (error) => failedImageMove(this.ctx, imageId, { from: 'creating', fileKey }, 'capture', error),
        afterFailure: () => removeCaptureLeftovers(this.ctx, imageId, attempt),
      });
      const image = await this.ctx.repos.images.get(imageId);
      if (!image || image.status !== 'creating' || image.fileKey !== fileKey)
        throw new InstanceImagesError('CANCELLED', 'The image is no longer being created');
      const instance = await this.ctx.host.getInstance(image.sourceInstanceId ?? '');
      if (!instance) throw new InstanceImagesError('NOT_FOUND', 'The source instance no longer exists');
      const storage = await this.ctx.repos.storages.get(image.storageId);
      if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The image storage was removed');
      annotate({ storageId: storage.id });
      const disk = await this.drivers.storage(storage, instance.hypervisorId);
      const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
      attempt.disk = disk;
      progress({ step: 'capturing' });
      const stillCreating = async (): Promise<Image> => {
        const current = await this.ctx.repos.images.get(image.id);
        if (signal.aborted || current?.fileKey !== fileKey || current.status !== 'creating')
          throw new InstanceImagesError('CANCELLED', 'The capture was cancelled');
        return current;
      };
      const captured = isChunkedStorage(storage)
        ? await captureIntoChunks(this.ctx, {
            image,
            instance,
            storage,
            disk,
            hv,
            leaseId: taskId,
            signal,
            progress,
            stillCreating: async () => void (await stillCreating()),
            deferCleanup: (cleanup) => void attempt.deferred.push(cleanup),
          })
        : await captureIntoFile(image, instance.domainName, disk, hv, compress, signal, progress);
      const current = await stillCreating();
      const now = this.ctx.now();
      const verified = { ...captured, availableAt: now };
      const available = await tryTransitionImage(this.ctx, current, 'available', verified, 'system');
      if (!available) throw new InstanceImagesError('CANCELLED', 'The image was cancelled while it was being stored');
      await startBilling(this.ctx, available, now);
      // A chunked capture's lease is deleted while the image became available; the task ends once it is.
      for (const deferred of attempt.deferred.splice(0)) await deferred();
    });
    if (outcome.ok) return;
    const image = await this.ctx.repos.images.get(imageId);
    if (image?.status === 'available' && image.fileKey === fileKey) {
      // This attempt made the image available and something failed afterwards: keep its file and its billing.
      await startBilling(this.ctx, image, image.availableAt ?? this.ctx.now()).catch((error: unknown) =>
        this.ctx.logger.error('billing could not be started', { imageId, error: String(error) }),
      );
    }
  }

  /** Retries a failed capture: `error` → `creating` with a new task. */
  async retryImage(actor: Actor, imageId: string): Promise<ImageWithTask> {
    const image = await this.imageFor(actor, imageId);
    if (image.status !== 'error')
      throw new InstanceImagesError('INVALID_STATE', `Only an image in error can be retried; this one is ${image.status}`);
    if (image.kind !== 'custom' || image.statusReason?.code === 'DELETE_FAILED')
      throw new InstanceImagesError('INVALID_STATE', 'This image failed while being deleted; delete it again instead');
    if (image.sourceInstanceId === null)
      throw new InstanceImagesError('INVALID_STATE', 'This image was imported from a URL; delete it and import it again');
    const instance = await this.ctx.host.getInstance(image.sourceInstanceId ?? '');
    if (!instance)
      throw new InstanceImagesError(
        'NOT_FOUND',
        'The source instance no longer exists, so the capture cannot be retried; delete this image',
      );
    await assertAccountActive(this.ctx, image.accountId ?? instance.accountId);
    const settings = await this.ctx.repos.settings.getLocation(instance.locationId);
    if (!settings?.imagesEnabled) throw new InstanceImagesError('FEATURE_DISABLED', 'Image feature is not enabled');
    // A fresh file key: cleanup of the failed attempt can never touch the new attempt's file.
    const attemptKey = customImageKey(image.accountId ?? instance.accountId, `${image.id}-${this.ctx.newId().slice(0, 8)}`, image.format);
    const fileKey = image.fileKey.endsWith('.manifest.json') ? manifestKeyOf(attemptKey) : attemptKey;
    const retried = await transitionImage(this.ctx, image, 'creating', { fileKey }, actor);
    const task = await this.startCapture(retried, instance);
    return { image: retried, task };
  }

  /** Cancels a capture in progress; the image ends in `error` with reason CANCELLED. */
  async cancelCapture(actor: Actor, imageId: string): Promise<Image> {
    const image = await this.imageFor(actor, imageId);
    if (image.status !== 'creating')
      throw new InstanceImagesError('INVALID_STATE', `Only an image being created can be cancelled; this one is ${image.status}`);
    const tasks = await this.ctx.repos.tasks.list({ subjectId: imageId, type: 'capture', statuses: ['queued', 'running'] });
    for (const task of tasks.items) {
      if (task.status === 'queued') await cancelQueuedTask(this.ctx, task.id);
      this.ctx.queue.cancel(task.id);
    }
    const fresh = await this.ctx.repos.images.get(imageId);
    if (fresh?.status === 'creating') {
      return transitionImage(this.ctx, fresh, 'error', {}, actor, failureReason('capture', 'CANCELLED')).catch(
        async () => (await this.ctx.repos.images.get(imageId)) ?? fresh,
      );
    }
    return fresh ?? image;
  }

  /**
   * My Images: a page of images (an account's custom images for a customer; any for an admin),
   * without deleted ones. An admin may pass `includeDeleted: true` to see deleted images as well
   * (history); customers never see deleted images (FORBIDDEN when they ask).
   */
  async listImages(actor: Actor, query: ListImagesQuery = {}): Promise<Page<Image>> {
    checkActor(actor);
    const q = parseOrThrow(ListImagesQuerySchema, query, 'The query');
    if (q.includeDeleted && actor.kind !== 'admin')
      throw new InstanceImagesError('FORBIDDEN', 'Only an administrator can list deleted images');
    const statuses: ImageStatus[] | undefined = q.status ? [q.status] : undefined;
    const filter: ImageFilter =
      actor.kind === 'customer'
        ? { kind: 'custom', accountId: actor.accountId, statuses }
        : { accountId: q.accountId, statuses, includeDeleted: q.includeDeleted === true };
    const sort: ImageSort = { by: q.sort ?? 'createdAt', ...(q.direction ? { direction: q.direction } : {}) };
    const page: ListPage = { cursor: q.cursor ?? null, limit: q.limit ?? 50 };
    return this.ctx.repos.images.list(filter, page, sort);
  }

  /** One image (NOT_FOUND when missing, deleted, or another account's). */
  async getImage(actor: Actor, imageId: string): Promise<Image> {
    return this.imageFor(actor, imageId);
  }

  /**
   * Deletes an image: `available`/`error` → `deleting` (billing stops at this request) → file
   * removed → `deleted`. Idempotent: deleting a deleting or deleted image returns it. A failed
   * removal puts the image in `error` (reason DELETE_FAILED); deleting again retries.
   */
  async deleteImage(actor: Actor, imageId: string): Promise<ImageWithTask | { image: Image; task: null }> {
    const image = await this.imageFor(actor, imageId, { includeDeleted: true });
    if (image.status === 'deleted') return { image, task: null };
    if (image.status === 'deleting') {
      // Idempotent; and a delete whose task was lost (e.g. its creation failed) is started again.
      const active = await this.ctx.repos.tasks.list(
        { subjectId: image.id, type: 'delete', statuses: ['queued', 'running'] },
        { limit: 1 },
      );
      return active.items.length > 0 ? { image, task: null } : { image, task: await this.startDelete(image) };
    }
    if (image.status === 'creating')
      throw new InstanceImagesError('INVALID_STATE', 'The image is still being created; cancel the capture first');
    assertNotProtected(image);
    if (image.kind === 'stock') await this.assertNotDeploying(image.id);
    // A pending transfer offer ends first (compare-and-set), so the image cannot change hands any
    // more; should the recipient's acceptance have won the race, the re-read no longer finds the
    // image among the actor's and the delete is refused (NOT_FOUND): exactly one of the two wins.
    await cancelTransfersOf(this.ctx, image.id, actor);
    const current = image.kind === 'custom' ? await this.imageFor(actor, imageId) : image;
    // The compare-and-set also requires the image unprotected: a protection that won the race refuses the delete.
    const deleting = await transitionImage(this.ctx, current, 'deleting', {}, actor).catch(async (error: unknown) => {
      const fresh = await this.ctx.repos.images.get(image.id);
      if (fresh) assertNotProtected(fresh);
      throw error;
    });
    // Its shares end with it.
    await revokeSharesOf(this.ctx, image.id, actor, deleting.updatedAt);
    // Billing stops at the request; the delete task stops it again (idempotently) should this fail.
    await stopBilling(this.ctx, image.id, deleting.updatedAt).catch((error: unknown) =>
      this.ctx.logger.warn('stopping billing failed; the delete task retries it', { imageId: image.id, error: String(error) }),
    );
    return { image: deleting, task: await this.startDelete(deleting) };
  }

  private async startDelete(image: Image): Promise<Task> {
    const task = await createTask(this.ctx, {
      type: 'delete',
      subjectKind: 'image',
      subjectId: image.id,
      accountId: image.accountId,
      hypervisorId: image.hypervisorId,
    });
    await enqueueTask(this.ctx, { taskId: task.id, type: 'delete', hypervisorId: image.hypervisorId });
    return task;
  }

  /** Waits until no deploy from the image is running (deploys check the status once running). */
  private async waitForDeploys(imageId: string, signal: AbortSignal): Promise<void> {
    for (;;) {
      const running = await this.ctx.repos.tasks.list({ subjectId: imageId, type: 'deploy', statuses: ['running'] }, { limit: 1 });
      if (running.items.length === 0) return;
      if (signal.aborted) throw new InstanceImagesError('CANCELLED', 'The delete was cancelled');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  private async assertNotDeploying(imageId: string): Promise<void> {
    const deploys = await this.ctx.repos.tasks.list({ subjectId: imageId, type: 'deploy', statuses: ['queued', 'running'] }, { limit: 1 });
    if (deploys.items.length > 0)
      throw new InstanceImagesError('IN_USE', 'The image is being deployed right now; try again when the deploy has finished');
  }

  private async runDelete(taskId: string, imageId: string, signal: AbortSignal): Promise<void> {
    await runTask(this.ctx, taskId, signal, async ({ progress, endWith }) => {
      // A failed delete's image, still `deleting`, ends in `error` with its task, in one write.
      endWith({ failImage: (error) => failedImageMove(this.ctx, imageId, { from: 'deleting' }, 'delete', error) });
      const image = await this.ctx.repos.images.get(imageId);
      if (!image || image.status !== 'deleting') return;
      await stopBilling(this.ctx, image.id, image.updatedAt);
      progress({ step: 'waiting for deploys' });
      await this.waitForDeploys(image.id, signal);
      progress({ step: 'removing file' });
      const storage = await this.ctx.repos.storages.get(image.storageId);
      if (storage && image.kind === 'custom') {
        const disk = await this.drivers.storage(storage, image.hypervisorId);
        if (isChunkedStorage(storage))
          await deleteChunkedImage(this.ctx, this.drivers, image, chunkStoreOf(this.ctx, storage, disk, image.accountId));
        else await disk.delete(image.fileKey);
      }
      await transitionImage(this.ctx, image, 'deleted', { deletedAt: this.ctx.now() }, 'system');
    });
  }

  /** The tasks page: a page of tasks (the account's for a customer), newest first. */
  async listTasks(actor: Actor, query: ListTasksQuery = {}): Promise<Page<Task>> {
    checkActor(actor);
    const q = parseOrThrow(ListTasksQuerySchema, query, 'The query');
    const statuses: TaskStatus[] | undefined = q.status ? [q.status] : undefined;
    const type: TaskType | undefined = q.type;
    const accountId = actor.kind === 'customer' ? actor.accountId : q.accountId;
    return this.ctx.repos.tasks.list(
      { accountId, statuses, type, subjectId: q.subjectId },
      { cursor: q.cursor ?? null, limit: q.limit ?? 50 },
    );
  }

  /** One task (NOT_FOUND when missing or another account's). */
  async getTask(actor: Actor, taskId: string): Promise<Task> {
    checkActor(actor);
    parseOrThrow(IdSchema, taskId, 'The task id');
    const task = await this.ctx.repos.tasks.get(taskId);
    if (!task || (actor.kind === 'customer' && task.accountId !== actor.accountId)) throw notFound('Task', taskId);
    return task;
  }

  /**
   * Resolves with the task once it has ended (`completed`, `failed` or `cancelled`: check
   * `status`), also for a task another panel process runs (polled). NOT_FOUND as {@link getTask}.
   */
  async waitForTask(actor: Actor, taskId: string, options: WaitForTaskOptions = {}): Promise<Task> {
    await this.getTask(actor, taskId);
    return waitForTaskEnd(this.ctx, taskId, () => this.getTask(actor, taskId), options);
  }
}
