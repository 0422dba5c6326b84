/**
 * Sharing custom images with other accounts of the same panel (Glance-like image members): the
 * owner shares an available image, the recipient accepts or rejects, the owner revokes at any time.
 * An accepted share lets the recipient see the image (never its shares) and deploy it to their own
 * instances; only the owner deletes, re-shares or gives it away, and the owner keeps paying.
 * Deleting the image or giving it away ends its shares. Revoking stops new deploys; disks already
 * deployed are standalone copies and keep running.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { InstanceImagesError, notFound } from '../errors';
import { IdSchema, type Page } from '../model/common';
import type { Image } from '../model/image';
import type { ImageShare, ImageShareStatus } from '../model/image-move';
import { parseOrThrow } from '../util/validate';
import { checkActor, eventActor, type Actor } from './actor';
import type { ServiceContext } from './context';
import { draft, recordWith } from './outbox-events';

/**
 * An unguessable id for a share or transfer (128 random bits): knowing an image's id, or another
 * share's id, never lets anyone reach a share that is not theirs.
 */
export function newMoveId(prefix: 'shr' | 'xfr'): string {
  return `${prefix}_${randomBytes(16).toString('base64url')}`;
}

/** Input of {@link ImageSharingService.shareImage}. */
export const ShareImageInputSchema = z.strictObject({
  /** The recipient account (of the same panel). */
  accountId: IdSchema,
});
/** Input of {@link ImageSharingService.shareImage}. */
export type ShareImageInput = z.input<typeof ShareImageInputSchema>;

/** Query of {@link ImageSharingService.listIncomingShares}. */
export const IncomingSharesQuerySchema = z.strictObject({
  /** `accepted` (default): the images shared with the account; `pending`: invitations to answer. */
  status: z.enum(['pending', 'accepted']).default('accepted'),
  cursor: z.string().max(1000).nullish(),
  limit: z.number().int().min(1).max(1000).optional(),
  /** Admins only: whose incoming shares (required for admins). */
  accountId: IdSchema.optional(),
});
/** Query of {@link ImageSharingService.listIncomingShares}. */
export type IncomingSharesQuery = z.input<typeof IncomingSharesQuerySchema>;

/** A share as its recipient sees it: the share and the shared image. */
export interface SharedImage {
  share: ImageShare;
  image: Image;
}

/**
 * An image as a recipient sees it: without the owner's source instance (its id and name are the
 * owner's business).
 */
export function sharedView(image: Image): Image {
  return { ...image, sourceInstanceId: null, sourceInstanceName: null };
}

/** Whether `accountId` holds an accepted share of `image` from its current owner. */
export async function hasAcceptedShare(ctx: ServiceContext, image: Image, accountId: string): Promise<boolean> {
  if (image.kind !== 'custom' || image.accountId === null) return false;
  const page = await ctx.repos.imageShares.list({ imageId: image.id, accountId, statuses: ['accepted'] }, { limit: 10 });
  return page.items.some((share) => share.ownerAccountId === image.accountId);
}

/**
 * Ends every open share of an image (it is being deleted or changed owner) and emits
 * `share.status-changed` for each.
 */
export async function revokeSharesOf(ctx: ServiceContext, imageId: string, actor: Actor | 'system', now: Date): Promise<ImageShare[]> {
  const before = await ctx.repos.imageShares.list({ imageId, statuses: ['pending', 'accepted'] }, { limit: 1000 });
  const previous = new Map(before.items.map((share) => [share.id, share.status]));
  const revoked = (share: ImageShare) => [
    draft('share.status-changed', share.imageId, {
      share,
      from: previous.get(share.id) ?? 'pending',
      to: 'revoked',
      actor: eventActor(actor),
    }),
  ];
  return recordWith(
    ctx,
    'imageShares',
    revoked,
    (events) => ctx.repos.imageShares.revokeAllOf(imageId, now, events),
    (ended) => ended,
  );
}

/** Sharing images with other accounts. Reached through `InstanceImages.sharing`. */
export class ImageSharingService {
  /** @internal Services are created by `createInstanceImages`. */
  constructor(private readonly ctx: ServiceContext) {}

  /** The actor's own custom image (any custom image for an admin); NOT_FOUND otherwise. */
  private async ownImage(actor: Actor, imageId: string): Promise<Image> {
    checkActor(actor);
    parseOrThrow(IdSchema, imageId, 'The image id');
    const image = await this.ctx.repos.images.get(imageId);
    if (!image || image.kind !== 'custom' || image.status === 'deleted' || image.accountId === null) throw notFound('Image', imageId);
    if (actor.kind === 'customer' && image.accountId !== actor.accountId) throw notFound('Image', imageId);
    return image;
  }

  /**
   * Shares an available image with another account (`pending` until the recipient answers).
   * @throws NOT_FOUND (missing, or not the actor's), INVALID_STATE (not available), VALIDATION_FAILED
   *   (sharing with the owner itself), CONFLICT (already shared with that account and not ended).
   */
  async shareImage(actor: Actor, imageId: string, input: ShareImageInput): Promise<ImageShare> {
    const image = await this.ownImage(actor, imageId);
    const data = parseOrThrow(ShareImageInputSchema, input, 'The share');
    if (image.status !== 'available')
      throw new InstanceImagesError('INVALID_STATE', `Only an available image can be shared; this one is ${image.status}`);
    if (data.accountId === image.accountId)
      throw new InstanceImagesError('VALIDATION_FAILED', 'An image cannot be shared with the account that owns it', {
        fields: [{ path: 'accountId', message: 'is the owner of the image' }],
      });
    const now = this.ctx.now();
    const share: ImageShare = {
      id: newMoveId('shr'),
      imageId: image.id,
      ownerAccountId: image.accountId as string,
      accountId: data.accountId,
      status: 'pending',
      createdAt: now,
      updatedAt: now,
      decidedAt: null,
    };
    const created = (record: ImageShare) => [draft('share.created', record.imageId, { share: record, actor: eventActor(actor) })];
    await recordWith(
      this.ctx,
      'imageShares',
      created,
      (events) => this.ctx.repos.imageShares.insert(share, events),
      () => [share],
    );
    return share;
  }

  /** The shares of the actor's image, every status, newest first (the owner's view). */
  async listImageShares(actor: Actor, imageId: string, page: { cursor?: string | null; limit?: number } = {}): Promise<Page<ImageShare>> {
    const image = await this.ownImage(actor, imageId);
    return this.ctx.repos.imageShares.list({ imageId: image.id, ownerAccountId: image.accountId ?? '' }, page);
  }

  /**
   * Images shared with the actor's account: accepted shares of images that are still available
   * (the recipient's "Shared with me" list), or pending invitations. Each item carries the image.
   */
  async listIncomingShares(actor: Actor, query: IncomingSharesQuery = {}): Promise<Page<SharedImage>> {
    checkActor(actor);
    const q = parseOrThrow(IncomingSharesQuerySchema, query, 'The query');
    const accountId = actor.kind === 'customer' ? actor.accountId : q.accountId;
    if (accountId === undefined)
      throw new InstanceImagesError('VALIDATION_FAILED', 'Name the account whose incoming shares to list', {
        fields: [{ path: 'accountId', message: 'is required for an administrator' }],
      });
    const page = await this.ctx.repos.imageShares.list(
      { accountId, statuses: [q.status] },
      { cursor: q.cursor ?? null, limit: q.limit ?? 50 },
    );
    const items: SharedImage[] = [];
    for (const share of page.items) {
      const image = await this.ctx.repos.images.get(share.imageId);
      // An image deleted or given away meanwhile is not shown (its share is ended with it).
      if (!image || image.status !== 'available' || image.accountId !== share.ownerAccountId) continue;
      items.push({ share, image: sharedView(image) });
    }
    return { items, nextCursor: page.nextCursor };
  }

  /** A share the actor may act on as `role`; NOT_FOUND for everyone else (foreign looks like missing). */
  private async shareFor(actor: Actor, shareId: string, role: 'recipient' | 'owner'): Promise<ImageShare> {
    checkActor(actor);
    parseOrThrow(IdSchema, shareId, 'The share id');
    const share = await this.ctx.repos.imageShares.get(shareId);
    const account = role === 'recipient' ? share?.accountId : share?.ownerAccountId;
    if (!share || (actor.kind === 'customer' && account !== actor.accountId)) throw notFound('Share', shareId);
    return share;
  }

  private async decide(actor: Actor, share: ImageShare, from: readonly ImageShareStatus[], to: ImageShareStatus): Promise<ImageShare> {
    if (share.status === to) return share;
    if (!from.includes(share.status))
      throw new InstanceImagesError('INVALID_STATE', `This share is ${share.status}; it cannot become ${to}`, {
        details: { status: share.status },
      });
    const changed = (record: ImageShare) => [
      draft('share.status-changed', record.imageId, { share: record, from: share.status, to, actor: eventActor(actor) }),
    ];
    const now = this.ctx.now();
    const updated = await recordWith(
      this.ctx,
      'imageShares',
      changed,
      (events) => this.ctx.repos.imageShares.transition(share.id, from, to, now, events),
      (record) => (record ? [record] : []),
    );
    if (!updated) throw new InstanceImagesError('CONFLICT', 'The share changed concurrently; reload it and try again');
    return updated;
  }

  /**
   * The recipient accepts a pending share: the image appears in their shared list and OS picker.
   * Idempotent. @throws NOT_FOUND, INVALID_STATE (rejected, revoked, or the image is no longer available).
   */
  async acceptShare(actor: Actor, shareId: string): Promise<ImageShare> {
    const share = await this.shareFor(actor, shareId, 'recipient');
    const image = await this.ctx.repos.images.get(share.imageId);
    if (share.status === 'pending' && (!image || image.status !== 'available' || image.accountId !== share.ownerAccountId))
      throw new InstanceImagesError('INVALID_STATE', 'The shared image is no longer available');
    return this.decide(actor, share, ['pending'], 'accepted');
  }

  /** The recipient declines a pending share, or leaves an accepted one. Idempotent. */
  async rejectShare(actor: Actor, shareId: string): Promise<ImageShare> {
    const share = await this.shareFor(actor, shareId, 'recipient');
    return this.decide(actor, share, ['pending', 'accepted'], 'rejected');
  }

  /**
   * The owner (or an admin) revokes a share, pending or accepted: the recipient can no longer see
   * or deploy the image. Instances already deployed from it are unaffected. Idempotent.
   */
  async revokeShare(actor: Actor, shareId: string): Promise<ImageShare> {
    const share = await this.shareFor(actor, shareId, 'owner');
    if (share.status === 'rejected') return share;
    return this.decide(actor, share, ['pending', 'accepted'], 'revoked');
  }
}
