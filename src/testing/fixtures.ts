/**
 * Record factories for tests: valid records with overridable fields.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Image } from '../model/image';
import type { ImageStorage } from '../model/image-storage';
import type { Iso } from '../model/iso';
import type { MediaGroup } from '../model/media-group';
import type { Task } from '../model/task';
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
  return { id: randomUUID(), name: 'Linux', customerVisible: true, order: 0, createdAt: FIXTURE_TIME, updatedAt: FIXTURE_TIME, ...overrides };
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
