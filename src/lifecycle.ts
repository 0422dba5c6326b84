/**
 * The image lifecycle state machine: pure and table-driven.
 *
 * ```
 * creating  -> available | error
 * available -> deleting
 * error     -> creating (retry) | deleting
 * deleting  -> deleted | error (delete failed; retryable)
 * ```
 * @module
 */
import { InstanceImagesError } from './errors';
import type { ImageStatus } from './model/image';

/** Every image status, in lifecycle order. */
export const IMAGE_STATUSES: readonly ImageStatus[] = ['creating', 'available', 'error', 'deleting', 'deleted'];

/** The allowed transitions: `IMAGE_TRANSITIONS[from]` lists every status `from` may move to. */
export const IMAGE_TRANSITIONS: Readonly<Record<ImageStatus, readonly ImageStatus[]>> = {
  creating: ['available', 'error'],
  available: ['deleting'],
  error: ['creating', 'deleting'],
  deleting: ['deleted', 'error'],
  deleted: [],
};

/** True when an image may move from `from` to `to`. */
export function canTransition(from: ImageStatus, to: ImageStatus): boolean {
  return IMAGE_TRANSITIONS[from].includes(to);
}

/** The statuses from which an image may move to `to` (used as the compare-and-set's `from` list). */
export function sourcesOf(to: ImageStatus): ImageStatus[] {
  return IMAGE_STATUSES.filter((from) => canTransition(from, to));
}

/**
 * Checks a transition.
 * @throws InstanceImagesError INVALID_STATE when the transition is not allowed.
 */
export function assertTransition(from: ImageStatus, to: ImageStatus): void {
  if (!canTransition(from, to)) {
    throw new InstanceImagesError('INVALID_STATE', `An image cannot go from ${from} to ${to}`, { details: { from, to } });
  }
}
