/**
 * How the services hand events to the outbox. Every repository write that causes events takes
 * them as an {@link OutboxEvents} builder (`images.transition`, `tasks.transition`,
 * `tasks.transitionWithImage`, `tasks.insert`, `usage.insert`, `usage.close`, the share and
 * transfer writes, `settings.putAccountState`), so the repository records them with the change
 * ({@link recordWith} for the later ones, which a host's older repositories may not record). Only
 * events that follow no repository write (an ISO attached on the hypervisor, a reconcile finding
 * that changed nothing) are appended on their own ({@link recordEvents}). Either way the same
 * events are emitted on the process's emitter for local listeners (SSE streams, in-process hooks).
 * @module
 */
import type { InstanceImagesEmitter, InstanceImagesEvents } from '../events';
import type { Task } from '../model/task';
import type { Logger } from '../ports/logger';
import type { Repositories } from '../ports/repositories';
import type { OutboxDraft, OutboxEvents, OutboxWrite } from '../ports/repositories-outbox';

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

/** Whether the repositories record the events of `write` in the write's own transaction. */
export function recordsWith(ctx: Pick<EventRecorder, 'repos'>, write: OutboxWrite): boolean {
  return ctx.repos.outbox?.recordedWrites?.includes(write) ?? false;
}

/**
 * Runs a repository write of the kind `write` names with the events `build` makes of each record
 * it writes. When the repositories record that kind ({@link recordsWith}), the builder goes to the
 * write (recorded in its transaction, none when it wrote nothing) and the events it recorded are
 * emitted after it; otherwise (a host's repositories written before those writes took events) the
 * write runs without it and the events of `written(result)` are recorded right after it
 * ({@link recordEvents}).
 */
export async function recordWith<T, R>(
  ctx: EventRecorder,
  write: OutboxWrite,
  build: (record: T) => TypedDraft[],
  run: (events: OutboxEvents<T> | undefined) => Promise<R>,
  written: (result: R) => readonly T[] | Promise<readonly T[]>,
): Promise<R> {
  if (!recordsWith(ctx, write)) {
    const result = await run(undefined);
    await recordEvents(ctx, (await written(result)).flatMap(build));
    return result;
  }
  const recorded: TypedDraft[] = [];
  const result = await run((record) => {
    const drafts = build(record);
    recorded.push(...drafts);
    return drafts;
  });
  publish(ctx.events, recorded);
  return result;
}

/** The events of a task that ended (for `tasks.transition`): `task.finished`, ordered with its subject's events. */
export const taskFinished = (task: Task): TypedDraft[] => [draft('task.finished', task.subjectId, { task })];
