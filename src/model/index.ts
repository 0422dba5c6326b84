export {
  IdSchema,
  NameSchema,
  DescriptionSchema,
  DecimalStringSchema,
  BytesSchema,
  Sha256Schema,
  DiskFormatSchema,
  PageRequestSchema,
  StatusReasonSchema,
  type DiskFormat,
  type Page,
  type PageRequest,
  type StatusReason,
} from './common';
export {
  ImageStatusSchema,
  ImageKindSchema,
  OsTypeSchema,
  ConsistencySchema,
  ImageSchema,
  type ImageStatus,
  type ImageKind,
  type OsType,
  type Consistency,
  type Image,
  type ImagePatch,
  FirmwareSchema,
  type Firmware,
  ArchitectureSchema,
  imageCapBytes,
} from './image';
export {
  StoragePurposeSchema,
  ImageStorageSchema,
  StorageBindingSchema,
  type StoragePurpose,
  type ImageStorage,
  type StorageBinding,
} from './image-storage';
export { MediaGroupSchema, type MediaGroup } from './media-group';
export { IsoStatusSchema, IsoSchema, type IsoStatus, type Iso } from './iso';
export {
  TaskTypeSchema,
  TaskStatusSchema,
  TaskProgressSchema,
  TaskSchema,
  type TaskType,
  type TaskStatus,
  type TaskProgress,
  type Task,
  type TaskPatch,
} from './task';
export { UsageIntervalSchema, type UsageInterval } from './usage-interval';
export {
  LocationSettingsSchema,
  AccountLimitSchema,
  AccountStateSchema,
  type LocationSettings,
  type AccountLimit,
  type AccountState,
} from './settings';
export {
  ImageShareStatusSchema,
  OPEN_SHARE_STATUSES,
  ImageShareSchema,
  ImageTransferStatusSchema,
  ImageTransferSchema,
  type ImageShareStatus,
  type ImageShare,
  type ImageTransferStatus,
  type ImageTransfer,
} from './image-move';
