export * from './actor';
export * from './images';
export * from './catalog';
export * from './storages';
export * from './settings';
export { buildUsageReport, UsageReportQuerySchema, type UsageReportQuery, type UsageReportOptions, type UsageReportSources } from './usage';
export type { RecoveryReport } from './recovery';
export type { Logger, ServiceSettings } from './context';
export type { WorkProgress } from './task-runner';
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
