/**
 * Record factories for tests: valid records with overridable fields.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Image, ImagePatch } from '../model/image';
import type { ImageStorage } from '../model/image-storage';
import type { Iso } from '../model/iso';
import type { MediaGroup } from '../model/media-group';
import type { LocationSettings } from '../model/settings';
import type { Task, TaskPatch } from '../model/task';
import type { UsageInterval } from '../model/usage-interval';

/** A fixed base time for fixtures (whole milliseconds, so every database keeps it exactly). */
export const FIXTURE_TIME = new Date('2026-11-01T00:00:00.000Z');

/** A time `minutes` after {@link FIXTURE_TIME}. */
export function fixtureTime(minutes: number): Date {
  return new Date(FIXTURE_TIME.getTime() + minutes * 60_000);
}

/** A valid custom image in `creating`, with overrides. */
export function makeImage(overrides: Partial<Image> = {}): Image {
  return {
    id: randomUUID(),
    kind: 'custom',
    name: 'web-server-v2',
    description: '',
    osType: 'linux',
    cloudInit: false,
    mediaGroupId: null,
    accountId: 'acct-1',
    sourceInstanceId: 'vm-1',
    sourceInstanceName: 'web-1',
    locationId: 'loc-1',
    storageId: 'storage-1',
    hypervisorId: 'hv-1',
    fileKey: `images/${randomUUID()}.qcow2`,
    format: 'qcow2',
    sizeBytes: null,
    virtualSizeBytes: null,
    sha256: null,
    consistency: null,
    status: 'creating',
    statusReason: null,
    createdAt: FIXTURE_TIME,
    updatedAt: FIXTURE_TIME,
    availableAt: null,
    deletedAt: null,
    ...overrides,
  };
}

/** A valid image storage, with overrides. */
export function makeStorage(overrides: Partial<ImageStorage> = {}): ImageStorage {
  return {
    id: randomUUID(),
    name: 'local-images',
    driver: 'local',
    config: { path: '/var/lib/instance-images' },
    purpose: 'custom-images',
    enabled: true,
    createdAt: FIXTURE_TIME,
    updatedAt: FIXTURE_TIME,
    ...overrides,
  };
}

/** A valid media group, with overrides. */
export function makeMediaGroup(overrides: Partial<MediaGroup> = {}): MediaGroup {
  return {
    id: randomUUID(),
    name: 'Linux',
    customerVisible: true,
    order: 0,
    createdAt: FIXTURE_TIME,
    updatedAt: FIXTURE_TIME,
    ...overrides,
  };
}

/** A valid ISO, with overrides. */
export function makeIso(overrides: Partial<Iso> = {}): Iso {
  return {
    id: randomUUID(),
    name: 'debian-12-netinst',
    description: '',
    storageId: 'templates-1',
    fileKey: `isos/${randomUUID()}.iso`,
    sizeBytes: 1024,
    sha256: null,
    customerVisible: true,
    status: 'available',
    statusReason: null,
    createdAt: FIXTURE_TIME,
    updatedAt: FIXTURE_TIME,
    ...overrides,
  };
}

/** A valid queued task, with overrides. */
export function makeTask(overrides: Partial<Task> = {}): Task {
  return {
    id: randomUUID(),
    type: 'capture',
    subjectKind: 'image',
    subjectId: randomUUID(),
    accountId: 'acct-1',
    hypervisorId: 'hv-1',
    status: 'queued',
    progress: { step: 'queued', percent: 0, bytesDone: 0, bytesTotal: null },
    errorCode: null,
    errorMessage: null,
    attempts: 0,
    workerId: 'worker-1',
    incarnationId: 'incarnation-1',
    heartbeatAt: null,
    createdAt: FIXTURE_TIME,
    updatedAt: FIXTURE_TIME,
    startedAt: null,
    finishedAt: null,
    ...overrides,
  };
}

/** A valid usage interval, with overrides. */
export function makeUsageInterval(overrides: Partial<UsageInterval> = {}): UsageInterval {
  return {
    id: randomUUID(),
    imageId: randomUUID(),
    accountId: 'acct-1',
    locationId: 'loc-1',
    sizeBytes: 20 * 2 ** 30,
    rate: '0.05',
    from: FIXTURE_TIME,
    to: null,
    ...overrides,
  };
}

// ---------- complete records: every optional field set to a value other than its default ----------
// A host's mapper that forgets a column (or maps false/0/'' to null) fails the round-trip cases
// built on these. Sizes exceed 2^32 (a 32-bit column truncates them), text has a newline and
// non-ASCII characters, and every nullable field is non-null.

const BIG = 2 ** 33 + 7;

/** An image with every field set (`compressed: false`, sizes above 2^32, every nullable field non-null), with overrides. */
export function makeCompleteImage(overrides: Partial<Image> = {}): Image {
  return makeImage({
    description: 'golden\nimage ü 🚀',
    osType: 'windows',
    cloudInit: true,
    mediaGroupId: 'mg-complete',
    accountId: 'acct-complete',
    sourceInstanceId: 'vm-complete',
    sourceInstanceName: 'web-ü',
    locationId: 'loc-complete',
    storageId: 'storage-complete',
    hypervisorId: 'hv-complete',
    format: 'raw',
    sizeBytes: BIG,
    virtualSizeBytes: BIG * 4,
    sha256: 'a1'.repeat(32),
    consistency: 'filesystem-frozen',
    compressed: false,
    sourceInstanceDeletedAt: fixtureTime(5),
    protected: true,
    minDiskBytes: BIG * 2,
    firmware: 'uefi',
    architecture: 'aarch64',
    reservedBytes: BIG * 5,
    status: 'available',
    statusReason: { code: 'VERIFIED', message: 'checked ✓' },
    createdAt: fixtureTime(1),
    updatedAt: fixtureTime(2),
    availableAt: fixtureTime(3),
    deletedAt: fixtureTime(4),
    ...overrides,
  });
}

/** A patch that changes every mutable field of {@link makeCompleteImage} to another non-default value. */
export function completeImagePatch(): Required<Omit<ImagePatch, 'updatedAt'>> {
  return {
    name: 'renamed-image',
    description: 'second\tversion',
    osType: 'bsd',
    cloudInit: false,
    mediaGroupId: 'mg-other',
    sourceInstanceId: 'vm-other',
    sourceInstanceName: 'db-2',
    locationId: 'loc-other',
    storageId: 'storage-other',
    hypervisorId: 'hv-other',
    fileKey: 'images/other.qcow2',
    format: 'qcow2',
    sizeBytes: BIG + 1,
    virtualSizeBytes: BIG * 8,
    sha256: 'b2'.repeat(32),
    consistency: 'crash-consistent',
    compressed: true,
    sourceInstanceDeletedAt: fixtureTime(15),
    protected: false,
    minDiskBytes: BIG * 3,
    firmware: 'bios',
    architecture: 'x86_64',
    reservedBytes: BIG * 6,
    statusReason: { code: 'OTHER', message: 'other reason' },
    availableAt: fixtureTime(13),
    deletedAt: fixtureTime(14),
  };
}

/**
 * A storage with every field set (a nested config, `enabled: false`, purpose `templates`, the
 * chunked layout with non-default settings), with overrides.
 */
export function makeCompleteStorage(overrides: Partial<ImageStorage> = {}): ImageStorage {
  return makeStorage({
    name: 'complete-storage',
    driver: 's3',
    config: { bucket: 'images', prefix: 'ü/', port: 9000, tls: false, tags: ['a', 'b'], nested: { empty: null, deep: { n: 1.5 } } },
    purpose: 'templates',
    enabled: false,
    layout: 'chunks',
    chunks: { scope: 'account', codec: 'zstd', chunkSizeBytes: 2 ** 20 },
    createdAt: fixtureTime(1),
    updatedAt: fixtureTime(2),
    ...overrides,
  });
}

/** A media group with every field set (hidden, a non-zero order), with overrides. */
export function makeCompleteMediaGroup(overrides: Partial<MediaGroup> = {}): MediaGroup {
  return makeMediaGroup({
    name: 'BSD ü',
    customerVisible: false,
    order: 7,
    createdAt: fixtureTime(1),
    updatedAt: fixtureTime(2),
    ...overrides,
  });
}

/** An ISO with every field set (hidden, in error with a reason, a size above 2^32), with overrides. */
export function makeCompleteIso(overrides: Partial<Iso> = {}): Iso {
  return makeIso({
    name: 'complete-iso',
    description: 'installer\nü',
    storageId: 'templates-complete',
    sizeBytes: BIG,
    sha256: 'c3'.repeat(32),
    customerVisible: false,
    status: 'error',
    statusReason: { code: 'UPLOAD_FAILED', message: 'the upload stopped' },
    createdAt: fixtureTime(1),
    updatedAt: fixtureTime(2),
    ...overrides,
  });
}

/** A task with every field set (failed, with progress, error, attempts and every time), with overrides. */
export function makeCompleteTask(overrides: Partial<Task> = {}): Task {
  return makeTask({
    type: 'deploy',
    subjectKind: 'instance',
    accountId: 'acct-complete',
    hypervisorId: 'hv-complete',
    storageId: 'storage-complete',
    status: 'failed',
    progress: { step: 'copying', percent: 37, bytesDone: BIG, bytesTotal: BIG * 2 },
    workerId: 'worker-complete',
    incarnationId: 'incarnation-complete',
    errorCode: 'DEPLOY_FAILED',
    errorMessage: 'the copy failed\nü',
    attempts: 3,
    heartbeatAt: fixtureTime(3),
    createdAt: fixtureTime(1),
    updatedAt: fixtureTime(2),
    startedAt: fixtureTime(4),
    finishedAt: fixtureTime(5),
    ...overrides,
  });
}

/** A patch that changes every mutable field of {@link makeCompleteTask} to another non-default value. */
export function completeTaskPatch(): Required<Omit<TaskPatch, 'updatedAt'>> {
  return {
    hypervisorId: 'hv-other',
    progress: { step: 'verifying', percent: 64, bytesDone: BIG + 1, bytesTotal: BIG * 3 },
    workerId: 'worker-other',
    incarnationId: 'incarnation-other',
    errorCode: 'OTHER',
    errorMessage: 'other message',
    attempts: 4,
    heartbeatAt: fixtureTime(13),
    startedAt: fixtureTime(14),
    finishedAt: fixtureTime(15),
  };
}

/** A closed usage interval with every field set (a size above 2^32, an 18-digit rate), with overrides. */
export function makeCompleteUsageInterval(overrides: Partial<UsageInterval> = {}): UsageInterval {
  return makeUsageInterval({
    accountId: 'acct-complete',
    locationId: 'loc-complete',
    sizeBytes: BIG,
    rate: '123.000000000000000001',
    from: fixtureTime(1),
    to: fixtureTime(2),
    ...overrides,
  });
}

/** Location settings with every field set (enabled, a price, EUR, a default cap), with overrides. */
export function makeCompleteLocationSettings(overrides: Partial<LocationSettings> = {}): LocationSettings {
  return {
    locationId: 'loc-complete',
    imagesEnabled: true,
    urlImportEnabled: true,
    pricePerGbMonth: '0.000000000000000001',
    currency: 'EUR',
    defaultImageLimit: 9,
    defaultImageBytesLimit: BIG * 5,
    updatedAt: fixtureTime(1),
    ...overrides,
  };
}
