/**
 * The task queue port. The default is in-process (p-queue); a distributed engine can plug in.
 * @module
 */

/** A unit of work for the queue. */
export interface QueuedJob {
  taskId: string;
  /** Jobs on one hypervisor share its concurrency limit; `null` for no hypervisor. */
  hypervisorId: string | null;
  /** The work. `signal` aborts when the task is cancelled or the queue is closed. */
  run(signal: AbortSignal): Promise<void>;
}

/** Runs jobs with global and per-hypervisor concurrency limits. */
export interface TaskQueue {
  /** Adds a job; it runs when limits allow. Errors of `run` are the job's own business (never rejected here). */
  enqueue(job: QueuedJob): void;
  /** Aborts a queued or running job. @returns whether the job was known. */
  cancel(taskId: string): boolean;
  /** Resolves when no job is queued or running. */
  onIdle(): Promise<void>;
  /** Aborts everything and waits for running jobs to settle. */
  close(): Promise<void>;
}
