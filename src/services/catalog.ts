/**
 * The catalog namespace of the facade (`InstanceImages.catalog`): stock OS images, media groups,
 * ISOs, the OS picker and deploys. Each subject lives in its own file (`os-images.ts`,
 * `media-groups.ts`, `isos.ts`, `deploy.ts`); this class only forwards to them, so the public
 * service API stays one namespace.
 * @module
 */
import type { Readable } from 'node:stream';
import type { Page } from '../model/common';
import type { Image } from '../model/image';
import type { Iso } from '../model/iso';
import type { MediaGroup } from '../model/media-group';
import type { Actor } from './actor';
import type { PlanFit } from './image-metadata';
import type { DriverCache, ServiceContext } from './context';
import { DeployService, type DeployableImages, type DeployInput, type DeployStarted } from './deploy';
import type { ImageService } from './images';
import { IsoService, type IsoInput, type UpdateIsoInput } from './isos';
import { MediaGroupService, type MediaGroupInput } from './media-groups';
import { OsImageService, type CreateOsImageInput, type UpdateOsImageInput } from './os-images';
import { TemplateFiles } from './template-files';

// Where they were before the catalog was split (the Express adapter and hosts import them from here).
export { CreateOsImageInputSchema, UpdateOsImageInputSchema, type CreateOsImageInput, type UpdateOsImageInput } from './os-images';
export { MediaGroupInputSchema, type MediaGroupInput } from './media-groups';
export { IsoInputSchema, UpdateIsoInputSchema, type IsoInput, type UpdateIsoInput } from './isos';
export {
  DeployInputSchema,
  MAX_DEPLOY_DISK_BYTES,
  checkCustomerDiskPath,
  type DeployableImages,
  type DeployInput,
  type DeployStarted,
} from './deploy';

/** Stock OS images, media groups, ISOs, the OS picker, deploys and ISO mounting. */
export class CatalogService {
  private readonly osImages: OsImageService;
  private readonly mediaGroups: MediaGroupService;
  private readonly deploys: DeployService;
  private readonly isos: IsoService;

  /** @internal Services are created by `createInstanceImages`. */
  constructor(ctx: ServiceContext, drivers: DriverCache, images: ImageService) {
    const templates = new TemplateFiles(ctx, drivers);
    this.osImages = new OsImageService(ctx, templates);
    this.mediaGroups = new MediaGroupService(ctx);
    this.deploys = new DeployService(ctx, drivers, images);
    this.isos = new IsoService(ctx, drivers, images, templates);
  }

  // ---------- OS images ----------

  /** Adds a stock OS image from a file on a template storage (verified to exist; size and checksum recorded). */
  createOsImage(actor: Actor, input: CreateOsImageInput): Promise<Image> {
    return this.osImages.createOsImage(actor, input);
  }

  /** Edits a stock OS image's name, description, OS type, cloud-init flag or media group. */
  updateOsImage(actor: Actor, imageId: string, input: UpdateOsImageInput): Promise<Image> {
    return this.osImages.updateOsImage(actor, imageId, input);
  }

  /** Lists stock OS images (admins: all; customers: available ones in visible groups). */
  listOsImages(actor: Actor, query: { cursor?: string | null; limit?: number; mediaGroupId?: string } = {}): Promise<Page<Image>> {
    return this.osImages.listOsImages(actor, query);
  }

  /** Deletes a stock OS image (IN_USE while a deploy from it runs). The source file is kept: it is the operator's. */
  deleteOsImage(actor: Actor, imageId: string): Promise<Image> {
    return this.osImages.deleteOsImage(actor, imageId);
  }

  // ---------- media groups ----------

  /** Lists media groups (customers: visible ones only). */
  listMediaGroups(actor: Actor): Promise<MediaGroup[]> {
    return this.mediaGroups.listMediaGroups(actor);
  }

  /** Creates a media group. */
  createMediaGroup(actor: Actor, input: MediaGroupInput): Promise<MediaGroup> {
    return this.mediaGroups.createMediaGroup(actor, input);
  }

  /** Edits a media group (name, visibility, order). */
  updateMediaGroup(actor: Actor, id: string, input: Partial<MediaGroupInput>): Promise<MediaGroup> {
    return this.mediaGroups.updateMediaGroup(actor, id, input);
  }

  /** Deletes a media group; IN_USE while OS images still belong to it. */
  deleteMediaGroup(actor: Actor, id: string): Promise<void> {
    return this.mediaGroups.deleteMediaGroup(actor, id);
  }

  // ---------- the OS picker and deploys ----------

  /** The OS picker listing (and scaling groups'): stock images by visible media group, plus My Images; with `plan`, only images that boot on it. */
  listDeployableImages(actor: Actor, options: { accountId?: string; plan?: PlanFit } = {}): Promise<DeployableImages> {
    return this.deploys.listDeployableImages(actor, options);
  }

  /**
   * Materializes an image as a standalone disk for a new instance on its hypervisor (same host or
   * shared path storage: direct convert from the path; otherwise streamed, checksum verified).
   * Starts a `deploy` task and resolves at once with it; the disk exists when the task completes.
   * Wait with `images.waitForTask(actor, task.id)`, the `image.deployed` event (it carries the new
   * disk), `task.finished`, or by polling the task.
   */
  deployImage(actor: Actor, input: DeployInput): Promise<DeployStarted> {
    return this.deploys.deployImage(actor, input);
  }

  // ---------- ISOs ----------

  /** Lists ISOs (customers: visible and available ones). */
  listIsos(actor: Actor, query: { cursor?: string | null; limit?: number } = {}): Promise<Page<Iso>> {
    return this.isos.listIsos(actor, query);
  }

  /** One ISO the actor may see. */
  getIso(actor: Actor, isoId: string): Promise<Iso> {
    return this.isos.getIso(actor, isoId);
  }

  /** Registers an ISO file already on a template storage (size and checksum recorded). */
  registerIso(actor: Actor, input: IsoInput): Promise<Iso> {
    return this.isos.registerIso(actor, input);
  }

  /** Uploads an ISO: streams `body` to the template storage (checksum computed, progress as an `iso-upload` task). */
  uploadIso(actor: Actor, input: IsoInput, body: Readable, options: { sizeBytes?: number; signal?: AbortSignal } = {}): Promise<Iso> {
    return this.isos.uploadIso(actor, input, body, options);
  }

  /** Edits an ISO's name, description or visibility. */
  updateIso(actor: Actor, isoId: string, input: UpdateIsoInput): Promise<Iso> {
    return this.isos.updateIso(actor, isoId, input);
  }

  /** Deletes an ISO record; with `deleteFile`, also its file on the storage. */
  deleteIso(actor: Actor, isoId: string, options: { deleteFile?: boolean; hypervisorId?: string } = {}): Promise<void> {
    return this.isos.deleteIso(actor, isoId, options);
  }

  /** Mounts a visible ISO to an own instance as its cdrom and boots from it. */
  mountIso(actor: Actor, input: { instanceId: string; isoId: string }): Promise<void> {
    return this.isos.mountIso(actor, input);
  }

  /** Unmounts the ISO from an own instance and restores disk-first boot (idempotent). */
  unmountIso(actor: Actor, input: { instanceId: string }): Promise<void> {
    return this.isos.unmountIso(actor, input);
  }
}
