import { z } from 'zod';
import { BytesSchema, DecimalStringSchema, IdSchema } from './common';

/**
 * A usage interval: one image of one size at one rate, billed from `from` until `to`
 * (`null` while still open). Intervals of one image never overlap.
 */
export const UsageIntervalSchema = z.object({
  id: IdSchema,
  imageId: IdSchema,
  accountId: IdSchema,
  locationId: IdSchema,
  sizeBytes: BytesSchema,
  /** Price per GB-month in force during this interval, as a decimal string. */
  rate: DecimalStringSchema,
  from: z.date(),
  to: z.date().nullable(),
});
/** A usage interval. */
export type UsageInterval = z.infer<typeof UsageIntervalSchema>;
