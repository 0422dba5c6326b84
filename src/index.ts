/**
 * instance-images: the framework-agnostic core. Drivers and adapters live in their own subpaths
 * (`instance-images/drivers/*`, `instance-images/adapters/*`); test helpers in `instance-images/testing`;
 * the zod schemas of records and requests in `instance-images/schemas`.
 *
 * Every name here is exported on purpose (the API report, `api/index.api.md`, shows the surface):
 * what a host calls, implements or reads. Helpers the package uses internally (exact fractions,
 * the storage wrapper, input parsing, actor checks) are not exported; the service classes are
 * exported as types only (the SDK creates them).
 * @module
 */

// The facade
export { createInstanceImages, silentLogger, type InstanceImages, type InstanceImagesOptions } from './create-instance-images';
export type { HealthCheck, HealthReport } from './health';

// Errors
export {
  InstanceImagesError,
  isInstanceImagesError,
  ERROR_CODES,
  ERROR_MESSAGES,
  type ErrorCode,
  type FieldIssue,
  type InstanceImagesErrorOptions,
} from './errors';
// The chunked layout of a storage (issue 14; its zod schemas are on instance-images/schemas)
export { DEFAULT_CHUNK_SIZE_BYTES, type ChunkLayout, type StorageLayout } from './model/image-storage';
export type { ChunkGcOptions, ChunkStorageStats } from './services/chunked-storage';
export { publicError, CUSTOMER_VISIBLE_CODES, type PublicError, type ErrorAudience } from './util/public-error';
// The message catalog (customer texts under stable keys, for hosts that translate)
export {
  MESSAGE_CATALOG,
  REASON_CODES,
  REASON_OPERATIONS,
  EXTRA_REASON_CODES,
  failureReason,
  formatMessage,
  isMessageKey,
  renderMessage,
  statusReasonKey,
  type CatalogMessage,
  type LocatedMessage,
  type MessageKey,
  type ReasonCode,
  type ReasonOperation,
} from './messages';
export { problemMessage, HTTP_ERROR_MESSAGES, CLIENT_ERROR_MESSAGES, type HttpOnlyCode, type ProblemMessageCode } from './messages';

// Records
export type { DiskFormat, Page, PageRequest, StatusReason } from './model/common';
export type { Image, ImageKind, ImagePatch, ImageStatus, OsType, Consistency, Firmware } from './model/image';
export { imageCapBytes } from './model/image';
export type { ImageStorage, StorageBinding, StoragePurpose } from './model/image-storage';
export type { MediaGroup } from './model/media-group';
export type { Iso, IsoStatus } from './model/iso';
export type { Task, TaskPatch, TaskProgress, TaskStatus, TaskType } from './model/task';
export type { UsageInterval } from './model/usage-interval';
export type { AccountLimit, AccountState, LocationSettings } from './model/settings';
export type { ImageShare, ImageShareStatus, ImageTransfer, ImageTransferStatus } from './model/image-move';

// The image lifecycle
export {
  IMAGE_LIFECYCLE,
  IMAGE_STATUSES,
  IMAGE_TRANSITIONS,
  STOCK_IMAGE_TRANSITIONS,
  INITIAL_IMAGE_STATUS,
  canTransition,
  assertTransition,
  type TransitionTable,
} from './lifecycle';

// Events
export type { InstanceImagesEvents, InstanceImagesEmitter, EventActor, ReconcileFinding } from './events';

// Ports the host implements or passes in
export type {
  Repositories,
  ImageRepository,
  ImageShareRepository,
  ImageShareFilter,
  ImageTransferRepository,
  ImageTransferFilter,
  StorageRepository,
  MediaGroupRepository,
  IsoRepository,
  TaskRepository,
  UsageRepository,
  SettingsRepository,
  ImageFilter,
  ImageLimit,
  ImageSort,
  ListPage,
  TaskFilter,
  UsageFilter,
} from './ports/repositories';
export type { TaskTransitionStep, ImageTransitionStep, ImageTransitionOptions } from './ports/repositories';
export {
  DEFAULT_SCRATCH_DIR,
  type HostDirectory,
  type HostHypervisor,
  type HostInstance,
  type HypervisorConnection,
} from './ports/host-directory';
export type { Executor, ExecutorProvider, ExecOptions, ExecResult, ExecStream } from './ports/executor';
export type {
  StorageDriver,
  StorageDriverFactory,
  PresignGetOptions,
  StorageDriverContext,
  StorageCapabilities,
  StoredObject,
  PutBytesOptions,
  PutOptions,
  IncompleteUpload,
} from './ports/storage-driver';
export type {
  HypervisorDriver,
  HypervisorDriverFactory,
  DomainInfo,
  DomainState,
  PrimaryDisk,
  CaptureRequest,
  CaptureResult,
  CaptureOutput,
  ChunkCaptureOutput,
  CapturedChunk,
  ChunkSourceInfo,
  ChunkedSource,
  ChunkedSourceRange,
  ImportedDiskFormat,
  MaterializeRequest,
  MaterializeResult,
  StoragePath,
  ByteProgress,
  RecoveryAction,
} from './ports/hypervisor-driver';
export type { TaskQueue, TaskJob, TaskJobParams, TaskJobRunner, TaskQueueBinding } from './ports/task-queue';
export type { Logger } from './ports/logger';

// Ready-made implementations of ports
export { createMemoryRepositories } from './memory/repositories';
export { createTaskQueue, type TaskQueueOptions } from './tasks/queue';
export type { StorageRegistry } from './storage/registry';
export { MASKED_SECRET } from './storage/registry';

// Task progress
export { TASK_STEPS, type TaskStepSpec } from './tasks/progress';

// The services (created by createInstanceImages; exported as types) and their inputs and answers
export type { Actor } from './services/actor';
export type { ImageService, CreateImageInput, ImageWithTask, ListImagesQuery, ListTasksQuery } from './services/images';
export type { WaitForTaskOptions } from './services/task-wait';
export type { CatalogService } from './services/catalog';
export { MAX_DEPLOY_DISK_BYTES, type DeployInput, type DeployStarted, type DeployableImages } from './services/deploy';
export type { IsoInput, UpdateIsoInput } from './services/isos';
export type { MediaGroupInput } from './services/media-groups';
export type { CreateOsImageInput, UpdateOsImageInput } from './services/os-images';
export type {
  StorageService,
  CreateStorageInput,
  UpdateStorageInput,
  StorageView,
  BrowsedFile,
  ReconcileOptions,
} from './services/storages';
export type { SettingsService, LocationSettingsInput } from './services/settings';
export type { AccountService, AccountClosing, InstanceDeletion } from './services/accounts';
export type { ImageSharingService, ShareImageInput, IncomingSharesQuery, SharedImage } from './services/image-sharing';
export {
  DEFAULT_TRANSFER_TTL_SECONDS,
  type ImageTransferService,
  type OfferTransferInput,
  type ListTransfersQuery,
  type AcceptedTransfer,
} from './services/image-transfers';
export type { ImageCopyService, CopyImageInput, ImageCopyPolicy } from './services/image-copies';
export type { ImageMetadataService, UpdateImageInput, PlanFit } from './services/image-metadata';
export { minimumDiskBytes, planMismatch } from './services/image-metadata';
export type { ImageImportService, OsImageImport, ImportImageInput, ImportOsImageInput } from './services/image-import';
export type { ImageUploadService, UploadOptions, CreateUploadInput, UploadInfo, WriteUploadInput } from './services/image-upload';
export type { PieceChecksum } from './import/staging';
export type {
  ImageExportService,
  DownloadLink,
  DownloadLinkInput,
  ExportDownload,
  SignedLinkQuery,
  LinkedFile,
} from './services/image-export';
export type { StorageDisk, DiskPutBytesOptions, DiskPutOptions, DiskPutResult, StorageProgress } from './storage/disk';
export type { RecoveryReport } from './services/recovery';
export { buildUsageReport, type UsageReportQuery, type UsageReportOptions, type UsageReportSources } from './services/usage';

// Billing (pure): charges of in-memory intervals, the policy, the report's shape
export { calculateCharges, type ChargeResult, type ChargeSegment, type ImageCharge } from './billing/calculator';
export {
  resolveBillingPolicy,
  DEFAULT_BILLING_POLICY,
  type BillingPolicy,
  type BillingPolicyInput,
  type BillingPeriod,
} from './billing/policy';
export type { UsageReport, UsageReportAccountTotal, UsageReportHeader, UsageReportImagesSection, UsageReportLine } from './billing/report';

// Paging helpers for host repositories
export { encodeCursor, decodeCursor, pageSize, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type CursorKey } from './util/cursor';

// Telemetry (OpenTelemetry through @opentelemetry/api) and webhooks
export {
  TELEMETRY_SCOPE,
  TelemetryAttributes,
  TelemetryMetrics,
  type TelemetryOptions,
  type TaskTelemetry,
  type TaskTelemetryOutcome,
} from './telemetry';
export {
  startWebhookDelivery,
  signWebhook,
  verifyWebhook,
  type WebhookDelivery,
  type WebhookEventType,
  type WebhookMessage,
  type WebhookOptions,
} from './webhooks';
export { outboxWebhook, type OutboxWebhookOptions } from './webhooks';
export { startOutboxDelivery, retryDelay, type OutboxDelivery, type OutboxDeliveryOptions, type OutboxTarget } from './outbox-delivery';
export { pruneOutbox, type OutboxRetention, type OutboxPruneReport, type OutboxPruneOptions } from './outbox-delivery';
export type { OutboxDraft, OutboxEvents, OutboxEvent, OutboxClaim, OutboxRepository } from './ports/repositories-outbox';
export type { OutboxWrite } from './ports/repositories-outbox';

// The chunked layout (content-addressed chunks and manifests; docs/architecture.md)
export {
  createChunkStore,
  CHUNK_MANIFEST_FORMAT,
  MIN_CHUNK_SIZE_BYTES,
  MAX_CHUNK_SIZE_BYTES,
  manifestDigest,
  parseManifest,
  serializeManifest,
  standaloneSize,
  isZstdAvailable,
  chunkKey,
  leaseKey,
  SWEEP_MARKER_KEY,
  MANIFEST_SUFFIX,
  type ChunkStore,
  type ChunkStoreOptions,
  type CommitOptions,
  type PendingImage,
  type PreparedImage,
  type WriteImageOptions,
  type ReadImageOptions,
  type ImageChunk,
  type GarbageReport,
  type CollectGarbageOptions,
  type VerifyReport,
  type VerifyOptions,
  type BrokenChunk,
  type ChunkStoreStats,
  type ChunkCodec,
  type ChunkManifest,
  type ChunkManifestSource,
  type ChunkScope,
  type ManifestChunk,
} from './chunks';

// Imports from a URL (destination rules, format detection) and exports
export {
  refusedAddress,
  parseNetwork,
  detectDiskFormat,
  checkImportUrl,
  type AddressCategory,
  type DetectedFormat,
  type ImportFormat,
  type ImportOptions,
  type ResolveHost,
  type DestinationRules,
  type Network,
  type NeedMoreBytes,
  type AddressBytes,
} from './import';
