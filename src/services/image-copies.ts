/**
 * Copies of custom images to another storage, in the same or another location.
 *
 * A copy is a **new image record** (decision; docs/images-that-move.md): its own id, status
 * (`creating` → `available` | `error`, the custom image lifecycle), checksum, location and usage
 * interval. So the existing paths serve it unchanged: deploy picks it by id, billing gives it its
 * own line in the usage report (Linode bills per replica), the account's cap counts it (taken
 * atomically with `insertIfUnderLimit`), delete removes its file. The bytes are streamed from the
 * source storage to the target through the storage wrapper (path storages read and write through
 * their hypervisor's executor, object storages directly), and the wrapper's sha256 of what it wrote
 * must equal the source image's sha256, else the copy is removed and fails with CHECKSUM_MISMATCH.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { failureReason } from '../messages';
import { INITIAL_IMAGE_STATUS } from '../lifecycle';
import { IdSchema, NameSchema } from '../model/common';
import type { Image } from '../model/image';
import type { ImageStorage } from '../model/image-storage';
import { parseOrThrow } from '../util/validate';
import { checkActor, eventActor, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import { tryTransitionImage } from './image-state';
import { customImageKey, type ImageWithTask } from './images';
import { enqueueTask, jobParams, withdrawNewImage } from './task-jobs';
import { createTask, runTask } from './task-runner';
import type { ImageMove } from './task-state';
import { startBilling } from './usage';
import { draft } from './outbox-events';
import { accountCaps, insertUnderCaps } from './image-metadata';
import { pickLocationStorage } from './location-storage';

/** Input of {@link ImageCopyService.copyImage}. */
export const CopyImageInputSchema = z
  .strictObject({
    /** The target storage (purpose `custom-images`, enabled). Give this or `locationId`. */
    storageId: IdSchema.optional(),
    /**
     * The target location: the SDK picks an enabled custom-images storage bound to one of its
     * hypervisors (most free space first; not the one the image is on). What a customer gives, who
     * does not know the operator's storages. Give this or `storageId`.
     */
    locationId: IdSchema.optional(),
    /**
     * For a per-hypervisor storage (local): the hypervisor whose disk receives the copy (must be
     * bound to the storage). Ignored for shared storages except to pick the copy's location.
     */
    hypervisorId: IdSchema.optional(),
    /** The copy's name; default the source's. */
    name: NameSchema.optional(),
  })
  .refine((input) => (input.storageId === undefined) !== (input.locationId === undefined), {
    message: 'give either storageId or locationId',
    path: ['storageId'],
  });
/** Input of {@link ImageCopyService.copyImage}. */
export type CopyImageInput = z.input<typeof CopyImageInputSchema>;

/** Who may copy and whether copies are billed (`createInstanceImages({ imageCopies })`). */
export interface ImageCopyPolicy {
  /** Customers may copy their own images (admins always may). @default false */
  allowCustomers: boolean;
  /** Copies are billed like any image, one usage line per copy. @default true */
  billed: boolean;
}

/** The input of a copy job its task does not hold (the copy is the task's subject). */
const CopyJobParamsSchema = z.object({ sourceImageId: IdSchema });

/** Copies of images to other storages. Reached through `InstanceImages.copies`. */
export class ImageCopyService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
    private readonly policy: ImageCopyPolicy,
  ) {
    // Jobs as data: the copy is the task's subject; its source is the job's one input.
    ctx.jobs.register('copy', async (job, signal) => {
      const { sourceImageId } = jobParams(job, CopyJobParamsSchema);
      const task = await ctx.repos.tasks.get(job.taskId);
      if (task) await this.runCopy(task.id, sourceImageId, task.subjectId, signal);
    });
  }

  /** The storage (and hypervisor) the input names, or the one picked in the location it names. */
  private async storageOf(
    data: z.output<typeof CopyImageInputSchema>,
    source: Image,
  ): Promise<{ storageId: string; hypervisorId?: string }> {
    if (data.storageId !== undefined)
      return { storageId: data.storageId, ...(data.hypervisorId ? { hypervisorId: data.hypervisorId } : {}) };
    const picked = await pickLocationStorage(this.ctx, this.drivers, data.locationId as string, {
      storageId: source.storageId,
      hypervisorId: source.hypervisorId,
    });
    return { storageId: picked.storage.id, hypervisorId: picked.hypervisorId };
  }

  /** The target: an enabled custom-images storage, and the hypervisor and location of the copy. */
  private async target(input: { storageId: string; hypervisorId?: string | undefined }, source: Image) {
    const storage = await this.ctx.repos.storages.get(input.storageId);
    if (!storage) throw notFound('Image storage', input.storageId);
    if (!storage.enabled || storage.purpose !== 'custom-images')
      throw new InstanceImagesError('VALIDATION_FAILED', 'The target storage must be enabled and hold custom images', {
        fields: [{ path: 'storageId', message: 'is disabled or holds templates' }],
      });
    const factory = this.ctx.registry.has(storage.driver) ? this.ctx.registry.get(storage.driver) : null;
    if (!factory)
      throw new InstanceImagesError('STORAGE_UNAVAILABLE', `The storage driver ${JSON.stringify(storage.driver)} is not registered`);
    const bindings = await this.ctx.repos.storages.listBindings({ storageId: storage.id });
    if (input.hypervisorId !== undefined && !bindings.some((b) => b.hypervisorId === input.hypervisorId))
      throw new InstanceImagesError('VALIDATION_FAILED', 'The hypervisor is not bound to the target storage', {
        fields: [{ path: 'hypervisorId', message: 'is not bound to the storage' }],
      });
    const perHypervisor = !factory.capabilities.shared;
    if (perHypervisor && input.hypervisorId === undefined)
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        'The target storage is per hypervisor: name the hypervisor that receives the copy',
        {
          fields: [{ path: 'hypervisorId', message: 'is required for this storage' }],
        },
      );
    const hypervisorId = perHypervisor ? (input.hypervisorId as string) : null;
    if (storage.id === source.storageId && hypervisorId === source.hypervisorId)
      throw new InstanceImagesError('VALIDATION_FAILED', 'The image is already on that storage', {
        fields: [{ path: 'storageId', message: 'is where the image is' }],
      });
    const via = input.hypervisorId ?? bindings[0]?.hypervisorId ?? null;
    const locationId = via === null ? source.locationId : ((await this.ctx.host.getHypervisor(via))?.locationId ?? source.locationId);
    return { storage, hypervisorId, locationId };
  }

  /**
   * Copies an available custom image to another storage: returns the copy (a new image in
   * `creating`, in the target's location) and its `copy` task at once; the task streams the bytes,
   * verifies the checksum, then makes the copy available (billing starts, when copies are billed).
   * @throws NOT_FOUND (missing, or another account's), FORBIDDEN (customers, unless the operator allows it), INVALID_STATE (source
   *   not available), VALIDATION_FAILED (target), FEATURE_DISABLED (customers: the target location),
   *   IMAGE_LIMIT_REACHED (the copy counts against the account's cap).
   */
  async copyImage(actor: Actor, imageId: string, input: CopyImageInput): Promise<ImageWithTask> {
    checkActor(actor);
    parseOrThrow(IdSchema, imageId, 'The image id');
    const data = parseOrThrow(CopyImageInputSchema, input, 'The copy');
    const source = await this.ctx.repos.images.get(imageId);
    // Foreign and missing images answer alike (NOT_FOUND), before the permission says anything.
    if (!source || source.kind !== 'custom' || source.status === 'deleted' || source.accountId === null) throw notFound('Image', imageId);
    if (actor.kind === 'customer' && source.accountId !== actor.accountId) throw notFound('Image', imageId);
    if (actor.kind === 'customer' && !this.policy.allowCustomers)
      throw new InstanceImagesError('FORBIDDEN', 'Only an administrator can copy images to another storage here');
    if (source.status !== 'available' || source.sha256 === null || source.sizeBytes === null)
      throw new InstanceImagesError('INVALID_STATE', `Only an available image can be copied; this one is ${source.status}`);
    const { storage, hypervisorId, locationId } = await this.target(await this.storageOf(data, source), source);
    const accountId = source.accountId;
    const settings = locationId === null ? null : await this.ctx.repos.settings.getLocation(locationId);
    if (actor.kind === 'customer' && !settings?.imagesEnabled)
      throw new InstanceImagesError('FEATURE_DISABLED', 'Image feature is not enabled in the target location', { details: { locationId } });
    const caps = await accountCaps(this.ctx, accountId, settings);

    const now = this.ctx.now();
    const id = this.ctx.newId();
    const copy: Image = {
      ...source,
      id,
      name: data.name ?? source.name,
      // A copy has no instance to capture from: a failed copy is deleted and copied again, never retried.
      sourceInstanceId: null,
      // Not protected, whatever its source is: the owner protects the copy on its own.
      protected: null,
      locationId,
      storageId: storage.id,
      hypervisorId,
      fileKey: customImageKey(accountId, id, source.format),
      status: INITIAL_IMAGE_STATUS.custom,
      statusReason: null,
      createdAt: now,
      updatedAt: now,
      availableAt: null,
      deletedAt: null,
    };
    // A copy counts as an image (its bytes too).
    await insertUnderCaps(this.ctx, copy, accountId, caps);
    // `image.copy-started` is recorded with the copy task (a copy its queue refuses is then withdrawn, with its events).
    const started = () => [draft('image.copy-started', copy.id, { image: copy, sourceImageId: source.id, actor: eventActor(actor) })];
    const task = await createTask(
      this.ctx,
      {
        type: 'copy',
        subjectKind: 'image',
        subjectId: copy.id,
        accountId,
        hypervisorId: hypervisorId ?? source.hypervisorId,
      },
      started,
    );
    await enqueueTask(
      this.ctx,
      {
        taskId: task.id,
        type: 'copy',
        hypervisorId: hypervisorId ?? source.hypervisorId,
        params: { sourceImageId: source.id },
      },
      withdrawNewImage(this.ctx, copy.id),
    );
    return { image: copy, task };
  }

  private async disk(storageId: string, hypervisorId: string | null) {
    const storage: ImageStorage | null = await this.ctx.repos.storages.get(storageId);
    if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'An image storage of the copy was removed');
    return this.drivers.storage(storage, hypervisorId);
  }

  /** The copy task: stream, verify (size and sha256), then available (and billed) or error. */
  private async runCopy(taskId: string, sourceImageId: string, copyImageId: string, signal: AbortSignal): Promise<void> {
    let written = false;
    const copy = await this.ctx.repos.images.get(copyImageId);
    await runTask(this.ctx, taskId, signal, async ({ progress, endWith }) => {
      // A failed copy removes what it wrote, then ends in `error` with its task, in one write.
      endWith({ failImage: (error) => this.afterFailedCopy(copy, () => written, error) });
      const current = await this.ctx.repos.images.get(copyImageId);
      if (!copy || current?.status !== 'creating') throw new InstanceImagesError('CANCELLED', 'The copy is no longer being created');
      const source = await this.ctx.repos.images.get(sourceImageId);
      if (source?.status !== 'available') throw new InstanceImagesError('NOT_FOUND', 'The source image is no longer available');
      const sourceDisk = await this.disk(source.storageId, source.hypervisorId);
      const targetDisk = await this.disk(copy.storageId, copy.hypervisorId);
      const total = source.sizeBytes ?? null;
      progress({ step: 'copying', bytesDone: 0, bytesTotal: total });
      const stream = await sourceDisk.get(source.fileKey, { signal });
      written = true;
      const put = await targetDisk.put(copy.fileKey, stream, {
        ...(total === null ? {} : { size: total }),
        signal,
        // The wrapper hashes what it writes and removes the object when it differs.
        ...(source.sha256 ? { expectedSha256: source.sha256 } : {}),
        onProgress: (p) => progress({ step: 'copying', bytesDone: p.bytesDone, bytesTotal: p.bytesTotal ?? total }),
      });
      progress({ step: 'verifying', bytesDone: put.size, bytesTotal: total });
      const stat = await targetDisk.stat(copy.fileKey);
      if (!stat || stat.size !== put.size || (total !== null && put.size !== total) || put.sha256 !== source.sha256)
        throw new InstanceImagesError('CHECKSUM_MISMATCH', `The copy has ${stat?.size ?? 'no'} bytes; the source has ${total}`);
      const fresh = await this.ctx.repos.images.get(copy.id);
      if (signal.aborted || fresh?.status !== 'creating') throw new InstanceImagesError('CANCELLED', 'The copy was cancelled');
      const now = this.ctx.now();
      const available = await tryTransitionImage(
        this.ctx,
        fresh,
        'available',
        { sizeBytes: put.size, sha256: put.sha256, availableAt: now },
        'system',
      );
      if (!available) throw new InstanceImagesError('CANCELLED', 'The copy changed while it was being stored');
      if (this.policy.billed) await startBilling(this.ctx, available, now);
    });
  }

  /** After a failed copy: what it wrote is removed; its image, still `creating`, moves to `error` with the task's end. */
  private async afterFailedCopy(copy: Image | null, wrote: () => boolean, error: InstanceImagesError): Promise<ImageMove | null> {
    if (!copy) return null;
    const image = await this.ctx.repos.images.get(copy.id);
    if (image?.status === 'available') return null;
    if (wrote())
      await this.disk(copy.storageId, copy.hypervisorId)
        .then((disk) => disk.delete(copy.fileKey))
        .catch((cause: unknown) => this.ctx.logger.warn('cleanup of a failed copy failed', { imageId: copy.id, error: String(cause) }));
    if (image?.status !== 'creating') return null;
    return { image, to: 'error', actor: 'system', reason: failureReason('copy', error.code) };
  }
}
