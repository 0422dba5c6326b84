/**
 * Every image status change goes through here: the lifecycle table of the image's kind, the
 * repository's compare-and-set of the previous status, and the events. (Billing is the usage
 * service's: `startBilling` / `stopBilling` in `./usage`.)
 * @module
 */
import { InstanceImagesError } from '../errors';
import { assertTransition } from '../lifecycle';
import type { Image, ImagePatch, ImageStatus } from '../model/image';
import type { StatusReason } from '../model/common';
import { eventActor, type Actor } from './actor';
import type { ServiceContext } from './context';
import { draft, publish, type TypedDraft } from './outbox-events';

/** The fields a status change may set besides the status and its reason. */
export type TransitionPatch = Omit<ImagePatch, 'statusReason'>;

/**
 * The events of an image's move from `from` to `to`, built from the updated image:
 * `image.status-changed`, plus `image.available`, `image.failed` or `image.deleted`, plus `extra`
 * (events recorded with the same write, e.g. a reconcile finding).
 */
export function imageTransitionEvents(
  from: ImageStatus,
  to: ImageStatus,
  actor: Actor | 'system',
  reason: StatusReason | null,
  extra?: (updated: Image) => TypedDraft[],
): (updated: Image) => TypedDraft[] {
  return (updated) => [
    draft('image.status-changed', updated.id, {
      image: updated,
      from,
      to,
      actor: eventActor(actor),
      reason: reason?.message ?? null,
    }),
    ...(to === 'available' ? [draft('image.available', updated.id, { image: updated })] : []),
    ...(to === 'error' && reason
      ? [draft('image.failed', updated.id, { image: updated, code: reason.code, message: reason.message })]
      : []),
    ...(to === 'deleted' ? [draft('image.deleted', updated.id, { image: updated })] : []),
    ...(extra?.(updated) ?? []),
  ];
}

/**
 * Moves an image from its current status (as read) to `to`, or resolves `null` when the image
 * changed meanwhile (a concurrent caller won the compare-and-set). The one function that writes
 * an image status: it checks the lifecycle table of the image's kind, compare-and-sets
 * `image.status`, sets `statusReason` to `reason`, and records (in the outbox, with the change) and
 * emits `image.status-changed` (plus `image.available`, `image.failed` or `image.deleted`, and the
 * `extra` events the move causes, recorded with it). A deletion (into `deleting`, or straight into
 * `deleted` from another status) also requires the image unprotected in the same compare-and-set
 * (`unlessProtected`), so a protection set concurrently either comes first and stops it, or finds
 * the image deleting and is refused.
 * @throws InstanceImagesError INVALID_STATE when the lifecycle forbids the transition.
 */
export async function tryTransitionImage(
  ctx: ServiceContext,
  image: Image,
  to: ImageStatus,
  patch: TransitionPatch,
  actor: Actor | 'system',
  reason: StatusReason | null = null,
  extra?: (updated: Image) => TypedDraft[],
): Promise<Image | null> {
  assertTransition(image.status, to, image.kind);
  const events = imageTransitionEvents(image.status, to, actor, reason, extra);
  // The events are recorded in the outbox in the same transaction as the compare-and-set.
  const deletion = to === 'deleting' || (to === 'deleted' && image.status !== 'deleting');
  const updated = await ctx.repos.images.transition(image.id, [image.status], to, { ...patch, statusReason: reason }, ctx.now(), events, {
    unlessProtected: deletion,
  });
  if (!updated) return null;
  publish(ctx.events, events(updated));
  return updated;
}

/**
 * Changes fields other than the status of an image, only while its status is still the one read
 * (a compare-and-set that keeps the status: how protection is set, so a delete cannot slip in
 * between). Records `events` with the change (in the outbox, atomically) and emits them.
 * @throws INVALID_STATE when the image's status changed meanwhile.
 */
export async function changeImageAtStatus(
  ctx: ServiceContext,
  image: Image,
  patch: TransitionPatch,
  events: (updated: Image) => TypedDraft[],
): Promise<Image> {
  const updated = await ctx.repos.images.transition(image.id, [image.status], image.status, patch, ctx.now(), events);
  if (!updated) {
    const fresh = await ctx.repos.images.get(image.id);
    throw new InstanceImagesError('INVALID_STATE', `The image changed meanwhile (it is now ${fresh?.status ?? 'gone'}); try again`, {
      details: { imageId: image.id, expected: image.status, actual: fresh?.status ?? null },
    });
  }
  publish(ctx.events, events(updated));
  return updated;
}

/**
 * {@link tryTransitionImage}, failing with INVALID_STATE when the lifecycle forbids the transition
 * or when the image changed meanwhile (a concurrent caller won).
 */
export async function transitionImage(
  ctx: ServiceContext,
  image: Image,
  to: ImageStatus,
  patch: TransitionPatch,
  actor: Actor | 'system',
  reason: StatusReason | null = null,
  extra?: (updated: Image) => TypedDraft[],
): Promise<Image> {
  const updated = await tryTransitionImage(ctx, image, to, patch, actor, reason, extra);
  if (!updated) {
    const fresh = await ctx.repos.images.get(image.id);
    throw new InstanceImagesError('INVALID_STATE', `The image changed meanwhile (it is now ${fresh?.status ?? 'gone'}); try again`, {
      details: { imageId: image.id, expected: image.status, actual: fresh?.status ?? null },
    });
  }
  return updated;
}
