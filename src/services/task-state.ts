/**
 * Every task status change goes through here: the task lifecycle table (`TASK_TRANSITIONS` in
 * `src/lifecycle.ts`) and the repository's compare-and-set of the previous status, with the
 * events recorded in the same write; a task's end together with its image's move in one write
 * ({@link endTaskWithImage}).
 * @module
 */
import { assertTaskTransition, assertTransition } from '../lifecycle';
import type { StatusReason } from '../model/common';
import type { Image, ImageStatus } from '../model/image';
import type { Task, TaskPatch, TaskStatus } from '../model/task';
import type { OutboxEvents } from '../ports/repositories-outbox';
import type { Actor } from './actor';
import type { ServiceContext } from './context';
import { imageTransitionEvents, tryTransitionImage, type TransitionPatch } from './image-state';
import { publish, type TypedDraft } from './outbox-events';

/**
 * Moves a task whose status is one of `from` to `to`: the one function that writes a task status.
 * @returns the updated task, or `null` when the task is missing or its status is no longer in `from`.
 * @throws InstanceImagesError INVALID_STATE when the table forbids one of the transitions.
 */
export function transitionTask(
  ctx: Pick<ServiceContext, 'repos'>,
  taskId: string,
  from: readonly TaskStatus[],
  to: TaskStatus,
  patch: TaskPatch,
  now: Date,
  events?: OutboxEvents<Task>,
): Promise<Task | null> {
  assertTaskTransition(from, to);
  return ctx.repos.tasks.transition(taskId, from, to, patch, now, events);
}

/** The task's end in {@link endTaskWithImage}. */
export interface TaskEnd {
  taskId: string;
  from: readonly TaskStatus[];
  to: TaskStatus;
  patch: TaskPatch;
  /** The events of the end (e.g. `task.finished`). */
  events: (task: Task) => TypedDraft[];
}

/** The image's move in {@link endTaskWithImage}: from its status as read to `to`. */
export interface ImageMove {
  image: Image;
  to: ImageStatus;
  actor: Actor | 'system';
  reason: StatusReason | null;
  /** Fields the move sets besides the status and its reason (e.g. a failed import's `reservedBytes: null`). */
  patch?: TransitionPatch;
}

/**
 * Ends a task and moves its image in one write (`tasks.transitionWithImage`): the task's
 * compare-and-set and, when it succeeded, the image's (which may fail on its own when the image
 * moved meanwhile), with the events of both, recorded together and then emitted. Repositories
 * without `transitionWithImage` (a host's, written before it) get the two transitions one after
 * the other.
 * @returns the ended task and the moved image (`null` when it had moved meanwhile), or `null` when
 *   the task's status was no longer in `from` (nothing changed).
 * @throws InstanceImagesError INVALID_STATE when a lifecycle table forbids one of the transitions.
 */
export async function endTaskWithImage(
  ctx: ServiceContext,
  end: TaskEnd,
  move: ImageMove,
  now: Date,
): Promise<{ task: Task; image: Image | null } | null> {
  assertTaskTransition(end.from, end.to);
  assertTransition(move.image.status, move.to, move.image.kind);
  const { tasks } = ctx.repos;
  if (!tasks.transitionWithImage) {
    const task = await transitionTask(ctx, end.taskId, end.from, end.to, end.patch, now, end.events);
    if (!task) return null;
    publish(ctx.events, end.events(task));
    const image = await tryTransitionImage(ctx, move.image, move.to, move.patch ?? {}, move.actor, move.reason).catch(() => null);
    return { task, image };
  }
  const imageEvents = imageTransitionEvents(move.image.status, move.to, move.actor, move.reason);
  const done = await tasks.transitionWithImage(
    { id: end.taskId, from: end.from, to: end.to, patch: end.patch, events: end.events },
    { id: move.image.id, from: [move.image.status], to: move.to, patch: { ...move.patch, statusReason: move.reason }, events: imageEvents },
    now,
  );
  if (!done) return null;
  publish(ctx.events, [...end.events(done.task), ...(done.image ? imageEvents(done.image) : [])]);
  return done;
}
