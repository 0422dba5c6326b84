import { z } from 'zod';
import { IdSchema, NameSchema } from './common';

/** What a storage holds: customer-captured images, or operator templates (stock OS images and ISOs). */
export const StoragePurposeSchema = z.enum(['custom-images', 'templates']);
/** What a storage holds. */
export type StoragePurpose = z.infer<typeof StoragePurposeSchema>;

/** How a storage lays out images: one file per image, or content-addressed chunks and a manifest per image. */
export const StorageLayoutSchema = z.enum(['files', 'chunks']);
/** How a storage lays out images. */
export type StorageLayout = z.infer<typeof StorageLayoutSchema>;

/** The default chunk size of a chunked storage: 4 MiB. */
export const DEFAULT_CHUNK_SIZE_BYTES = 4 * 2 ** 20;

/**
 * The settings of a chunked storage. `scope`: deduplicate across the whole storage (`storage`, the
 * default) or only within one account (`account`; see docs/security.md). `codec`: how new chunks
 * are compressed (`zstd` only where the runtime's zlib has it). `chunkSizeBytes`: a power of two
 * from 64 KiB to 64 MiB.
 */
export const ChunkLayoutSchema = z.strictObject({
  scope: z.enum(['storage', 'account']).default('storage'),
  codec: z.enum(['none', 'zstd']).default('none'),
  chunkSizeBytes: z
    .number()
    .int()
    .min(2 ** 16)
    .max(2 ** 26)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two')
    .default(DEFAULT_CHUNK_SIZE_BYTES),
});
/** The settings of a chunked storage. */
export type ChunkLayout = z.infer<typeof ChunkLayoutSchema>;

/** An Image Storage: a backend (local, nfs, s3 or a host-registered driver) with its driver config. */
export const ImageStorageSchema = z.object({
  id: IdSchema,
  name: NameSchema,
  /** The registered driver name, e.g. `local`, `nfs`, `s3`. */
  driver: z.string().min(1).max(50),
  /** The driver's config, validated by the driver's schema. Secrets are stored here but never echoed. */
  config: z.record(z.string(), z.unknown()),
  purpose: StoragePurposeSchema,
  /** A disabled storage is never picked for new captures. */
  enabled: z.boolean().default(true),
  /**
   * How images are stored; absent on storages recorded before layouts existed, which means `files`.
   * Only changeable while the storage holds no image.
   */
  layout: StorageLayoutSchema.optional(),
  /** The chunked layout's settings: set when `layout` is `chunks` (kept, unused, when it is `files`). */
  chunks: ChunkLayoutSchema.optional(),
  createdAt: z.date(),
  updatedAt: z.date(),
});
/** An Image Storage. */
export type ImageStorage = z.infer<typeof ImageStorageSchema>;

/** A binding of a storage to a hypervisor that uses it. */
export const StorageBindingSchema = z.object({
  storageId: IdSchema,
  hypervisorId: IdSchema,
  createdAt: z.date(),
});
/** A binding of a storage to a hypervisor. */
export type StorageBinding = z.infer<typeof StorageBindingSchema>;
