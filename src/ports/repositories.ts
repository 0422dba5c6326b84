/**
 * Repository ports. A host implements them over its own database, or uses the memory,
 * SQLite or PostgreSQL implementations. Every implementation must pass the conformance
 * suite exported from `instance-images/testing`.
 *
 * Conventions for every repository:
 * - `get` returns `null` when nothing has the id; it never throws NOT_FOUND.
 * - `insert` throws CONFLICT when the id exists.
 * - `update` returns the updated record, or `null` when nothing has the id.
 * - Records are returned as copies: mutating a returned object never changes the store.
 * - Lists are paged with an opaque cursor (keyset); `limit` defaults to 50.
 * @module
 */
import type { Page } from '../model/common';
import type { Image, ImageKind, ImagePatch, ImageStatus } from '../model/image';
import type { ImageShare, ImageShareStatus, ImageTransfer, ImageTransferStatus } from '../model/image-move';
import type { ImageStorage, StorageBinding } from '../model/image-storage';
import type { Iso } from '../model/iso';
import type { MediaGroup } from '../model/media-group';
import type { AccountLimit, AccountState, LocationSettings } from '../model/settings';
import type { Task, TaskPatch, TaskStatus, TaskType } from '../model/task';
import type { UsageInterval } from '../model/usage-interval';
import type { OutboxEvents, OutboxRepository } from './repositories-outbox';

/** Paging options of a list call. */
export interface ListPage {
  /** The cursor from the previous page's `nextCursor`. */
  cursor?: string | null;
  /** Page size, 1–1000; default 50. Out of range is VALIDATION_FAILED naming `limit` (never clamped). */
  limit?: number;
}

/** Filter of {@link ImageRepository.list}. All given fields must match. */
export interface ImageFilter {
  kind?: ImageKind;
  accountId?: string;
  statuses?: ImageStatus[];
  /** Include `deleted` images (excluded by default, unless `statuses` names it). */
  includeDeleted?: boolean;
  storageId?: string;
  sourceInstanceId?: string;
  mediaGroupId?: string;
}

/** Sort order of image lists: newest first (default) or by name. */
export interface ImageSort {
  /** Sort key; default `createdAt`. */
  by?: 'createdAt' | 'name';
  /** Direction; default `desc` for createdAt and `asc` for name. */
  direction?: 'asc' | 'desc';
}

/** The cap checked by {@link ImageRepository.insertIfUnderLimit}. */
export interface ImageLimit {
  /** The account whose images are counted. */
  accountId: string;
  /** The maximum number of the account's custom images that are not `deleted`. */
  max: number;
  /**
   * Optional: the maximum total bytes of the account's custom images that are not `deleted`, each
   * counted as `imageCapBytes` (file size once known, else virtual size), the new image included.
   * Absent or null: no byte cap.
   */
  maxBytes?: number | null;
}

/** Extra conditions of {@link ImageRepository.transition}'s compare-and-set. */
export interface ImageTransitionOptions {
  /**
   * Also require the image not to be protected (`protected` absent, null or false), in the same
   * atomic step: a delete's compare-and-set, so that a protection set concurrently (itself a
   * compare-and-set on the status) is never overtaken. @default false
   */
  unlessProtected?: boolean;
}

/** Images: custom (My Images) and stock (OS templates). */
export interface ImageRepository {
  /** The image, or `null`. */
  get(id: string): Promise<Image | null>;
  /** A page of images matching the filter (without `deleted` unless asked for). */
  list(filter?: ImageFilter, page?: ListPage, sort?: ImageSort): Promise<Page<Image>>;
  /** Counts the account's custom images that are not `deleted`. */
  countActive(accountId: string): Promise<number>;
  /** Inserts an image. @throws CONFLICT when the id exists. */
  insert(image: Image): Promise<void>;
  /**
   * Atomically: counts the account's custom images that are not `deleted` and inserts `image`
   * only when that count is below `limit.max` and (when `limit.maxBytes` is set) their total
   * `imageCapBytes` plus the new image's is at most `limit.maxBytes`. Must hold under any number of
   * concurrent callers (N parallel calls against a cap of K leave exactly K; likewise for bytes).
   * @returns `true` when inserted, `false` when the cap was reached.
   * @throws CONFLICT when the id exists.
   */
  insertIfUnderLimit(image: Image, limit: ImageLimit): Promise<boolean>;
  /**
   * Compare-and-set of the status: atomically, when the image's current status is one of `from`,
   * sets `status = to`, applies `patch` and `updatedAt = now`. Of two racing callers with the same
   * `from`, exactly one succeeds. It does not check the lifecycle table (the service does).
   * `events` (when given) are recorded in the outbox atomically with the change, built from the
   * updated image; a failed compare-and-set records none. `to` may equal the current status (a
   * change of other fields conditional on the status, as protection is). With
   * `options.unlessProtected`, a protected image is left unchanged too.
   * @returns the updated image, or `null` when the image is missing, its status is not in `from`,
   *   or (with `unlessProtected`) it is protected.
   */
  transition(
    id: string,
    from: readonly ImageStatus[],
    to: ImageStatus,
    patch: ImagePatch,
    now: Date,
    events?: OutboxEvents<Image>,
    options?: ImageTransitionOptions,
  ): Promise<Image | null>;
  /** Updates fields other than the status. @returns the updated image, or `null`. */
  update(id: string, patch: ImagePatch, now: Date): Promise<Image | null>;
  /**
   * Atomically sets the `reservedBytes` of a `creating` custom image (and `updatedAt = now`), when
   * (with `maxBytes` not null) the `imageCapBytes` of its account's other custom images that are
   * not `deleted`, plus `bytes`, is at most `maxBytes`. Must hold under any number of concurrent
   * callers, like {@link ImageRepository.insertIfUnderLimit} (imports of one account growing their
   * holds together never pass the cap).
   * @returns the updated image, or `null` when it is missing, not a creating custom image, or the cap would be passed.
   */
  reserveBytes(id: string, bytes: number, maxBytes: number | null, now: Date): Promise<Image | null>;
}

/** Image storages and their hypervisor bindings. */
export interface StorageRepository {
  /** The storage, or `null`. */
  get(id: string): Promise<ImageStorage | null>;
  /** All storages (an operator has few), ordered by name. */
  list(filter?: { purpose?: ImageStorage['purpose'] }): Promise<ImageStorage[]>;
  /** @throws CONFLICT when the id exists. */
  insert(storage: ImageStorage): Promise<void>;
  /** @returns the updated storage, or `null`. */
  update(id: string, patch: Partial<Omit<ImageStorage, 'id' | 'createdAt'>>, now: Date): Promise<ImageStorage | null>;
  /** Deletes the storage and its bindings. @returns whether it existed. */
  delete(id: string): Promise<boolean>;
  /** Binds a storage to a hypervisor; idempotent (re-binding keeps the first binding). */
  bind(storageId: string, hypervisorId: string, now: Date): Promise<StorageBinding>;
  /** Removes a binding. @returns whether it existed. */
  unbind(storageId: string, hypervisorId: string): Promise<boolean>;
  /** Bindings, filtered by storage or hypervisor, ordered by storageId then hypervisorId. */
  listBindings(filter?: { storageId?: string; hypervisorId?: string }): Promise<StorageBinding[]>;
}

/** Media groups. */
export interface MediaGroupRepository {
  /** The group, or `null`. */
  get(id: string): Promise<MediaGroup | null>;
  /** All groups ordered by `order`, then name. */
  list(filter?: { customerVisible?: boolean }): Promise<MediaGroup[]>;
  /** @throws CONFLICT when the id exists. */
  insert(group: MediaGroup): Promise<void>;
  /** @returns the updated group, or `null`. */
  update(id: string, patch: Partial<Omit<MediaGroup, 'id' | 'createdAt'>>, now: Date): Promise<MediaGroup | null>;
  /** @returns whether it existed. */
  delete(id: string): Promise<boolean>;
}

/** ISOs. */
export interface IsoRepository {
  /** The ISO, or `null`. */
  get(id: string): Promise<Iso | null>;
  /** A page of ISOs ordered by name, then id. */
  list(filter?: { customerVisible?: boolean; storageId?: string; status?: Iso['status'] }, page?: ListPage): Promise<Page<Iso>>;
  /** @throws CONFLICT when the id exists. */
  insert(iso: Iso): Promise<void>;
  /** @returns the updated ISO, or `null`. */
  update(id: string, patch: Partial<Omit<Iso, 'id' | 'createdAt'>>, now: Date): Promise<Iso | null>;
  /** @returns whether it existed. */
  delete(id: string): Promise<boolean>;
}

/** Filter of {@link TaskRepository.list}. */
export interface TaskFilter {
  accountId?: string;
  statuses?: TaskStatus[];
  type?: TaskType;
  subjectId?: string;
}

/** Background tasks. */
export interface TaskRepository {
  /** The task, or `null`. */
  get(id: string): Promise<Task | null>;
  /** A page of tasks, newest first. */
  list(filter?: TaskFilter, page?: ListPage): Promise<Page<Task>>;
  /**
   * Inserts a task; `events` (when given) are recorded in the outbox in the same transaction
   * (stamped `task.createdAt`). Repositories written before it took `events` ignore them: the SDK
   * passes them only when `outbox.recordedWrites` names `taskInserts`, and otherwise appends them
   * right after the insert. @throws CONFLICT when the id exists (no event is recorded then).
   */
  insert(task: Task, events?: OutboxEvents<Task>): Promise<void>;
  /** Updates fields other than the status (progress, heartbeat). @returns the task, or `null`. */
  update(id: string, patch: TaskPatch, now: Date): Promise<Task | null>;
  /**
   * Compare-and-set of the status, like {@link ImageRepository.transition}: exactly one of two
   * racing callers succeeds; `events` are recorded with the change, like there.
   * @returns the updated task, or `null`.
   */
  transition(
    id: string,
    from: readonly TaskStatus[],
    to: TaskStatus,
    patch: TaskPatch,
    now: Date,
    events?: OutboxEvents<Task>,
  ): Promise<Task | null>;
  /**
   * A task's end together with its image's move, in one transaction: the compare-and-set of
   * `task` (as {@link TaskRepository.transition}); only when it succeeded, the compare-and-set of
   * `image` (as {@link ImageRepository.transition}; it may fail on its own: the image moved
   * meanwhile, then the task ends anyway and `image` is `null`); and the events of both writes that
   * happened. Readers never see the task ended and the image not yet moved, and a crash leaves both
   * or neither. Optional for hosts' repositories written before it existed: without it the SDK runs
   * the two transitions one after the other (a crash between them leaves the task ended and the
   * image unmoved until the next recovery pass).
   * @returns both records, or `null` when the task's compare-and-set failed (nothing was written).
   */
  transitionWithImage?(
    task: TaskTransitionStep,
    image: ImageTransitionStep,
    now: Date,
  ): Promise<{ task: Task; image: Image | null } | null>;
  /** Running tasks whose heartbeat is older than `before` (or missing): their worker died. */
  listStale(before: Date): Promise<Task[]>;
}

/** The task part of {@link TaskRepository.transitionWithImage}: the arguments of `tasks.transition`. */
export interface TaskTransitionStep {
  id: string;
  from: readonly TaskStatus[];
  to: TaskStatus;
  patch: TaskPatch;
  events?: OutboxEvents<Task>;
}

/** The image part of {@link TaskRepository.transitionWithImage}: the arguments of `images.transition`. */
export interface ImageTransitionStep {
  id: string;
  from: readonly ImageStatus[];
  to: ImageStatus;
  patch: ImagePatch;
  events?: OutboxEvents<Image>;
}

/** Filter of {@link UsageRepository.list}. */
export interface UsageFilter {
  accountId?: string;
  imageId?: string;
  locationId?: string;
  /** Only intervals still open (`to === null`). */
  openOnly?: boolean;
  /** Only intervals overlapping [from, to): `interval.from < to` and (`interval.to` is null or `> from`). */
  overlapping?: { from: Date; to: Date };
}

/** Usage intervals (the billing ledger). */
export interface UsageRepository {
  /** The interval, or `null`. */
  get(id: string): Promise<UsageInterval | null>;
  /** A page of intervals ordered by `from`, then id. */
  list(filter?: UsageFilter, page?: ListPage): Promise<Page<UsageInterval>>;
  /**
   * Inserts an interval; `events` (when given) are recorded in the outbox in the same transaction
   * (stamped `interval.from`). @throws CONFLICT when the id exists (no event is recorded then).
   */
  insert(interval: UsageInterval, events?: OutboxEvents<UsageInterval>): Promise<void>;
  /**
   * Closes an open interval at `to`, atomically: only when it is still open; `events` are recorded
   * with the change (stamped `to`), none when nothing changed.
   * @returns the closed interval, or `null` when missing or already closed.
   */
  close(id: string, to: Date, events?: OutboxEvents<UsageInterval>): Promise<UsageInterval | null>;
}

/** Per-location settings and per-account limits. */
export interface SettingsRepository {
  /** The location's settings, or `null` (the feature is then disabled). */
  getLocation(locationId: string): Promise<LocationSettings | null>;
  /** Creates or replaces a location's settings. */
  putLocation(settings: LocationSettings): Promise<void>;
  /** All location settings, ordered by locationId. */
  listLocations(): Promise<LocationSettings[]>;
  /** The account's cap override, or `null`. */
  getAccountLimit(accountId: string): Promise<AccountLimit | null>;
  /** Creates or replaces an override; `null` removes it. */
  putAccountLimit(accountId: string, limit: AccountLimit | null): Promise<void>;
  /** The account's state, or `null` when it is active (never suspended or closed, or unsuspended). */
  getAccountState(accountId: string): Promise<AccountState | null>;
  /**
   * Sets (upsert by `accountId`) or, with `null`, removes the account's state; `events` (when
   * given) are recorded in the outbox in the same transaction, built from `state`, stamped `now`
   * (default: `state.updatedAt`, else the current time). Repositories written before it took
   * `events` ignore them: the SDK passes them only when `outbox.recordedWrites` names
   * `accountStates`, and otherwise appends them right after the write.
   */
  putAccountState(accountId: string, state: AccountState | null, events?: OutboxEvents<AccountState | null>, now?: Date): Promise<void>;
}

/** Filter of {@link ImageShareRepository.list}. All given fields must match. */
export interface ImageShareFilter {
  imageId?: string;
  /** The recipient. */
  accountId?: string;
  ownerAccountId?: string;
  statuses?: ImageShareStatus[];
}

/**
 * Shares of custom images with other accounts (image members). Its writes take `events`, recorded
 * in the outbox in the write's transaction and only when it wrote (stamped `share.createdAt` for
 * `insert`, `now` otherwise). Repositories written before they took `events` ignore them: the SDK
 * passes them only when `outbox.recordedWrites` names `imageShares`, and otherwise appends them
 * right after the write.
 */
export interface ImageShareRepository {
  /** The share, or `null`. */
  get(id: string): Promise<ImageShare | null>;
  /** A page of shares, newest first (`createdAt` desc, then id). */
  list(filter?: ImageShareFilter, page?: ListPage): Promise<Page<ImageShare>>;
  /**
   * Inserts a share. Atomic: at most one open (`pending` or `accepted`) share exists per image and
   * recipient, also under concurrent callers.
   * @throws CONFLICT when the id exists, or when an open share of the image with the same recipient exists.
   */
  insert(share: ImageShare, events?: OutboxEvents<ImageShare>): Promise<void>;
  /**
   * Compare-and-set of the status, like {@link ImageRepository.transition}: when the share's status
   * is one of `from`, sets `status = to`, `decidedAt = now` and `updatedAt = now`.
   * @returns the updated share, or `null` when missing or not in `from`.
   */
  transition(
    id: string,
    from: readonly ImageShareStatus[],
    to: ImageShareStatus,
    now: Date,
    events?: OutboxEvents<ImageShare>,
  ): Promise<ImageShare | null>;
  /**
   * Ends every open share of an image (`pending`/`accepted` → `revoked`, `decidedAt = now`), in one
   * atomic step; `events` is called once per ended share, in the same transaction.
   * @returns the shares it ended.
   */
  revokeAllOf(imageId: string, now: Date, events?: OutboxEvents<ImageShare>): Promise<ImageShare[]>;
}

/** Filter of {@link ImageTransferRepository.list}. All given fields must match. */
export interface ImageTransferFilter {
  imageId?: string;
  fromAccountId?: string;
  toAccountId?: string;
  statuses?: ImageTransferStatus[];
}

/**
 * Ownership transfers of custom images. Its writes take `events` like {@link ImageShareRepository}'s
 * (the SDK passes them when `outbox.recordedWrites` names `imageTransfers`).
 */
export interface ImageTransferRepository {
  /** The transfer, or `null`. */
  get(id: string): Promise<ImageTransfer | null>;
  /** A page of transfers, newest first (`createdAt` desc, then id). */
  list(filter?: ImageTransferFilter, page?: ListPage): Promise<Page<ImageTransfer>>;
  /**
   * Inserts a transfer. Atomic: at most one `pending` transfer exists per image.
   * @throws CONFLICT when the id exists, or when the image has a pending transfer.
   */
  insert(transfer: ImageTransfer, events?: OutboxEvents<ImageTransfer>): Promise<void>;
  /**
   * Compare-and-set of the status (`decidedAt = now`, `updatedAt = now`).
   * @returns the updated transfer, or `null` when missing or not in `from`.
   */
  transition(
    id: string,
    from: readonly ImageTransferStatus[],
    to: ImageTransferStatus,
    now: Date,
    events?: OutboxEvents<ImageTransfer>,
  ): Promise<ImageTransfer | null>;
  /**
   * Accepts a transfer, atomically with the ownership change: when the transfer is `pending` and
   * `expiresAt > now`, its image is a custom image still owned by `fromAccountId` and `available`,
   * and (when `limit` is given) the recipient's custom images that are not `deleted` number fewer
   * than `limit.max` and (when `limit.maxBytes` is set) their total `imageCapBytes` plus the image's
   * own is at most `limit.maxBytes`, it sets the image's `accountId` to `toAccountId`, clears `sourceInstanceId` and
   * `sourceInstanceName` (the giver's instance is none of the recipient's business, and a retry must
   * never capture it), sets `updatedAt = now`, and sets the
   * transfer `accepted` (`decidedAt = now`). Otherwise it changes nothing. Must hold under any
   * number of concurrent callers, like {@link ImageRepository.insertIfUnderLimit} (accepting K
   * transfers to one account with room for fewer leaves exactly the room taken, by count and by
   * bytes), and against a
   * concurrent `transition` of the same transfer (never an accepted transfer without its image
   * moved, nor a moved image under a transfer that is not accepted). `events` (when given) are built
   * from the accepted transfer and the moved image and recorded in the same transaction.
   * @returns the accepted transfer, or `null` when a condition failed.
   */
  accept(
    id: string,
    limit: ImageLimit | null,
    now: Date,
    events?: OutboxEvents<{ transfer: ImageTransfer; image: Image }>,
  ): Promise<ImageTransfer | null>;
}

/** All repositories the SDK needs. */
export interface Repositories {
  images: ImageRepository;
  storages: StorageRepository;
  mediaGroups: MediaGroupRepository;
  isos: IsoRepository;
  tasks: TaskRepository;
  usage: UsageRepository;
  settings: SettingsRepository;
  /** Shares of images with other accounts. */
  imageShares: ImageShareRepository;
  /** Ownership transfers of images. */
  imageTransfers: ImageTransferRepository;
  /**
   * The event outbox (docs/repositories.md, "Outbox"). Optional for hosts' own repositories written
   * before it existed: without it, events live only in the process's emitter and are lost when it
   * dies; the memory, SQLite and PostgreSQL repositories have it.
   */
  outbox?: OutboxRepository;
  /** Releases connections (SQL adapters); optional. */
  close?(): Promise<void>;
}
