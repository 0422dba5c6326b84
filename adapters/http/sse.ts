/**
 * Task progress as Server-Sent Events over a web `ReadableStream`. The stream sends the task as it
 * is now (`task`), then every `task.progress` and the `task.finished` of that task from the SDK's
 * events, and ends after `task.finished`. The caller must be allowed to see the task (a foreign
 * one is 404, before any event is sent). The stream is pulled: a client that reads slowly gets
 * the newest progress instead of a growing queue, and one that goes away (the stream is cancelled
 * or the request's signal aborts) unsubscribes at once.
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

/** The headers of an event stream (no proxy buffering, no caching). */
const SSE_HEADERS = {
  'Content-Type': 'text/event-stream; charset=utf-8',
  'Cache-Control': 'no-cache, no-transform',
  'X-Accel-Buffering': 'no',
} as const;

type Pending = { event: TaskStreamEvent; task: Task } | { comment: string };

/** Streams one task's progress until it finishes or the client goes away. */
export async function streamTaskEvents(ctx: RouteContext<unknown, unknown>, taskId: string): Promise<RouteResult> {
  const { service, sseHeartbeatMs } = ctx.runtime;
  const audience = ctx.actor.kind === 'admin' ? 'admin' : 'customer';
  const pending: Pending[] = [];
  let wake: (() => void) | null = null;
  let finished = false;
  let stopped = false;
  let heartbeat: NodeJS.Timeout | null = null;

  const push = (item: Pending) => {
    const last = pending.at(-1);
    // Progress is a state, not a log: a newer one replaces one the client has not read yet.
    if ('event' in item && item.event === 'task.progress' && last && 'event' in last && last.event === 'task.progress') {
      pending[pending.length - 1] = item;
    } else pending.push(item);
    wake?.();
  };
  // Until the task is read, events wait here; then they are replayed against the read state.
  const early: { event: TaskStreamEvent; task: Task }[] = [];
  let current: Task | null = null;
  const deliver = (event: TaskStreamEvent, task: Task) => {
    if (current === null) {
      early.push({ event, task });
      return;
    }
    if (finished || stopped) return;
    // A progress update older than the state already sent adds nothing.
    if (event === 'task.progress' && task.updatedAt.getTime() < current.updatedAt.getTime()) return;
    current = task;
    if (event === 'task.finished') finished = true;
    push({ event, task });
  };
  const onProgress = ({ task }: { task: Task }) => {
    if (task.id === taskId) deliver('task.progress', task);
  };
  const onFinished = ({ task }: { task: Task }) => {
    if (task.id === taskId) deliver('task.finished', task);
  };
  const stop = () => {
    stopped = true;
    service.events.off('task.progress', onProgress);
    service.events.off('task.finished', onFinished);
    if (heartbeat) clearInterval(heartbeat);
    heartbeat = null;
    ctx.request.signal.removeEventListener('abort', stop);
    wake?.();
  };
  // Subscribe before reading the task so nothing between the read and the subscription is lost.
  service.events.on('task.progress', onProgress);
  service.events.on('task.finished', onFinished);
  try {
    current = await service.images.getTask(ctx.actor, taskId);
  } catch (error) {
    stop();
    throw error;
  }
  push({ event: 'task', task: current });
  if (TERMINAL.has(current.status)) {
    finished = true;
    push({ event: 'task.finished', task: current });
  }
  for (const { event, task } of early.splice(0)) deliver(event, task);
  if (finished || ctx.request.signal.aborted) stop();
  else {
    ctx.request.signal.addEventListener('abort', stop, { once: true });
    heartbeat = setInterval(() => {
      if (pending.length === 0) push({ comment: 'keep-alive' });
    }, sseHeartbeatMs);
    heartbeat.unref();
  }

  const encoder = new TextEncoder();
  let nextId = 1;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        while (pending.length === 0 && !stopped) await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
        const item = pending.shift();
        if (item === undefined) {
          controller.close();
          return;
        }
        if ('comment' in item) {
          controller.enqueue(encoder.encode(`: ${item.comment}\n\n`));
          return;
        }
        controller.enqueue(encoder.encode(formatSseMessage(nextId++, item.event, taskForAudience(item.task, audience))));
        if (item.event === 'task.finished') {
          stop();
          pending.length = 0;
          controller.close();
        }
      },
      cancel: stop,
    },
    // Nothing is read ahead: each event is produced when the client can take it.
    { highWaterMark: 0 },
  );
  return { response: new Response(body, { status: 200, headers: SSE_HEADERS }) };
}
