export type {
  ListPage,
  ImageFilter,
  ImageSort,
  ImageLimit,
  ImageTransitionOptions,
  ImageRepository,
  StorageRepository,
  MediaGroupRepository,
  IsoRepository,
  TaskFilter,
  TaskRepository,
  UsageFilter,
  UsageRepository,
  SettingsRepository,
  Repositories,
  TaskTransitionStep,
  ImageTransitionStep,
} from './repositories';
export type { OutboxDraft, OutboxEvents, OutboxEvent, OutboxClaim, OutboxRepository, OutboxWrite } from './repositories-outbox';
export type { HostInstance, HypervisorConnection, DEFAULT_SCRATCH_DIR, HostHypervisor, HostDirectory } from './host-directory';
export type { ExecOptions, ExecResult, ExecStream, Executor, ExecutorProvider } from './executor';
export type {
  StorageCapabilities,
  StoredObject,
  IncompleteUpload,
  PutBytesOptions,
  PutOptions,
  StorageDriver,
  StorageDriverContext,
  StorageDriverFactory,
  PresignGetOptions,
} from './storage-driver';
export type {
  DomainState,
  PrimaryDisk,
  DomainInfo,
  ByteProgress,
  StoragePath,
  CaptureOutput,
  CapturedChunk,
  ChunkSourceInfo,
  ChunkCaptureOutput,
  CaptureRequest,
  CaptureResult,
  MaterializeRequest,
  ChunkedSource,
  ChunkedSourceRange,
  ImportedDiskFormat,
  MaterializeResult,
  RecoveryAction,
  HypervisorDriver,
  HypervisorDriverFactory,
} from './hypervisor-driver';
export type { TaskJob, TaskJobParams, TaskJobRunner, TaskQueue, TaskQueueBinding } from './task-queue';
export type { Logger } from './logger';
