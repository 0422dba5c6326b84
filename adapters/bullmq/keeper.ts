/**
 * Lost jobs stored again. The process that enqueued a task keeps its `queued` heartbeat alive
 * while it runs, so the SDK's reaper never fails that task; if BullMQ loses the job meanwhile (a
 * Redis restarted without persistence, keys flushed or evicted, a job failed as stalled before its
 * task started), the task would stay `queued` forever. So this process keeps, for each job it
 * stored, the job's data until BullMQ has completed it, checks every `intervalMs` that BullMQ still
 * holds it, and stores a lost one again (same job id). Storing again is always safe: a job whose
 * task left `queued` does nothing (the SDK's runner checks, and queued → running is a
 * compare-and-set), so a task runs at most once. See docs/scaling.md ("What happens when").
 * @module
 */
import type { Logger, TaskJob } from '../../src';

/** What the keeper needs of the queue. */
export interface JobStore {
  /** BullMQ's state of a job, `unknown` when it holds none. */
  state(queue: string, jobId: string): Promise<string>;
  /** Removes a finished job record (so the same id can be stored again). */
  remove(queue: string, jobId: string): Promise<void>;
  /** Stores the job (with its queue's limit set again: a flushed Redis lost that too). */
  store(queue: string, job: TaskJob, again: boolean): Promise<void>;
}

/** A job this process stored and BullMQ has not completed yet. */
interface Kept {
  readonly queue: string;
  readonly job: TaskJob;
}

/** BullMQ states of a job that will never run: gone, or failed (its worker died before its task started). */
const LOST = new Set(['unknown', 'failed']);

/** Keeps the jobs this process stored until BullMQ completed them; see the module. */
export class JobKeeper {
  private readonly kept = new Map<string, Kept>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private checking: Promise<void> | null = null;

  constructor(
    private readonly jobs: JobStore,
    private readonly logger: () => Logger,
    /** How long one check of one job may take before the pass gives up (Redis unreachable). */
    private readonly timeoutMs: number,
  ) {}

  /** Starts checking every `intervalMs`. */
  start(intervalMs: number): void {
    this.timer = setInterval(() => void this.check(), intervalMs);
    this.timer.unref?.();
  }

  /** Keeps `job`, stored in `queue` as `jobId`. */
  keep(jobId: string, queue: string, job: TaskJob): void {
    this.kept.set(jobId, { queue, job });
  }

  /** How many jobs are kept. */
  get size(): number {
    return this.kept.size;
  }

  /**
   * One pass: forgets the completed jobs and stores the lost ones again. Never throws (an
   * unreachable Redis leaves everything kept for the next pass); passes never overlap.
   */
  check(): Promise<void> {
    this.checking ??= this.pass().finally(() => {
      this.checking = null;
    });
    return this.checking;
  }

  /** Stops checking; waits for a pass in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.checking;
  }

  private async pass(): Promise<void> {
    for (const [jobId, { queue, job }] of [...this.kept]) {
      try {
        const state = await this.within(this.jobs.state(queue, jobId));
        if (state === 'completed') this.kept.delete(jobId);
        else if (LOST.has(state)) {
          if (state === 'failed') await this.within(this.jobs.remove(queue, jobId));
          await this.within(this.jobs.store(queue, job, true));
          this.logger().warn('BullMQ lost a queued job (Redis lost its data, or its worker died); stored it again', {
            taskId: job.taskId,
            type: job.type,
            state,
          });
        }
      } catch {
        // Redis unreachable (said once per outage by the queue): the job stays kept for the next pass.
        return;
      }
    }
  }

  private within<T>(promise: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('Redis did not answer')), this.timeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }
}
