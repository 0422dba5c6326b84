/**
 * The image lifecycle state machine: pure and table-driven, one table per image kind.
 *
 * Custom images (My Images) are born `creating` (a capture):
 * ```
 * creating  -> available | error
 * available -> deleting
 * error     -> creating (retry) | deleting
 * deleting  -> deleted | error (delete failed; retryable)
 * ```
 * Stock OS images are born `available` (registered from a file the operator already has); they
 * are never captured or retried, and their file is the operator's, so deleting an OS image may
 * skip `deleting` (no file to remove):
 * ```
 * available -> deleting | deleted
 * error     -> deleting | deleted
 * deleting  -> deleted | error
 * ```
 * Every status change in the services goes through one function (`transitionImage` in
 * `src/services/image-state.ts`) that checks this table and compare-and-sets the previous status.
 *
 * Tasks have their own table ({@link TASK_TRANSITIONS}), checked by `transitionTask` in
 * `src/services/task-state.ts`, the one function that writes a task status:
 * ```
 * queued  -> queued (heartbeat while waiting) | running | cancelled (never ran) | failed (refused, interrupted)
 * running -> running (progress, heartbeat) | completed | failed | cancelled
 * ```
 * `completed`, `failed` and `cancelled` are final: a retry is a new task.
 * @module
 */
import { InstanceImagesError } from './errors';
import type { ImageKind, ImageStatus } from './model/image';
import type { TaskStatus } from './model/task';

/** Every image status, in lifecycle order. */
export const IMAGE_STATUSES: readonly ImageStatus[] = ['creating', 'available', 'error', 'deleting', 'deleted'];

/** The allowed transitions of a status: `table[from]` lists every status `from` may move to. */
export type TransitionTable = Readonly<Record<ImageStatus, readonly ImageStatus[]>>;

/** The allowed transitions of a custom image: `IMAGE_TRANSITIONS[from]` lists every status `from` may move to. */
export const IMAGE_TRANSITIONS: TransitionTable = {
  creating: ['available', 'error'],
  available: ['deleting'],
  error: ['creating', 'deleting'],
  deleting: ['deleted', 'error'],
  deleted: [],
};

/** The allowed transitions of a stock OS image (never `creating`; deleting may skip `deleting`). */
export const STOCK_IMAGE_TRANSITIONS: TransitionTable = {
  creating: [],
  available: ['deleting', 'deleted'],
  error: ['deleting', 'deleted'],
  deleting: ['deleted', 'error'],
  deleted: [],
};

/** The transition table of each image kind. */
export const IMAGE_LIFECYCLE: Readonly<Record<ImageKind, TransitionTable>> = { custom: IMAGE_TRANSITIONS, stock: STOCK_IMAGE_TRANSITIONS };

/** The status an image of each kind is created in: a capture starts `creating`, an OS image is `available`. */
export const INITIAL_IMAGE_STATUS: Readonly<Record<ImageKind, ImageStatus>> = { custom: 'creating', stock: 'available' };

/** True when an image of `kind` (default custom) may move from `from` to `to`. */
export function canTransition(from: ImageStatus, to: ImageStatus, kind: ImageKind = 'custom'): boolean {
  return IMAGE_LIFECYCLE[kind][from].includes(to);
}

/** The statuses from which an image of `kind` (default custom) may move to `to`. */
export function sourcesOf(to: ImageStatus, kind: ImageKind = 'custom'): ImageStatus[] {
  return IMAGE_STATUSES.filter((from) => canTransition(from, to, kind));
}

/**
 * Checks a transition of an image of `kind` (default custom).
 * @throws InstanceImagesError INVALID_STATE when the transition is not allowed.
 */
export function assertTransition(from: ImageStatus, to: ImageStatus, kind: ImageKind = 'custom'): void {
  if (!canTransition(from, to, kind)) {
    const what = kind === 'stock' ? 'An OS image' : 'An image';
    throw new InstanceImagesError('INVALID_STATE', `${what} cannot go from ${from} to ${to}`, { details: { from, to, kind } });
  }
}

/** Every task status, in lifecycle order. */
export const TASK_STATUSES: readonly TaskStatus[] = ['queued', 'running', 'completed', 'failed', 'cancelled'];

/** The allowed transitions of a task: `TASK_TRANSITIONS[from]` lists every status `from` may move to. */
export const TASK_TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  queued: ['queued', 'running', 'cancelled', 'failed'],
  running: ['running', 'completed', 'failed', 'cancelled'],
  completed: [],
  failed: [],
  cancelled: [],
};

/**
 * Checks a task transition from each of `from` to `to`.
 * @throws InstanceImagesError INVALID_STATE when one is not in {@link TASK_TRANSITIONS}.
 */
export function assertTaskTransition(from: readonly TaskStatus[], to: TaskStatus): void {
  const refused = from.filter((status) => !TASK_TRANSITIONS[status].includes(to));
  if (refused.length > 0) {
    throw new InstanceImagesError('INVALID_STATE', `A task cannot go from ${refused.join(' or ')} to ${to}`, {
      details: { from: refused, to },
    });
  }
}
