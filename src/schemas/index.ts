/**
 * `instance-images/schemas`: the zod schemas of the records the SDK stores and answers, and of the
 * inputs its services accept (the same schemas the services validate with). Use them to validate
 * or generate forms and API descriptions in your own transport; the Express adapter builds its
 * OpenAPI document from them. Their TypeScript types are exported from the package root.
 * @module
 */

// Records (what the SDK stores and answers)
export {
  IdSchema,
  NameSchema,
  DescriptionSchema,
  BytesSchema,
  DecimalStringSchema,
  Sha256Schema,
  DiskFormatSchema,
  StatusReasonSchema,
  PageRequestSchema,
} from '../model/common';
export {
  ImageSchema,
  ImageKindSchema,
  ImageStatusSchema,
  OsTypeSchema,
  ConsistencySchema,
  FirmwareSchema,
  ArchitectureSchema,
} from '../model/image';
export { PlanFitSchema, UpdateImageInputSchema } from '../services/image-metadata';
export {
  ImageStorageSchema,
  StorageBindingSchema,
  StoragePurposeSchema,
  ChunkLayoutSchema,
  StorageLayoutSchema,
} from '../model/image-storage';
export { MediaGroupSchema } from '../model/media-group';
export { IsoSchema, IsoStatusSchema } from '../model/iso';
export { TaskSchema, TaskProgressSchema, TaskStatusSchema, TaskTypeSchema } from '../model/task';
export { UsageIntervalSchema } from '../model/usage-interval';
export { LocationSettingsSchema, AccountLimitSchema, AccountStateSchema } from '../model/settings';

// Requests (what the services accept)
export { ActorSchema } from '../services/actor';
export { CreateImageInputSchema, ListImagesQuerySchema, ListTasksQuerySchema } from '../services/images';
export { DeployInputSchema } from '../services/deploy';
export { IsoInputSchema, UpdateIsoInputSchema } from '../services/isos';
export { MediaGroupInputSchema } from '../services/media-groups';
export { CreateOsImageInputSchema, UpdateOsImageInputSchema } from '../services/os-images';
export { CreateStorageInputSchema, UpdateStorageInputSchema, ReconcileOptionsSchema } from '../services/storages';
export { ChunkGcOptionsSchema } from '../services/chunked-storage';
export { LocationSettingsInputSchema } from '../services/settings';
export { UsageReportQuerySchema } from '../services/usage';
export { BillingPolicySchema, BillingPeriodSchema } from '../billing/policy';
export { InstanceImagesOptionsSchema } from '../create-instance-images';
export { ImportOptionsSchema } from '../import/options';
export { ImageShareSchema, ImageShareStatusSchema, ImageTransferSchema, ImageTransferStatusSchema } from '../model/image-move';
export { ShareImageInputSchema, IncomingSharesQuerySchema } from '../services/image-sharing';
export { OfferTransferInputSchema, ListTransfersQuerySchema } from '../services/image-transfers';
export { CopyImageInputSchema } from '../services/image-copies';
export { ImportImageInputSchema, ImportOsImageInputSchema } from '../services/image-import';
export { CreateUploadInputSchema, UploadOptionsSchema } from '../services/image-upload';
export { DownloadLinkInputSchema } from '../services/image-export';
