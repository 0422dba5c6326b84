/**
 * Creating tasks and running them: status via compare-and-set, heartbeat, throttled progress
 * (through the one progress model, `src/tasks/progress.ts`), and the outcome recorded with a
 * stable error code and an actionable message.
 * @module
 */
import { context as otelContext } from '@opentelemetry/api';
import { InstanceImagesError, isInstanceImagesError } from '../errors';
import type { Task, TaskProgress, TaskType } from '../model/task';
import { createProgressTracker, QUEUED_PROGRESS, STARTING_PROGRESS } from '../tasks/progress';
import type { ServiceContext } from './context';
import { publish, recordEvents, recordWith, taskFinished, type TypedDraft } from './outbox-events';
import { tryTransitionImage } from './image-state';
import { endTaskWithImage, transitionTask, type ImageMove } from './task-state';

/**
 * Progress reported by task work: a step of the task type (or a driver's step name the progress
 * model maps onto one) and bytes of that step.
 */
export interface WorkProgress {
  step: string;
  bytesDone?: number;
  bytesTotal?: number | null;
}

/** What task work receives. */
export interface TaskWork {
  /** The task as it started running. */
  task: Task;
  /** Aborted when the task is cancelled. */
  signal: AbortSignal;
  /** Reports progress (persisted and emitted at most once per interval; step changes always). */
  progress(progress: WorkProgress): void;
  /** Adds ids to the task's telemetry span once the work knows them. */
  annotate(attributes: { storageId?: string }): void;
  /** Sets the events the task's end causes besides `task.finished` (recorded in the same transaction). */
  endWith(events: TaskEndEvents): void;
}

/** Inserts a queued task, with the events `events` makes of it recorded in the same write (e.g. `image.copy-started`). */
export async function createTask(
  ctx: ServiceContext,
  input: {
    type: TaskType;
    subjectKind: Task['subjectKind'];
    subjectId: string;
    accountId: string | null;
    hypervisorId: string | null;
    storageId?: string;
  },
  events?: (task: Task) => TypedDraft[],
): Promise<Task> {
  const now = ctx.now();
  const task: Task = {
    id: ctx.newId(),
    ...input,
    status: 'queued',
    progress: { ...QUEUED_PROGRESS },
    errorCode: null,
    errorMessage: null,
    attempts: 0,
    // The process that holds the task in its queue (see the reaper).
    workerId: ctx.worker.workerId,
    incarnationId: ctx.worker.incarnationId,
    // A queued task is kept alive by the process that holds it in its queue (see recover()).
    heartbeatAt: now,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
  };
  if (!events) await ctx.repos.tasks.insert(task);
  else
    await recordWith(
      ctx,
      'taskInserts',
      events,
      (build) => ctx.repos.tasks.insert(task, build),
      () => [task],
    );
  return task;
}

/** The outcome of {@link runTask}. */
export type TaskOutcome = { ok: true; task: Task } | { ok: false; task: Task | null; error: InstanceImagesError };

/** Events a task's end causes besides `task.finished`, recorded in the same transaction as the end. */
export interface TaskEndEvents {
  /** When the task completed. */
  completed?: (task: Task) => TypedDraft[];
  /** When it failed or was cancelled (`error` as the outcome reports it). */
  failed?: (task: Task, error: InstanceImagesError) => TypedDraft[];
  /**
   * When it failed or was cancelled: runs first, while the task is still running (the work's
   * cleanup that must come before the end, if any), and returns the move of its image that ends
   * with it (`creating` → `error`), made in the same write as the task's end, or `null` for none.
   */
  failImage?: (error: InstanceImagesError) => Promise<ImageMove | null>;
  /**
   * When it failed or was cancelled: runs after the task's end and its image's move were written
   * (before the outcome is returned), best effort (a failure is logged): the removal of leftovers
   * that must not hold the end back, e.g. on a storage that no longer answers. What a crash leaves
   * here stays with an image in `error` (removed with it) or is found by the reconcile or the chunk GC.
   */
  afterFailure?: (error: InstanceImagesError) => Promise<void>;
}

/** The work's {@link TaskEndEvents.failImage} (its cleanup), never throwing: a failed cleanup is logged, the task still ends. */
async function imageMoveOf(ctx: ServiceContext, taskId: string, end: TaskEndEvents, error: InstanceImagesError): Promise<ImageMove | null> {
  return (
    end.failImage?.(error).catch((cause: unknown) => {
      ctx.logger.warn('the cleanup of a failed task failed', { taskId, error: String(cause) });
      return null;
    }) ?? null
  );
}

/** The work's {@link TaskEndEvents.afterFailure}, never throwing. */
async function cleanUpAfter(ctx: ServiceContext, taskId: string, end: TaskEndEvents, error: InstanceImagesError): Promise<void> {
  await end
    .afterFailure?.(error)
    .catch((cause: unknown) => ctx.logger.warn('the cleanup after a failed task failed', { taskId, error: String(cause) }));
}

/**
 * Runs `work` as the task: queued → running (or gives up when the task was cancelled meanwhile),
 * heartbeats while it runs, then completed / failed / cancelled, recording `task.finished` (and the
 * events the work set with `endWith`) with the end. Never throws: the outcome says.
 */
export async function runTask(
  ctx: ServiceContext,
  taskId: string,
  signal: AbortSignal,
  work: (w: TaskWork) => Promise<void>,
): Promise<TaskOutcome> {
  let endEvents: TaskEndEvents = {};
  const startedAt = ctx.now();
  const current = await ctx.repos.tasks.get(taskId);
  const { workerId, incarnationId } = ctx.worker;
  const running = await transitionTask(
    ctx,
    taskId,
    ['queued'],
    'running',
    {
      startedAt,
      heartbeatAt: startedAt,
      attempts: (current?.attempts ?? 0) + 1,
      progress: { ...STARTING_PROGRESS },
      workerId,
      incarnationId,
    },
    startedAt,
  );
  if (!running) {
    return {
      ok: false,
      task: await ctx.repos.tasks.get(taskId),
      error: new InstanceImagesError('CANCELLED', 'The task was cancelled before it started'),
    };
  }
  // Heartbeats and progress are compare-and-set on `running`: they never revive a task that
  // recovery (of another process that took this one for dead) has failed; this run then stops.
  // Once the run writes its own end (`ending`), a heartbeat that loses the race to it finds the
  // task no longer running: that is this run's end, not a recovery, and says nothing.
  let lost = false;
  let ending = false;
  const alive = (task: Task | null): Task | null => {
    if (task === null && !lost && !ending) {
      lost = true;
      ctx.logger.warn('task was recovered by another process while running here; stopping it', { taskId });
      ctx.queue.cancel(taskId);
    }
    return task;
  };
  const heartbeat = setInterval(() => {
    const now = ctx.now();
    transitionTask(ctx, taskId, ['running'], 'running', { heartbeatAt: now }, now).then(alive, (error: unknown) =>
      ctx.logger.warn('task heartbeat failed', { taskId, error: String(error) }),
    );
  }, ctx.settings.heartbeatIntervalMs);
  heartbeat.unref?.();

  const telemetry = ctx.telemetry.task(running);
  const tracker = createProgressTracker(running.type, running.progress);
  let lastPersisted = 0;
  let lastStep = running.progress.step;
  let pending: Promise<unknown> = Promise.resolve();
  const persist = (value: TaskProgress, at: Date) => {
    pending = pending
      .then(() => transitionTask(ctx, taskId, ['running'], 'running', { progress: value, heartbeatAt: at }, at))
      .then((task) => {
        if (alive(task)) ctx.events.emit('task.progress', { task: task as Task });
      })
      .catch((error: unknown) => ctx.logger.warn('task progress update failed', { taskId, error: String(error) }));
  };
  const progress = (p: WorkProgress) => {
    telemetry.step(p.step, p.bytesDone);
    const value = tracker.report(p);
    const nowMs = ctx.now().getTime();
    if (value.step === lastStep && nowMs - lastPersisted < ctx.settings.progressIntervalMs) return;
    lastPersisted = nowMs;
    lastStep = value.step;
    persist(value, new Date(nowMs));
  };

  try {
    const annotate = (attributes: { storageId?: string }) => telemetry.annotate(attributes);
    const endWith = (events: TaskEndEvents) => {
      endEvents = events;
    };
    await otelContext.with(telemetry.context, () => work({ task: running, signal, progress, annotate, endWith }));
    await pending;
    ending = true;
    const now = ctx.now();
    const completed = (task: Task) => [...taskFinished(task), ...(endEvents.completed?.(task) ?? [])];
    const done = await transitionTask(
      ctx,
      taskId,
      ['running'],
      'completed',
      { finishedAt: now, progress: tracker.complete() },
      now,
      completed,
    );
    if (done) publish(ctx.events, completed(done));
    telemetry.end({ ok: true });
    return { ok: true, task: done ?? running };
  } catch (thrown) {
    await pending;
    if (lost) {
      const error = new InstanceImagesError('INTERRUPTED', 'The task was taken for interrupted and recovered by another panel process', {
        cause: thrown,
      });
      ctx.logger.warn('task failed', { taskId, code: error.code, message: error.message });
      telemetry.end({ ok: false, code: error.code });
      const task = await ctx.repos.tasks.get(taskId);
      // Recovery ended the task (and recorded task.finished); its other end events follow here.
      if (task) await recordEvents(ctx, endEvents.failed?.(task, error) ?? []);
      const move = await imageMoveOf(ctx, taskId, endEvents, error);
      if (move) await tryTransitionImage(ctx, move.image, move.to, move.patch ?? {}, move.actor, move.reason).catch(() => null);
      clearInterval(heartbeat);
      await cleanUpAfter(ctx, taskId, endEvents, error);
      return { ok: false, task, error };
    }
    ending = true;
    const error = isInstanceImagesError(thrown)
      ? thrown
      : new InstanceImagesError('CAPTURE_FAILED', 'The task failed unexpectedly', { cause: thrown });
    const cancelled = error.code === 'CANCELLED' || signal.aborted;
    const reported =
      cancelled && error.code !== 'CANCELLED' ? new InstanceImagesError('CANCELLED', 'The task was cancelled', { cause: error }) : error;
    const failed = (task: Task) => [...taskFinished(task), ...(endEvents.failed?.(task, reported) ?? [])];
    // The work's cleanup first; then the task's end, with its image's move in the same write.
    const move = await imageMoveOf(ctx, taskId, endEvents, reported);
    const now = ctx.now();
    // A failed or cancelled task keeps the progress it reached (its latest, persisted or not).
    const patch = {
      finishedAt: now,
      progress: tracker.current(),
      errorCode: cancelled ? 'CANCELLED' : error.code,
      errorMessage: cancelled ? 'Cancelled' : error.message,
    };
    const end = { taskId, from: ['running'] as const, to: cancelled ? ('cancelled' as const) : ('failed' as const), patch, events: failed };
    let ended: Task | null;
    if (move) ended = (await endTaskWithImage(ctx, end, move, now))?.task ?? null;
    else {
      ended = await transitionTask(ctx, taskId, end.from, end.to, patch, now, failed);
      if (ended) publish(ctx.events, failed(ended));
    }
    ctx.logger.warn('task failed', { taskId, code: error.code, message: error.message });
    telemetry.end({ ok: false, code: cancelled ? 'CANCELLED' : error.code });
    // Leftovers whose removal need not come before the end (the task and its image show it
    // already); the heartbeat stops first, as the ended task has none.
    clearInterval(heartbeat);
    await cleanUpAfter(ctx, taskId, endEvents, reported);
    return { ok: false, task: ended, error: reported };
  } finally {
    clearInterval(heartbeat);
    telemetry.end({ ok: false, code: 'INTERRUPTED' });
  }
}

/** Marks a queued task cancelled (it never ran). @returns the task, or null when it was no longer queued. */
export async function cancelQueuedTask(ctx: ServiceContext, taskId: string): Promise<Task | null> {
  const now = ctx.now();
  const task = await transitionTask(
    ctx,
    taskId,
    ['queued'],
    'cancelled',
    { finishedAt: now, errorCode: 'CANCELLED', errorMessage: 'Cancelled' },
    now,
    taskFinished,
  );
  if (task) publish(ctx.events, taskFinished(task));
  return task;
}
