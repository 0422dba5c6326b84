/**
 * The task queue port. Jobs are data: a queued job is a small serializable record (task id, task
 * type, hypervisor, and the few inputs its task record does not hold); the process that runs it
 * rebuilds the work from the repositories through the runner the SDK binds to the queue (the
 * services' handler registry, `src/services/task-jobs.ts`). No closure crosses the queue. The
 * default queue is in-process (p-queue, `createTaskQueue`); `instance-images/adapters/bullmq`
 * runs the same jobs on BullMQ/Redis across processes and machines. See docs/scaling.md.
 * @module
 */
import type { InstanceImagesEmitter } from '../events';
import type { TaskType } from '../model/task';
import type { Logger } from './logger';

/**
 * Inputs of a job that its task record does not hold: JSON scalars only (a deploy's target path,
 * an import's URL). Never secrets: a distributed queue stores them (Redis).
 */
export type TaskJobParams = { readonly [name: string]: string | number | boolean | null };

/** A queued job: everything a worker needs to rebuild the work from the repositories. */
export interface TaskJob {
  /** The task (a row in `repositories.tasks`, status `queued`). */
  readonly taskId: string;
  /** The task's type: picks the handler that runs it. */
  readonly type: TaskType;
  /** Jobs on one hypervisor share its concurrency limit; `null` for no hypervisor. */
  readonly hypervisorId: string | null;
  /** Inputs the task record does not hold (JSON scalars; never secrets). */
  readonly params?: TaskJobParams;
}

/**
 * Runs a job in this process: the SDK's handler registry. Resolves when the work is over (its
 * outcome is recorded on the task, never returned); `signal` aborts when the task is cancelled
 * (from any process) or the queue closes.
 */
export type TaskJobRunner = (job: TaskJob, signal: AbortSignal) => Promise<void>;

/** What `createInstanceImages` hands its queue: the runner and the process's events and logger. */
export interface TaskQueueBinding {
  /** Runs a job here. A queue that only enqueues (a web process) never calls it. */
  readonly run: TaskJobRunner;
  /**
   * The SDK's events. A distributed queue publishes what this process emits and re-emits, typed,
   * what other processes of the deployment emitted.
   */
  readonly events: InstanceImagesEmitter;
  readonly logger: Logger;
}

/** Runs jobs with global and per-hypervisor concurrency limits. */
export interface TaskQueue {
  /**
   * Jobs running at once on one hypervisor, as this queue enforces it. The SDK also holds a job's
   * task (still queued) until the repositories show fewer running tasks on its hypervisor (a dead
   * worker's, not yet recovered, or one whose job the engine lost, are counted there and not by the
   * engine). Absent: only tasks whose worker died are waited for (and recovered first).
   */
  readonly perHypervisorConcurrency?: number;
  /** Connects the queue to the SDK; `createInstanceImages` calls it once, before any other method. */
  bind(binding: TaskQueueBinding): void;
  /**
   * Adds a job; it runs (here or in another process) when limits allow. Resolves once the job is
   * stored; rejects when it cannot be (the queue is closed, the engine unreachable). Errors of the
   * work are the task's own business (never rejected here). Once stored, the job must run while
   * this process runs (it keeps the task `queued` alive meanwhile): a queue whose engine can lose
   * stored jobs (Redis without persistence) stores a lost one again.
   */
  enqueue(job: TaskJob): Promise<void>;
  /**
   * Aborts a queued or running job, wherever it runs (a distributed queue tells the other
   * processes too). @returns whether the job was known to this process.
   */
  cancel(taskId: string): boolean;
  /** Resolves when no job this process holds is queued or running. */
  onIdle(): Promise<void>;
  /** Aborts what runs here and waits for it to settle; closes connections. */
  close(): Promise<void>;
}
