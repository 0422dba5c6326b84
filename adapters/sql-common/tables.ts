/**
 * The table specs of every repository, shared by the SQLite and PostgreSQL migrations and
 * repositories. Column names are the snake_case of the field names unless renamed here.
 * @module
 */
import type { Image } from '../../src/model/image';
import type { ImageShare, ImageTransfer } from '../../src/model/image-move';
import type { ImageStorage, StorageBinding } from '../../src/model/image-storage';
import type { Iso } from '../../src/model/iso';
import type { MediaGroup } from '../../src/model/media-group';
import type { AccountLimit, AccountState, LocationSettings } from '../../src/model/settings';
import type { Task } from '../../src/model/task';
import type { UsageInterval } from '../../src/model/usage-interval';
import type { OutboxEvent } from '../../src/ports/repositories-outbox';
import type { TableSpec } from './table';

/** `ii_images`: custom and stock images. */
export const imagesTable: TableSpec<Image> = {
  name: 'ii_images',
  columns: {
    id: 'text',
    kind: 'text',
    name: 'text',
    description: 'text',
    osType: 'text',
    cloudInit: 'boolean',
    mediaGroupId: 'text',
    accountId: 'text',
    sourceInstanceId: 'text',
    sourceInstanceName: 'text',
    locationId: 'text',
    storageId: 'text',
    hypervisorId: 'text',
    fileKey: 'text',
    format: 'text',
    sizeBytes: 'bigint',
    virtualSizeBytes: 'bigint',
    sha256: 'text',
    consistency: 'text',
    compressed: 'boolean',
    sourceInstanceDeletedAt: 'timestamp',
    protected: 'boolean',
    minDiskBytes: 'bigint',
    firmware: 'text',
    architecture: 'text',
    reservedBytes: 'bigint',
    status: 'text',
    statusReason: 'json',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
    availableAt: 'timestamp',
    deletedAt: 'timestamp',
  },
  optional: ['compressed', 'sourceInstanceDeletedAt', 'protected', 'minDiskBytes', 'firmware', 'architecture', 'reservedBytes'],
};

/** `ii_storages`: image storages. */
export const storagesTable: TableSpec<ImageStorage> = {
  name: 'ii_storages',
  columns: {
    id: 'text',
    name: 'text',
    driver: 'text',
    config: 'json',
    purpose: 'text',
    enabled: 'boolean',
    layout: 'text',
    chunks: 'json',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
  optional: ['layout', 'chunks'],
};

/** `ii_storage_bindings`: which hypervisors use which storage. */
export const bindingsTable: TableSpec<StorageBinding> = {
  name: 'ii_storage_bindings',
  columns: { storageId: 'text', hypervisorId: 'text', createdAt: 'timestamp' },
};

/** `ii_media_groups`. */
export const mediaGroupsTable: TableSpec<MediaGroup> = {
  name: 'ii_media_groups',
  columns: { id: 'text', name: 'text', customerVisible: 'boolean', order: 'integer', createdAt: 'timestamp', updatedAt: 'timestamp' },
  // `order` is a reserved word in SQL
  renamed: { order: 'sort_order' },
};

/** `ii_isos`. */
export const isosTable: TableSpec<Iso> = {
  name: 'ii_isos',
  columns: {
    id: 'text',
    name: 'text',
    description: 'text',
    storageId: 'text',
    fileKey: 'text',
    sizeBytes: 'bigint',
    sha256: 'text',
    customerVisible: 'boolean',
    status: 'text',
    statusReason: 'json',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
  },
};

/** `ii_tasks`: background tasks. */
export const tasksTable: TableSpec<Task> = {
  name: 'ii_tasks',
  columns: {
    id: 'text',
    type: 'text',
    subjectKind: 'text',
    subjectId: 'text',
    accountId: 'text',
    hypervisorId: 'text',
    storageId: 'text',
    status: 'text',
    progress: 'json',
    errorCode: 'text',
    errorMessage: 'text',
    attempts: 'integer',
    workerId: 'text',
    incarnationId: 'text',
    heartbeatAt: 'timestamp',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
    startedAt: 'timestamp',
    finishedAt: 'timestamp',
  },
  optional: ['storageId'],
};

/** `ii_usage_intervals`: the billing ledger. */
export const usageTable: TableSpec<UsageInterval> = {
  name: 'ii_usage_intervals',
  columns: {
    id: 'text',
    imageId: 'text',
    accountId: 'text',
    locationId: 'text',
    sizeBytes: 'bigint',
    rate: 'text',
    from: 'timestamp',
    to: 'timestamp',
  },
  // `from` and `to` are reserved words in SQL
  renamed: { from: 'starts_at', to: 'ends_at' },
};

/** `ii_location_settings`. */
export const locationSettingsTable: TableSpec<LocationSettings> = {
  name: 'ii_location_settings',
  columns: {
    locationId: 'text',
    imagesEnabled: 'boolean',
    urlImportEnabled: 'boolean',
    pricePerGbMonth: 'text',
    currency: 'text',
    defaultImageLimit: 'integer',
    defaultImageBytesLimit: 'bigint',
    updatedAt: 'timestamp',
  },
  optional: ['defaultImageBytesLimit'],
};

/** `ii_account_limits`. */
export const accountLimitsTable: TableSpec<AccountLimit> = {
  name: 'ii_account_limits',
  columns: { accountId: 'text', imageLimit: 'integer', imageBytesLimit: 'bigint', updatedAt: 'timestamp' },
  optional: ['imageBytesLimit'],
};

/** `ii_account_states`: suspended and closed accounts. */
export const accountStatesTable: TableSpec<AccountState> = {
  name: 'ii_account_states',
  columns: { accountId: 'text', status: 'text', since: 'timestamp', updatedAt: 'timestamp' },
};

/** `ii_image_shares`: shares of custom images with other accounts. */
export const imageSharesTable: TableSpec<ImageShare> = {
  name: 'ii_image_shares',
  columns: {
    id: 'text',
    imageId: 'text',
    ownerAccountId: 'text',
    accountId: 'text',
    status: 'text',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
    decidedAt: 'timestamp',
  },
};

/** `ii_image_transfers`: ownership transfers of custom images. */
export const imageTransfersTable: TableSpec<ImageTransfer> = {
  name: 'ii_image_transfers',
  columns: {
    id: 'text',
    imageId: 'text',
    fromAccountId: 'text',
    toAccountId: 'text',
    status: 'text',
    expiresAt: 'timestamp',
    createdAt: 'timestamp',
    updatedAt: 'timestamp',
    decidedAt: 'timestamp',
  },
};

/** `ii_outbox`: events recorded with the writes that cause them, until delivered and pruned. */
export const outboxTable: TableSpec<OutboxEvent> = {
  name: 'ii_outbox',
  columns: {
    id: 'text',
    sequence: 'bigint',
    type: 'text',
    key: 'text',
    data: 'json',
    createdAt: 'timestamp',
    availableAt: 'timestamp',
    attempts: 'integer',
    claimedBy: 'text',
    leaseUntil: 'timestamp',
    deliveredAt: 'timestamp',
    lastError: 'text',
  },
  renamed: { sequence: 'seq', key: 'event_key' },
};
