/**
 * zod schemas of the HTTP layer: request shapes the core takes as positional arguments (bindings,
 * account limits, ISO mounts, query strings of list routes) and the response envelopes, so that
 * the OpenAPI document is generated from zod like everything else.
 * @module
 */
import { z } from 'zod';
import { IdSchema, PageRequestSchema } from '../../src/model/common';
import { ImageSchema } from '../../src/model/image';
import { ImageStorageSchema, StorageBindingSchema, StoragePurposeSchema } from '../../src/model/image-storage';
import { IsoSchema } from '../../src/model/iso';
import { MediaGroupSchema } from '../../src/model/media-group';
import { AccountLimitSchema, LocationSettingsSchema } from '../../src/model/settings';
import { TaskSchema } from '../../src/model/task';
import { IsoInputSchema } from '../../src/services/catalog';
import { PlanFitSchema } from '../../src/services/image-metadata';
import { ListImagesQuerySchema, ListTasksQuerySchema } from '../../src/services/images';
import { UsageReportQuerySchema } from '../../src/services/settings';

// ---------- requests ----------

/** Page of a list route: cursor and limit. */
export const PageQuerySchema = PageRequestSchema.extend({ limit: z.number().int().min(1).max(1000).optional() });
/** GET /images (customers): My Images filters. */
export const MyImagesQuerySchema = ListImagesQuerySchema.omit({ accountId: true, includeDeleted: true });
/** GET /tasks (customers). */
export const MyTasksQuerySchema = ListTasksQuerySchema.omit({ accountId: true });
/** GET /usage (customers): the period. */
export const MyUsageQuerySchema = UsageReportQuerySchema.omit({ accountId: true });
/** GET /os-picker: admins may name an account whose My Images to include. */
export const OsPickerQuerySchema = z.strictObject({ accountId: IdSchema.optional(), ...PlanFitSchema.shape });
/** POST /instances/:instanceId/iso. */
export const MountIsoBodySchema = z.strictObject({ isoId: IdSchema });
/** GET /admin/storages. */
export const StorageListQuerySchema = z.strictObject({ purpose: StoragePurposeSchema.optional() });
/** POST /admin/storages/:storageId/bindings. */
export const BindingBodySchema = z.strictObject({ hypervisorId: IdSchema });
/** GET /admin/storages/:storageId/health. */
export const HealthQuerySchema = z.strictObject({ hypervisorId: IdSchema.optional() });
/** GET /admin/storages/:storageId/browse. */
export const BrowseQuerySchema = z.strictObject({
  hypervisorId: IdSchema.optional(),
  prefix: z.string().max(1024).optional(),
  cursor: z.string().max(1000).optional(),
  limit: z.number().int().min(1).max(1000).optional(),
});
/** GET /admin/os-images. */
export const OsImageListQuerySchema = PageQuerySchema.extend({ mediaGroupId: IdSchema.optional() });
/** PUT /admin/isos/upload: the ISO's fields as query parameters (the body is the file). */
export const IsoUploadQuerySchema = IsoInputSchema;
/** DELETE /admin/isos/:isoId. */
export const DeleteIsoQuerySchema = z.strictObject({ deleteFile: z.boolean().optional(), hypervisorId: IdSchema.optional() });
/** PUT /admin/accounts/:accountId/limit. */
export const AccountLimitBodySchema = z.strictObject({
  imageLimit: z.number().int().nonnegative().max(1_000_000),
  /** The cap of the account's total image bytes; omitted or null: the location's default. */
  imageBytesLimit: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).nullable().optional(),
});
/** PUT /images/:imageId/protection. */
export const ProtectionBodySchema = z.strictObject({ protected: z.boolean() });
/** GET /admin/usage. */
export const AdminUsageQuerySchema = UsageReportQuerySchema;

// ---------- responses ----------

const page = <T extends z.ZodType>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });

/** An image and the task working on it (`task` is null when nothing had to be done). */
export const ImageWithTaskSchema = z.object({ image: ImageSchema, task: TaskSchema.nullable() });
/** A page of images. */
export const ImagePageSchema = page(ImageSchema);
/** A page of tasks. */
export const TaskPageSchema = page(TaskSchema);
/** A page of ISOs. */
export const IsoPageSchema = page(IsoSchema);
/** A storage as answered: secrets masked, with its bindings. */
export const StorageViewSchema = ImageStorageSchema.extend({ hypervisorIds: z.array(IdSchema) });
/** The OS picker. */
export const DeployableImagesSchema = z.object({
  groups: z.array(z.object({ group: MediaGroupSchema, images: z.array(ImageSchema) })),
  ungrouped: z.array(ImageSchema),
  myImages: z.array(ImageSchema),
  sharedWithMe: z.array(ImageSchema),
});
/** A deploy that has started: its task (the disk exists once the task is `completed`). */
export const DeployStartedSchema = z.object({ task: TaskSchema });
/** What a chunked storage holds: manifests, chunks, logical and unique bytes, the dedup ratio. */
export const ChunkStorageStatsSchema = z.object({
  manifests: z.number().int(),
  chunks: z.number().int(),
  /** The sum of the images' standalone sizes. */
  logicalBytes: z.number().int(),
  /** Bytes of the stored chunks. */
  uniqueBytes: z.number().int(),
  /** logicalBytes / uniqueBytes as a decimal string. */
  dedupRatio: z.string(),
  /** Manifests that could not be read; not counted above. */
  unreadableManifests: z.number().int(),
});
/** A storage health check (`chunks` for a chunked storage). */
export const StorageHealthSchema = z.object({
  ok: z.boolean(),
  message: z.string(),
  freeBytes: z.number().int().nullable(),
  chunks: ChunkStorageStatsSchema.optional(),
});
/** One file of the image browser. */
export const BrowsedFileSchema = z.object({
  key: z.string(),
  size: z.number().int(),
  modifiedAt: z.date(),
  kind: z.enum(['ok', 'orphan', 'stale', 'size-mismatch']),
  imageId: z.string().nullable(),
  /** The running task the file belongs to (a work file of an import); absent otherwise. */
  taskId: z.string().optional(),
  message: z.string(),
});
/** A page of the image browser (the first page of a chunked storage carries its `chunks` statistics). */
export const BrowsePageSchema = page(BrowsedFileSchema).extend({ chunks: ChunkStorageStatsSchema.optional() });
/** One reconcile finding. */
export const ReconcileFindingSchema = z.object({
  storageId: z.string(),
  hypervisorId: z.string().nullable(),
  kind: z.enum(['ok', 'orphan', 'missing', 'stale', 'size-mismatch', 'leftover']),
  key: z.string(),
  imageId: z.string().nullable(),
  message: z.string(),
  action: z.enum(['deleted-file', 'marked-error', 'none']).optional(),
  dryRun: z.boolean().optional(),
});
/** The answer of a reconcile run. */
export const ReconcileResultSchema = z.object({ findings: z.array(ReconcileFindingSchema) });
/** A media group list. */
export const MediaGroupListSchema = z.object({ items: z.array(MediaGroupSchema) });
/** A storage list. */
export const StorageListSchema = z.object({ items: z.array(StorageViewSchema) });
/** A location settings list. */
export const LocationSettingsListSchema = z.object({ items: z.array(LocationSettingsSchema) });
/** An account's limit override (null: none). */
export const AccountLimitResponseSchema = z.object({ limit: AccountLimitSchema.nullable() });
/** A deleted OS image. */
export const ImageResponseSchema = z.object({ image: ImageSchema });
/** A refreshed image size. */
export const RefreshSizeResponseSchema = z.object({ image: ImageSchema, task: TaskSchema });
/** What a recovery pass did. */
export const RecoveryReportSchema = z.object({
  interruptedTasks: z.array(z.string()),
  failedImages: z.array(z.string()),
  removedFiles: z.array(z.string()),
  hypervisorActions: z.array(z.string()),
});
/** The usage report (Images section); amounts are decimal strings. */
export const UsageReportSchema = z.looseObject({
  accountId: z.string().nullable(),
  period: z.object({ from: z.date(), to: z.date() }),
  currency: z.string(),
  policy: z.record(z.string(), z.unknown()),
  images: z.looseObject({
    lines: z.array(
      z.looseObject({
        imageId: z.string(),
        imageName: z.string().nullable(),
        accountId: z.string(),
        locationId: z.string(),
        sizeBytes: z.number().int(),
        sizeGb: z.string(),
        rate: z.string(),
        billedHours: z.string(),
        amount: z.string(),
        exactAmount: z.string(),
      }),
    ),
    total: z.string(),
    exactTotal: z.string(),
    accounts: z.array(z.object({ accountId: z.string(), lineCount: z.number().int(), total: z.string() })),
  }),
});
/** A problem response (RFC 9457). */
export const ProblemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string(),
  fields: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});
/** Re-exported for the route table. */
export { ImageSchema, IsoSchema, MediaGroupSchema, TaskSchema, StorageBindingSchema, LocationSettingsSchema };
