/**
 * Every image status change: the state machine, the repository's compare-and-set, the events,
 * and the billing ledger (open at available, close at the delete request).
 * @module
 */
import { applyUsageChanges, closeUsage, openUsage } from '../billing';
import { InstanceImagesError } from '../errors';
import { assertTransition } from '../lifecycle';
import type { Image, ImagePatch, ImageStatus } from '../model/image';
import type { StatusReason } from '../model/common';
import type { UsageInterval } from '../model/usage-interval';
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

async function openIntervalsOf(ctx: ServiceContext, imageId: string): Promise<UsageInterval[]> {
  const page = await ctx.repos.usage.list({ imageId, openOnly: true }, { limit: 1000 });
  return page.items;
}

/** Starts billing for a custom image that just became available (no-op for stock images). */
export async function startBilling(ctx: ServiceContext, image: Image, at: Date): Promise<void> {
  if (image.kind !== 'custom' || image.accountId === null || image.locationId === null) return;
  const settings = await ctx.repos.settings.getLocation(image.locationId);
  const changes = openUsage({ image, rate: settings?.pricePerGbMonth ?? '0', at, openIntervals: await openIntervalsOf(ctx, image.id) }, ctx.newId);
  const applied = await applyUsageChanges(ctx.repos.usage, changes);
  for (const interval of applied.closed) ctx.events.emit('usage.stopped', { interval });
  for (const interval of applied.opened) ctx.events.emit('usage.started', { interval });
}

/** Stops billing for an image at `at` (the delete request). Idempotent. */
export async function stopBilling(ctx: ServiceContext, imageId: string, at: Date): Promise<void> {
  const changes = closeUsage({ imageId, at, openIntervals: await openIntervalsOf(ctx, imageId) });
  const applied = await applyUsageChanges(ctx.repos.usage, changes);
  for (const interval of applied.closed) ctx.events.emit('usage.stopped', { interval });
}
