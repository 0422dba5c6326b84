/**
 * What an owner says about an image besides its bytes: protection against deletion and the
 * capability metadata the OS picker and deploys check (minimum disk size, firmware, architecture,
 * cloud-init support, OS type); and the account caps (count and total bytes) checked when an image
 * is recorded.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { BytesSchema, DescriptionSchema, IdSchema, NameSchema } from '../model/common';
import { ArchitectureSchema, FirmwareSchema, imageCapBytes, OsTypeSchema, type Image, type ImagePatch } from '../model/image';
import type { LocationSettings } from '../model/settings';
import type { HostInstance } from '../ports/host-directory';
import type { DomainInfo } from '../ports/hypervisor-driver';
import { parseOrThrow } from '../util/validate';
import { checkActor, eventActor, type Actor } from './actor';
import type { ServiceContext } from './context';
import { draft, recordEvents } from './outbox-events';
import { changeImageAtStatus } from './image-state';

/** Input of {@link ImageMetadataService.updateImage}; omitted fields keep their value, `null` clears. */
export const UpdateImageInputSchema = z.strictObject({
  name: NameSchema.optional(),
  description: DescriptionSchema.optional(),
  osType: OsTypeSchema.nullable().optional(),
  cloudInit: z.boolean().optional(),
  /** The smallest disk the image boots on (bytes); never below the image's virtual size. */
  minDiskBytes: BytesSchema.positive().nullable().optional(),
  firmware: FirmwareSchema.nullable().optional(),
  architecture: ArchitectureSchema.nullable().optional(),
});
/** Input of {@link ImageMetadataService.updateImage}. */
export type UpdateImageInput = z.input<typeof UpdateImageInputSchema>;

/** What a plan offers an image (the OS picker's filter and a deploy's check). */
export const PlanFitSchema = z.strictObject({
  /** The plan's disk size in bytes: images needing a larger disk do not fit. */
  diskBytes: BytesSchema.positive().optional(),
  /** The plan's firmware: images recorded with the other firmware do not fit. */
  firmware: FirmwareSchema.optional(),
  /** The plan's CPU architecture: images recorded with another architecture do not fit. */
  architecture: ArchitectureSchema.optional(),
});
/** What a plan offers an image. */
export type PlanFit = z.input<typeof PlanFitSchema>;

/** The smallest disk an image boots on: its `minDiskBytes`, never below its virtual size (null when neither is known). */
export function minimumDiskBytes(image: Image): number | null {
  const sizes = [image.minDiskBytes ?? null, image.virtualSizeBytes].filter((n): n is number => n !== null);
  return sizes.length === 0 ? null : Math.max(...sizes);
}

/**
 * Why `image` cannot boot on `plan`, or null when it can. Unknown metadata (null) fits any plan;
 * the plan's unset fields accept any image.
 */
export function planMismatch(image: Image, plan: PlanFit): { field: keyof PlanFit; message: string } | null {
  const min = minimumDiskBytes(image);
  if (plan.diskBytes !== undefined && min !== null && plan.diskBytes < min)
    return { field: 'diskBytes', message: `needs a disk of at least ${min} bytes; the plan's disk has ${plan.diskBytes}` };
  if (plan.firmware !== undefined && image.firmware && image.firmware !== plan.firmware)
    return {
      field: 'firmware',
      message: `boots with ${image.firmware.toUpperCase()} firmware; the plan uses ${plan.firmware.toUpperCase()}`,
    };
  if (plan.architecture !== undefined && image.architecture && image.architecture !== plan.architecture)
    return { field: 'architecture', message: `is built for ${image.architecture}; the plan's CPUs are ${plan.architecture}` };
  return null;
}

/** @throws IMAGE_INCOMPATIBLE (with `details.field`) when `image` cannot boot on `plan`. */
export function assertFitsPlan(image: Image, plan: PlanFit): void {
  const mismatch = planMismatch(image, plan);
  if (mismatch)
    throw new InstanceImagesError(
      'IMAGE_INCOMPATIBLE',
      `Image ${JSON.stringify(image.name)} cannot boot on this plan: it ${mismatch.message}. Pick a plan that matches, or another image`,
      { details: { imageId: image.id, field: mismatch.field } },
    );
}

/** @throws IMAGE_PROTECTED when the image is protected. */
export function assertNotProtected(image: Image): void {
  if (image.protected)
    throw new InstanceImagesError(
      'IMAGE_PROTECTED',
      `Image ${JSON.stringify(image.name)} is protected against deletion; unprotect it first (its owner or an operator can), then delete it`,
      { details: { imageId: image.id } },
    );
}

/**
 * The capability metadata a capture records from its source: firmware and architecture as the
 * hypervisor reports them, the source disk's virtual size as the minimum disk, and the OS type and
 * cloud-init flag as the host panel knows the instance (`HostInstance.osType`/`cloudInit`), else as
 * the domain's definition records them (libvirt: libosinfo metadata, a NoCloud SMBIOS serial), else
 * unknown (`null`, and no cloud-init) until the owner sets them.
 */
export function capturedCapabilities(
  domain: DomainInfo,
  instance: Pick<HostInstance, 'osType' | 'cloudInit'> = {},
): Pick<Image, 'firmware' | 'architecture' | 'minDiskBytes' | 'osType' | 'cloudInit'> {
  const architecture = domain.architecture && ArchitectureSchema.safeParse(domain.architecture).success ? domain.architecture : null;
  const osType = instance.osType ?? domain.osType ?? null;
  return {
    firmware: domain.firmware ?? null,
    architecture,
    minDiskBytes: domain.primaryDisk.virtualSizeBytes,
    osType: osType !== null && OsTypeSchema.safeParse(osType).success ? osType : null,
    cloudInit: instance.cloudInit ?? domain.cloudInit ?? false,
  };
}

/** An account's caps: the number of images and their total bytes (`null`: no cap). */
export interface AccountCaps {
  max: number | null;
  maxBytes: number | null;
}

/** The caps of an account: its override when set, else its location's defaults. */
export async function accountCaps(ctx: ServiceContext, accountId: string, location: LocationSettings | null): Promise<AccountCaps> {
  const override = await ctx.repos.settings.getAccountLimit(accountId);
  return {
    max: override ? override.imageLimit : (location?.defaultImageLimit ?? null),
    maxBytes: override?.imageBytesLimit ?? location?.defaultImageBytesLimit ?? null,
  };
}

/**
 * Records a new custom image within the account's caps, atomically (`insertIfUnderLimit`).
 * @throws IMAGE_LIMIT_REACHED saying which cap is full, with `details.limit` or `details.limitBytes`.
 */
export async function insertUnderCaps(ctx: ServiceContext, image: Image, accountId: string, caps: AccountCaps): Promise<void> {
  if (caps.max === null && caps.maxBytes === null) return ctx.repos.images.insert(image);
  const limit = { accountId, max: caps.max ?? Number.POSITIVE_INFINITY, maxBytes: caps.maxBytes };
  if (await ctx.repos.images.insertIfUnderLimit(image, limit)) return;
  throw await capReached(ctx, accountId, caps, imageCapBytes(image));
}

/** The IMAGE_LIMIT_REACHED error naming the cap that is full (the count when both are). */
export async function capReached(ctx: ServiceContext, accountId: string, caps: AccountCaps, adding: number): Promise<InstanceImagesError> {
  if (caps.max !== null && (await ctx.repos.images.countActive(accountId)) >= caps.max)
    return new InstanceImagesError('IMAGE_LIMIT_REACHED', 'Maximum image limit reached', { details: { limit: caps.max } });
  return new InstanceImagesError(
    'IMAGE_LIMIT_REACHED',
    `The account's image storage cap of ${caps.maxBytes} bytes would be exceeded (this image counts ${adding} bytes); delete an image or ask the operator for a larger cap`,
    { details: { limitBytes: caps.maxBytes, imageBytes: adding } },
  );
}

/**
 * Closing an account deletes protected images too: their protection is lifted first, recorded as
 * an `image.updated` event by the system.
 */
export async function liftProtectionForClosure(ctx: ServiceContext, image: Image): Promise<Image> {
  if (!image.protected) return image;
  const updated = (await ctx.repos.images.update(image.id, { protected: false }, ctx.now())) ?? image;
  await recordEvents(ctx, [draft('image.updated', updated.id, { image: updated, fields: ['protected'], actor: eventActor('system') })]);
  return updated;
}

/** Protection and capability metadata of images. Reached through `InstanceImages.metadata`. */
export class ImageMetadataService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(private readonly ctx: ServiceContext) {}

  /** An image the actor may change: an own custom image (any image for an admin), not deleted or deleting. */
  private async changeable(actor: Actor, imageId: string): Promise<Image> {
    checkActor(actor);
    parseOrThrow(IdSchema, imageId, 'The image id');
    const image = await this.ctx.repos.images.get(imageId);
    if (!image || image.status === 'deleted') throw notFound('Image', imageId);
    if (actor.kind === 'customer' && (image.kind !== 'custom' || image.accountId !== actor.accountId)) throw notFound('Image', imageId);
    if (image.status === 'deleting')
      throw new InstanceImagesError('INVALID_STATE', 'The image is being deleted; it can no longer be changed');
    return image;
  }

  private async apply(actor: Actor | 'system', image: Image, patch: ImagePatch): Promise<Image> {
    const fields = Object.keys(patch);
    if (fields.length === 0) return image;
    const updated = await this.ctx.repos.images.update(image.id, patch, this.ctx.now());
    if (!updated) throw notFound('Image', image.id);
    await recordEvents(this.ctx, [draft('image.updated', updated.id, { image: updated, fields, actor: eventActor(actor) })]);
    return updated;
  }

  /**
   * Protects an image against deletion (`true`) or lifts the protection (`false`); the owner or an
   * operator. Idempotent. A protected image's delete is refused with IMAGE_PROTECTED; closing the
   * account deletes it anyway. Emits `image.updated` (fields `["protected"]`) when it changes.
   * The change is a compare-and-set on the status (only an available image, or one in error,
   * changes), and a delete's compare-and-set requires the image unprotected: of a protection and a
   * delete racing, exactly one wins.
   * @throws NOT_FOUND, INVALID_STATE (being created or deleted, or changed meanwhile).
   */
  async setProtected(actor: Actor, imageId: string, value: boolean): Promise<Image> {
    const image = await this.changeable(actor, imageId);
    parseOrThrow(z.boolean(), value, 'The protection flag');
    if ((image.protected ?? false) === value) return image;
    if (image.status !== 'available' && image.status !== 'error')
      throw new InstanceImagesError(
        'INVALID_STATE',
        `Only an available image (or one in error) can be protected; this one is ${image.status}`,
        {
          details: { imageId, status: image.status },
        },
      );
    return changeImageAtStatus(this.ctx, image, { protected: value }, (updated) => [
      draft('image.updated', updated.id, { image: updated, fields: ['protected'], actor: eventActor(actor) }),
    ]);
  }

  /**
   * Changes an image's name, description and capability metadata (owner or operator). Emits
   * `image.updated` with the changed fields.
   * @throws NOT_FOUND, INVALID_STATE (being deleted), VALIDATION_FAILED (e.g. `minDiskBytes` below
   *   the image's virtual size).
   */
  async updateImage(actor: Actor, imageId: string, input: UpdateImageInput): Promise<Image> {
    const image = await this.changeable(actor, imageId);
    const data = parseOrThrow(UpdateImageInputSchema, input, 'The image');
    if (data.minDiskBytes != null && image.virtualSizeBytes !== null && data.minDiskBytes < image.virtualSizeBytes)
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `The minimum disk must be at least the image's size (${image.virtualSizeBytes} bytes)`,
        {
          fields: [{ path: 'minDiskBytes', message: 'is smaller than the image' }],
        },
      );
    const patch = Object.fromEntries(
      Object.entries(data).filter(([key, value]) => value !== undefined && (image as Record<string, unknown>)[key] !== value),
    ) as ImagePatch;
    return this.apply(actor, image, patch);
  }
}
