export { checkActor, requireAdmin, ownsAccount, eventActor, ActorSchema, type Actor } from './actor';
export {
  customImageKey,
  CreateImageInputSchema,
  ListImagesQuerySchema,
  ListTasksQuerySchema,
  ImageService,
  type CreateImageInput,
  type ListImagesQuery,
  type ListTasksQuery,
  type ImageWithTask,
} from './images';
export {
  CreateOsImageInputSchema,
  UpdateOsImageInputSchema,
  MediaGroupInputSchema,
  IsoInputSchema,
  UpdateIsoInputSchema,
  DeployInputSchema,
  MAX_DEPLOY_DISK_BYTES,
  checkCustomerDiskPath,
  CatalogService,
  type CreateOsImageInput,
  type UpdateOsImageInput,
  type MediaGroupInput,
  type IsoInput,
  type UpdateIsoInput,
  type DeployableImages,
  type DeployInput,
  type DeployStarted,
} from './catalog';
export {
  CreateStorageInputSchema,
  UpdateStorageInputSchema,
  ReconcileOptionsSchema,
  StorageService,
  type CreateStorageInput,
  type UpdateStorageInput,
  type StorageView,
  type BrowsedFile,
  type ReconcileOptions,
} from './storages';
export { LocationSettingsInputSchema, SettingsService, type LocationSettingsInput } from './settings';
export { ChunkGcOptionsSchema, type ChunkGcOptions, type ChunkStorageStats } from './chunked-storage';
export { buildUsageReport, UsageReportQuerySchema, type UsageReportQuery, type UsageReportOptions, type UsageReportSources } from './usage';
export type { RecoveryReport } from './recovery';
export type { Logger, ServiceSettings } from './context';
export type { WorkProgress } from './task-runner';
export type { WaitForTaskOptions } from './task-wait';
export { AccountService, type AccountClosing, type InstanceDeletion } from './accounts';
export {
  ImageSharingService,
  ShareImageInputSchema,
  IncomingSharesQuerySchema,
  type ShareImageInput,
  type IncomingSharesQuery,
  type SharedImage,
} from './image-sharing';
export {
  ImageTransferService,
  OfferTransferInputSchema,
  ListTransfersQuerySchema,
  DEFAULT_TRANSFER_TTL_SECONDS,
  type OfferTransferInput,
  type ListTransfersQuery,
  type AcceptedTransfer,
} from './image-transfers';
export { ImageCopyService, CopyImageInputSchema, type CopyImageInput, type ImageCopyPolicy } from './image-copies';
export {
  ImageMetadataService,
  UpdateImageInputSchema,
  PlanFitSchema,
  minimumDiskBytes,
  planMismatch,
  type UpdateImageInput,
  type PlanFit,
} from './image-metadata';
export {
  ImageImportService,
  ImportImageInputSchema,
  ImportOsImageInputSchema,
  type ImportImageInput,
  type ImportOsImageInput,
  type OsImageImport,
} from './image-import';
export {
  ImageUploadService,
  UploadOptionsSchema,
  CreateUploadInputSchema,
  type UploadOptions,
  type CreateUploadInput,
  type UploadInfo,
  type WriteUploadInput,
} from './image-upload';
export {
  ImageExportService,
  DownloadLinkInputSchema,
  ExportOptionsSchema,
  MAX_LINK_SECONDS,
  exportFilename,
  type DownloadLink,
  type DownloadLinkInput,
  type ExportDownload,
  type ExportOptions,
  type SignedLinkQuery,
} from './image-export';
