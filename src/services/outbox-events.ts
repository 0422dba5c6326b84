/**
 * How the services hand events to the outbox. A write that has a transactional form takes the
 * events as an {@link OutboxEvents} builder (`images.transition`, `tasks.transition`,
 * `usage.insert`, `usage.close`), so the repository records them with the change; other events
 * are appended right after their write ({@link recordEvents}). Either way the same events are
 * emitted on the process's emitter for local listeners (SSE streams, in-process hooks).
 * @module
 */
import type { InstanceImagesEmitter, InstanceImagesEvents } from '../events';
import type { Task } from '../model/task';
import type { Logger } from '../ports/logger';
import type { Repositories } from '../ports/repositories';
import type { OutboxDraft } from '../ports/repositories-outbox';

/** The name of an event. */
export type EventName = keyof InstanceImagesEvents;

/** An event to record and emit, typed by its name. */
export type TypedDraft = { [K in EventName]: OutboxDraft & { type: K; data: InstanceImagesEvents[K] } }[EventName];

/** An event of `type` ordered by `key` (the image id for image, task and usage events). */
export function draft<K extends EventName>(type: K, key: string, data: InstanceImagesEvents[K]): TypedDraft {
  return { type, key, data } as TypedDraft;
}

/** Emits recorded events on the process's emitter, in order. */
export function publish(events: Pick<InstanceImagesEmitter, 'emit'>, drafts: readonly TypedDraft[]): void {
  for (const { type, data } of drafts) (events.emit as (type: EventName, data: unknown) => void)(type, data);
}

/** What {@link recordEvents} needs. */
export interface EventRecorder {
  readonly repos: Pick<Repositories, 'outbox'>;
  readonly events: Pick<InstanceImagesEmitter, 'emit'>;
  readonly logger: Logger;
  now(): Date;
}

/**
 * Emits events whose write has no transactional form (at once, as before the outbox: local
 * listeners see them right after the write), then appends them to the outbox. The write already
 * happened: when the append fails, that is logged with the event names.
 */
export async function recordEvents(ctx: EventRecorder, drafts: readonly TypedDraft[]): Promise<void> {
  if (drafts.length === 0) return;
  publish(ctx.events, drafts);
  if (ctx.repos.outbox) {
    try {
      await ctx.repos.outbox.append(drafts, ctx.now());
    } catch (error) {
      ctx.logger.error('events could not be recorded in the outbox; only local listeners got them', {
        types: drafts.map((d) => d.type),
        error: String(error),
      });
    }
  }
}

/** The events of a task that ended (for `tasks.transition`): `task.finished`, ordered with its subject's events. */
export const taskFinished = (task: Task): TypedDraft[] => [draft('task.finished', task.subjectId, { task })];
