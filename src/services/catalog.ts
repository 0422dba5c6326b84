/**
 * The catalog: stock OS images, Media Groups and ISOs (operator), the OS picker and deploys
 * (customer), and ISO mounting.
 * @module
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { z } from 'zod';
import { InstanceImagesError, notFound, validationFailed } from '../errors';
import { DescriptionSchema, DiskFormatSchema, IdSchema, NameSchema, type Page } from '../model/common';
import { OsTypeSchema, type Image } from '../model/image';
import type { Iso } from '../model/iso';
import type { Task } from '../model/task';
import type { MediaGroup } from '../model/media-group';
import type { ImageStorage } from '../model/image-storage';
import type { MaterializeResult } from '../ports/hypervisor-driver';
import type { StorageDisk } from '../storage';
import { normalizeStorageKey } from '../storage';
import { parseOrThrow } from '../util/validate';
import { collectPages } from '../util/pages';
import { checkActor, ownsAccount, requireAdmin, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import type { ImageService } from './images';
import { createTask, runTask } from './task-runner';

/** Input of {@link CatalogService.createOsImage}. */
export const CreateOsImageInputSchema = z.strictObject({
  name: NameSchema,
  description: DescriptionSchema.optional(),
  osType: OsTypeSchema,
  cloudInit: z.boolean().default(false),
  /** A storage with purpose `templates` holding the source file. */
  storageId: IdSchema,
  /** For per-hypervisor storages (local): the hypervisor holding the file. */
  hypervisorId: IdSchema.nullish(),
  /** The source file's key on that storage. */
  fileKey: z.string().min(1).max(1024),
  format: DiskFormatSchema.default('qcow2'),
  mediaGroupId: IdSchema.nullish(),
});
/** Input of {@link CatalogService.createOsImage}. */
export type CreateOsImageInput = z.input<typeof CreateOsImageInputSchema>;

/** Input of {@link CatalogService.updateOsImage}. */
export const UpdateOsImageInputSchema = z.strictObject({
  name: NameSchema.optional(),
  description: DescriptionSchema.optional(),
  osType: OsTypeSchema.optional(),
  cloudInit: z.boolean().optional(),
  mediaGroupId: IdSchema.nullish(),
});
/** Input of {@link CatalogService.updateOsImage}. */
export type UpdateOsImageInput = z.input<typeof UpdateOsImageInputSchema>;

/** Input of media group create/update. */
export const MediaGroupInputSchema = z.strictObject({ name: NameSchema, customerVisible: z.boolean().default(true), order: z.number().int().min(-1_000_000).max(1_000_000).default(0) });
/** Input of {@link CatalogService.createMediaGroup}. */
export type MediaGroupInput = z.input<typeof MediaGroupInputSchema>;

/** Input of {@link CatalogService.registerIso} and {@link CatalogService.uploadIso}. */
export const IsoInputSchema = z.strictObject({
  name: NameSchema,
  description: DescriptionSchema.optional(),
  storageId: IdSchema,
  /** For per-hypervisor storages: the hypervisor holding the file. */
  hypervisorId: IdSchema.nullish(),
  fileKey: z.string().min(1).max(1024),
  customerVisible: z.boolean().default(true),
});
/** Input of ISO registration/upload. */
export type IsoInput = z.input<typeof IsoInputSchema>;

/** Input of {@link CatalogService.updateIso}. */
export const UpdateIsoInputSchema = z.strictObject({ name: NameSchema.optional(), description: DescriptionSchema.optional(), customerVisible: z.boolean().optional() });
/** Input of {@link CatalogService.updateIso}. */
export type UpdateIsoInput = z.input<typeof UpdateIsoInputSchema>;

/**
 * The default largest disk a deploy may ask for: 64 TiB (2^46 bytes). It is far above any real
 * instance disk, yet keeps a mistyped or hostile size from reaching `qemu-img resize` (which would
 * create a sparse disk of any size the filesystem allows). Operators set their own with
 * `createInstanceImages({ deploy: { maxDiskBytes } })`.
 */
export const MAX_DEPLOY_DISK_BYTES = 64 * 2 ** 40;

/** `N bytes`, with the size in the largest binary unit that divides it exactly (`64 TiB`), if any. */
function describeBytes(bytes: number): string {
  for (const [unit, size] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20]] as const) {
    if (bytes % size === 0) return `${bytes} bytes (${bytes / size} ${unit})`;
  }
  return `${bytes} bytes`;
}

/** Input of {@link CatalogService.deployImage}. */
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
});
/** Input of {@link CatalogService.deployImage}. */
export type DeployInput = z.input<typeof DeployInputSchema>;

/** System directories a customer-driven deploy may never write into (the hypervisor writes as root). */
const SYSTEM_DIRECTORIES = ['/etc', '/root', '/boot', '/proc', '/sys', '/dev', '/run', '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/var/run', '/var/spool', '/var/lib/dpkg', '/var/lib/apt'];

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
    const message = 'must be a disk image file path (*.qcow2, *.raw or *.img; plain names, no hidden or ".." segments) outside system directories';
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
}

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

/** Stock OS images, media groups, ISOs, the OS picker, deploys and ISO mounting. */
export class CatalogService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
    private readonly images: ImageService,
  ) {}

  private async templateStorage(storageId: string): Promise<ImageStorage> {
    const storage = await this.ctx.repos.storages.get(storageId);
    if (!storage) throw notFound('Image storage', storageId);
    if (storage.purpose !== 'templates') throw new InstanceImagesError('VALIDATION_FAILED', 'OS images and ISOs live on a storage with purpose "templates"', { fields: [{ path: 'storageId', message: 'is not a template storage' }] });
    return storage;
  }

  /** Where a template file (OS image source or ISO) lives: its normalised key, its template storage, opened. */
  private async templateFile(data: { storageId: string; hypervisorId?: string | null | undefined; fileKey: string }): Promise<{ storage: ImageStorage; disk: StorageDisk; fileKey: string }> {
    const fileKey = normalizeStorageKey(data.fileKey, 'fileKey');
    const storage = await this.templateStorage(data.storageId);
    return { storage, disk: await this.drivers.storage(storage, data.hypervisorId), fileKey };
  }

  /** Verifies a template file exists and measures it (size, sha256 by streaming it once). */
  private async measure(disk: StorageDisk, key: string): Promise<{ size: number; sha256: string }> {
    const stat = await disk.stat(key);
    if (!stat) throw new InstanceImagesError('VALIDATION_FAILED', `The file ${JSON.stringify(key)} does not exist on that storage`, { fields: [{ path: 'fileKey', message: 'no such file' }] });
    const measured = await hashStream(await disk.get(key));
    if (measured.size !== stat.size) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The file changed while it was being read; try again');
    return measured;
  }

  // ---------- OS images ----------

  /** Adds a stock OS image from a file on a template storage (verified to exist; size and checksum recorded). */
  async createOsImage(actor: Actor, input: CreateOsImageInput): Promise<Image> {
    requireAdmin(actor);
    const data = parseOrThrow(CreateOsImageInputSchema, input, 'The OS image');
    if (data.mediaGroupId && !(await this.ctx.repos.mediaGroups.get(data.mediaGroupId))) throw notFound('Media group', data.mediaGroupId);
    const { storage, disk, fileKey } = await this.templateFile(data);
    const { size, sha256 } = await this.measure(disk, fileKey);
    if (size <= 0) throw new InstanceImagesError('VALIDATION_FAILED', 'The source file is empty', { fields: [{ path: 'fileKey', message: 'is empty' }] });
    const now = this.ctx.now();
    const image: Image = {
      id: this.ctx.newId(),
      kind: 'stock',
      name: data.name,
      description: data.description ?? '',
      osType: data.osType,
      cloudInit: data.cloudInit,
      mediaGroupId: data.mediaGroupId ?? null,
      accountId: null,
      sourceInstanceId: null,
      sourceInstanceName: null,
      locationId: null,
      storageId: storage.id,
      hypervisorId: disk.capabilities.shared ? null : (data.hypervisorId ?? null),
      fileKey,
      format: data.format,
      sizeBytes: size,
      virtualSizeBytes: null,
      sha256,
      consistency: null,
      status: 'available',
      statusReason: null,
      createdAt: now,
      updatedAt: now,
      availableAt: now,
      deletedAt: null,
    };
    await this.ctx.repos.images.insert(image);
    return image;
  }

  /** Edits a stock OS image's name, description, OS type, cloud-init flag or media group. */
  async updateOsImage(actor: Actor, imageId: string, input: UpdateOsImageInput): Promise<Image> {
    requireAdmin(actor);
    const data = parseOrThrow(UpdateOsImageInputSchema, input, 'The OS image');
    const image = await this.ctx.repos.images.get(imageId);
    if (!image || image.kind !== 'stock' || image.status === 'deleted') throw notFound('OS image', imageId);
    if (data.mediaGroupId && !(await this.ctx.repos.mediaGroups.get(data.mediaGroupId))) throw notFound('Media group', data.mediaGroupId);
    const patch = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
    const updated = await this.ctx.repos.images.update(imageId, patch, this.ctx.now());
    if (!updated) throw notFound('OS image', imageId);
    return updated;
  }

  /** Lists stock OS images (admins: all; customers: available ones in visible groups). */
  async listOsImages(actor: Actor, query: { cursor?: string | null; limit?: number; mediaGroupId?: string } = {}): Promise<Page<Image>> {
    checkActor(actor);
    const page = await this.ctx.repos.images.list({ kind: 'stock', ...(query.mediaGroupId ? { mediaGroupId: query.mediaGroupId } : {}), ...(actor.kind === 'customer' ? { statuses: ['available'] } : {}) }, { cursor: query.cursor ?? null, limit: query.limit ?? 50 }, { by: 'name' });
    if (actor.kind === 'admin') return page;
    const visible = new Set((await this.ctx.repos.mediaGroups.list({ customerVisible: true })).map((g) => g.id));
    return { items: page.items.filter((i) => i.mediaGroupId === null || visible.has(i.mediaGroupId)), nextCursor: page.nextCursor };
  }

  /** Deletes a stock OS image (IN_USE while a deploy from it runs). The source file is kept: it is the operator's. */
  async deleteOsImage(actor: Actor, imageId: string): Promise<Image> {
    requireAdmin(actor);
    const image = await this.ctx.repos.images.get(imageId);
    if (!image || image.kind !== 'stock') throw notFound('OS image', imageId);
    if (image.status === 'deleted') return image;
    const deploys = await this.ctx.repos.tasks.list({ subjectId: imageId, type: 'deploy', statuses: ['queued', 'running'] }, { limit: 1 });
    if (deploys.items.length > 0) throw new InstanceImagesError('IN_USE', 'The OS image is the source of a deploy in progress; try again when it has finished');
    const now = this.ctx.now();
    const deleted = await this.ctx.repos.images.transition(imageId, ['available', 'error'], 'deleted', { deletedAt: now }, now);
    if (!deleted) throw new InstanceImagesError('INVALID_STATE', 'The OS image changed meanwhile; try again');
    this.ctx.events.emit('image.status-changed', { image: deleted, from: image.status, to: 'deleted', actor: { kind: 'admin' }, reason: null });
    this.ctx.events.emit('image.deleted', { image: deleted });
    return deleted;
  }

  // ---------- media groups ----------

  /** Lists media groups (customers: visible ones only). */
  async listMediaGroups(actor: Actor): Promise<MediaGroup[]> {
    checkActor(actor);
    return this.ctx.repos.mediaGroups.list(actor.kind === 'customer' ? { customerVisible: true } : {});
  }

  /** Creates a media group. */
  async createMediaGroup(actor: Actor, input: MediaGroupInput): Promise<MediaGroup> {
    requireAdmin(actor);
    const data = parseOrThrow(MediaGroupInputSchema, input, 'The media group');
    const now = this.ctx.now();
    const group: MediaGroup = { id: this.ctx.newId(), ...data, createdAt: now, updatedAt: now };
    await this.ctx.repos.mediaGroups.insert(group);
    return group;
  }

  /** Edits a media group (name, visibility, order). */
  async updateMediaGroup(actor: Actor, id: string, input: Partial<MediaGroupInput>): Promise<MediaGroup> {
    requireAdmin(actor);
    const data = parseOrThrow(MediaGroupInputSchema.partial(), input, 'The media group');
    const patch = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
    const updated = await this.ctx.repos.mediaGroups.update(id, patch, this.ctx.now());
    if (!updated) throw notFound('Media group', id);
    return updated;
  }

  /** Deletes a media group; IN_USE while OS images still belong to it. */
  async deleteMediaGroup(actor: Actor, id: string): Promise<void> {
    requireAdmin(actor);
    if (!(await this.ctx.repos.mediaGroups.get(id))) throw notFound('Media group', id);
    const members = await this.ctx.repos.images.list({ kind: 'stock', mediaGroupId: id }, { limit: 1 });
    if (members.items.length > 0) throw new InstanceImagesError('IN_USE', 'The media group still has OS images; move or delete them first');
    await this.ctx.repos.mediaGroups.delete(id);
  }

  // ---------- the OS picker and deploys ----------

  /** The OS picker listing (and scaling groups'): stock images by visible media group, plus My Images. */
  async listDeployableImages(actor: Actor, options: { accountId?: string } = {}): Promise<DeployableImages> {
    checkActor(actor);
    const accountId = actor.kind === 'customer' ? actor.accountId : (options.accountId ?? null);
    const groups = await this.ctx.repos.mediaGroups.list(actor.kind === 'customer' ? { customerVisible: true } : {});
    const stock = await collectPages((cursor) => this.ctx.repos.images.list({ kind: 'stock', statuses: ['available'] }, { cursor, limit: 500 }, { by: 'name' }));
    const result: DeployableImages = {
      groups: groups.map((group) => ({ group, images: stock.filter((i) => i.mediaGroupId === group.id) })),
      ungrouped: stock.filter((i) => i.mediaGroupId === null),
      myImages: accountId === null ? [] : await collectPages((cursor) => this.ctx.repos.images.list({ kind: 'custom', accountId, statuses: ['available'] }, { cursor, limit: 500 }, { by: 'name' })),
    };
    return result;
  }

  /** An image the actor may deploy: available, and own custom or stock in a visible group (or ungrouped). */
  private async deployableImage(actor: Actor, imageId: string): Promise<Image> {
    const image = await this.ctx.repos.images.get(imageId);
    const missing = () => notFound('Image', imageId);
    if (!image || image.status === 'deleted') throw missing();
    if (image.kind === 'custom' && !ownsAccount(actor, image.accountId)) throw missing();
    if (image.kind === 'stock' && actor.kind === 'customer' && image.mediaGroupId !== null) {
      const group = await this.ctx.repos.mediaGroups.get(image.mediaGroupId);
      if (!group?.customerVisible) throw missing();
    }
    if (image.status !== 'available') throw new InstanceImagesError('INVALID_STATE', `The image is ${image.status}; only available images can be deployed`);
    return image;
  }

  /**
   * Materialises an image as a standalone disk for a new instance on its hypervisor (same host or
   * shared path storage: direct convert from the path; otherwise streamed, checksum verified).
   * Runs as a `deploy` task and resolves when the disk exists.
   */
  async deployImage(actor: Actor, input: DeployInput): Promise<{ task: Task; result: MaterializeResult }> {
    checkActor(actor);
    const data = parseOrThrow(DeployInputSchema, input, 'The deploy request');
    if (actor.kind === 'customer') checkCustomerDiskPath(data.targetPath);
    const image = await this.deployableImage(actor, data.imageId);
    const instance = await this.images.instanceFor(actor, data.instanceId);
    // A custom image only ever becomes a disk of its own account's instances, whoever asks.
    if (image.kind === 'custom' && image.accountId !== instance.accountId) throw notFound('Image', data.imageId);
    const maxDiskBytes = this.ctx.settings.deployMaxDiskBytes;
    if (data.sizeBytes !== undefined && data.sizeBytes > maxDiskBytes) {
      throw validationFailed([{ path: 'sizeBytes', message: `must be at most ${describeBytes(maxDiskBytes)}, the largest disk a deploy may create here` }], 'The deploy request');
    }
    if (data.sizeBytes !== undefined && image.virtualSizeBytes !== null && data.sizeBytes < image.virtualSizeBytes) {
      throw new InstanceImagesError('VALIDATION_FAILED', `The disk must be at least the image's size (${image.virtualSizeBytes} bytes)`, { fields: [{ path: 'sizeBytes', message: 'is smaller than the image' }] });
    }
    const task = await createTask(this.ctx, { type: 'deploy', subjectKind: 'image', subjectId: image.id, accountId: instance.accountId, hypervisorId: instance.hypervisorId });
    return new Promise((resolve, reject) => {
      this.ctx.queue.enqueue({
        taskId: task.id,
        hypervisorId: instance.hypervisorId,
        run: async (signal) => {
          let result: MaterializeResult | null = null;
          const outcome = await runTask(this.ctx, task.id, signal, async ({ progress }) => {
            // Checked while this task is running: a delete requested from now on waits for it.
            const current = await this.ctx.repos.images.get(image.id);
            if (current?.status !== 'available') throw new InstanceImagesError('INVALID_STATE', 'The image is being deleted; pick another image');
            const storage = await this.ctx.repos.storages.get(image.storageId);
            if (!storage) throw new InstanceImagesError('DEPLOY_FAILED', 'The image storage was removed');
            const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
            const sameHost = image.hypervisorId === null || image.hypervisorId === instance.hypervisorId;
            const factory = this.ctx.registry.get(storage.driver);
            const direct = factory.capabilities.pathAccess && sameHost && (factory.capabilities.shared ? (await this.ctx.repos.storages.listBindings({ storageId: storage.id, hypervisorId: instance.hypervisorId })).length > 0 : true);
            const common = { sourceFormat: image.format, sha256: image.sha256, targetPath: data.targetPath, ...(data.targetFormat ? { targetFormat: data.targetFormat } : {}), ...(data.sizeBytes ? { sizeBytes: data.sizeBytes } : {}), signal, onProgress: (p: { step: string; bytesDone: number; bytesTotal: number | null }) => progress(p) };
            if (direct) {
              const disk = await this.drivers.storage(storage, instance.hypervisorId);
              result = await hv.materialize({ source: disk.storagePath(image.fileKey), ...common });
            } else {
              const disk = await this.drivers.storage(storage, image.hypervisorId);
              result = await hv.materialize({ source: { kind: 'stream', stream: await disk.get(image.fileKey, { signal }) }, ...common });
            }
          });
          if (outcome.ok && result) resolve({ task: outcome.task, result });
          else reject(outcome.ok ? new InstanceImagesError('DEPLOY_FAILED', 'The deploy produced no disk') : outcome.error);
        },
      });
    });
  }

  // ---------- ISOs ----------

  /** Lists ISOs (customers: visible and available ones). */
  async listIsos(actor: Actor, query: { cursor?: string | null; limit?: number } = {}): Promise<Page<Iso>> {
    checkActor(actor);
    return this.ctx.repos.isos.list(actor.kind === 'customer' ? { customerVisible: true, status: 'available' } : {}, { cursor: query.cursor ?? null, limit: query.limit ?? 50 });
  }

  /** One ISO the actor may see. */
  async getIso(actor: Actor, isoId: string): Promise<Iso> {
    checkActor(actor);
    parseOrThrow(IdSchema, isoId, 'The ISO id');
    const iso = await this.ctx.repos.isos.get(isoId);
    if (!iso || (actor.kind === 'customer' && (!iso.customerVisible || iso.status !== 'available'))) throw notFound('ISO', isoId);
    return iso;
  }

  /** Registers an ISO file already on a template storage (size and checksum recorded). */
  async registerIso(actor: Actor, input: IsoInput): Promise<Iso> {
    requireAdmin(actor);
    const data = parseOrThrow(IsoInputSchema, input, 'The ISO');
    const { storage, disk, fileKey } = await this.templateFile(data);
    const { size, sha256 } = await this.measure(disk, fileKey);
    const now = this.ctx.now();
    const iso: Iso = { id: this.ctx.newId(), name: data.name, description: data.description ?? '', storageId: storage.id, fileKey, sizeBytes: size, sha256, customerVisible: data.customerVisible, status: 'available', statusReason: null, createdAt: now, updatedAt: now };
    await this.ctx.repos.isos.insert(iso);
    return iso;
  }

  /** Uploads an ISO: streams `body` to the template storage (checksum computed, progress as an `iso-upload` task). */
  async uploadIso(actor: Actor, input: IsoInput, body: Readable, options: { sizeBytes?: number; signal?: AbortSignal } = {}): Promise<Iso> {
    requireAdmin(actor);
    const data = parseOrThrow(IsoInputSchema, input, 'The ISO');
    const { storage, disk, fileKey } = await this.templateFile(data);
    const now = this.ctx.now();
    const iso: Iso = { id: this.ctx.newId(), name: data.name, description: data.description ?? '', storageId: storage.id, fileKey, sizeBytes: null, sha256: null, customerVisible: data.customerVisible, status: 'uploading', statusReason: null, createdAt: now, updatedAt: now };
    await this.ctx.repos.isos.insert(iso);
    const task = await createTask(this.ctx, { type: 'iso-upload', subjectKind: 'iso', subjectId: iso.id, accountId: null, hypervisorId: null });
    const controller = new AbortController();
    options.signal?.addEventListener('abort', () => controller.abort(), { once: true });
    let written: { size: number; sha256: string } | null = null;
    const outcome = await runTask(this.ctx, task.id, controller.signal, async ({ progress }) => {
      written = await disk.put(fileKey, body, { ...(options.sizeBytes ? { size: options.sizeBytes } : {}), signal: controller.signal, onProgress: (p) => progress({ step: 'uploading', bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }) });
    });
    const result = written as { size: number; sha256: string } | null;
    if (!outcome.ok || !result) {
      body.resume();
      await this.ctx.repos.isos.update(iso.id, { status: 'error', statusReason: { code: outcome.ok ? 'STORAGE_UNAVAILABLE' : outcome.error.code, message: outcome.ok ? 'Upload failed' : outcome.error.message } }, this.ctx.now());
      throw outcome.ok ? new InstanceImagesError('STORAGE_UNAVAILABLE', 'The ISO upload failed') : outcome.error;
    }
    const updated = await this.ctx.repos.isos.update(iso.id, { status: 'available', sizeBytes: result.size, sha256: result.sha256 }, this.ctx.now());
    if (!updated) throw notFound('ISO', iso.id);
    return updated;
  }

  /** Edits an ISO's name, description or visibility. */
  async updateIso(actor: Actor, isoId: string, input: UpdateIsoInput): Promise<Iso> {
    requireAdmin(actor);
    const data = parseOrThrow(UpdateIsoInputSchema, input, 'The ISO');
    const patch = Object.fromEntries(Object.entries(data).filter(([, v]) => v !== undefined));
    const updated = await this.ctx.repos.isos.update(isoId, patch, this.ctx.now());
    if (!updated) throw notFound('ISO', isoId);
    return updated;
  }

  /** Deletes an ISO record; with `deleteFile`, also its file on the storage. */
  async deleteIso(actor: Actor, isoId: string, options: { deleteFile?: boolean; hypervisorId?: string } = {}): Promise<void> {
    requireAdmin(actor);
    const iso = await this.ctx.repos.isos.get(isoId);
    if (!iso) throw notFound('ISO', isoId);
    if (options.deleteFile) {
      const storage = await this.ctx.repos.storages.get(iso.storageId);
      if (storage) await (await this.drivers.storage(storage, options.hypervisorId)).delete(iso.fileKey);
    }
    await this.ctx.repos.isos.delete(isoId);
  }

  /** Mounts a visible ISO to an own instance as its cdrom and boots from it. */
  async mountIso(actor: Actor, input: { instanceId: string; isoId: string }): Promise<void> {
    const instance = await this.images.instanceFor(actor, input.instanceId);
    const iso = await this.getIso(actor, input.isoId);
    if (iso.status !== 'available') throw new InstanceImagesError('INVALID_STATE', 'The ISO is not available');
    const storage = await this.ctx.repos.storages.get(iso.storageId);
    if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The ISO storage was removed');
    const disk = await this.drivers.storage(storage, instance.hypervisorId);
    if (!disk.capabilities.pathAccess) throw new InstanceImagesError('VALIDATION_FAILED', 'This ISO lives on a storage the hypervisor cannot read directly; ask your provider to keep ISOs on local or NFS storage');
    const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
    const isoFile = disk.storagePath(iso.fileKey);
    await hv.attachIso(instance.domainName, isoFile.path, isoFile.root === undefined ? {} : { root: isoFile.root });
    this.ctx.events.emit('iso.mounted', { isoId: iso.id, instanceId: instance.id, accountId: instance.accountId });
  }

  /** Unmounts the ISO from an own instance and restores disk-first boot (idempotent). */
  async unmountIso(actor: Actor, input: { instanceId: string }): Promise<void> {
    const instance = await this.images.instanceFor(actor, input.instanceId);
    const hv = await this.drivers.hypervisorDriver(instance.hypervisorId);
    await hv.detachIso(instance.domainName);
    this.ctx.events.emit('iso.unmounted', { isoId: null, instanceId: instance.id, accountId: instance.accountId });
  }
}

