/**
 * The facade: `createInstanceImages(options)` validates its options and wires repositories, the
 * host directory, storage and hypervisor drivers, the event emitter, the task queue and the
 * services behind one object.
 * @module
 */
import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { isInstanceImagesError } from './errors';
import { healthReport, type HealthReport } from './health';
import { BillingPolicySchema, type BillingPolicyInput } from './billing';
import { createEmitter, type InstanceImagesEmitter, type InstanceImagesEvents } from './events';
import { createMemoryRepositories } from './memory/repositories';
import type { ExecutorProvider } from './ports/executor';
import type { HostDirectory } from './ports/host-directory';
import type { HypervisorDriverFactory } from './ports/hypervisor-driver';
import type { Repositories } from './ports/repositories';
import type { StorageDriverFactory } from './ports/storage-driver';
import type { TaskJob, TaskQueue } from './ports/task-queue';
import { CatalogService, MAX_DEPLOY_DISK_BYTES } from './services/catalog';
import type { Logger } from './ports/logger';
import { adviseOnRuntime } from './util/runtime-advice';
import { DriverCache, type ServiceContext, type ServiceSettings } from './services/context';
import { ImageService } from './services/images';
import { ImageCopyService } from './services/image-copies';
import { ImageSharingService } from './services/image-sharing';
import { ImageMetadataService } from './services/image-metadata';
import { ImageTransferService } from './services/image-transfers';
import { ImageExportService, ExportOptionsSchema, type ExportOptions } from './services/image-export';
import { ImageImportService } from './services/image-import';
import { ImageUploadService, UploadOptionsSchema, type UploadOptions } from './services/image-upload';
import { ImportOptionsSchema, type ImportOptions } from './import/options';
import { RecoveryService, type RecoveryReport } from './services/recovery';
import { createHypervisorGate } from './services/hypervisor-gate';
import { SettingsService } from './services/settings';
import { AccountService } from './services/accounts';
import { UsageService } from './services/usage';
import { StorageService } from './services/storages';
import { TaskJobRegistry } from './services/task-jobs';
import { publish, taskFinished } from './services/outbox-events';
import { transitionTask } from './services/task-state';
import { createStorageRegistry, type StorageRegistry } from './storage';
import { createTaskQueue } from './tasks/queue';
import { defaultWorkerId, endIncarnation, heldByPreviousRun, newIncarnation, startReaper } from './tasks/reaper';
import { parseOrThrow } from './util/validate';
import { checkedHostDirectory } from './util/host-data';
import { createTelemetry, type TelemetryOptions } from './telemetry';
import { createOutboxPruner, OutboxPruneOptionsSchema, type OutboxPruneOptions, type OutboxPruneReport } from './outbox-delivery';

const MiB = 2 ** 20;

/** A logger that drops everything (the default). */
export const silentLogger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const hasMethods =
  (...names: string[]) =>
  (value: unknown) =>
    typeof value === 'object' && value !== null && names.every((name) => typeof (value as Record<string, unknown>)[name] === 'function');

const repositoryMethods: Record<keyof Omit<Repositories, 'close' | 'outbox'>, string[]> = {
  images: ['get', 'list', 'countActive', 'insert', 'insertIfUnderLimit', 'transition', 'update'],
  storages: ['get', 'list', 'insert', 'update', 'delete', 'bind', 'unbind', 'listBindings'],
  mediaGroups: ['get', 'list', 'insert', 'update', 'delete'],
  isos: ['get', 'list', 'insert', 'update', 'delete'],
  tasks: ['get', 'list', 'insert', 'update', 'transition', 'listStale'],
  usage: ['get', 'list', 'insert', 'close'],
  settings: ['getLocation', 'putLocation', 'listLocations', 'getAccountLimit', 'putAccountLimit', 'getAccountState', 'putAccountState'],
  imageShares: ['get', 'list', 'insert', 'transition', 'revokeAllOf'],
  imageTransfers: ['get', 'list', 'insert', 'transition', 'accept'],
};

const outboxMethods = ['append', 'get', 'claim', 'complete', 'release', 'prune'];

const RepositoriesSchema = z.object({
  ...Object.fromEntries(
    Object.entries(repositoryMethods).map(([key, methods]) => [
      key,
      z.custom((v) => hasMethods(...methods)(v), `must implement ${methods.join(', ')}`),
    ]),
  ),
  outbox: z.custom((v) => v === undefined || hasMethods(...outboxMethods)(v), `must implement ${outboxMethods.join(', ')}`).optional(),
});

const QueueOptionsSchema = z.object({
  concurrency: z.number().int().min(1).max(256).optional(),
  perHypervisorConcurrency: z.number().int().min(1).max(64).optional(),
});

const fn = <T>() => z.custom<T>((v) => typeof v === 'function', 'must be a function');

/** The zod schema of {@link InstanceImagesOptions}; errors name the bad option. */
export const InstanceImagesOptionsSchema = z.object({
  repositories: RepositoriesSchema.optional(),
  hostDirectory: z.custom<HostDirectory>(hasMethods('getInstance', 'getHypervisor'), 'must implement getInstance and getHypervisor'),
  storageDrivers: z.array(z.custom<StorageDriverFactory>(hasMethods('create'), 'must be a storage driver factory')).default([]),
  hypervisorDriver: fn<HypervisorDriverFactory>().optional(),
  executors: fn<ExecutorProvider>().optional(),
  queue: z.union([z.custom<TaskQueue>(hasMethods('bind', 'enqueue', 'cancel', 'onIdle', 'close')), QueueOptionsSchema]).default({}),
  /** The clock. */
  clock: fn<() => Date>().optional(),
  /** The id generator. */
  generateId: fn<() => string>().optional(),
  logger: z.custom<Logger>(hasMethods('debug', 'info', 'warn', 'error'), 'must have debug, info, warn and error').optional(),
  telemetry: z
    .strictObject({
      tracerProvider: z.custom<TracerProvider>(hasMethods('getTracer'), 'must be an OpenTelemetry TracerProvider').optional(),
      meterProvider: z.custom<MeterProvider>(hasMethods('getMeter'), 'must be an OpenTelemetry MeterProvider').optional(),
    })
    .default({}),
  billingPolicy: BillingPolicySchema.optional(),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be a 3-letter currency code')
    .default('USD'),
  tasks: z
    .object({
      heartbeatIntervalMs: z.number().int().min(10).max(600_000).default(5_000),
      heartbeatTimeoutMs: z.number().int().min(100).max(86_400_000).default(60_000),
      progressIntervalMs: z.number().int().min(0).max(600_000).default(1_000),
      leftoverAgeMs: z.number().int().min(0).default(3_600_000),
      reaperIntervalMs: z.number().int().min(100).max(3_600_000).default(10_000),
      workerId: z
        .string()
        .min(1)
        .max(200)
        .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
        .optional(),
    })
    .default({
      heartbeatIntervalMs: 5_000,
      heartbeatTimeoutMs: 60_000,
      progressIntervalMs: 1_000,
      leftoverAgeMs: 3_600_000,
      reaperIntervalMs: 10_000,
    }),
  capture: z
    .object({ format: z.enum(['qcow2', 'raw']).default('qcow2'), compress: z.boolean().default(false) })
    .default({ format: 'qcow2', compress: false }),
  deploy: z
    .object({
      maxDiskBytes: z
        .number()
        .int('must be a whole number of bytes (a safe integer)')
        .min(MiB, 'must be at least 1 MiB')
        .default(MAX_DEPLOY_DISK_BYTES),
    })
    .default({ maxDiskBytes: MAX_DEPLOY_DISK_BYTES }),
  imageCopies: z
    .strictObject({ allowCustomers: z.boolean().default(false), billed: z.boolean().default(true) })
    .default({ allowCustomers: false, billed: true }),
  imports: ImportOptionsSchema.optional(),
  uploads: UploadOptionsSchema.optional(),
  exports: ExportOptionsSchema.optional(),
  outbox: OutboxPruneOptionsSchema.prefault({}),
});

/** Options of {@link createInstanceImages}. */
export interface InstanceImagesOptions {
  /** Repositories; default: fresh in-memory repositories (data is lost on exit). */
  repositories?: Repositories;
  /** The host panel's directory of instances and hypervisors. Required. */
  hostDirectory: HostDirectory;
  /**
   * The storage driver factories to register (the core registers none by itself), e.g.
   * `builtinStorageDrivers` from `instance-images/drivers/storage` (`local`, `nfs`, `s3`), your own,
   * or both; a later factory with the same name replaces an earlier one.
   */
  storageDrivers?: readonly StorageDriverFactory[];
  /** Creates the hypervisor driver of a hypervisor (e.g. `createLibvirtDriver` from `instance-images/drivers/libvirt`). */
  hypervisorDriver?: HypervisorDriverFactory;
  /** Gives the executor of a hypervisor (e.g. `createExecutorPool().executorFor` from `instance-images/drivers/exec`). */
  executors?: ExecutorProvider;
  /**
   * A task queue, or options for the default in-process one (concurrency 4, per hypervisor 1). For
   * several processes or machines, `createBullmqTaskQueue` from `instance-images/adapters/bullmq`
   * (docs/scaling.md).
   */
  queue?: TaskQueue | { concurrency?: number; perHypervisorConcurrency?: number };
  /** The clock. @default () => new Date() */
  clock?: () => Date;
  /** The id generator. @default crypto.randomUUID */
  generateId?: () => string;
  /** A logger; default silent. */
  logger?: Logger;
  /**
   * OpenTelemetry providers for the task spans and metrics (docs/operations.md, "Telemetry").
   * @default the global providers of `@opentelemetry/api` (no-ops until the host installs an SDK)
   */
  telemetry?: TelemetryOptions;
  /** The billing policy of usage reports (GiB, 730 h, round up, monthly cap by default). */
  billingPolicy?: BillingPolicyInput;
  /** Currency of prices and reports. @default 'USD' */
  currency?: string;
  /**
   * Tasks: timing (ms) of heartbeats, progress and leftovers, the reaper, and this process's worker id.
   * The reaper recovers tasks whose worker died: a task whose heartbeat is older than
   * `heartbeatTimeoutMs` within `heartbeatTimeoutMs + reaperIntervalMs`, and, at start, the tasks of
   * this worker's previous run at once.
   */
  tasks?: {
    /** How often a task writes its heartbeat. @default 5000 */
    heartbeatIntervalMs?: number;
    /** A task whose heartbeat is older than this is taken for dead. @default 60000 */
    heartbeatTimeoutMs?: number;
    /** Progress is persisted and emitted at most this often per task. @default 1000 */
    progressIntervalMs?: number;
    /** Temp files older than this are leftovers in the image browser. @default 3600000 */
    leftoverAgeMs?: number;
    /** Pause between two passes of the reaper. @default 10000 */
    reaperIntervalMs?: number;
    /**
     * This process's stable name as a worker, recorded on the tasks it holds; a process started
     * again with the same id recovers the tasks of its previous run at once. Two processes running
     * at the same time must never share one (give each worker of a cluster its own, e.g. by its
     * slot number). @default host name + hash of the working directory and `NODE_APP_INSTANCE`
     */
    workerId?: string;
  };
  /** Capture output: format and compression. @default { format: 'qcow2', compress: false } */
  capture?: { format?: 'qcow2' | 'raw'; compress?: boolean };
  /**
   * Deploys: `maxDiskBytes` is the largest disk a deploy may ask for (`sizeBytes`); larger
   * requests fail with VALIDATION_FAILED naming `sizeBytes`. @default { maxDiskBytes: 64 TiB }
   */
  deploy?: { maxDiskBytes?: number };
  /**
   * Copies of images to other storages: whether customers may copy their own images (admins always
   * may), and whether copies are billed (one usage line per copy). @default { allowCustomers: false, billed: true }
   */
  imageCopies?: { allowCustomers?: boolean; billed?: boolean };
  /**
   * URL imports: the destinations they may reach (loopback, private, link-local, CGNAT, multicast
   * and unspecified addresses are refused unless `allowNetworks` lets them), limits, timeouts.
   * See docs/images-that-move.md.
   */
  imports?: ImportOptions;
  /**
   * Resumable uploads (tus): the panel's staging directory (uploads are off without it), the
   * largest upload, the staging space and how long an idle upload is kept. The limits of imports
   * (`imports.maxImageBytes`) apply to the decompressed image. See docs/images-that-move.md.
   */
  uploads?: UploadOptions;
  /**
   * Exports: `secret` keys the signed panel download links (needed for images on storages that
   * cannot presign, e.g. local and NFS); the default link lifetime.
   */
  exports?: ExportOptions;
  /**
   * The event outbox's retention: the reaper prunes delivered events after `retentionMs` and
   * undelivered ones after `undeliveredRetentionMs`, whether or not this process delivers
   * (docs/operations.md, "Outbox pruning"). @default 7 days, 30 days, every hour
   */
  outbox?: OutboxPruneOptions;
}

/** The wired SDK. */
export interface InstanceImages {
  /** Custom images: create from an instance, retry, cancel, My Images, delete; the tasks page. */
  readonly images: ImageService;
  /** Stock OS images, media groups, ISOs, the OS picker, deploys and ISO mounting. */
  readonly catalog: CatalogService;
  /** Image storages, bindings, health, the image browser and reconcile. */
  readonly storages: StorageService;
  /** Location settings, account limits, the usage report, admin task tools. */
  readonly settings: SettingsService;
  /**
   * Host lifecycle hooks: an account suspended, unsuspended or closed, an instance deleted (one
   * call each, admin only, idempotent; see docs/embedding.md, "Host lifecycle hooks").
   */
  readonly accounts: AccountService;
  /** Sharing images with other accounts: share, accept, reject, revoke, the shared-with-me list. */
  readonly sharing: ImageSharingService;
  /** Ownership transfers between accounts: offer, accept (billing moves), reject, cancel. */
  readonly transfers: ImageTransferService;
  /** Copies of images to other storages and locations. */
  readonly copies: ImageCopyService;
  /** Imports from a URL: custom images (where the location allows it) and stock OS images. */
  readonly imports: ImageImportService;
  /** Resumable uploads of custom images (where the location allows imports) and stock OS images. */
  readonly uploads: ImageUploadService;
  /** Exports: expiring download links of available images, and the signed panel downloads. */
  readonly exports: ImageExportService;
  /** Protection against deletion, and the capability metadata the OS picker and deploys check. */
  readonly metadata: ImageMetadataService;
  /** Typed events. */
  readonly events: InstanceImagesEmitter;
  /** The repositories in use. */
  readonly repositories: Repositories;
  /** The storage driver registry (register your own drivers here or via options). */
  readonly storageDrivers: StorageRegistry;
  /**
   * Recovery now: fails tasks interrupted by a crash (and their images, with reason
   * INTERRUPTED), removes their leftovers, and runs the hypervisor drivers' recovery. The SDK's
   * reaper does this by itself (at start and every `tasks.reaperIntervalMs`); this runs a pass at
   * once (after one in progress, whose results are included), e.g. for an operator's button.
   */
  recover(): Promise<RecoveryReport>;
  /**
   * Prunes the event outbox now (the reaper does it by itself every `outbox.pruneIntervalMs`):
   * delivered events past `outbox.retentionMs`, undelivered ones past `outbox.undeliveredRetentionMs`.
   */
  pruneOutbox(): Promise<OutboxPruneReport>;
  /** Resolves when no task is queued or running in this process. */
  idle(): Promise<void>;
  /**
   * For load balancers and orchestrators: whether the repositories answer (a read, within
   * `timeoutMs`) and this process's queue runs (not closed). Never throws; messages carry no
   * secrets.
   */
  health(options?: { timeoutMs?: number }): Promise<HealthReport>;
  /** Stops the reaper and the queue (aborting running tasks), closes storages and the repositories. */
  close(): Promise<void>;
}

/**
 * Makes `emit` call every listener on its own: a throwing listener is logged and never breaks the
 * workflow that emitted (a status already changed must still get its billing and cleanup right).
 */
function isolateListeners(events: InstanceImagesEmitter, logger: Logger): InstanceImagesEmitter {
  const call = (type: string, fn: () => unknown) => {
    try {
      const returned = fn();
      // an async listener's rejection is logged too, never left unhandled
      if (returned instanceof Promise)
        returned.catch((error: unknown) => logger.error('an event listener failed', { type, error: String(error) }));
    } catch (error) {
      logger.error('an event listener threw', { type, error: String(error) });
    }
  };
  events.emit = ((type: keyof InstanceImagesEvents, payload: unknown) => {
    for (const handler of [...(events.all.get(type) ?? [])]) call(type, () => (handler as (p: unknown) => unknown)(payload));
    for (const handler of [...(events.all.get('*') ?? [])])
      call(type, () => (handler as (t: unknown, p: unknown) => unknown)(type, payload));
  }) as InstanceImagesEmitter['emit'];
  return events;
}

function isTaskQueue(value: unknown): value is TaskQueue {
  return hasMethods('bind', 'enqueue', 'cancel', 'onIdle', 'close')(value);
}

/**
 * Creates the SDK.
 * @throws InstanceImagesError VALIDATION_FAILED naming the bad option (e.g. `hostDirectory`).
 */
export function createInstanceImages(options: InstanceImagesOptions): InstanceImages {
  const parsed = parseOrThrow(InstanceImagesOptionsSchema, options, 'createInstanceImages options');
  const logger = options.logger ?? silentLogger;
  adviseOnRuntime(logger);
  const repositories = options.repositories ?? createMemoryRepositories();
  const inner = isTaskQueue(parsed.queue)
    ? parsed.queue
    : createTaskQueue({ ...parsed.queue, onJobError: (taskId, error) => logger.error('task crashed', { taskId, error: String(error) }) });
  // Remember which tasks this process owns, so recovery never fails a live one: the ones it runs,
  // and the ones it queued until they leave `queued` (another process may run them). The queued
  // ones are heartbeated below, so that the recovery of another process sharing the repositories
  // leaves them alone too (a running task heartbeats itself).
  const runningHere = new Set<string>();
  const waiting = new Set<string>();
  const jobs = new TaskJobRegistry();
  const queue: TaskQueue = {
    ...(inner.perHypervisorConcurrency === undefined ? {} : { perHypervisorConcurrency: inner.perHypervisorConcurrency }),
    bind: (binding) => inner.bind(binding),
    async enqueue(job: TaskJob) {
      waiting.add(job.taskId);
      try {
        return await inner.enqueue(job);
      } catch (error) {
        waiting.delete(job.taskId);
        throw error;
      }
    },
    cancel: (taskId) => inner.cancel(taskId),
    onIdle: () => inner.onIdle(),
    close: () => {
      clearInterval(queueHeartbeat);
      return inner.close();
    },
  };
  const registry = createStorageRegistry();
  for (const factory of options.storageDrivers ?? []) registry.register(factory, { replace: true });
  const settings: ServiceSettings = {
    heartbeatIntervalMs: parsed.tasks.heartbeatIntervalMs,
    heartbeatTimeoutMs: parsed.tasks.heartbeatTimeoutMs,
    reaperIntervalMs: parsed.tasks.reaperIntervalMs,
    progressIntervalMs: parsed.tasks.progressIntervalMs,
    leftoverAgeMs: parsed.tasks.leftoverAgeMs,
    captureFormat: parsed.capture.format,
    captureCompress: parsed.capture.compress,
    billingPolicy: BillingPolicySchema.parse(options.billingPolicy ?? {}),
    deployMaxDiskBytes: parsed.deploy.maxDiskBytes,
  };
  const events = isolateListeners(createEmitter(), logger);
  const now = options.clock ?? (() => new Date());
  const queueHeartbeat = setInterval(() => {
    const at = now();
    for (const taskId of waiting) {
      // compare-and-set: never revives a task recovery has failed meanwhile; a task no longer
      // queued (running here or in another process, or ended) is no longer this process's to keep
      transitionTask({ repos: repositories }, taskId, ['queued'], 'queued', { heartbeatAt: at }, at)
        .then((task) => {
          if (task === null) waiting.delete(taskId);
        })
        .catch((error: unknown) => logger.warn('queued task heartbeat failed', { taskId, error: String(error) }));
    }
  }, settings.heartbeatIntervalMs);
  queueHeartbeat.unref?.();
  const worker = { workerId: parsed.tasks.workerId ?? defaultWorkerId(), incarnationId: newIncarnation() };
  // Before a task works on a hypervisor, the dead workers' tasks there are recovered (their
  // hypervisor side cleaned up) and the ones the queue does not count are waited for.
  const hypervisorGate = createHypervisorGate({
    repos: repositories,
    logger,
    limit: inner.perHypervisorConcurrency,
    lapsed: (task) =>
      !runningHere.has(task.id) &&
      (heldByPreviousRun(task, worker) || (task.heartbeatAt ?? task.createdAt).getTime() < now().getTime() - settings.heartbeatTimeoutMs),
    recover: () => reaper.runNow(),
    pollMs: Math.min(settings.heartbeatIntervalMs, 1_000),
  });
  const ctx: ServiceContext = {
    repos: repositories,
    events,
    queue,
    jobs,
    host: checkedHostDirectory(options.hostDirectory),
    registry,
    hypervisorDriver: options.hypervisorDriver,
    executors: options.executors,
    logger,
    telemetry: createTelemetry(parsed.telemetry, () => waiting.size),
    settings,
    worker,
    now,
    newId: options.generateId ?? randomUUID,
  };
  const drivers = new DriverCache(ctx);
  let closed = false;
  const failQueuedTask = async (taskId: string, error: unknown) => {
    const at = now();
    const code = isInstanceImagesError(error) ? error.code : 'INTERRUPTED';
    const message = isInstanceImagesError(error) ? error.message : 'The task could not be started';
    const failed = await transitionTask(
      ctx,
      taskId,
      ['queued'],
      'failed',
      { finishedAt: at, errorCode: code, errorMessage: message },
      at,
      taskFinished,
    ).catch(() => null);
    if (failed) publish(events, taskFinished(failed));
  };
  // The services register the handlers of the task types they queue (jobs as data).
  const images = new ImageService(ctx, drivers);
  const catalog = new CatalogService(ctx, drivers, images);
  const storages = new StorageService(ctx, drivers);
  const accounts = new AccountService(ctx, images);
  const copies = new ImageCopyService(ctx, drivers, parsed.imageCopies);
  const imports = new ImageImportService(ctx, drivers, options.imports);
  const uploads = new ImageUploadService(ctx, imports, options.uploads);
  const unhandled = jobs.missing();
  if (unhandled.length > 0) throw new Error(`No job handler for the task types ${unhandled.join(', ')} (a defect of the SDK)`);
  // The runner of jobs in this process: the services' handlers.
  inner.bind({
    events,
    logger,
    run: async (job, signal) => {
      // A job whose task left `queued` meanwhile (cancelled, recovered, delivered twice) has nothing to do.
      const task = await repositories.tasks.get(job.taskId);
      if (task?.status !== 'queued') {
        waiting.delete(job.taskId);
        return;
      }
      runningHere.add(job.taskId);
      try {
        // Its hypervisor's tasks the queue does not count (a dead worker's, one whose job Redis
        // lost) first; meanwhile the task stays `queued`, heartbeated here.
        waiting.add(job.taskId);
        const go = await hypervisorGate(task, signal).catch(async (error: unknown) => {
          await failQueuedTask(job.taskId, error);
          throw error;
        });
        waiting.delete(job.taskId);
        if (!go) {
          // Its task left `queued` while it waited (cancelled, recovered): nothing to do.
          if ((await repositories.tasks.get(job.taskId))?.status !== 'queued') return;
          // The queue closes: never a success, so that a distributed queue stores the job again.
          throw new Error('The job was stopped before it started');
        }
        try {
          await jobs.run(job, signal);
        } catch (error) {
          // A handler that throws before its task ran (no handler here, unreadable params) fails the task.
          await failQueuedTask(job.taskId, error);
          throw error;
        }
      } finally {
        waiting.delete(job.taskId);
        runningHere.delete(job.taskId);
      }
    },
  });
  const settingsService = new SettingsService(
    ctx,
    new UsageService(ctx, drivers, parsed.currency),
    new RecoveryService(ctx, drivers),
    parsed.currency,
  );
  // The reaper: recovery, and outbox pruning, without anyone calling it (docs/operations.md, "Recovery").
  const pruner = createOutboxPruner(repositories.outbox, parsed.outbox, now, logger);
  const reaper = startReaper({
    intervalMs: settings.reaperIntervalMs,
    pass: async () => {
      const report = await settingsService.recover(new Set([...runningHere, ...waiting]), (task) => heldByPreviousRun(task, worker));
      await pruner.runIfDue();
      return report;
    },
    merge: (a, b) => ({
      interruptedTasks: [...a.interruptedTasks, ...b.interruptedTasks],
      failedImages: [...a.failedImages, ...b.failedImages],
      removedFiles: [...a.removedFiles, ...b.removedFiles],
      hypervisorActions: [...a.hypervisorActions, ...b.hypervisorActions],
    }),
    onError: (error) => logger.error('task recovery failed; retrying at the next pass', { error: String(error) }),
    onPass: (report) => {
      if (report.interruptedTasks.length + report.failedImages.length > 0) logger.warn('recovered interrupted tasks', { ...report });
    },
  });
  return {
    images,
    catalog,
    storages,
    settings: settingsService,
    accounts,
    sharing: new ImageSharingService(ctx),
    transfers: new ImageTransferService(ctx),
    copies,
    imports,
    uploads,
    exports: new ImageExportService(ctx, drivers, images, options.exports),
    metadata: new ImageMetadataService(ctx),
    events,
    repositories,
    storageDrivers: registry,
    recover: () => reaper.runNow(),
    pruneOutbox: () => pruner.runNow(),
    idle: () => queue.onIdle(),
    async health(healthOptions = {}) {
      return healthReport(repositories, closed, healthOptions.timeoutMs ?? 5_000);
    },
    async close() {
      closed = true;
      uploads.close();
      await reaper.stop();
      await queue.close();
      endIncarnation(worker.incarnationId);
      await drivers.close();
      await repositories.close?.();
    },
  };
}
