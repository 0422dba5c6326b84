/**
 * Stock OS images (operator): register from a file on a template storage, edit, list, delete.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { INITIAL_IMAGE_STATUS } from '../lifecycle';
import { DescriptionSchema, DiskFormatSchema, IdSchema, NameSchema, type Page } from '../model/common';
import { OsTypeSchema, type Image } from '../model/image';
import { parseOrThrow } from '../util/validate';
import { checkActor, requireAdmin, type Actor } from './actor';
import type { ServiceContext } from './context';
import { tryTransitionImage } from './image-state';
import { assertNotProtected } from './image-metadata';
import type { TemplateFiles } from './template-files';

/**
 * The record of a stock OS image whose file is stored and verified (stock images start available):
 * the one builder for registered and imported images.
 */
export function newStockImage(input: {
  id: string;
  now: Date;
  details: { name: string; description?: string | null; osType: Image['osType']; cloudInit: boolean; mediaGroupId?: string | null };
  storageId: string;
  hypervisorId: string | null;
  file: { key: string; format: Image['format']; sizeBytes: number; virtualSizeBytes: number | null; sha256: string };
}): Image {
  const { details, file, now } = input;
  return {
    id: input.id,
    kind: 'stock',
    name: details.name,
    description: details.description ?? '',
    osType: details.osType,
    cloudInit: details.cloudInit,
    mediaGroupId: details.mediaGroupId ?? null,
    accountId: null,
    sourceInstanceId: null,
    sourceInstanceName: null,
    locationId: null,
    storageId: input.storageId,
    hypervisorId: input.hypervisorId,
    fileKey: file.key,
    format: file.format,
    sizeBytes: file.sizeBytes,
    virtualSizeBytes: file.virtualSizeBytes,
    sha256: file.sha256,
    consistency: null,
    status: INITIAL_IMAGE_STATUS.stock,
    statusReason: null,
    createdAt: now,
    updatedAt: now,
    availableAt: now,
    deletedAt: null,
  };
}
/** Input of `CatalogService.createOsImage`. */
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
/** Input of `CatalogService.createOsImage`. */
export type CreateOsImageInput = z.input<typeof CreateOsImageInputSchema>;

/** Input of `CatalogService.updateOsImage`. */
export const UpdateOsImageInputSchema = z.strictObject({
  name: NameSchema.optional(),
  description: DescriptionSchema.optional(),
  osType: OsTypeSchema.optional(),
  cloudInit: z.boolean().optional(),
  mediaGroupId: IdSchema.nullish(),
});
/** Input of `CatalogService.updateOsImage`. */
export type UpdateOsImageInput = z.input<typeof UpdateOsImageInputSchema>;

/** Stock OS images. Reached through `InstanceImages.catalog`. */
export class OsImageService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly templates: TemplateFiles,
  ) {}

  /** Adds a stock OS image from a file on a template storage (verified to exist; size and checksum recorded). */
  async createOsImage(actor: Actor, input: CreateOsImageInput): Promise<Image> {
    requireAdmin(actor);
    const data = parseOrThrow(CreateOsImageInputSchema, input, 'The OS image');
    if (data.mediaGroupId && !(await this.ctx.repos.mediaGroups.get(data.mediaGroupId))) throw notFound('Media group', data.mediaGroupId);
    const { storage, disk, fileKey } = await this.templates.file(data);
    const { size, sha256 } = await this.templates.measure(disk, fileKey);
    if (size <= 0)
      throw new InstanceImagesError('VALIDATION_FAILED', 'The source file is empty', {
        fields: [{ path: 'fileKey', message: 'is empty' }],
      });
    const now = this.ctx.now();
    const image = newStockImage({
      id: this.ctx.newId(),
      now,
      details: data,
      storageId: storage.id,
      hypervisorId: disk.capabilities.shared ? null : (data.hypervisorId ?? null),
      file: { key: fileKey, format: data.format, sizeBytes: size, virtualSizeBytes: null, sha256 },
    });
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
    const page = await this.ctx.repos.images.list(
      {
        kind: 'stock',
        ...(query.mediaGroupId ? { mediaGroupId: query.mediaGroupId } : {}),
        ...(actor.kind === 'customer' ? { statuses: ['available'] } : {}),
      },
      { cursor: query.cursor ?? null, limit: query.limit ?? 50 },
      { by: 'name' },
    );
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
    assertNotProtected(image);
    const deploys = await this.ctx.repos.tasks.list({ subjectId: imageId, type: 'deploy', statuses: ['queued', 'running'] }, { limit: 1 });
    if (deploys.items.length > 0)
      throw new InstanceImagesError('IN_USE', 'The OS image is the source of a deploy in progress; try again when it has finished');
    if (image.status === 'deleting') throw new InstanceImagesError('INVALID_STATE', 'The OS image is being deleted already');
    // The source file is the operator's: nothing to remove, so the stock lifecycle goes straight to deleted.
    const deleted = await tryTransitionImage(this.ctx, image, 'deleted', { deletedAt: this.ctx.now() }, actor);
    if (!deleted) assertNotProtected((await this.ctx.repos.images.get(imageId)) ?? image);
    if (!deleted) throw new InstanceImagesError('INVALID_STATE', 'The OS image changed meanwhile; try again');
    return deleted;
  }
}
