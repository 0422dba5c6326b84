/**
 * The hypervisor gate: a queued task that works on a hypervisor starts only when the repositories
 * (shared by every process of the deployment) show fewer than the queue's per-hypervisor limit of
 * running tasks there, and none whose heartbeat lapsed. A lapsed one (its worker died) is
 * recovered first, which cleans up the hypervisor side (backup job, scratch files) before the task
 * ends; a live one the queue no longer counts (its job was lost with Redis's data, or the engine
 * freed a dead worker's slot before the SDK's recovery ran) holds the hypervisor until it ends.
 * The queue's own limit still decides which jobs reach the gate; this makes the limit hold for
 * what the hypervisor actually runs. Exact with a limit of 1 (the queue lets one job of a
 * hypervisor at a time reach the gate); with more, two jobs that pass at once may both start
 * beside one task the queue does not count. See docs/architecture.md ("Task queue") and
 * docs/operations.md ("Scaling out").
 * @module
 */
import type { Task } from '../model/task';
import type { Logger } from '../ports/logger';
import type { Repositories } from '../ports/repositories';
import { collectPages } from '../util/pages';
import { INLINE_TASK_TYPES } from './task-jobs';

/** What the gate needs. */
export interface HypervisorGateOptions {
  readonly repos: Repositories;
  readonly logger: Logger;
  /** Running tasks allowed at once on one hypervisor (the queue's limit); `undefined`: no count, only lapsed tasks are waited for. */
  readonly limit: number | undefined;
  /** Whether a running task's worker is gone (heartbeat lapsed, or a previous run of this process). */
  lapsed(task: Task): boolean;
  /** Runs a recovery pass (ends the lapsed tasks, after the hypervisor side is cleaned up). */
  recover(): Promise<unknown>;
  /** Pause between two looks at the repositories while waiting (ms). */
  readonly pollMs: number;
}

/**
 * Waits until `task` (queued) may start on its hypervisor; see the module. @returns true, or false
 * when `signal` aborted first or the task left `queued` meanwhile (cancelled, recovered).
 */
export type HypervisorGate = (task: Task, signal: AbortSignal) => Promise<boolean>;

/** Creates the gate of this process. */
export function createHypervisorGate(options: HypervisorGateOptions): HypervisorGate {
  const others = async (task: Task): Promise<Task[]> =>
    (await collectPages((cursor) => options.repos.tasks.list({ statuses: ['running'] }, { cursor, limit: 500 }))).filter(
      (t) => t.id !== task.id && t.hypervisorId === task.hypervisorId && !INLINE_TASK_TYPES.includes(t.type),
    );
  const pause = (ms: number, signal: AbortSignal) =>
    new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });

  return async (task, signal) => {
    if (task.hypervisorId === null || INLINE_TASK_TYPES.includes(task.type)) return true;
    let told = false;
    for (;;) {
      if (signal.aborted) return false;
      const there = await others(task);
      const gone = there.filter((t) => options.lapsed(t));
      if (gone.length === 0 && (options.limit === undefined || there.length < options.limit)) return true;
      if (!told) {
        told = true;
        options.logger.info('waiting for the hypervisor: other tasks still run there', {
          taskId: task.id,
          hypervisorId: task.hypervisorId,
          running: there.map((t) => t.id),
          lapsed: gone.map((t) => t.id),
        });
      }
      if (gone.length > 0)
        await options
          .recover()
          .catch((error: unknown) => options.logger.warn('recovery before a task started failed', { error: String(error) }));
      await pause(options.pollMs, signal);
      if ((await options.repos.tasks.get(task.id))?.status !== 'queued') return false;
    }
  };
}
