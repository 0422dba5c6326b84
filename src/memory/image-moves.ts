/**
 * In-memory repositories of image shares and ownership transfers (the reference for adapters).
 * Atomic operations run synchronously inside one call.
 * @module
 */
import { InstanceImagesError } from '../errors';
import {
  OPEN_SHARE_STATUSES,
  type ImageShare,
  type ImageShareStatus,
  type ImageTransfer,
  type ImageTransferStatus,
} from '../model/image-move';
import type {
  ImageLimit,
  ImageShareFilter,
  ImageShareRepository,
  ImageTransferFilter,
  ImageTransferRepository,
  ListPage,
} from '../ports/repositories';
import type { Image } from '../model/image';
import type { OutboxEvents } from '../ports/repositories-outbox';
import { MemoryOutboxRepository } from './outbox';
import { paginate } from './paginate';
import type { MemoryImageRepository } from './repositories';

const copy = <T>(value: T): T => structuredClone(value);

function conflict(message: string, details: Record<string, unknown>): InstanceImagesError {
  return new InstanceImagesError('CONFLICT', message, { details });
}

const newestFirst = (record: { createdAt: Date; id: string }) => [record.createdAt.getTime(), record.id] as [number, string];

/** In-memory {@link ImageShareRepository}. */
export class MemoryImageShareRepository implements ImageShareRepository {
  private readonly shares = new Map<string, ImageShare>();

  /** @param outbox where the writes record their events (a private one by default). */
  constructor(private readonly outbox = new MemoryOutboxRepository()) {}

  async get(id: string): Promise<ImageShare | null> {
    const share = this.shares.get(id);
    return share ? copy(share) : null;
  }

  async list(filter: ImageShareFilter = {}, page: ListPage = {}) {
    const matching = [...this.shares.values()].filter(
      (s) =>
        (filter.imageId === undefined || s.imageId === filter.imageId) &&
        (filter.accountId === undefined || s.accountId === filter.accountId) &&
        (filter.ownerAccountId === undefined || s.ownerAccountId === filter.ownerAccountId) &&
        (filter.statuses === undefined || filter.statuses.includes(s.status)),
    );
    const result = paginate(matching, newestFirst, 'desc', page.cursor, page.limit);
    return { items: result.items.map(copy), nextCursor: result.nextCursor };
  }

  async insert(share: ImageShare, events?: OutboxEvents<ImageShare>): Promise<void> {
    if (this.shares.has(share.id))
      throw conflict(`Image share ${JSON.stringify(share.id)} already exists`, { kind: 'Image share', id: share.id });
    const open = (s: ImageShare) =>
      s.imageId === share.imageId && s.accountId === share.accountId && OPEN_SHARE_STATUSES.includes(s.status);
    if (OPEN_SHARE_STATUSES.includes(share.status) && [...this.shares.values()].some(open))
      throw conflict('The image is already shared with this account', { imageId: share.imageId, accountId: share.accountId });
    this.outbox.appendNow(events, copy(share), share.createdAt);
    this.shares.set(share.id, copy(share));
  }

  async transition(
    id: string,
    from: readonly ImageShareStatus[],
    to: ImageShareStatus,
    now: Date,
    events?: OutboxEvents<ImageShare>,
  ): Promise<ImageShare | null> {
    const current = this.shares.get(id);
    if (!current || !from.includes(current.status)) return null;
    const next: ImageShare = { ...current, status: to, decidedAt: now, updatedAt: now };
    this.outbox.appendNow(events, copy(next), now);
    this.shares.set(id, next);
    return copy(next);
  }

  async revokeAllOf(imageId: string, now: Date, events?: OutboxEvents<ImageShare>): Promise<ImageShare[]> {
    const ended: ImageShare[] = [];
    for (const share of this.shares.values()) {
      if (share.imageId !== imageId || !OPEN_SHARE_STATUSES.includes(share.status)) continue;
      ended.push({ ...share, status: 'revoked', decidedAt: now, updatedAt: now });
    }
    // Every event is built before any share changes: all or nothing.
    this.outbox.appendNow((all: ImageShare[]) => all.flatMap((share) => events?.(copy(share)) ?? []), ended, now);
    for (const share of ended) this.shares.set(share.id, share);
    return ended.map(copy);
  }
}

/** In-memory {@link ImageTransferRepository}; `accept` changes the image in the given image repository. */
export class MemoryImageTransferRepository implements ImageTransferRepository {
  private readonly transfers = new Map<string, ImageTransfer>();

  /**
   * @param images the images `accept` moves.
   * @param outbox where the writes record their events (a private one by default).
   */
  constructor(
    private readonly images: MemoryImageRepository,
    private readonly outbox = new MemoryOutboxRepository(),
  ) {}

  async get(id: string): Promise<ImageTransfer | null> {
    const transfer = this.transfers.get(id);
    return transfer ? copy(transfer) : null;
  }

  async list(filter: ImageTransferFilter = {}, page: ListPage = {}) {
    const matching = [...this.transfers.values()].filter(
      (t) =>
        (filter.imageId === undefined || t.imageId === filter.imageId) &&
        (filter.fromAccountId === undefined || t.fromAccountId === filter.fromAccountId) &&
        (filter.toAccountId === undefined || t.toAccountId === filter.toAccountId) &&
        (filter.statuses === undefined || filter.statuses.includes(t.status)),
    );
    const result = paginate(matching, newestFirst, 'desc', page.cursor, page.limit);
    return { items: result.items.map(copy), nextCursor: result.nextCursor };
  }

  async insert(transfer: ImageTransfer, events?: OutboxEvents<ImageTransfer>): Promise<void> {
    if (this.transfers.has(transfer.id))
      throw conflict(`Image transfer ${JSON.stringify(transfer.id)} already exists`, { kind: 'Image transfer', id: transfer.id });
    const pending = (t: ImageTransfer) => t.imageId === transfer.imageId && t.status === 'pending';
    if (transfer.status === 'pending' && [...this.transfers.values()].some(pending))
      throw conflict('The image already has a pending transfer', { imageId: transfer.imageId });
    this.outbox.appendNow(events, copy(transfer), transfer.createdAt);
    this.transfers.set(transfer.id, copy(transfer));
  }

  async transition(
    id: string,
    from: readonly ImageTransferStatus[],
    to: ImageTransferStatus,
    now: Date,
    events?: OutboxEvents<ImageTransfer>,
  ): Promise<ImageTransfer | null> {
    const current = this.transfers.get(id);
    if (!current || !from.includes(current.status)) return null;
    const next: ImageTransfer = { ...current, status: to, decidedAt: now, updatedAt: now };
    this.outbox.appendNow(events, copy(next), now);
    this.transfers.set(id, next);
    return copy(next);
  }

  async accept(
    id: string,
    limit: ImageLimit | null,
    now: Date,
    events?: OutboxEvents<{ transfer: ImageTransfer; image: Image }>,
  ): Promise<ImageTransfer | null> {
    const current = this.transfers.get(id);
    if (!current || current.status !== 'pending' || current.expiresAt.getTime() <= now.getTime()) return null;
    const { imageId, fromAccountId, toAccountId } = current;
    const before = this.images.peek(imageId);
    if (!before || !this.images.ownerChange(imageId, fromAccountId, toAccountId, limit, now, false)) return null;
    const next: ImageTransfer = { ...current, status: 'accepted', decidedAt: now, updatedAt: now };
    const moved: Image = { ...before, accountId: toAccountId, sourceInstanceId: null, sourceInstanceName: null, updatedAt: now };
    // The events are built before anything changes: a failing builder leaves both records as they were.
    this.outbox.appendNow(events, { transfer: copy(next), image: moved }, now);
    this.images.ownerChange(imageId, fromAccountId, toAccountId, limit, now, true);
    this.transfers.set(id, next);
    return copy(next);
  }
}
