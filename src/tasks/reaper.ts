/**
 * The reaper: runs recovery passes while the SDK runs, so that tasks whose worker died are
 * recovered without anyone calling anything. One pass at start, then one every interval after the
 * previous pass ended (passes never overlap); a failing pass is logged and the next one runs.
 * Also the worker identity of a process (`tasks.workerId`, incarnation) that lets a restarted
 * process recover its own previous tasks at once.
 * @module
 */
import { createHash, randomUUID } from 'node:crypto';
import { hostname } from 'node:os';

/** Runs passes; see the module. */
export interface Reaper<T> {
  /**
   * Runs a pass now, after the one in progress (if any); resolves with the results of both.
   * @throws what the pass threw.
   */
  runNow(): Promise<T>;
  /** Stops: no pass starts any more; resolves when the one in progress has ended. */
  stop(): Promise<void>;
}

/** Options of {@link startReaper}. */
export interface ReaperOptions<T> {
  /** Pause between the end of a pass and the start of the next (ms). */
  intervalMs: number;
  /** One pass. */
  pass(): Promise<T>;
  /** Combines the results of a pass in progress and the one `runNow` ran after it. */
  merge(a: T, b: T): T;
  /** Called with what a scheduled pass threw (the reaper goes on). */
  onError(error: unknown): void;
  /** Called with the result of every scheduled pass. */
  onPass?(result: T): void;
}

/** Starts a reaper: the first pass runs at once. */
export function startReaper<T>(options: ReaperOptions<T>): Reaper<T> {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | null = null;
  /** The pass in progress, if any. */
  let running: Promise<T> | null = null;

  const runPass = (): Promise<T> => {
    const started = options.pass().finally(() => {
      if (running === started) running = null;
    });
    running = started;
    return started;
  };

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      timer = null;
      void tick();
    }, delayMs);
    timer.unref?.();
  };

  const tick = async () => {
    try {
      // A pass started by runNow is waited for, never overlapped.
      while (running) await running.catch(() => undefined);
      if (stopped) return;
      const result = await runPass();
      options.onPass?.(result);
    } catch (error) {
      options.onError(error);
    }
    schedule(options.intervalMs);
  };

  schedule(0);
  return {
    async runNow() {
      const previous = running ? await running.catch(() => null) : null;
      while (running) await running.catch(() => undefined);
      const result = await runPass();
      return previous === null ? result : options.merge(previous, result);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      while (running) await running.catch(() => undefined);
    },
  };
}

/**
 * The default worker id of this process: the host name and a hash of the working directory (and of
 * the process manager's instance number, `NODE_APP_INSTANCE`, when set). Stable across restarts of
 * one panel deployment, different for two deployments on one host.
 */
export function defaultWorkerId(): string {
  const hash = createHash('sha256')
    .update(`${process.cwd()}\0${process.env.NODE_APP_INSTANCE ?? ''}`)
    .digest('hex')
    .slice(0, 12);
  return `${hostname()}:${hash}`;
}

/** Incarnations of SDK instances alive in this process (a second SDK never recovers the first's tasks). */
const liveIncarnations = new Set<string>();

/** A new incarnation of this worker (one per SDK instance), registered as alive until {@link endIncarnation}. */
export function newIncarnation(): string {
  const id = randomUUID();
  liveIncarnations.add(id);
  return id;
}

/** Ends an incarnation (the SDK instance closed). */
export function endIncarnation(id: string): void {
  liveIncarnations.delete(id);
}

/**
 * Whether a task was held by a previous run of this worker: same worker id, another incarnation
 * that is not alive in this process. Such a task's process is gone, whatever its heartbeat says.
 */
export function heldByPreviousRun(
  task: { workerId: string | null; incarnationId: string | null },
  worker: { workerId: string; incarnationId: string },
): boolean {
  return (
    task.workerId === worker.workerId &&
    task.incarnationId !== null &&
    task.incarnationId !== worker.incarnationId &&
    !liveIncarnations.has(task.incarnationId)
  );
}
