import { z } from 'zod';
import { IdSchema, NameSchema } from './common';

/** What a storage holds: customer-captured images, or operator templates (stock OS images and ISOs). */
export const StoragePurposeSchema = z.enum(['custom-images', 'templates']);
/** What a storage holds. */
export type StoragePurpose = z.infer<typeof StoragePurposeSchema>;

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
