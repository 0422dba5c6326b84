import { z } from 'zod';
import { BytesSchema, DescriptionSchema, DiskFormatSchema, IdSchema, NameSchema, Sha256Schema, StatusReasonSchema } from './common';

/** Image statuses. `deleted` is terminal, kept for history and billing, and hidden from lists. */
export const ImageStatusSchema = z.enum(['creating', 'available', 'error', 'deleting', 'deleted']);
/** An image status. */
export type ImageStatus = z.infer<typeof ImageStatusSchema>;

/** `custom`: captured by a customer from an instance (My Images). `stock`: an operator's OS template. */
export const ImageKindSchema = z.enum(['custom', 'stock']);
/** The kind of image. */
export type ImageKind = z.infer<typeof ImageKindSchema>;

/** Operating system families. */
export const OsTypeSchema = z.enum(['linux', 'windows', 'bsd']);
/** An operating system family. */
export type OsType = z.infer<typeof OsTypeSchema>;

/** How an image boots: legacy BIOS or UEFI firmware. */
export const FirmwareSchema = z.enum(['bios', 'uefi']);
/** The firmware an image boots with. */
export type Firmware = z.infer<typeof FirmwareSchema>;

/** CPU architecture of an image (libvirt's names: `x86_64`, `aarch64`, ...). */
export const ArchitectureSchema = z.string().regex(/^[a-z0-9_]{2,20}$/, 'must be an architecture name such as x86_64 or aarch64');

/** How consistent a capture is: filesystems frozen by the guest agent, crash-consistent (live, no freeze), or cold (VM stopped). */
export const ConsistencySchema = z.enum(['filesystem-frozen', 'crash-consistent', 'cold']);
/** Consistency level achieved by a capture. */
export type Consistency = z.infer<typeof ConsistencySchema>;

/** An image: a customer's custom image or an operator's stock OS image. */
export const ImageSchema = z.object({
  id: IdSchema,
  kind: ImageKindSchema,
  name: NameSchema,
  description: DescriptionSchema.default(''),
  osType: OsTypeSchema.nullable().default(null),
  cloudInit: z.boolean().default(false),
  /** Stock images: the media group shown on the OS picker. */
  mediaGroupId: IdSchema.nullable().default(null),
  /** Custom images: the owning account. Stock images: null. */
  accountId: IdSchema.nullable().default(null),
  /** Custom images: the instance the disk was captured from. */
  sourceInstanceId: IdSchema.nullable().default(null),
  /** The source instance's name at capture time (shown in My Images). */
  sourceInstanceName: z.string().max(200).nullable().default(null),
  /** The location of the source instance (billing and enablement). */
  locationId: IdSchema.nullable().default(null),
  /** The image storage holding the file. */
  storageId: IdSchema,
  /** For per-hypervisor storage (local): the hypervisor whose disk holds the file. */
  hypervisorId: IdSchema.nullable().default(null),
  /** The file's key inside the storage. */
  fileKey: z.string().min(1).max(1024),
  format: DiskFormatSchema.default('qcow2'),
  /** Bytes of the stored file; null until known. Never 0 once available. */
  sizeBytes: BytesSchema.nullable().default(null),
  /** The guest-visible disk size. */
  virtualSizeBytes: BytesSchema.nullable().default(null),
  sha256: Sha256Schema.nullable().default(null),
  consistency: ConsistencySchema.nullable().default(null),
  /**
   * Custom images: whether the capture compresses its qcow2 output, as the create request chose
   * (or the service default at that time); a retry captures the same way. Absent or null on images
   * recorded before it was kept: a retry then uses the current default.
   */
  compressed: z.boolean().nullish(),
  /**
   * Custom images: when the host reported the source instance deleted
   * (`accounts.instanceDeleted`); the image is kept and still deploys. Absent or null while the
   * instance exists (or on images recorded before it was kept).
   */
  sourceInstanceDeletedAt: z.date().nullish(),
  /**
   * Whether the image is protected: a protected image cannot be deleted until its owner (or an
   * operator) unprotects it. Account closure overrides it. Absent or null means not protected.
   */
  protected: z.boolean().nullish(),
  /**
   * The smallest disk (bytes) the image boots on; a deploy onto a smaller disk is refused and the OS
   * picker hides the image for smaller plans. Absent or null: the image's virtual size.
   */
  minDiskBytes: BytesSchema.nullish(),
  /** The firmware the image boots with; absent or null when unknown (any plan). */
  firmware: FirmwareSchema.nullish(),
  /** The CPU architecture of the image; absent or null when unknown (any plan). */
  architecture: ArchitectureSchema.nullish(),
  /**
   * Custom images being imported or uploaded: the bytes held against the account's byte cap until
   * the stored file's size is known (the upload's length, then the decompressed bytes as they
   * arrive). Absent or null: nothing held.
   */
  reservedBytes: BytesSchema.nullish(),
  status: ImageStatusSchema,
  statusReason: StatusReasonSchema.nullable().default(null),
  createdAt: z.date(),
  updatedAt: z.date(),
  availableAt: z.date().nullable().default(null),
  deletedAt: z.date().nullable().default(null),
});
/** An image (custom or stock). */
export type Image = z.infer<typeof ImageSchema>;
/** Fields that may change together with a status transition or an update. */
export type ImagePatch = Partial<Omit<Image, 'id' | 'kind' | 'accountId' | 'createdAt' | 'status'>>;

/**
 * The bytes an image counts against an account's byte cap: the stored file's size once known
 * (set when the image becomes available), before that the guest-visible (virtual) size of the
 * source disk recorded at creation (an upper bound of what a capture stores), else the bytes an
 * import holds (`reservedBytes`), else 0.
 */
export function imageCapBytes(image: Pick<Image, 'sizeBytes' | 'virtualSizeBytes' | 'reservedBytes'>): number {
  return image.sizeBytes ?? image.virtualSizeBytes ?? image.reservedBytes ?? 0;
}
