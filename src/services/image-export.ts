/**
 * Export: the owner of an `available` image gets an expiring, single-purpose download link — a
 * presigned GET URL where the image's storage can issue one (S3), otherwise a link to the panel
 * signed with the host's secret (HMAC over image id, account and expiry), which the panel serves by
 * streaming from the storage with Range support. Expired, forged and other-account links are
 * refused; a link stops working once the image is no longer available or changes owner.
 * @module
 */
import type { Readable } from 'node:stream';
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { IdSchema } from '../model/common';
import type { DiskFormat } from '../model/common';
import type { Image } from '../model/image';
import { normalizeStorageKey, type StorageDisk } from '../storage';
import { signLink, verifyLinkSignature, type SignedLinkFields } from '../util/signed-link';
import { parseOrThrow } from '../util/validate';
import { checkActor, type Actor } from './actor';
import type { DriverCache, ServiceContext } from './context';
import type { ImageService } from './images';

/** S3's longest presigned URL lifetime, and so ours: 7 days. */
export const MAX_LINK_SECONDS = 604_800;

/** The zod schema of {@link ExportOptions}. */
export const ExportOptionsSchema = z.strictObject({
  /**
   * The secret signed panel links are keyed with (at least 32 characters; keep it like a session
   * secret, the same on every panel process). Without it only storages that presign (S3) export.
   */
  secret: z.string().min(32, 'must be at least 32 characters').max(1024).optional(),
  /** Lifetime of a link when the request does not say. @default 3600 */
  defaultExpiresInSeconds: z.number().int().min(60).max(MAX_LINK_SECONDS).default(3600),
});
/** The host's options of exports (`createInstanceImages({ exports })`). */
export type ExportOptions = z.input<typeof ExportOptionsSchema>;

/** Input of {@link ImageExportService.createDownloadLink}. */
export const DownloadLinkInputSchema = z.strictObject({
  /** Seconds the link stays valid (60 s to 7 days). */
  expiresInSeconds: z.number().int().min(60).max(MAX_LINK_SECONDS).optional(),
});
/** Input of {@link ImageExportService.createDownloadLink}. */
export type DownloadLinkInput = z.input<typeof DownloadLinkInputSchema>;

/** What every link tells about the file. */
export interface LinkedFile {
  imageId: string;
  filename: string;
  format: DiskFormat;
  sizeBytes: number;
  sha256: string;
  expiresAt: Date;
}

/** A download link: presigned by the storage, or signed by the panel (the route builds its URL from the fields). */
export type DownloadLink =
  | (LinkedFile & { kind: 'presigned'; url: string })
  | (LinkedFile & { kind: 'signed'; accountId: string; expires: number; signature: string });

/** A signed link as it comes back: its fields and signature. */
export interface SignedLinkQuery extends SignedLinkFields {
  signature: string;
}

/** An opened signed download: the file's facts and a reader of (a range of) its bytes. */
export interface ExportDownload {
  imageId: string;
  filename: string;
  format: DiskFormat;
  /** The whole file's size. */
  sizeBytes: number;
  sha256: string;
  /** Reads the bytes; `range` is inclusive and must lie within the file. */
  open(range?: { start: number; end: number }, signal?: AbortSignal): Promise<Readable>;
}

/** A file name from the image name: ASCII letters, digits, dot, dash and underscore. */
export function exportFilename(image: Pick<Image, 'name' | 'format'>): string {
  const base =
    image.name
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/^[-.]+|-+$/g, '')
      .slice(0, 100) || 'image';
  return `${base}.${image.format}`;
}

/** Exports. Reached through `InstanceImages.exports`. */
export class ImageExportService {
  private readonly options: z.output<typeof ExportOptionsSchema>;

  /** @internal Services are created by `createInstanceImages`. */
  constructor(
    private readonly ctx: ServiceContext,
    private readonly drivers: DriverCache,
    private readonly images: ImageService,
    options: ExportOptions = {},
  ) {
    this.options = parseOrThrow(ExportOptionsSchema, options, 'The export options');
  }

  private async diskOf(image: Image): Promise<StorageDisk> {
    const storage = await this.ctx.repos.storages.get(image.storageId);
    if (!storage) throw new InstanceImagesError('STORAGE_UNAVAILABLE', 'The image storage was removed');
    return this.drivers.storage(storage, image.hypervisorId);
  }

  /**
   * A download link for an image the actor owns (customers: their own custom images; admins: any
   * image). @throws NOT_FOUND (missing or another account's), INVALID_STATE (not available),
   * FEATURE_DISABLED (the storage cannot presign and the host set no `exports.secret`).
   */
  async createDownloadLink(actor: Actor, imageId: string, input: DownloadLinkInput = {}): Promise<DownloadLink> {
    checkActor(actor);
    const data = parseOrThrow(DownloadLinkInputSchema, input, 'The download link');
    const image = await this.images.imageFor(actor, imageId);
    if (actor.kind === 'customer' && image.accountId !== actor.accountId) throw notFound('Image', imageId);
    if (image.status !== 'available' || image.sha256 === null || image.sizeBytes === null)
      throw new InstanceImagesError('INVALID_STATE', `Only an available image can be downloaded; this one is ${image.status}`);
    const seconds = data.expiresInSeconds ?? this.options.defaultExpiresInSeconds;
    const expires = Math.floor(this.ctx.now().getTime() / 1000) + seconds;
    const file: LinkedFile = {
      imageId: image.id,
      filename: exportFilename(image),
      format: image.format,
      sizeBytes: image.sizeBytes,
      sha256: image.sha256,
      expiresAt: new Date(expires * 1000),
    };
    const disk = await this.diskOf(image);
    if (disk.driver.presignGet) {
      const url = await disk.driver.presignGet(normalizeStorageKey(image.fileKey, 'fileKey'), {
        expiresInSeconds: seconds,
        filename: file.filename,
      });
      return { ...file, kind: 'presigned', url };
    }
    const secret = this.requireSecret();
    const fields: SignedLinkFields = { imageId: image.id, accountId: image.accountId ?? '', expires };
    return { ...file, kind: 'signed', accountId: fields.accountId, expires, signature: signLink(secret, fields) };
  }

  private requireSecret(): string {
    if (!this.options.secret)
      throw new InstanceImagesError(
        'FEATURE_DISABLED',
        'Downloads from this image storage need a signing secret: the operator sets `exports.secret` in createInstanceImages',
      );
    return this.options.secret;
  }

  /**
   * Opens a signed panel link (no actor: the link is the credential). @throws FORBIDDEN (forged,
   * expired, or signed for another account), NOT_FOUND (the image is gone or no longer available).
   */
  async openDownload(link: SignedLinkQuery): Promise<ExportDownload> {
    const secret = this.requireSecret();
    parseOrThrow(IdSchema, link.imageId, 'The image id');
    const fields: SignedLinkFields = { imageId: link.imageId, accountId: link.accountId, expires: link.expires };
    if (!Number.isSafeInteger(link.expires) || !verifyLinkSignature(secret, fields, link.signature))
      throw new InstanceImagesError('FORBIDDEN', 'The download link is not valid');
    if (link.expires * 1000 <= this.ctx.now().getTime())
      throw new InstanceImagesError('FORBIDDEN', 'The download link has expired; ask for a new one');
    const image = await this.ctx.repos.images.get(link.imageId);
    // A link names its account: once the image has another owner (or none), old links stop working.
    if (!image || (image.accountId ?? '') !== link.accountId) throw new InstanceImagesError('FORBIDDEN', 'The download link is not valid');
    if (image.status !== 'available' || image.sha256 === null) throw notFound('Image', link.imageId);
    const disk = await this.diskOf(image);
    const stat = await disk.stat(image.fileKey);
    if (!stat) throw notFound('Image file', image.id);
    return {
      imageId: image.id,
      filename: exportFilename(image),
      format: image.format,
      sizeBytes: stat.size,
      sha256: image.sha256,
      open: (range, signal) => disk.get(image.fileKey, { ...(range ? { range } : {}), ...(signal ? { signal } : {}) }),
    };
  }
}
