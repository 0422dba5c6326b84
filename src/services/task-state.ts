/**
 * Every task status change goes through here: the task lifecycle table (`TASK_TRANSITIONS` in
 * `src/lifecycle.ts`) and the repository's compare-and-set of the previous status, with the
 * events recorded in the same write.
 * @module
 */
import { assertTaskTransition } from '../lifecycle';
import type { Task, TaskPatch, TaskStatus } from '../model/task';
import type { OutboxEvents } from '../ports/repositories-outbox';
import type { ServiceContext } from './context';

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
