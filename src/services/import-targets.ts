/**
 * The fields that say what an import or an upload becomes, shared by the URL import inputs
 * (image-import.ts) and the upload targets (image-upload.ts), so that both ask the same things in
 * the same words.
 * @module
 */
import { z } from 'zod';
import { DescriptionSchema, IdSchema, NameSchema, Sha256Schema } from '../model/common';
import { OsTypeSchema } from '../model/image';

/** A customer's custom image: its name, location and owner, and the expected checksum. */
export const CUSTOM_IMAGE_TARGET_FIELDS = {
  name: NameSchema,
  description: DescriptionSchema.optional(),
  /** The location the image belongs to (its storage, price and cap). */
  locationId: IdSchema,
  /** Admins only: the account that will own the image (customers bring images into their own). */
  accountId: IdSchema.optional(),
  /** The expected sha256 of the (decompressed) image; a mismatch fails the import. */
  sha256: Sha256Schema.optional(),
};

/** An operator's stock OS image: the catalog's fields, the storage receiving the file, the expected checksum. */
export const STOCK_IMAGE_TARGET_FIELDS = {
  name: NameSchema,
  description: DescriptionSchema.optional(),
  osType: OsTypeSchema,
  cloudInit: z.boolean().default(false),
  mediaGroupId: IdSchema.nullish(),
  /** A storage with purpose `templates` that receives the file. */
  storageId: IdSchema,
  /** For per-hypervisor storages (local), and path storages in general: the hypervisor that writes the file. */
  hypervisorId: IdSchema.nullish(),
  /** The expected sha256 of the (decompressed) image; a mismatch fails the import. */
  sha256: Sha256Schema.optional(),
};
