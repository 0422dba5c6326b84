/**
 * Task progress as Server-Sent Events. The stream sends the task as it is now (`task`), then every
 * `task.progress` and the `task.finished` of that task from the SDK's events, and ends after
 * `task.finished`. The caller must be allowed to see the task (a foreign one is 404, before any
 * event is sent).
 * @module
 */
import type { Task } from '../../src/model/task';
import { taskForAudience } from './problem';
import type { RouteContext, RouteResult } from './route-types';

const TERMINAL: ReadonlySet<Task['status']> = new Set(['completed', 'failed', 'cancelled']);

/** Event names of the task stream. */
export type TaskStreamEvent = 'task' | 'task.progress' | 'task.finished';

/** Formats one SSE message; the data is one JSON line (JSON never contains raw newlines). */
export function formatSseMessage(id: number, event: TaskStreamEvent, task: Task): string {
  return `id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(task)}\n\n`;
}

/** Streams one task's progress to the response until it finishes or the client goes away. */
export async function streamTaskEvents(ctx: RouteContext<unknown, unknown>, taskId: string): Promise<RouteResult> {
  const { service, sseHeartbeatMs } = ctx.runtime;
  const { res } = ctx;
  // Subscribe before reading the task so nothing between the read and the subscription is lost.
  const early: { event: TaskStreamEvent; task: Task }[] = [];
  let deliver: (event: TaskStreamEvent, task: Task) => void = (event, task) => early.push({ event, task });
  const onProgress = ({ task }: { task: Task }) => {
    if (task.id === taskId) deliver('task.progress', task);
  };
  const onFinished = ({ task }: { task: Task }) => {
    if (task.id === taskId) deliver('task.finished', task);
  };
  let heartbeat: NodeJS.Timeout | null = null;
  const stop = () => {
    service.events.off('task.progress', onProgress);
    service.events.off('task.finished', onFinished);
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = null;
  };
  service.events.on('task.progress', onProgress);
  service.events.on('task.finished', onFinished);

  let current: Task;
  try {
    current = await ctx.runtime.service.images.getTask(ctx.actor, taskId);
  } catch (error) {
    stop();
    throw error;
  }

  res.status(200);
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
  res.setHeader('Cache-Control', 'no-cache, no-transform');
  res.setHeader('Connection', 'keep-alive');
  res.setHeader('X-Accel-Buffering', 'no');
  res.flushHeaders();
  res.on('close', stop);

  let nextId = 1;
  let ended = false;
  const send = (event: TaskStreamEvent, task: Task) => {
    if (ended) return;
    res.write(formatSseMessage(nextId++, event, taskForAudience(task, ctx.actor.kind === 'admin' ? 'admin' : 'customer')));
    if (event === 'task.finished') {
      ended = true;
      stop();
      res.end();
    }
  };

  send('task', current);
  if (TERMINAL.has(current.status)) {
    send('task.finished', current);
    return 'handled';
  }
  deliver = (event, task) => {
    // A progress update older than the state already sent adds nothing.
    if (event === 'task.progress' && task.updatedAt.getTime() < current.updatedAt.getTime()) return;
    current = task;
    send(event, task);
  };
  for (const { event, task } of early.splice(0)) deliver(event, task);
  if (!ended) {
    heartbeat = setInterval(() => res.write(': keep-alive\n\n'), sseHeartbeatMs);
    heartbeat.unref();
  }
  return 'handled';
}
