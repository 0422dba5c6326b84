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
  ImageImportService,
  ImportImageInputSchema,
  ImportOsImageInputSchema,
  type ImportImageInput,
  type ImportOsImageInput,
  type OsImageImport,
} from './image-import';
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
