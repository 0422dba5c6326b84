/**
 * Waiting for a task to end: the `task.finished` event of this process, and polling the
 * repository for tasks another panel process runs.
 * @module
 */
import { InstanceImagesError } from '../errors';
import type { Task } from '../model/task';
import type { ServiceContext } from './context';

/** Options of `images.waitForTask`. */
export interface WaitForTaskOptions {
  /** Stops waiting (the task goes on) with CANCELLED. */
  signal?: AbortSignal;
  /** How often the task is read again, for tasks run by another process; default 1000 ms. */
  pollIntervalMs?: number;
}

const ENDED: readonly Task['status'][] = ['completed', 'failed', 'cancelled'];

/** Resolves with the task once it has ended (completed, failed or cancelled). */
export function waitForTaskEnd(
  ctx: ServiceContext,
  taskId: string,
  read: () => Promise<Task>,
  options: WaitForTaskOptions = {},
): Promise<Task> {
  const { signal, pollIntervalMs = 1000 } = options;
  return new Promise<Task>((resolve, reject) => {
    let settled = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = (error: unknown, task?: Task) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      ctx.events.off('task.finished', onFinished);
      signal?.removeEventListener('abort', onAbort);
      if (task) resolve(task);
      else reject(error);
    };
    const check = () => {
      read().then(
        (task) => {
          if (ENDED.includes(task.status)) finish(null, task);
          else if (!settled) timer = setTimeout(check, pollIntervalMs);
        },
        (error: unknown) => finish(error),
      );
    };
    const onFinished = ({ task }: { task: Task }) => {
      if (task.id === taskId) finish(null, task);
    };
    const onAbort = () => finish(new InstanceImagesError('CANCELLED', 'Stopped waiting for the task (the task goes on)'));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    ctx.events.on('task.finished', onFinished);
    check();
  });
}
