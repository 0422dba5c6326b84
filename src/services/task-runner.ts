/**
 * Creating tasks and running them: status via compare-and-set, heartbeat, throttled progress,
 * and the outcome recorded with a stable error code and an actionable message.
 * @module
 */
import { InstanceImagesError, isInstanceImagesError } from '../errors';
import type { Task, TaskType } from '../model/task';
import type { ServiceContext } from './context';

/** Progress reported by task work. */
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
}

/** Inserts a queued task. */
export async function createTask(ctx: ServiceContext, input: { type: TaskType; subjectKind: Task['subjectKind']; subjectId: string; accountId: string | null; hypervisorId: string | null }): Promise<Task> {
  const now = ctx.now();
  const task: Task = {
    id: ctx.newId(),
    ...input,
    status: 'queued',
    progress: { step: 'queued', bytesDone: 0, bytesTotal: null },
    errorCode: null,
    errorMessage: null,
    attempts: 0,
    // A queued task is kept alive by the process that holds it in its queue (see recover()).
    heartbeatAt: now,
    createdAt: now,
    updatedAt: now,
    startedAt: null,
    finishedAt: null,
  };
  await ctx.repos.tasks.insert(task);
  return task;
}

/** The outcome of {@link runTask}. */
export type TaskOutcome = { ok: true; task: Task } | { ok: false; task: Task | null; error: InstanceImagesError };

/**
 * Runs `work` as the task: queued → running (or gives up when the task was cancelled meanwhile),
 * heartbeats while it runs, then completed / failed / cancelled. Never throws: the outcome says.
 * `onFailure` runs before the task is marked failed (cleanup, image → error).
 */
export async function runTask(ctx: ServiceContext, taskId: string, signal: AbortSignal, work: (w: TaskWork) => Promise<void>): Promise<TaskOutcome> {
  const startedAt = ctx.now();
  const current = await ctx.repos.tasks.get(taskId);
  const running = await ctx.repos.tasks.transition(taskId, ['queued'], 'running', { startedAt, heartbeatAt: startedAt, attempts: (current?.attempts ?? 0) + 1, progress: { step: 'starting', bytesDone: 0, bytesTotal: null } }, startedAt);
  if (!running) {
    return { ok: false, task: await ctx.repos.tasks.get(taskId), error: new InstanceImagesError('CANCELLED', 'The task was cancelled before it started') };
  }
  const heartbeat = setInterval(() => {
    const now = ctx.now();
    ctx.repos.tasks.update(taskId, { heartbeatAt: now }, now).catch((error: unknown) => ctx.logger.warn('task heartbeat failed', { taskId, error: String(error) }));
  }, ctx.settings.heartbeatIntervalMs);
  heartbeat.unref?.();

  let lastPersisted = 0;
  let lastStep = running.progress.step;
  let pending: Promise<unknown> = Promise.resolve();
  const progress = (p: WorkProgress) => {
    const nowMs = ctx.now().getTime();
    if (p.step === lastStep && nowMs - lastPersisted < ctx.settings.progressIntervalMs) return;
    lastPersisted = nowMs;
    lastStep = p.step;
    const value = { step: p.step, bytesDone: Math.max(0, Math.floor(p.bytesDone ?? 0)), bytesTotal: p.bytesTotal ?? null };
    pending = pending
      .then(() => ctx.repos.tasks.update(taskId, { progress: value, heartbeatAt: new Date(nowMs) }, new Date(nowMs)))
      .then((task) => {
        if (task && task.status === 'running') ctx.events.emit('task.progress', { task });
      })
      .catch((error: unknown) => ctx.logger.warn('task progress update failed', { taskId, error: String(error) }));
  };

  try {
    await work({ task: running, signal, progress });
    await pending;
    const now = ctx.now();
    const done = await ctx.repos.tasks.transition(taskId, ['running'], 'completed', { finishedAt: now, progress: { ...((await ctx.repos.tasks.get(taskId))?.progress ?? running.progress), step: 'completed' } }, now);
    if (done) ctx.events.emit('task.finished', { task: done });
    return { ok: true, task: done ?? running };
  } catch (thrown) {
    await pending;
    const error = isInstanceImagesError(thrown) ? thrown : new InstanceImagesError('CAPTURE_FAILED', 'The task failed unexpectedly', { cause: thrown });
    const cancelled = error.code === 'CANCELLED' || signal.aborted;
    const now = ctx.now();
    const ended = await ctx.repos.tasks.transition(taskId, ['running'], cancelled ? 'cancelled' : 'failed', { finishedAt: now, errorCode: cancelled ? 'CANCELLED' : error.code, errorMessage: cancelled ? 'Cancelled' : error.message }, now);
    if (ended) ctx.events.emit('task.finished', { task: ended });
    ctx.logger.warn('task failed', { taskId, code: error.code, message: error.message });
    return { ok: false, task: ended, error: cancelled && error.code !== 'CANCELLED' ? new InstanceImagesError('CANCELLED', 'The task was cancelled', { cause: error }) : error };
  } finally {
    clearInterval(heartbeat);
  }
}

/** Marks a queued task cancelled (it never ran). @returns the task, or null when it was no longer queued. */
export async function cancelQueuedTask(ctx: ServiceContext, taskId: string): Promise<Task | null> {
  const now = ctx.now();
  const task = await ctx.repos.tasks.transition(taskId, ['queued'], 'cancelled', { finishedAt: now, errorCode: 'CANCELLED', errorMessage: 'Cancelled' }, now);
  if (task) ctx.events.emit('task.finished', { task });
  return task;
}
