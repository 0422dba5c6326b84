/**
 * Jobs as data: the handler registry that turns a queued {@link TaskJob} back into work. Each
 * service registers the handlers of its task types (capture and delete: the images service;
 * deploy: the deploy service; import, copy, close-account, chunk-gc and chunk-verify: theirs); a
 * handler reads the task and its subject from the repositories, so any process of the deployment
 * can run any job. The queue gets {@link TaskJobRegistry.run} as its runner. The types of
 * {@link INLINE_TASK_TYPES} run inline in the process that was asked and are never queued;
 * `createInstanceImages` refuses to start when any other type has no handler.
 * @module
 */
import type { z } from 'zod';
import { InstanceImagesError } from '../errors';
import { TaskTypeSchema, type TaskType } from '../model/task';
import type { TaskJob } from '../ports/task-queue';
import type { ServiceContext } from './context';
import { tryTransitionImage } from './image-state';
import { publish, taskFinished } from './outbox-events';
import { transitionTask } from './task-state';

/**
 * Task types that are never queued: they run inline in the call that created them (an ISO
 * upload's bytes arrive in that process; a size refresh is one stat; `reconcile` is a type for
 * hosts' own records, the SDK's reconcile runs as a plain call).
 */
export const INLINE_TASK_TYPES: readonly TaskType[] = ['iso-upload', 'refresh-size', 'reconcile'];

/** Runs one type of job: rebuilds the work from the repositories; its outcome is recorded on the task. */
export type TaskJobHandler = (job: TaskJob, signal: AbortSignal) => Promise<void>;

/** The handlers of queued task types, by type. */
export class TaskJobRegistry {
  private readonly handlers = new Map<TaskType, TaskJobHandler>();

  /** Registers the handler of a task type. @throws CONFLICT when the type has one already. */
  register(type: TaskType, handler: TaskJobHandler): void {
    if (this.handlers.has(type)) throw new InstanceImagesError('CONFLICT', `A handler of ${type} jobs is registered already`);
    this.handlers.set(type, handler);
  }

  /** Whether a type has a handler. */
  has(type: TaskType): boolean {
    return this.handlers.has(type);
  }

  /** The registered types. */
  types(): TaskType[] {
    return [...this.handlers.keys()];
  }

  /**
   * Runs a job with its type's handler.
   * @throws VALIDATION_FAILED when no handler is registered for the type (a job of a newer version).
   */
  run(job: TaskJob, signal: AbortSignal): Promise<void> {
    const handler = this.handlers.get(job.type);
    if (!handler) {
      return Promise.reject(
        new InstanceImagesError('VALIDATION_FAILED', `No handler runs ${JSON.stringify(job.type)} jobs in this process`, {
          details: { taskId: job.taskId, type: job.type },
        }),
      );
    }
    return handler(job, signal);
  }

  /**
   * The task types that are queued yet have no handler here (every type is either queued, with a
   * handler, or in {@link INLINE_TASK_TYPES}).
   */
  missing(): TaskType[] {
    return TaskTypeSchema.options.filter((type) => !this.handlers.has(type) && !INLINE_TASK_TYPES.includes(type));
  }
}

/**
 * The params of a job, checked against `schema` (a job written by another version, or altered in
 * the engine, fails its task with VALIDATION_FAILED instead of running with wrong inputs).
 */
export function jobParams<S extends z.ZodType>(job: TaskJob, schema: S): z.output<S> {
  const result = schema.safeParse(job.params ?? {});
  if (!result.success)
    throw new InstanceImagesError('VALIDATION_FAILED', `The ${job.type} job of task ${job.taskId} has unreadable parameters`, {
      details: { taskId: job.taskId, type: job.type, issues: result.error.issues.map((issue) => issue.path.join('.')) },
    });
  return result.data;
}

/**
 * Queues the job of a queued task. When the queue refuses it (closed, its engine unreachable), the
 * task is failed at once, so nothing stays queued that no process will run, `onRefused` undoes what
 * the request made (see {@link withdrawNewImage}), and the caller gets an INTERRUPTED error to show
 * (retry later).
 */
export async function enqueueTask(ctx: ServiceContext, job: TaskJob, onRefused?: () => Promise<unknown>): Promise<void> {
  try {
    await ctx.queue.enqueue(job);
  } catch (cause) {
    await onRefused?.().catch((error: unknown) =>
      ctx.logger.warn('undoing a task that could not be queued failed', { taskId: job.taskId, error: String(error) }),
    );
    const now = ctx.now();
    const message = 'The task could not be queued (the task queue is closed or unreachable); try again in a moment';
    const failed = await transitionTask(
      ctx,
      job.taskId,
      ['queued'],
      'failed',
      { finishedAt: now, errorCode: 'INTERRUPTED', errorMessage: message },
      now,
      taskFinished,
    ).catch(() => null);
    if (failed) publish(ctx.events, taskFinished(failed));
    ctx.logger.error('a task could not be queued', { taskId: job.taskId, type: job.type, error: String(cause) });
    throw new InstanceImagesError('INTERRUPTED', message, { cause, details: { taskId: job.taskId } });
  }
}

/**
 * Withdraws an image a request has just recorded in `creating` when its task could not be queued:
 * through `error` (reason INTERRUPTED) and `deleting` to `deleted` at once (not listed, not counted
 * against the cap, never billed).
 */
export function withdrawNewImage(ctx: ServiceContext, imageId: string): () => Promise<unknown> {
  return async () => {
    const image = await ctx.repos.images.get(imageId);
    if (image?.status !== 'creating') return;
    const reason = { code: 'INTERRUPTED' as const, message: 'The task could not be queued; try again in a moment.' };
    const failed = await tryTransitionImage(ctx, image, 'error', {}, 'system', reason);
    const deleting = failed && (await tryTransitionImage(ctx, failed, 'deleting', {}, 'system', reason));
    if (deleting) await tryTransitionImage(ctx, deleting, 'deleted', { deletedAt: ctx.now() }, 'system', reason);
  };
}
