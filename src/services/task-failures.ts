/**
 * How a failed capture, import or delete ends its image: the move to `error` made in the same
 * write as the task's end (`TaskEndEvents.failImage`), and the removal of what a failed capture
 * stored, after that write (`TaskEndEvents.afterFailure`), so that a storage that no longer
 * answers never holds the image in `creating` after its task failed.
 * @module
 */
import type { InstanceImagesError } from '../errors';
import { failureReason, type ReasonOperation } from '../messages';
import type { ImageStatus } from '../model/image';
import type { StorageDisk } from '../storage/disk';
import type { ServiceContext } from './context';
import type { TransitionPatch } from './image-state';
import type { ImageMove } from './task-state';

/**
 * The move to `error` of a failed task's image: only while it is still `from` (and still has
 * `fileKey`, the attempt's, when given); else `null` (a cancel or another attempt moved it).
 */
export async function failedImageMove(
  ctx: Pick<ServiceContext, 'repos'>,
  imageId: string,
  expected: { from: ImageStatus; fileKey?: string },
  operation: ReasonOperation,
  error: InstanceImagesError,
  patch?: TransitionPatch,
): Promise<ImageMove | null> {
  const image = await ctx.repos.images.get(imageId);
  if (image?.status !== expected.from || (expected.fileKey !== undefined && image.fileKey !== expected.fileKey)) return null;
  return { image, to: 'error', actor: 'system', reason: failureReason(operation, error.code), ...(patch ? { patch } : {}) };
}

/** A capture attempt: its file key, the disk it writes to (once known), and the cleanups it deferred. */
export interface CaptureAttempt {
  fileKey: string;
  disk: StorageDisk | null;
  deferred: (() => Promise<void>)[];
}

/**
 * After a failed capture attempt ended: the cleanups it deferred run (its chunk lease dropped), and
 * its file (or manifest) is removed unless the attempt made the image available before failing.
 * Best effort: what stays belongs to an image in `error` (removed with it) or to nobody (the reconcile).
 */
export async function removeCaptureLeftovers(
  ctx: Pick<ServiceContext, 'repos' | 'logger'>,
  imageId: string,
  attempt: CaptureAttempt,
): Promise<void> {
  for (const cleanup of attempt.deferred) await cleanup();
  const image = await ctx.repos.images.get(imageId);
  if (!attempt.disk || (image?.status === 'available' && image.fileKey === attempt.fileKey)) return;
  await attempt.disk
    .delete(attempt.fileKey)
    .catch((error: unknown) => ctx.logger.warn('cleanup of a failed capture failed', { imageId, error: String(error) }));
}
