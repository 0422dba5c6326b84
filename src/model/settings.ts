import { z } from 'zod';
import { DecimalStringSchema, IdSchema } from './common';

/** Per-location settings of the image feature. */
export const LocationSettingsSchema = z.object({
  locationId: IdSchema,
  /** Whether customers may create images from instances in this location. */
  imagesEnabled: z.boolean().default(false),
  /** Whether customers may import images from a URL into this location (operators always may). */
  urlImportEnabled: z.boolean().default(false),
  /** Price per GB-month as a decimal string, e.g. "0.05". */
  pricePerGbMonth: DecimalStringSchema.default('0'),
  /** Currency code of the price (ISO 4217). */
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be a 3-letter currency code')
    .default('USD'),
  /** Default per-account image cap; null means unlimited. */
  defaultImageLimit: z.number().int().nonnegative().nullable().default(null),
  /**
   * Default per-account cap of total image bytes (each image counts `imageCapBytes`); absent or null means
   * unlimited.
   */
  defaultImageBytesLimit: z.number().int().nonnegative().nullish(),
  updatedAt: z.date(),
});
/** Per-location settings. */
export type LocationSettings = z.infer<typeof LocationSettingsSchema>;

/** A per-account override of the image cap (beats the location default). */
export const AccountLimitSchema = z.object({
  accountId: IdSchema,
  imageLimit: z.number().int().nonnegative(),
  /** The account's cap of total image bytes (beats the location default); absent or null: the location's. */
  imageBytesLimit: z.number().int().nonnegative().nullish(),
  updatedAt: z.date(),
});
/** A per-account image cap override. */
export type AccountLimit = z.infer<typeof AccountLimitSchema>;

/**
 * The host's account status as the SDK keeps it (an account without a record is active):
 * `suspended` (no new captures or deploys; images stay and are billed) or `closed` (every image
 * deleted, billing stopped at `since`; final). Set by `InstanceImages.accounts`.
 */
export const AccountStateSchema = z.object({
  accountId: IdSchema,
  status: z.enum(['suspended', 'closed']),
  /** When the account was suspended or closed (for a closed account, when its billing stopped). */
  since: z.date(),
  updatedAt: z.date(),
});
/** A suspended or closed account. */
export type AccountState = z.infer<typeof AccountStateSchema>;
