import { z } from 'zod';
import { BytesSchema, DescriptionSchema, IdSchema, NameSchema, Sha256Schema, StatusReasonSchema } from './common';

/** ISO statuses: being uploaded, ready to mount, or failed. */
export const IsoStatusSchema = z.enum(['uploading', 'available', 'error']);
/** An ISO status. */
export type IsoStatus = z.infer<typeof IsoStatusSchema>;

/** An ISO: a CD image file on a template storage that customers can mount to boot an installer. */
export const IsoSchema = z.object({
  id: IdSchema,
  name: NameSchema,
  description: DescriptionSchema.default(''),
  storageId: IdSchema,
  fileKey: z.string().min(1).max(1024),
  sizeBytes: BytesSchema.nullable().default(null),
  sha256: Sha256Schema.nullable().default(null),
  customerVisible: z.boolean().default(true),
  status: IsoStatusSchema,
  statusReason: StatusReasonSchema.nullable().default(null),
  createdAt: z.date(),
  updatedAt: z.date(),
});
/** An ISO. */
export type Iso = z.infer<typeof IsoSchema>;
