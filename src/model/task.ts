import { z } from 'zod';
import { BytesSchema, IdSchema } from './common';

/**
 * Task types. `chunk-gc` and `chunk-verify` are an operator's garbage collection and verification
 * of a chunked storage (subject: the storage).
 */
export const TaskTypeSchema = z.enum([
  'capture',
  'delete',
  'deploy',
  'iso-upload',
  'refresh-size',
  'reconcile',
  'close-account',
  'copy',
  'chunk-gc',
  'chunk-verify',
  'import',
]);
/** A task type. */
export type TaskType = z.infer<typeof TaskTypeSchema>;

/** Task statuses. */
export const TaskStatusSchema = z.enum(['queued', 'running', 'completed', 'failed', 'cancelled']);
/** A task status. */
export type TaskStatus = z.infer<typeof TaskStatusSchema>;

/**
 * Progress of a task: the current step (one of the task type's steps, see `TASK_STEPS`), an overall
 * percentage that never decreases (100 only once completed), and bytes done of the step's known or
 * unknown total (a completed task shows its final bytes).
 */
export const TaskProgressSchema = z.object({
  step: z.string().max(100),
  /** Overall percentage of the whole task (0-100, never decreasing). */
  percent: z.number().int().min(0).max(100).default(0),
  bytesDone: BytesSchema.default(0),
  bytesTotal: BytesSchema.nullable().default(null),
});
/** Progress of a task. */
export type TaskProgress = z.infer<typeof TaskProgressSchema>;

/** A background task (shown on the tasks page). */
export const TaskSchema = z.object({
  id: IdSchema,
  type: TaskTypeSchema,
  /** What the task works on, e.g. `{ kind: 'image', id }`. */
  subjectKind: z.enum(['image', 'iso', 'storage', 'instance', 'account']),
  subjectId: IdSchema,
  /** The account the task belongs to (null for operator tasks). */
  accountId: IdSchema.nullable().default(null),
  /** The hypervisor the work runs on, for per-hypervisor concurrency. */
  hypervisorId: IdSchema.nullable().default(null),
  /**
   * The image storage the task writes a file into (imports), so that recovery can remove what an
   * interrupted one left there and the browser can tell its work files from orphans, even before
   * any image record names that storage (a stock import records its image only once complete).
   * Absent on other tasks and on tasks recorded before it was.
   */
  storageId: IdSchema.nullish(),
  status: TaskStatusSchema,
  progress: TaskProgressSchema.default({ step: 'queued', percent: 0, bytesDone: 0, bytesTotal: null }),
  errorCode: z.string().nullable().default(null),
  errorMessage: z.string().nullable().default(null),
  attempts: z.number().int().nonnegative().default(0),
  /**
   * The worker (a panel process, by its stable `tasks.workerId`) that holds or runs the task; null
   * for tasks recorded before workers were named.
   */
  workerId: z.string().max(200).nullable().default(null),
  /** The run of that worker (a new id each time the process starts), so a restart knows its predecessor's tasks. */
  incarnationId: z.string().max(200).nullable().default(null),
  /** Last sign of life of the worker running the task; a lapsed heartbeat means the worker died. */
  heartbeatAt: z.date().nullable().default(null),
  createdAt: z.date(),
  updatedAt: z.date(),
  startedAt: z.date().nullable().default(null),
  finishedAt: z.date().nullable().default(null),
});
/** A background task. */
export type Task = z.infer<typeof TaskSchema>;
/** Fields that may change on a task. */
export type TaskPatch = Partial<
  Omit<Task, 'id' | 'type' | 'subjectKind' | 'subjectId' | 'accountId' | 'storageId' | 'createdAt' | 'status'>
>;
