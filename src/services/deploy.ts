/**
 * Deploys: the OS picker (stock images by visible media group, plus My Images) and materializing
 * an image as the disk of a new instance.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, notFound, validationFailed } from '../errors';
import { DiskFormatSchema, IdSchema } from '../model/common';
import { ArchitectureSchema, FirmwareSchema, type Image } from '../model/image';
import type { MediaGroup } from '../model/media-group';
import type { Task } from '../model/task';
import type { MaterializeResult } from '../ports/hypervisor-driver';
import type { TaskJob } from '../ports/task-queue';
import { collectPages } from '../util/pages';
import { parseOrThrow } from '../util/validate';
import { assertAccountActive } from './accounts';
import { checkActor, ownsAccount, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import type { ImageService } from './images';
import { hasAcceptedShare, sharedView } from './image-sharing';
import { createTask, runTask } from './task-runner';
import { chunkStoreOf, isChunkedStorage } from './chunked-storage';
import { enqueueTask, jobParams } from './task-jobs';
import { draft } from './outbox-events';
import { assertFitsPlan, planMismatch, PlanFitSchema, type PlanFit } from './image-metadata';

/**
 * The default largest disk a deploy may ask for: 64 TiB (2^46 bytes). It is far above any real
 * instance disk, yet keeps a mistyped or hostile size from reaching `qemu-img resize` (which would
 * create a sparse disk of any size the filesystem allows). Operators set their own with
 * `createInstanceImages({ deploy: { maxDiskBytes } })`.
 */
export const MAX_DEPLOY_DISK_BYTES = 64 * 2 ** 40;

/** `N bytes`, with the size in the largest binary unit that divides it exactly (`64 TiB`), if any. */
function describeBytes(bytes: number): string {
  for (const [unit, size] of [
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
  ] as const) {
    if (bytes % size === 0) return `${bytes} bytes (${bytes / size} ${unit})`;
  }
  return `${bytes} bytes`;
}

/** Input of `CatalogService.deployImage`. */
export const DeployInputSchema = z.strictObject({
  imageId: IdSchema,
  /** The new instance (already known to the host directory) the disk is for. */
  instanceId: IdSchema,
  /** Absolute path of the new disk on the instance's hypervisor. */
  targetPath: z.string().min(2).max(4096).startsWith('/', 'must be an absolute path'),
  targetFormat: DiskFormatSchema.optional(),
  /**
   * Grow the disk to this size: a safe integer, never smaller than the image's virtual size, at
   * most the operator's maximum (`deploy.maxDiskBytes`, by default {@link MAX_DEPLOY_DISK_BYTES}).
   */
  sizeBytes: z.number().int('must be a whole number of bytes (a safe integer)').positive().optional(),
  /** The plan's firmware: an image recorded with the other firmware is refused (IMAGE_INCOMPATIBLE). */
  firmware: FirmwareSchema.optional(),
  /** The plan's CPU architecture: an image recorded for another is refused (IMAGE_INCOMPATIBLE). */
  architecture: ArchitectureSchema.optional(),
});
/** Input of `CatalogService.deployImage`. */
export type DeployInput = z.input<typeof DeployInputSchema>;

/** System directories a customer-driven deploy may never write into (the hypervisor writes as root). */
const SYSTEM_DIRECTORIES = [
  '/etc',
  '/root',
  '/boot',
  '/proc',
  '/sys',
  '/dev',
  '/run',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/var/run',
  '/var/spool',
  '/var/lib/dpkg',
  '/var/lib/apt',
];

/**
 * A deploy made with a customer actor writes bytes the customer controls, as root, at `targetPath`:
 * it must be a plain disk image file (`*.qcow2`, `*.raw`, `*.img`), without hidden or `.`/`..`
 * segments, outside the system directories. (Hosts choose the path; an admin actor is trusted with
 * any path, e.g. a block device.)
 * @throws VALIDATION_FAILED naming `targetPath`.
 */
export function checkCustomerDiskPath(targetPath: string): void {
  const segments = targetPath.split('/').slice(1);
  const plain = segments.every((segment) => /^[A-Za-z0-9_@+-][A-Za-z0-9._@+-]*$/.test(segment));
  const diskFile = /\.(qcow2|raw|img)$/.test(segments[segments.length - 1] ?? '');
  const system = SYSTEM_DIRECTORIES.some((dir) => targetPath === dir || targetPath.startsWith(`${dir}/`));
  if (!targetPath.startsWith('/') || !plain || !diskFile || system) {
    const message =
      'must be a disk image file path (*.qcow2, *.raw or *.img; plain names, no hidden or ".." segments) outside system directories';
    throw new InstanceImagesError('VALIDATION_FAILED', `targetPath ${message}`, { fields: [{ path: 'targetPath', message }] });
  }
}

/** The OS picker (also used for scaling groups): stock images by customer-visible media group, and My Images. */
export interface DeployableImages {
  /** Visible media groups in order, each with its available stock images. */
  groups: { group: MediaGroup; images: Image[] }[];
  /** Available stock images without a media group. */
  ungrouped: Image[];
  /** The account's own available custom images (the My Images tab). */
  myImages: Image[];
  /**
   * Available images other accounts shared with this account (accepted shares); shown in the My
   * Images tab, marked as shared: deployable, but not deletable or shareable by this account.
   */
  sharedWithMe: Image[];
}

/** A deploy that has started: its task (queued). */
export interface DeployStarted {
  /** The `deploy` task; the disk exists once it is `completed`. */
  task: Task;
}

/** The inputs of a deploy job that its task does not hold (the image is the task's subject). */
const DeployJobParamsSchema = z.object({
  instanceId: IdSchema,
  targetPath: z.string(),
  targetFormat: DiskFormatSchema.nullable(),
  sizeBytes: z.number().int().positive().nullable(),
});

/** The OS picker and deploys. Reached through `InstanceImages.catalog`. */
export class DeployService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
    private readonly images: ImageService,
  ) {
    ctx.jobs.register('deploy', (job, signal) => this.runDeploy(job, signal));
  }

  /**
   * The OS picker listing (and scaling groups'): stock images by visible media group, plus My
   * Images. With `plan`, images that cannot boot on it (too small a disk, other firmware or
   * architecture) are left out.
   */
  async listDeployableImages(actor: Actor, options: { accountId?: string; plan?: PlanFit } = {}): Promise<DeployableImages> {
    checkActor(actor);
    const plan = options.plan ? parseOrThrow(PlanFitSchema, options.plan, 'The plan') : null;
    // With a plan, images that cannot boot on it are hidden.
    if (plan) {
      const all = await this.listDeployableImages(actor, { ...(options.accountId ? { accountId: options.accountId } : {}) });
      const fits = (images: Image[]) => images.filter((image) => planMismatch(image, plan) === null);
      return {
        groups: all.groups.map(({ group, images }) => ({ group, images: fits(images) })),
        ungrouped: fits(all.ungrouped),
        myImages: fits(all.myImages),
        sharedWithMe: fits(all.sharedWithMe),
      };
    }
    const accountId = actor.kind === 'customer' ? actor.accountId : (options.accountId ?? null);
    const groups = await this.ctx.repos.mediaGroups.list(actor.kind === 'customer' ? { customerVisible: true } : {});
    const stock = await collectPages((cursor) =>
      this.ctx.repos.images.list({ kind: 'stock', statuses: ['available'] }, { cursor, limit: 500 }, { by: 'name' }),
    );
    const result: DeployableImages = {
      groups: groups.map((group) => ({ group, images: stock.filter((i) => i.mediaGroupId === group.id) })),
      ungrouped: stock.filter((i) => i.mediaGroupId === null),
      myImages:
        accountId === null
          ? []
          : await collectPages((cursor) =>
              this.ctx.repos.images.list({ kind: 'custom', accountId, statuses: ['available'] }, { cursor, limit: 500 }, { by: 'name' }),
            ),
      sharedWithMe: accountId === null ? [] : await this.sharedWith(accountId),
    };
    return result;
  }

  /** The available images shared with an account (accepted shares from the images' current owners). */
  private async sharedWith(accountId: string): Promise<Image[]> {
    const shares = await collectPages((cursor) =>
      this.ctx.repos.imageShares.list({ accountId, statuses: ['accepted'] }, { cursor, limit: 500 }),
    );
    const images = await Promise.all(shares.map((share) => this.ctx.repos.images.get(share.imageId)));
    return images
      .filter((image, i): image is Image => image?.status === 'available' && image.accountId === shares[i]?.ownerAccountId)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map(sharedView);
  }

  /**
   * An image the actor may deploy: available, and own custom, custom shared with the actor's
   * account (accepted), or stock in a visible group (or ungrouped).
   */
  private async deployableImage(actor: Actor, imageId: string): Promise<Image> {
    const image = await this.ctx.repos.images.get(imageId);
    const missing = () => notFound('Image', imageId);
    if (!image || image.status === 'deleted') throw missing();
    if (
      image.kind === 'custom' &&
      !ownsAccount(actor, image.accountId) &&
      !(await hasAcceptedShare(this.ctx, image, actor.kind === 'customer' ? actor.accountId : ''))
    )
      throw missing();
    if (image.kind === 'stock' && actor.kind === 'customer' && image.mediaGroupId !== null) {
      const group = await this.ctx.repos.mediaGroups.get(image.mediaGroupId);
      if (!group?.customerVisible) throw missing();
    }
    if (image.status !== 'available')
      throw new InstanceImagesError('INVALID_STATE', `The image is ${image.status}; only available images can be deployed`);
    return image;
  }

  /**
   * Materializes an image as a standalone disk for a new instance on its hypervisor (same host or
   * shared path storage: direct convert from the path; otherwise streamed, checksum verified).
   * Starts a `deploy` task and resolves at once with it (queued): the disk exists when the task
   * completes. Wait with `images.waitForTask(actor, task.id)`, the `image.deployed` event (which
   * carries the new disk), `task.finished` (failures too), or by polling the task.
   */
  async deployImage(actor: Actor, input: DeployInput): Promise<DeployStarted> {
    checkActor(actor);
    const data = parseOrThrow(DeployInputSchema, input, 'The deploy request');
    if (actor.kind === 'customer') checkCustomerDiskPath(data.targetPath);
    const image = await this.deployableImage(actor, data.imageId);
    const instance = await this.images.instanceFor(actor, data.instanceId);
    // A custom image only ever becomes a disk of its own account's instances, whoever asks. A
    // customer only reaches here with an own image (another's is NOT_FOUND above, the tenant
    // boundary); an admin sees every image, so is told what is wrong.
    if (
      image.kind === 'custom' &&
      image.accountId !== instance.accountId &&
      !(await hasAcceptedShare(this.ctx, image, instance.accountId))
    ) {
      if (actor.kind === 'customer') throw notFound('Image', data.imageId);
      throw new InstanceImagesError(
        'ACCOUNT_MISMATCH',
        `Image ${JSON.stringify(image.id)} belongs to account ${JSON.stringify(image.accountId)}, not to account ${JSON.stringify(instance.accountId)} of instance ${JSON.stringify(instance.id)}; a custom image is only deployed onto its own account's instances`,
        { details: { imageId: image.id, imageAccountId: image.accountId, instanceId: instance.id, instanceAccountId: instance.accountId } },
      );
    }
    await assertAccountActive(this.ctx, instance.accountId);
    const maxDiskBytes = this.ctx.settings.deployMaxDiskBytes;
    if (data.sizeBytes !== undefined && data.sizeBytes > maxDiskBytes) {
      throw validationFailed(
        [{ path: 'sizeBytes', message: `must be at most ${describeBytes(maxDiskBytes)}, the largest disk a deploy may create here` }],
        'The deploy request',
      );
    }
    if (data.sizeBytes !== undefined && image.virtualSizeBytes !== null && data.sizeBytes < image.virtualSizeBytes) {
      throw new InstanceImagesError('VALIDATION_FAILED', `The disk must be at least the image's size (${image.virtualSizeBytes} bytes)`, {
        fields: [{ path: 'sizeBytes', message: 'is smaller than the image' }],
      });
    }
    // The disk is the requested size, else the image's own: it must fit the image's minimum and firmware.
    assertFitsPlan(image, {
      ...(data.sizeBytes !== undefined
        ? { diskBytes: data.sizeBytes }
        : image.virtualSizeBytes
          ? { diskBytes: image.virtualSizeBytes }
          : {}),
      ...(data.firmware ? { firmware: data.firmware } : {}),
      ...(data.architecture ? { architecture: data.architecture } : {}),
    });
    // Refused now, not in the background: a taken or mistyped target is the caller's to fix.
    const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
    await hv.checkDeployTarget?.(data.targetPath);
    const task = await createTask(this.ctx, {
      type: 'deploy',
      subjectKind: 'image',
      subjectId: image.id,
      accountId: instance.accountId,
      hypervisorId: instance.hypervisorId,
    });
    await enqueueTask(this.ctx, {
      taskId: task.id,
      type: 'deploy',
      hypervisorId: instance.hypervisorId,
      params: {
        instanceId: instance.id,
        targetPath: data.targetPath,
        targetFormat: data.targetFormat ?? null,
        sizeBytes: data.sizeBytes ?? null,
      },
    });
    return { task };
  }

  /**
   * The deploy job, rebuilt from the task (its image), the host directory (the instance) and the
   * job's target; the outcome is recorded on the task and emitted as `image.deployed` or
   * `image.deploy-failed` by the process that ran it.
   */
  private async runDeploy(job: TaskJob, signal: AbortSignal): Promise<void> {
    const params = jobParams(job, DeployJobParamsSchema);
    const data = { ...params, targetFormat: params.targetFormat ?? undefined, sizeBytes: params.sizeBytes ?? undefined };
    const task = await this.ctx.repos.tasks.get(job.taskId);
    const image = task ? await this.ctx.repos.images.get(task.subjectId) : null;
    const instance = await this.ctx.host.getInstance(params.instanceId);
    const taskId = job.taskId;
    let result: MaterializeResult | null = null;
    // The deploy's outcome is recorded with the task's end (the same transaction).
    const deployFailed = (image: Image) => (task: Task, error: InstanceImagesError) => [
      draft('image.deploy-failed', image.id, { image, task, instanceId: params.instanceId, code: error.code, message: error.message }),
    ];
    await runTask(this.ctx, taskId, signal, async ({ progress, endWith }) => {
      if (image)
        endWith({
          completed: (task) =>
            result
              ? [draft('image.deployed', image.id, { image, task, instanceId: params.instanceId, result })]
              : deployFailed(image)(task, new InstanceImagesError('DEPLOY_FAILED', 'The deploy produced no disk')),
          failed: deployFailed(image),
        });
      if (!instance) throw new InstanceImagesError('NOT_FOUND', 'The instance of the deploy no longer exists');
      // Checked while this task is running: a delete requested from now on waits for it.
      const current = image ? await this.ctx.repos.images.get(image.id) : null;
      if (!image || current?.status !== 'available')
        throw new InstanceImagesError('INVALID_STATE', 'The image is being deleted; pick another image');
      const storage = await this.ctx.repos.storages.get(image.storageId);
      if (!storage) throw new InstanceImagesError('DEPLOY_FAILED', 'The image storage was removed');
      const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
      const sameHost = image.hypervisorId === null || image.hypervisorId === instance.hypervisorId;
      const factory = this.ctx.registry.get(storage.driver);
      const direct =
        factory.capabilities.pathAccess &&
        sameHost &&
        (factory.capabilities.shared
          ? (await this.ctx.repos.storages.listBindings({ storageId: storage.id, hypervisorId: instance.hypervisorId })).length > 0
          : true);
      const common = {
        sourceFormat: image.format,
        sha256: image.sha256,
        targetPath: data.targetPath,
        ...(data.targetFormat ? { targetFormat: data.targetFormat } : {}),
        ...(data.sizeBytes ? { sizeBytes: data.sizeBytes } : {}),
        signal,
        onProgress: (p: { step: string; bytesDone: number; bytesTotal: number | null }) => progress(p),
      };
      if (isChunkedStorage(storage)) {
        const disk = await this.drivers.storage(storage, image.hypervisorId);
        const store = chunkStoreOf(this.ctx, storage, disk, image.accountId);
        const manifest = await store.readManifest(image.fileKey);
        if (!manifest) throw new InstanceImagesError('NOT_FOUND', 'The image data is missing from the image storage');
        if (manifest.imageSha256 !== image.sha256)
          throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The stored manifest does not match the image');
        const chunks = store.readImage(manifest, {
          leaseId: taskId,
          manifestKey: image.fileKey,
          signal,
          onProgress: (p) => progress({ step: 'receiving', bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
        });
        // Every chunk is checked against its digest as it is read; there is no whole-file digest.
        const source = { kind: 'chunks' as const, virtualSizeBytes: manifest.virtualSizeBytes, chunks };
        result = await hv.materialize({ ...common, source, sourceFormat: 'raw', sha256: null });
      } else if (direct) {
        const disk = await this.drivers.storage(storage, instance.hypervisorId);
        result = await hv.materialize({ source: disk.storagePath(image.fileKey), ...common });
      } else {
        const disk = await this.drivers.storage(storage, image.hypervisorId);
        result = await hv.materialize({ source: { kind: 'stream', stream: await disk.get(image.fileKey, { signal }) }, ...common });
      }
    });
  }
}
