/**
 * In-memory repositories: the default, and the reference for adapters. Atomic operations are
 * atomic because each runs synchronously inside one call (no await between read and write).
 * @module
 */
import { InstanceImagesError } from '../errors';
import { imageCapBytes, type Image, type ImagePatch, type ImageStatus } from '../model/image';
import type { ImageStorage, StorageBinding } from '../model/image-storage';
import type { Iso } from '../model/iso';
import type { MediaGroup } from '../model/media-group';
import type { AccountLimit, AccountState, LocationSettings } from '../model/settings';
import type { Task, TaskPatch, TaskStatus } from '../model/task';
import type { UsageInterval } from '../model/usage-interval';
import type {
  ImageFilter,
  ImageLimit,
  ImageRepository,
  ImageSort,
  ImageTransitionOptions,
  IsoRepository,
  ListPage,
  MediaGroupRepository,
  Repositories,
  ImageTransitionStep,
  SettingsRepository,
  StorageRepository,
  TaskFilter,
  TaskRepository,
  TaskTransitionStep,
  UsageFilter,
  UsageRepository,
} from '../ports/repositories';
import { paginate } from './paginate';
import { MemoryImageShareRepository, MemoryImageTransferRepository } from './image-moves';
import { MemoryOutboxRepository } from './outbox';
import type { OutboxEvents } from '../ports/repositories-outbox';

const copy = <T>(value: T): T => structuredClone(value);

function conflict(kind: string, id: string): InstanceImagesError {
  return new InstanceImagesError('CONFLICT', `${kind} ${JSON.stringify(id)} already exists`, { details: { kind, id } });
}

function insertInto<T extends { id: string }>(map: Map<string, T>, kind: string, item: T): void {
  if (map.has(item.id)) throw conflict(kind, item.id);
  map.set(item.id, copy(item));
}

function updateIn<T extends { id: string; updatedAt: Date }>(map: Map<string, T>, id: string, patch: Partial<T>, now: Date): T | null {
  const current = map.get(id);
  if (!current) return null;
  const next = { ...current, ...copy(patch), id: current.id, updatedAt: now };
  map.set(id, next);
  return copy(next);
}

function imageMatches(image: Image, filter: ImageFilter): boolean {
  if (filter.kind !== undefined && image.kind !== filter.kind) return false;
  if (filter.accountId !== undefined && image.accountId !== filter.accountId) return false;
  if (filter.storageId !== undefined && image.storageId !== filter.storageId) return false;
  if (filter.sourceInstanceId !== undefined && image.sourceInstanceId !== filter.sourceInstanceId) return false;
  if (filter.mediaGroupId !== undefined && image.mediaGroupId !== filter.mediaGroupId) return false;
  if (filter.statuses !== undefined) return filter.statuses.includes(image.status);
  return filter.includeDeleted === true || image.status !== 'deleted';
}

const isActiveCustom = (accountId: string) => (image: Image) =>
  image.kind === 'custom' && image.accountId === accountId && image.status !== 'deleted';

/** In-memory {@link ImageRepository}. */
export class MemoryImageRepository implements ImageRepository {
  private readonly images = new Map<string, Image>();

  /** @param outbox where `transition` records its events (a private one by default). */
  constructor(private readonly outbox = new MemoryOutboxRepository()) {}

  async get(id: string): Promise<Image | null> {
    const image = this.images.get(id);
    return image ? copy(image) : null;
  }

  async list(filter: ImageFilter = {}, page: ListPage = {}, sort: ImageSort = {}) {
    const by = sort.by ?? 'createdAt';
    const direction = sort.direction ?? (by === 'name' ? 'asc' : 'desc');
    const matching = [...this.images.values()].filter((image) => imageMatches(image, filter));
    const result = paginate(
      matching,
      (image) => [by === 'name' ? image.name : image.createdAt.getTime(), image.id],
      direction,
      page.cursor,
      page.limit,
    );
    return { items: result.items.map(copy), nextCursor: result.nextCursor };
  }

  async countActive(accountId: string): Promise<number> {
    return [...this.images.values()].filter(isActiveCustom(accountId)).length;
  }

  async insert(image: Image): Promise<void> {
    insertInto(this.images, 'Image', image);
  }

  async insertIfUnderLimit(image: Image, limit: ImageLimit): Promise<boolean> {
    if (this.images.has(image.id)) throw conflict('Image', image.id);
    const active = [...this.images.values()].filter(isActiveCustom(limit.accountId));
    if (active.length >= limit.max) return false;
    const bytes = active.reduce((sum, each) => sum + imageCapBytes(each), imageCapBytes(image));
    if (limit.maxBytes !== undefined && limit.maxBytes !== null && bytes > limit.maxBytes) return false;
    this.images.set(image.id, copy(image));
    return true;
  }

  async transition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch: ImagePatch,
    now: Date,
    events?: OutboxEvents<Image>,
    options: ImageTransitionOptions = {},
  ): Promise<Image | null> {
    const next = this.planTransition(id, from, to, patch, now, options);
    if (!next) return null;
    this.outbox.appendNow(events, copy(next), now);
    this.images.set(id, next);
    return copy(next);
  }

  /** @internal The image `transition` would write (nothing is written), or `null` when its compare-and-set fails. */
  planTransition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch: ImagePatch,
    now: Date,
    options: ImageTransitionOptions = {},
  ): Image | null {
    const current = this.images.get(id);
    if (!current || !from.includes(current.status)) return null;
    if (options.unlessProtected === true && current.protected === true) return null;
    return { ...current, ...copy(patch), id: current.id, status: to, updatedAt: now };
  }

  /** @internal Stores an image {@link MemoryImageRepository.planTransition} planned. */
  commit(image: Image): void {
    this.images.set(image.id, image);
  }

  /** @internal A copy of the stored image, read synchronously. */
  peek(id: string): Image | null {
    const image = this.images.get(id);
    return image ? copy(image) : null;
  }

  async update(id: string, patch: ImagePatch, now: Date): Promise<Image | null> {
    return updateIn(this.images, id, patch as Partial<Image>, now);
  }

  async reserveBytes(id: string, bytes: number, maxBytes: number | null, now: Date): Promise<Image | null> {
    const current = this.images.get(id);
    if (!current || current.kind !== 'custom' || current.status !== 'creating' || current.accountId === null) return null;
    if (maxBytes !== null) {
      const others = [...this.images.values()].filter((each) => each.id !== id && isActiveCustom(current.accountId ?? '')(each));
      if (others.reduce((sum, each) => sum + imageCapBytes(each), bytes) > maxBytes) return null;
    }
    return updateIn(this.images, id, { reservedBytes: bytes }, now);
  }

  /**
   * @internal Synchronously (so atomically): whether the image is an available custom image of
   * `fromAccountId` and `to` has room under `limit` (count and bytes, the image's own included); when `move` is true, also gives it to `to`.
   */
  ownerChange(id: string, fromAccountId: string, to: string, limit: ImageLimit | null, now: Date, move: boolean): boolean {
    const current = this.images.get(id);
    if (!current || current.kind !== 'custom' || current.accountId !== fromAccountId || current.status !== 'available') return false;
    if (limit !== null) {
      const active = [...this.images.values()].filter(isActiveCustom(to));
      if (active.length >= limit.max) return false;
      const bytes = active.reduce((sum, each) => sum + imageCapBytes(each), imageCapBytes(current));
      if (limit.maxBytes !== undefined && limit.maxBytes !== null && bytes > limit.maxBytes) return false;
    }
    if (move) this.images.set(id, { ...current, accountId: to, sourceInstanceId: null, sourceInstanceName: null, updatedAt: now });
    return true;
  }
}

/** In-memory {@link StorageRepository}. */
export class MemoryStorageRepository implements StorageRepository {
  private readonly storages = new Map<string, ImageStorage>();
  private readonly bindings = new Map<string, StorageBinding>();

  async get(id: string) {
    const storage = this.storages.get(id);
    return storage ? copy(storage) : null;
  }

  async list(filter: { purpose?: ImageStorage['purpose'] } = {}) {
    return [...this.storages.values()]
      .filter((s) => filter.purpose === undefined || s.purpose === filter.purpose)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1))
      .map(copy);
  }

  async insert(storage: ImageStorage) {
    insertInto(this.storages, 'Image storage', storage);
  }

  async update(id: string, patch: Partial<Omit<ImageStorage, 'id' | 'createdAt'>>, now: Date) {
    return updateIn<ImageStorage>(this.storages, id, patch, now);
  }

  async delete(id: string) {
    for (const [key, binding] of this.bindings) if (binding.storageId === id) this.bindings.delete(key);
    return this.storages.delete(id);
  }

  async bind(storageId: string, hypervisorId: string, now: Date) {
    const key = JSON.stringify([storageId, hypervisorId]);
    const existing = this.bindings.get(key);
    if (existing) return copy(existing);
    const binding: StorageBinding = { storageId, hypervisorId, createdAt: now };
    this.bindings.set(key, binding);
    return copy(binding);
  }

  async unbind(storageId: string, hypervisorId: string) {
    return this.bindings.delete(JSON.stringify([storageId, hypervisorId]));
  }

  async listBindings(filter: { storageId?: string; hypervisorId?: string } = {}) {
    return [...this.bindings.values()]
      .filter(
        (b) =>
          (filter.storageId === undefined || b.storageId === filter.storageId) &&
          (filter.hypervisorId === undefined || b.hypervisorId === filter.hypervisorId),
      )
      .sort((a, b) => (a.storageId === b.storageId ? (a.hypervisorId < b.hypervisorId ? -1 : 1) : a.storageId < b.storageId ? -1 : 1))
      .map(copy);
  }
}

/** In-memory {@link MediaGroupRepository}. */
export class MemoryMediaGroupRepository implements MediaGroupRepository {
  private readonly groups = new Map<string, MediaGroup>();

  async get(id: string) {
    const group = this.groups.get(id);
    return group ? copy(group) : null;
  }

  async list(filter: { customerVisible?: boolean } = {}) {
    return [...this.groups.values()]
      .filter((g) => filter.customerVisible === undefined || g.customerVisible === filter.customerVisible)
      .sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1))
      .map(copy);
  }

  async insert(group: MediaGroup) {
    insertInto(this.groups, 'Media group', group);
  }

  async update(id: string, patch: Partial<Omit<MediaGroup, 'id' | 'createdAt'>>, now: Date) {
    return updateIn<MediaGroup>(this.groups, id, patch, now);
  }

  async delete(id: string) {
    return this.groups.delete(id);
  }
}

/** In-memory {@link IsoRepository}. */
export class MemoryIsoRepository implements IsoRepository {
  private readonly isos = new Map<string, Iso>();

  async get(id: string) {
    const iso = this.isos.get(id);
    return iso ? copy(iso) : null;
  }

  async list(filter: { customerVisible?: boolean; storageId?: string; status?: Iso['status'] } = {}, page: ListPage = {}) {
    const matching = [...this.isos.values()].filter(
      (i) =>
        (filter.customerVisible === undefined || i.customerVisible === filter.customerVisible) &&
        (filter.storageId === undefined || i.storageId === filter.storageId) &&
        (filter.status === undefined || i.status === filter.status),
    );
    const result = paginate(matching, (i) => [i.name, i.id], 'asc', page.cursor, page.limit);
    return { items: result.items.map(copy), nextCursor: result.nextCursor };
  }

  async insert(iso: Iso) {
    insertInto(this.isos, 'ISO', iso);
  }

  async update(id: string, patch: Partial<Omit<Iso, 'id' | 'createdAt'>>, now: Date) {
    return updateIn<Iso>(this.isos, id, patch, now);
  }

  async delete(id: string) {
    return this.isos.delete(id);
  }
}

/** In-memory {@link TaskRepository}. */
export class MemoryTaskRepository implements TaskRepository {
  private readonly tasks = new Map<string, Task>();

  /**
   * @param outbox where `insert` and the transitions record their events (a private one by default).
   * @param images the images `transitionWithImage` moves (without it, the image part never applies).
   */
  constructor(
    private readonly outbox = new MemoryOutboxRepository(),
    private readonly images?: MemoryImageRepository,
  ) {}

  async get(id: string) {
    const task = this.tasks.get(id);
    return task ? copy(task) : null;
  }

  async list(filter: TaskFilter = {}, page: ListPage = {}) {
    const matching = [...this.tasks.values()].filter(
      (t) =>
        (filter.accountId === undefined || t.accountId === filter.accountId) &&
        (filter.statuses === undefined || filter.statuses.includes(t.status)) &&
        (filter.type === undefined || t.type === filter.type) &&
        (filter.subjectId === undefined || t.subjectId === filter.subjectId),
    );
    const result = paginate(matching, (t) => [t.createdAt.getTime(), t.id], 'desc', page.cursor, page.limit);
    return { items: result.items.map(copy), nextCursor: result.nextCursor };
  }

  async insert(task: Task, events?: OutboxEvents<Task>) {
    if (this.tasks.has(task.id)) throw conflict('Task', task.id);
    this.outbox.appendNow(events, copy(task), task.createdAt);
    insertInto(this.tasks, 'Task', task);
  }

  async update(id: string, patch: TaskPatch, now: Date) {
    return updateIn(this.tasks, id, patch as Partial<Task>, now);
  }

  async transition(id: string, from: readonly TaskStatus[], to: TaskStatus, patch: TaskPatch, now: Date, events?: OutboxEvents<Task>) {
    const current = this.tasks.get(id);
    if (!current || !from.includes(current.status)) return null;
    const next: Task = { ...current, ...copy(patch), id: current.id, status: to, updatedAt: now };
    this.outbox.appendNow(events, copy(next), now);
    this.tasks.set(id, next);
    return copy(next);
  }

  async transitionWithImage(task: TaskTransitionStep, image: ImageTransitionStep, now: Date) {
    const current = this.tasks.get(task.id);
    if (!current || !task.from.includes(current.status)) return null;
    const ended: Task = { ...current, ...copy(task.patch), id: current.id, status: task.to, updatedAt: now };
    const moved = this.images?.planTransition(image.id, image.from, image.to, image.patch, now) ?? null;
    // Both sets of events are built (and checked) before either record is written: all or nothing.
    const drafts = [...(task.events?.(copy(ended)) ?? []), ...(moved && image.events ? image.events(copy(moved)) : [])];
    this.outbox.appendNow((all: typeof drafts) => all, drafts, now);
    this.tasks.set(task.id, ended);
    if (moved) this.images?.commit(moved);
    return { task: copy(ended), image: moved ? copy(moved) : null };
  }

  async listStale(before: Date) {
    return [...this.tasks.values()]
      .filter((t) => t.status === 'running' && (t.heartbeatAt === null || t.heartbeatAt.getTime() < before.getTime()))
      .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime())
      .map(copy);
  }
}

function usageMatches(interval: UsageInterval, filter: UsageFilter): boolean {
  if (filter.accountId !== undefined && interval.accountId !== filter.accountId) return false;
  if (filter.imageId !== undefined && interval.imageId !== filter.imageId) return false;
  if (filter.locationId !== undefined && interval.locationId !== filter.locationId) return false;
  if (filter.openOnly && interval.to !== null) return false;
  if (filter.overlapping) {
    const { from, to } = filter.overlapping;
    if (interval.from.getTime() >= to.getTime()) return false;
    if (interval.to !== null && interval.to.getTime() <= from.getTime()) return false;
  }
  return true;
}

/** In-memory {@link UsageRepository}. */
export class MemoryUsageRepository implements UsageRepository {
  private readonly intervals = new Map<string, UsageInterval>();

  /** @param outbox where `insert` and `close` record their events (a private one by default). */
  constructor(private readonly outbox = new MemoryOutboxRepository()) {}

  async get(id: string) {
    const interval = this.intervals.get(id);
    return interval ? copy(interval) : null;
  }

  async list(filter: UsageFilter = {}, page: ListPage = {}) {
    const matching = [...this.intervals.values()].filter((i) => usageMatches(i, filter));
    const result = paginate(matching, (i) => [i.from.getTime(), i.id], 'asc', page.cursor, page.limit);
    return { items: result.items.map(copy), nextCursor: result.nextCursor };
  }

  async insert(interval: UsageInterval, events?: OutboxEvents<UsageInterval>) {
    if (this.intervals.has(interval.id)) throw conflict('Usage interval', interval.id);
    this.outbox.appendNow(events, copy(interval), interval.from);
    insertInto(this.intervals, 'Usage interval', interval);
  }

  async close(id: string, to: Date, events?: OutboxEvents<UsageInterval>) {
    const current = this.intervals.get(id);
    if (!current || current.to !== null) return null;
    const next = { ...current, to };
    this.outbox.appendNow(events, copy(next), to);
    this.intervals.set(id, next);
    return copy(next);
  }
}

/** In-memory {@link SettingsRepository}. */
export class MemorySettingsRepository implements SettingsRepository {
  private readonly locations = new Map<string, LocationSettings>();
  private readonly limits = new Map<string, AccountLimit>();
  private readonly states = new Map<string, AccountState>();

  /** @param outbox where `putAccountState` records its events (a private one by default). */
  constructor(private readonly outbox = new MemoryOutboxRepository()) {}

  async getLocation(locationId: string) {
    const settings = this.locations.get(locationId);
    return settings ? copy(settings) : null;
  }

  async putLocation(settings: LocationSettings) {
    this.locations.set(settings.locationId, copy(settings));
  }

  async listLocations() {
    return [...this.locations.values()].sort((a, b) => (a.locationId < b.locationId ? -1 : 1)).map(copy);
  }

  async getAccountLimit(accountId: string) {
    const limit = this.limits.get(accountId);
    return limit ? copy(limit) : null;
  }

  async putAccountLimit(accountId: string, limit: AccountLimit | null) {
    if (limit === null) this.limits.delete(accountId);
    else this.limits.set(accountId, copy({ ...limit, accountId }));
  }

  async getAccountState(accountId: string) {
    const state = this.states.get(accountId);
    return state ? copy(state) : null;
  }

  async putAccountState(accountId: string, state: AccountState | null, events?: OutboxEvents<AccountState | null>, now?: Date) {
    this.outbox.appendNow(events, state === null ? null : copy({ ...state, accountId }), now ?? state?.updatedAt ?? new Date());
    if (state === null) this.states.delete(accountId);
    else this.states.set(accountId, copy({ ...state, accountId }));
  }
}

/** Creates a fresh set of in-memory repositories. */
export function createMemoryRepositories(): Repositories {
  const outbox = new MemoryOutboxRepository();
  const images = new MemoryImageRepository(outbox);
  return {
    images,
    storages: new MemoryStorageRepository(),
    mediaGroups: new MemoryMediaGroupRepository(),
    isos: new MemoryIsoRepository(),
    tasks: new MemoryTaskRepository(outbox, images),
    usage: new MemoryUsageRepository(outbox),
    settings: new MemorySettingsRepository(outbox),
    imageShares: new MemoryImageShareRepository(outbox),
    imageTransfers: new MemoryImageTransferRepository(images, outbox),
    outbox,
  };
}
