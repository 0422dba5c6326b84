/**
 * Every image status change: the state machine, the repository's compare-and-set, the events,
 * and the billing ledger (open at available, close at the delete request).
 * @module
 */
import { InstanceImagesError } from '../errors';
import { assertTransition } from '../lifecycle';
import type { Image, ImagePatch, ImageStatus } from '../model/image';
import type { StatusReason } from '../model/common';
import { eventActor, type Actor } from './actor';
import type { ServiceContext } from './context';

/**
 * Moves an image from its current status (as read) to `to`. Fails with INVALID_STATE when the
 * lifecycle forbids it or when the image changed meanwhile (a concurrent caller won).
 */
export async function transitionImage(ctx: ServiceContext, image: Image, to: ImageStatus, patch: ImagePatch, actor: Actor | 'system', reason: StatusReason | null = null): Promise<Image> {
  assertTransition(image.status, to);
  const now = ctx.now();
  const updated = await ctx.repos.images.transition(image.id, [image.status], to, { ...patch, statusReason: reason }, now);
  if (!updated) {
    const fresh = await ctx.repos.images.get(image.id);
    throw new InstanceImagesError('INVALID_STATE', `The image changed meanwhile (it is now ${fresh?.status ?? 'gone'}); try again`, { details: { imageId: image.id, expected: image.status, actual: fresh?.status ?? null } });
  }
  ctx.events.emit('image.status-changed', { image: updated, from: image.status, to, actor: eventActor(actor), reason: reason?.message ?? null });
  if (to === 'available') ctx.events.emit('image.available', { image: updated });
  if (to === 'error' && reason) ctx.events.emit('image.failed', { image: updated, code: reason.code, message: reason.message });
  if (to === 'deleted') ctx.events.emit('image.deleted', { image: updated });
  return updated;
}
