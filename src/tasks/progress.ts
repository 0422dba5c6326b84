/**
 * The progress model of tasks, defined once for every task type: the named steps of a task in
 * order, each with its share of an overall percentage that never decreases, from `queued` (0) to
 * `completed` (100). Work reports `(step, bytesDone, bytesTotal)`; the step is one of the task
 * type's steps or a step name of a hypervisor driver (`copy`, `convert`, `transfer`, `verify`,
 * `receive`, `done`) that the model maps onto its task step. See docs/architecture.md.
 * @module
 */
import type { TaskProgress, TaskType } from '../model/task';

/** One step of a task type: its name, its share of the percentage, and the driver steps it covers. */
export interface TaskStepSpec {
  /** The step name shown on the task (`task.progress.step`). */
  readonly step: string;
  /** Share of the overall percentage (the shares of a task type add up to 100). */
  readonly weight: number;
  /** Step names of drivers and storages reported while in this step. */
  readonly aliases: readonly string[];
}

/**
 * The steps of each task type, in order. Before them a task is `queued`, then `starting` (0 %);
 * a completed task is `completed` (100 %); a failed or cancelled task keeps the progress it had.
 */
export const TASK_STEPS: Readonly<Record<TaskType, readonly TaskStepSpec[]>> = {
  capture: [
    // Bytes copied against the disk's allocation (push/pull backup, snapshot, cold convert).
    { step: 'capturing', weight: 70, aliases: ['copy', 'convert'] },
    // The completeness proof and checksum; for object storages also the upload (bytes sent).
    { step: 'verifying', weight: 30, aliases: ['verify', 'transfer', 'uploading', 'done'] },
  ],
  deploy: [
    // Only when the image is streamed from another host or an object storage.
    { step: 'receiving', weight: 25, aliases: ['receive'] },
    { step: 'converting', weight: 55, aliases: ['convert'] },
    { step: 'verifying', weight: 20, aliases: ['verify', 'done'] },
  ],
  delete: [
    { step: 'waiting for deploys', weight: 10, aliases: [] },
    { step: 'removing file', weight: 90, aliases: [] },
  ],
  'iso-upload': [{ step: 'uploading', weight: 100, aliases: [] }],
  'refresh-size': [{ step: 'measuring', weight: 100, aliases: [] }],
  reconcile: [{ step: 'checking', weight: 100, aliases: [] }],
  'close-account': [
    { step: 'stopping captures', weight: 20, aliases: [] },
    { step: 'deleting images', weight: 80, aliases: [] },
  ],
  // Bytes streamed from the source storage to the target, then the size and checksum check.
  copy: [
    { step: 'copying', weight: 95, aliases: ['transfer', 'uploading'] },
    { step: 'verifying', weight: 5, aliases: ['verify', 'done'] },
  ],
  // Listing chunks, leases and manifests, then deleting what nothing names.
  'chunk-gc': [{ step: 'collecting', weight: 100, aliases: [] }],
  // Re-hashing every stored chunk (bytes read).
  'chunk-verify': [{ step: 'verifying', weight: 100, aliases: [] }],
  import: [
    // Bytes read from the source server against its Content-Length (when it sent one).
    { step: 'downloading', weight: 60, aliases: ['receive', 'uploading'] },
    // Path storages: qemu-img converts the received image into the storage with explicit formats.
    { step: 'converting', weight: 30, aliases: ['convert'] },
    { step: 'verifying', weight: 10, aliases: ['verify', 'done'] },
  ],
};

/** The progress of a task that has not started. */
export const QUEUED_PROGRESS: TaskProgress = { step: 'queued', percent: 0, bytesDone: 0, bytesTotal: null };
/** The progress of a task that has just started running. */
export const STARTING_PROGRESS: TaskProgress = { step: 'starting', percent: 0, bytesDone: 0, bytesTotal: null };

/** A progress report of task work. */
export interface ProgressReport {
  step: string;
  bytesDone?: number;
  bytesTotal?: number | null;
}

/** Turns a task's progress reports into its {@link TaskProgress}. */
export interface ProgressTracker {
  /** The progress after a report (the percentage never decreases). */
  report(report: ProgressReport): TaskProgress;
  /** The progress of the completed task: 100 %, with its final bytes. */
  complete(): TaskProgress;
  /** The progress now. */
  current(): TaskProgress;
}

const bytes = (value: number | undefined | null): number =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;

/**
 * Tracks one task's progress. The task's step only moves forward through {@link TASK_STEPS}
 * (a report naming an earlier step, or an unknown one, counts in the current step); within a step
 * the percentage grows with `bytesDone / bytesTotal` and stays below the next step's start; the
 * percentage never decreases and reaches 100 only when the task completes. A report without byte
 * counts keeps the counts shown before, so a finished step's bytes stay visible.
 */
export function createProgressTracker(type: TaskType, initial: TaskProgress = STARTING_PROGRESS): ProgressTracker {
  const steps = TASK_STEPS[type];
  const starts: number[] = [];
  let sum = 0;
  for (const spec of steps) {
    starts.push(sum);
    sum += spec.weight;
  }
  let index = steps.findIndex((spec) => spec.step === initial.step);
  /** The step whose bytes are shown (-2: none yet). */
  let bytesStep = -2;
  let state: TaskProgress = { ...initial, percent: Math.min(99, Math.max(0, Math.floor(initial.percent ?? 0))) };

  const indexOf = (step: string): number => steps.findIndex((spec) => spec.step === step || spec.aliases.includes(step));

  return {
    report(report) {
      const found = indexOf(report.step);
      // A late report of an earlier step adds nothing.
      if (found >= 0 && found < index) return { ...state };
      if (found > index) index = found;
      const done = bytes(report.bytesDone);
      const total = report.bytesTotal === null || report.bytesTotal === undefined ? null : bytes(report.bytesTotal) || null;
      let { bytesDone, bytesTotal } = state;
      if (total !== null || done > 0) {
        // Within one step and one total, the bytes done never go back either.
        bytesDone = bytesStep === index && total === state.bytesTotal ? Math.max(state.bytesDone, done) : done;
        bytesTotal = total;
        bytesStep = index;
      }
      let { percent } = state;
      if (index >= 0) {
        const spec = steps[index]!;
        const fraction = bytesTotal !== null && bytesTotal > 0 && bytesStep === index ? Math.min(1, bytesDone / bytesTotal) : 0;
        percent = Math.max(percent, Math.min(99, Math.floor(starts[index]! + spec.weight * fraction)));
      }
      // Before the first step of the type, an unknown step name is not shown (only documented names are).
      state = { step: index >= 0 ? steps[index]!.step : state.step, percent, bytesDone, bytesTotal };
      return { ...state };
    },
    complete() {
      const final = state.bytesTotal ?? state.bytesDone;
      state = { step: 'completed', percent: 100, bytesDone: final, bytesTotal: state.bytesTotal === null && final === 0 ? null : final };
      return { ...state };
    },
    current: () => ({ ...state }),
  };
}
