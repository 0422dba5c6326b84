/**
 * instance-images: the framework-agnostic core. Drivers and adapters live in their own subpaths
 * (`instance-images/drivers/*`, `instance-images/adapters/*`); test helpers in `instance-images/testing`.
 * @module
 */
export * from './errors';
export * from './model';
export * from './lifecycle';
export * from './events';
export type * from './ports';
export { DEFAULT_SCRATCH_DIR } from './ports/host-directory';
export * from './memory';
export { createTaskQueue, type TaskQueueOptions } from './tasks/queue';
export { TASK_STEPS, createProgressTracker, type TaskStepSpec, type ProgressTracker, type ProgressReport } from './tasks/progress';
export {
  createInstanceImages,
  InstanceImagesOptionsSchema,
  silentLogger,
  type InstanceImages,
  type InstanceImagesOptions,
} from './create-instance-images';
export * from './services';
export * from './billing';
export * from './storage';
export { encodeCursor, decodeCursor, pageSize, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, type CursorKey } from './util/cursor';
export { parseOrThrow, zodIssues } from './util/validate';
export { publicError, CUSTOMER_VISIBLE_CODES, type PublicError, type ErrorAudience } from './util/public-error';
export {
  refusedAddress,
  parseNetwork,
  detectDiskFormat,
  checkImportUrl,
  ImportOptionsSchema,
  type AddressCategory,
  type DetectedFormat,
  type ImportFormat,
  type ImportOptions,
  type ResolveHost,
} from './import';
