/**
 * Ownership transfers of custom images between accounts of the same panel. The owner offers an
 * available image; the recipient accepts within the offer's lifetime. Acceptance is one atomic
 * repository operation (`imageTransfers.accept`): the image's owner changes only when the offer is
 * still pending and unexpired, the image is still the giver's and available, and the recipient is
 * under their image caps (the count, and the total bytes with the image's own). Billing moves at that instant: the giver's usage interval closes and the
 * recipient's opens at the same `at`, so the two usage reports meet exactly. Shares of the image
 * end with the transfer (the new owner decides anew).
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { IdSchema, type Page } from '../model/common';
import { imageCapBytes, type Image } from '../model/image';
import type { ImageTransfer, ImageTransferStatus } from '../model/image-move';
import type { ImageLimit } from '../ports/repositories';
import { parseOrThrow } from '../util/validate';
import { checkActor, eventActor, type Actor } from './actor';
import type { ServiceContext } from './context';
import { newMoveId, revokeSharesOf } from './image-sharing';
import { startBilling, stopBilling } from './usage';
import { draft, recordWith } from './outbox-events';
import { accountCaps, capReached, type AccountCaps } from './image-metadata';

/** The default lifetime of a transfer offer: 7 days. */
export const DEFAULT_TRANSFER_TTL_SECONDS = 7 * 24 * 3600;

/** Input of {@link ImageTransferService.offerTransfer}. */
export const OfferTransferInputSchema = z.strictObject({
  /** The recipient account (of the same panel). */
  accountId: IdSchema,
  /** How long the recipient has to accept: 60 s to 30 days; default 7 days. */
  expiresInSeconds: z
    .number()
    .int()
    .min(60)
    .max(30 * 24 * 3600)
    .optional(),
});
/** Input of {@link ImageTransferService.offerTransfer}. */
export type OfferTransferInput = z.input<typeof OfferTransferInputSchema>;

/** Query of {@link ImageTransferService.listTransfers}. */
export const ListTransfersQuerySchema = z.strictObject({
  /** `incoming` (offers to the account) or `outgoing` (offers it made); default incoming. */
  direction: z.enum(['incoming', 'outgoing']).default('incoming'),
  status: z.enum(['pending', 'accepted', 'rejected', 'cancelled', 'expired']).optional(),
  cursor: z.string().max(1000).nullish(),
  limit: z.number().int().min(1).max(1000).optional(),
  /** Admins only: whose transfers (required for admins). */
  accountId: IdSchema.optional(),
});
/** Query of {@link ImageTransferService.listTransfers}. */
export type ListTransfersQuery = z.input<typeof ListTransfersQuerySchema>;

/** An accepted transfer and the image as it now is (the recipient's). */
export interface AcceptedTransfer {
  transfer: ImageTransfer;
  image: Image;
}

/** Ownership transfers. Reached through `InstanceImages.sharing`. */
export class ImageTransferService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(private readonly ctx: ServiceContext) {}

  /**
   * Offers the actor's available image to another account (pending until accepted, rejected,
   * cancelled or expired). One pending offer per image.
   * @throws NOT_FOUND, INVALID_STATE (not available), VALIDATION_FAILED (to the owner itself),
   *   CONFLICT (the image already has a pending offer).
   */
  async offerTransfer(actor: Actor, imageId: string, input: OfferTransferInput): Promise<ImageTransfer> {
    checkActor(actor);
    parseOrThrow(IdSchema, imageId, 'The image id');
    const data = parseOrThrow(OfferTransferInputSchema, input, 'The transfer');
    const image = await this.ctx.repos.images.get(imageId);
    if (!image || image.kind !== 'custom' || image.status === 'deleted' || image.accountId === null) throw notFound('Image', imageId);
    if (actor.kind === 'customer' && image.accountId !== actor.accountId) throw notFound('Image', imageId);
    if (image.status !== 'available')
      throw new InstanceImagesError('INVALID_STATE', `Only an available image can be transferred; this one is ${image.status}`);
    if (data.accountId === image.accountId)
      throw new InstanceImagesError('VALIDATION_FAILED', 'An image cannot be transferred to the account that owns it', {
        fields: [{ path: 'accountId', message: 'is the owner of the image' }],
      });
    const now = this.ctx.now();
    const transfer: ImageTransfer = {
      id: newMoveId('xfr'),
      imageId: image.id,
      fromAccountId: image.accountId,
      toAccountId: data.accountId,
      status: 'pending',
      expiresAt: new Date(now.getTime() + (data.expiresInSeconds ?? DEFAULT_TRANSFER_TTL_SECONDS) * 1000),
      createdAt: now,
      updatedAt: now,
      decidedAt: null,
    };
    const created = (record: ImageTransfer) => [draft('transfer.created', record.imageId, { transfer: record, actor: eventActor(actor) })];
    await recordWith(
      this.ctx,
      'imageTransfers',
      created,
      (events) => this.ctx.repos.imageTransfers.insert(transfer, events),
      () => [transfer],
    );
    return transfer;
  }

  /** Transfers to (incoming) or from (outgoing) the actor's account, newest first. */
  async listTransfers(actor: Actor, query: ListTransfersQuery = {}): Promise<Page<ImageTransfer>> {
    checkActor(actor);
    const q = parseOrThrow(ListTransfersQuerySchema, query, 'The query');
    const accountId = actor.kind === 'customer' ? actor.accountId : q.accountId;
    if (accountId === undefined)
      throw new InstanceImagesError('VALIDATION_FAILED', 'Name the account whose transfers to list', {
        fields: [{ path: 'accountId', message: 'is required for an administrator' }],
      });
    const filter = q.direction === 'incoming' ? { toAccountId: accountId } : { fromAccountId: accountId };
    const page = await this.ctx.repos.imageTransfers.list(
      { ...filter, ...(q.status ? { statuses: [q.status] } : {}) },
      { cursor: q.cursor ?? null, limit: q.limit ?? 50 },
    );
    // Offers past their expiry are shown (and recorded) as expired.
    return { items: await Promise.all(page.items.map((transfer) => this.expireIfDue(transfer))), nextCursor: page.nextCursor };
  }

  /** A transfer the actor is a party of (giver or recipient; admins: any); NOT_FOUND otherwise. */
  async getTransfer(actor: Actor, transferId: string): Promise<ImageTransfer> {
    return this.expireIfDue(await this.transferFor(actor, transferId, 'either'));
  }

  private async transferFor(actor: Actor, transferId: string, role: 'giver' | 'recipient' | 'either'): Promise<ImageTransfer> {
    checkActor(actor);
    parseOrThrow(IdSchema, transferId, 'The transfer id');
    const transfer = await this.ctx.repos.imageTransfers.get(transferId);
    const parties = !transfer
      ? []
      : role === 'giver'
        ? [transfer.fromAccountId]
        : role === 'recipient'
          ? [transfer.toAccountId]
          : [transfer.fromAccountId, transfer.toAccountId];
    if (!transfer || (actor.kind === 'customer' && !parties.includes(actor.accountId))) throw notFound('Transfer', transferId);
    return transfer;
  }

  private async decide(actor: Actor | 'system', transfer: ImageTransfer, to: ImageTransferStatus): Promise<ImageTransfer | null> {
    return endTransfer(this.ctx, transfer, to, actor);
  }

  /** A pending offer past its expiry is marked `expired` (lazily, when someone acts on it). */
  private async expireIfDue(transfer: ImageTransfer): Promise<ImageTransfer> {
    if (transfer.status !== 'pending' || transfer.expiresAt.getTime() > this.ctx.now().getTime()) return transfer;
    return (await this.decide('system', transfer, 'expired')) ?? (await this.ctx.repos.imageTransfers.get(transfer.id)) ?? transfer;
  }

  /** The recipient's caps (count and bytes) in the image's location: its override, else the location's defaults. */
  private async recipientCaps(image: Image, accountId: string): Promise<AccountCaps> {
    const settings = image.locationId === null ? null : await this.ctx.repos.settings.getLocation(image.locationId);
    return accountCaps(this.ctx, accountId, settings);
  }

  /**
   * Moves billing from the giver to the recipient at `at`, idempotently: the giver's open intervals
   * of the image close at `at`, and the recipient's opens at `at` unless one is open already.
   */
  private async moveBilling(image: Image, transfer: ImageTransfer, at: Date): Promise<void> {
    const open = await this.ctx.repos.usage.list({ imageId: image.id, openOnly: true }, { limit: 1000 });
    if (open.items.some((interval) => interval.accountId === transfer.fromAccountId)) await stopBilling(this.ctx, image.id, at);
    if (image.status === 'available') await startBilling(this.ctx, image, at);
  }

  /**
   * The recipient accepts: the image becomes theirs (counted against their cap, atomically) and
   * billing moves at this instant. Accepting an already accepted transfer again is idempotent (and
   * completes a billing move a crash interrupted).
   * @throws NOT_FOUND, INVALID_STATE (not pending, expired, or the image is no longer available or
   *   no longer the giver's), IMAGE_LIMIT_REACHED (the recipient's count or byte cap, named with
   *   `details.limit` or `details.limitBytes` and `details.imageBytes`; the offer stays pending).
   */
  async acceptTransfer(actor: Actor, transferId: string): Promise<AcceptedTransfer> {
    const found = await this.expireIfDue(await this.transferFor(actor, transferId, 'recipient'));
    const image = await this.ctx.repos.images.get(found.imageId);
    if (!image) throw notFound('Image', found.imageId);
    if (found.status === 'accepted' && image.accountId === found.toAccountId) {
      await this.moveBilling(image, found, found.decidedAt ?? this.ctx.now());
      return { transfer: found, image };
    }
    if (found.status !== 'pending')
      throw new InstanceImagesError('INVALID_STATE', `This transfer is ${found.status}; it can no longer be accepted`, {
        details: { status: found.status },
      });
    const caps = await this.recipientCaps(image, found.toAccountId);
    const limit: ImageLimit | null =
      caps.max === null && caps.maxBytes === null
        ? null
        : { accountId: found.toAccountId, max: caps.max ?? Number.POSITIVE_INFINITY, maxBytes: caps.maxBytes };
    const now = this.ctx.now();
    // The acceptance and the owner change are recorded with the write that makes them.
    let moved: Image | null = null;
    const events = (record: { transfer: ImageTransfer; image: Image }) => {
      moved = record.image;
      const { transfer } = record;
      return [
        draft('transfer.status-changed', transfer.imageId, { transfer, from: 'pending', to: 'accepted', actor: eventActor(actor) }),
        draft('image.owner-changed', record.image.id, {
          image: record.image,
          fromAccountId: transfer.fromAccountId,
          toAccountId: transfer.toAccountId,
          transferId: transfer.id,
          at: now,
        }),
      ];
    };
    const accepted = await recordWith(
      this.ctx,
      'imageTransfers',
      events,
      (build) => this.ctx.repos.imageTransfers.accept(found.id, limit, now, build),
      async (transfer) =>
        transfer ? [{ transfer, image: (await this.ctx.repos.images.get(image.id)) ?? { ...image, accountId: transfer.toAccountId } }] : [],
    );
    if (!accepted) throw await this.whyNotAccepted(found.id, caps);
    const owned: Image = (moved as Image | null) ??
      (await this.ctx.repos.images.get(image.id)) ?? { ...image, accountId: accepted.toAccountId };
    await revokeSharesOf(this.ctx, image.id, 'system', now);
    await this.moveBilling(owned, accepted, now);
    return { transfer: accepted, image: owned };
  }

  /** Why the atomic accept changed nothing, as the error to throw. */
  private async whyNotAccepted(transferId: string, caps: AccountCaps): Promise<InstanceImagesError> {
    const transfer = await this.ctx.repos.imageTransfers.get(transferId);
    if (!transfer || transfer.status !== 'pending')
      return new InstanceImagesError('INVALID_STATE', `This transfer is ${transfer?.status ?? 'gone'}; it can no longer be accepted`);
    if (transfer.expiresAt.getTime() <= this.ctx.now().getTime()) {
      await this.expireIfDue(transfer);
      return new InstanceImagesError('INVALID_STATE', 'This transfer has expired; ask the owner to offer the image again');
    }
    const image = await this.ctx.repos.images.get(transfer.imageId);
    if (!image || image.status !== 'available' || image.accountId !== transfer.fromAccountId)
      return new InstanceImagesError('INVALID_STATE', 'The image is no longer available from its owner');
    if (caps.max !== null || caps.maxBytes !== null) {
      // Which cap is full (count or bytes), with the figures, and what the recipient can do.
      const full = await capReached(this.ctx, transfer.toAccountId, caps, imageCapBytes(image));
      return new InstanceImagesError('IMAGE_LIMIT_REACHED', `${full.message}. The offer stays pending: free room, then accept again`, {
        details: { ...full.details, transferId },
      });
    }
    return new InstanceImagesError('CONFLICT', 'The transfer changed concurrently; reload it and try again');
  }

  /** The recipient declines a pending offer. Idempotent. */
  async rejectTransfer(actor: Actor, transferId: string): Promise<ImageTransfer> {
    return this.end(actor, await this.transferFor(actor, transferId, 'recipient'), 'rejected');
  }

  /** The giver (or an admin) withdraws a pending offer. Idempotent. */
  async cancelTransfer(actor: Actor, transferId: string): Promise<ImageTransfer> {
    return this.end(actor, await this.transferFor(actor, transferId, 'giver'), 'cancelled');
  }

  private async end(actor: Actor, found: ImageTransfer, to: 'rejected' | 'cancelled'): Promise<ImageTransfer> {
    const transfer = await this.expireIfDue(found);
    if (transfer.status === to) return transfer;
    if (transfer.status !== 'pending')
      throw new InstanceImagesError('INVALID_STATE', `This transfer is ${transfer.status}; it can no longer be ${to}`);
    const updated = await this.decide(actor, transfer, to);
    if (!updated) throw new InstanceImagesError('CONFLICT', 'The transfer changed concurrently; reload it and try again');
    return updated;
  }
}

/** Cancels the pending offer of an image that is being deleted (emits `transfer.status-changed`). */
export async function cancelTransfersOf(ctx: ServiceContext, imageId: string, actor: Actor | 'system'): Promise<void> {
  const pending = await ctx.repos.imageTransfers.list({ imageId, statuses: ['pending'] }, { limit: 10 });
  for (const transfer of pending.items) await endTransfer(ctx, transfer, 'cancelled', actor);
}

/** A pending transfer ends (`to`), with its `transfer.status-changed` recorded in the same write. */
async function endTransfer(
  ctx: ServiceContext,
  transfer: ImageTransfer,
  to: ImageTransferStatus,
  actor: Actor | 'system',
): Promise<ImageTransfer | null> {
  const changed = (record: ImageTransfer) => [
    draft('transfer.status-changed', record.imageId, { transfer: record, from: 'pending', to, actor: eventActor(actor) }),
  ];
  const now = ctx.now();
  return recordWith(
    ctx,
    'imageTransfers',
    changed,
    (events) => ctx.repos.imageTransfers.transition(transfer.id, ['pending'], to, now, events),
    (updated) => (updated ? [updated] : []),
  );
}
