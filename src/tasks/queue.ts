/**
 * The default in-process task queue on p-queue: a global concurrency limit and one limit per
 * hypervisor (a job takes a slot in its hypervisor's queue, then in the global one). Jobs are data
 * (`TaskJob`); the runner `createInstanceImages` binds rebuilds and runs the work.
 * @module
 */
import PQueue from 'p-queue';
import type { TaskJob, TaskJobRunner, TaskQueue, TaskQueueBinding } from '../ports/task-queue';

/** Options of {@link createTaskQueue}. */
export interface TaskQueueOptions {
  /** Jobs running at once across all hypervisors. @default 4 */
  concurrency?: number;
  /** Jobs running at once on one hypervisor. @default 1 */
  perHypervisorConcurrency?: number;
  /** Called when a job's runner rejects (the job itself records its failure; this is for logging). */
  onJobError?(taskId: string, error: unknown): void;
}

/** Creates the default in-process {@link TaskQueue}. */
export function createTaskQueue(options: TaskQueueOptions = {}): TaskQueue {
  const global = new PQueue({ concurrency: options.concurrency ?? 4 });
  const perHypervisor = new Map<string, PQueue>();
  const controllers = new Map<string, AbortController>();
  const pending = new Set<Promise<void>>();
  let runner: TaskJobRunner | null = null;
  let closed = false;

  const hypervisorQueue = (id: string): PQueue => {
    let queue = perHypervisor.get(id);
    if (!queue) {
      queue = new PQueue({ concurrency: options.perHypervisorConcurrency ?? 1 });
      perHypervisor.set(id, queue);
    }
    return queue;
  };

  return {
    perHypervisorConcurrency: options.perHypervisorConcurrency ?? 1,
    bind(binding: TaskQueueBinding) {
      runner = binding.run;
    },
    async enqueue(job: TaskJob): Promise<void> {
      if (closed) throw new Error('The task queue is closed');
      const run = runner;
      if (!run) throw new Error('The task queue is not bound to a runner (createInstanceImages binds it)');
      const controller = new AbortController();
      controllers.set(job.taskId, controller);
      const runGlobal = () => global.add(() => run(job, controller.signal));
      const promise = (job.hypervisorId === null ? runGlobal() : hypervisorQueue(job.hypervisorId).add(runGlobal))
        .then(() => undefined)
        .catch((error: unknown) => options.onJobError?.(job.taskId, error))
        .finally(() => {
          controllers.delete(job.taskId);
          pending.delete(promise);
        });
      pending.add(promise);
    },
    cancel(taskId: string) {
      const controller = controllers.get(taskId);
      if (!controller) return false;
      controller.abort();
      return true;
    },
    async onIdle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
    async close() {
      closed = true;
      for (const controller of controllers.values()) controller.abort();
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
}
