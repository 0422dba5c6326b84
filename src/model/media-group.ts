import { z } from 'zod';
import { IdSchema, NameSchema } from './common';

/** A Media Group: a label grouping OS images on the create-instance screen ("Linux", "Windows"). */
export const MediaGroupSchema = z.object({
  id: IdSchema,
  name: NameSchema,
  /** Hidden groups' images never appear to customers. */
  customerVisible: z.boolean().default(true),
  /** Display order, ascending. */
  order: z.number().int().default(0),
  createdAt: z.date(),
  updatedAt: z.date(),
});
/** A Media Group. */
export type MediaGroup = z.infer<typeof MediaGroupSchema>;
