/**
 * The BullMQ task queue: jobs (`TaskJob`, plain data) on Redis, run by any worker process of the
 * deployment. One BullMQ queue per hypervisor with a BullMQ global concurrency of
 * `perHypervisorConcurrency` (enforced by BullMQ for all workers together) and a Redis semaphore
 * of `concurrency` slots across all hypervisors; cancel and events travel on Redis pub/sub.
 * See docs/scaling.md.
 * @module
 */
import { Queue, Worker, type Job } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { InstanceImagesError, silentLogger, type Logger, type TaskJob, type TaskQueue, type TaskQueueBinding } from '../../src';
import { EventBridge, type ClusterEventListener } from './bridge';
import { JobKeeper } from './keeper';
import { RedisSemaphore } from './slots';
import type { InstanceImagesEvents } from '../../src';

/** Options of {@link createBullmqTaskQueue}. */
export interface BullmqTaskQueueOptions {
  /** Redis: a `redis://` URL or ioredis options. The same Redis for every process of the deployment. */
  connection: string | RedisOptions;
  /** Prefix of every Redis key and channel: one per deployment. @default 'instance-images' */
  prefix?: string;
  /**
   * What this process does: `web` only enqueues (and cancels, and sees events); `worker` and
   * `both` also run jobs. @default 'both'
   */
  role?: 'web' | 'worker' | 'both';
  /** Jobs running at once in the whole deployment, all hypervisors together. @default 4 */
  concurrency?: number;
  /** Jobs running at once on one hypervisor, in the whole deployment. @default 1 */
  perHypervisorConcurrency?: number;
  /**
   * How long a worker's lock on a running job lasts without renewal (BullMQ `lockDuration`, also
   * the stalled-check interval and the expiry of a global slot): a killed worker's job is failed
   * by BullMQ within about twice this; the task itself is failed INTERRUPTED by the SDK's reaper
   * (`tasks.heartbeatTimeoutMs`). @default 30000
   */
  lockDurationMs?: number;
  /** How often a worker looks for hypervisor queues it does not serve yet (new ones are also announced). @default 5000 */
  discoveryIntervalMs?: number;
  /**
   * How long `enqueue` waits for Redis to store a job before it fails (the SDK then fails the task
   * and the call throws INTERRUPTED; a job stored later is skipped, its task being no longer queued).
   * @default 10000
   */
  enqueueTimeoutMs?: number;
  /**
   * How often this process checks that BullMQ still holds the jobs it stored and that have not run
   * yet; a lost one (Redis restarted without persistence, keys flushed, a job failed as stalled
   * before its task started) is stored again, so its task still runs. @default 10000
   */
  lostJobCheckIntervalMs?: number;
}

/** A {@link TaskQueue} on BullMQ, with the deployment's events. */
export interface BullmqTaskQueue extends TaskQueue {
  /** This process's role. */
  readonly role: 'web' | 'worker' | 'both';
  /**
   * Runs `listener` for each `type` event of the whole deployment in exactly one process (the
   * first to claim it), wherever it was emitted; plain `events.on` listeners run in every process.
   * `name` identifies the listener (the same in every process). @returns a function removing it here.
   */
  handleOnce<K extends keyof InstanceImagesEvents>(name: string, type: K, listener: ClusterEventListener<K>): () => void;
}

/** `promise`, or a rejection with `message` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Waits for `promise` to settle, at most `ms` (closing must not hang on an unreachable Redis). */
const settled = (promise: Promise<unknown>, ms = 5_000): Promise<unknown> => within(promise, ms, 'timed out').catch(() => undefined);

const HYPERVISOR_QUEUE = (id: string | null) => (id === null ? 'no-hypervisor' : `hv-${Buffer.from(id).toString('base64url')}`);
/** BullMQ job ids may not be integers or contain `:`. */
const jobIdOf = (taskId: string) => `task-${taskId.replaceAll(':', '%3A')}`;

/**
 * Creates the BullMQ task queue. Pass it as `queue` to `createInstanceImages` in every process of
 * the deployment (same `connection` and `prefix`, and the same limits).
 * @throws VALIDATION_FAILED on bad limits.
 */
export function createBullmqTaskQueue(options: BullmqTaskQueueOptions): BullmqTaskQueue {
  const role = options.role ?? 'both';
  const prefix = options.prefix ?? 'instance-images';
  const concurrency = options.concurrency ?? 4;
  const perHypervisor = options.perHypervisorConcurrency ?? 1;
  const lockDurationMs = options.lockDurationMs ?? 30_000;
  for (const [name, value, max] of [
    ['concurrency', concurrency, 256],
    ['perHypervisorConcurrency', perHypervisor, 64],
    ['lockDurationMs', lockDurationMs, 3_600_000],
    ['lostJobCheckIntervalMs', options.lostJobCheckIntervalMs ?? 10_000, 3_600_000],
  ] as const) {
    if (!Number.isInteger(value) || value < 1 || value > max)
      throw new InstanceImagesError('VALIDATION_FAILED', `The BullMQ task queue's ${name} must be a whole number from 1 to ${max}`, {
        fields: [{ path: name, message: `must be a whole number from 1 to ${max}` }],
      });
  }
  if (!['web', 'worker', 'both'].includes(role))
    throw new InstanceImagesError('VALIDATION_FAILED', "The BullMQ task queue's role must be 'web', 'worker' or 'both'", {
      fields: [{ path: 'role', message: "must be 'web', 'worker' or 'both'" }],
    });
  const redisOptions: RedisOptions = { maxRetriesPerRequest: null };
  const command =
    typeof options.connection === 'string'
      ? new Redis(options.connection, redisOptions)
      : new Redis({ ...options.connection, ...redisOptions });
  const subscriber = command.duplicate();
  // ioredis reconnects by itself; an unreachable Redis is said once per outage, not per retry.
  let outage = false;
  for (const client of [command, subscriber]) {
    client.on('error', (error: Error) => {
      if (!outage) logger.error('Redis is unreachable; the task queue retries', { error: error.message });
      outage = true;
    });
    client.on('ready', () => {
      outage = false;
    });
  }
  const bullPrefix = `${prefix}:bull`;
  const channels = { events: `${prefix}:events`, cancel: `${prefix}:cancel`, hypervisors: `${prefix}:hypervisor-added` };
  const hypervisorSet = `${prefix}:hypervisors`;
  let logger: Logger = silentLogger;
  let binding: TaskQueueBinding | null = null;
  let closed = false;
  const bridge = new EventBridge(command, channels.events, `${prefix}:handled`, () => logger, 7 * 24 * 3_600_000);
  const slots = new RedisSemaphore(command, `${prefix}:slots`, concurrency, lockDurationMs);
  const queues = new Map<string, Promise<Queue>>();
  const workers = new Map<string, Worker>();
  const controllers = new Map<string, AbortController>();
  const running = new Set<Promise<unknown>>();

  const queueFor = (name: string): Promise<Queue> => {
    let queue = queues.get(name);
    if (!queue) {
      const created = new Queue(name, { connection: command, prefix: bullPrefix });
      // Without a listener BullMQ prints every reconnection failure; the outage is logged once above.
      created.on('error', (error: Error) => {
        if (!outage) logger.warn('BullMQ queue error', { queue: name, error: error.message });
      });
      queue = created.setGlobalConcurrency(perHypervisor).then(() => created);
      queue.catch(() => queues.delete(name));
      queues.set(name, queue);
    }
    return queue;
  };

  const processJob = async (job: Job<TaskJob>): Promise<void> => {
    const run = binding?.run;
    if (!run) throw new Error('The BullMQ task queue is not bound to createInstanceImages');
    const data = job.data;
    const controller = new AbortController();
    controllers.set(data.taskId, controller);
    const work = (async () => {
      // A job holds its hypervisor's slot (BullMQ) while it waits for a global one. Stopped before
      // it started (the worker closes, or a cancel), it fails, so that the process that stored it
      // stores it again (a cancelled task's job then does nothing).
      if (!(await slots.acquire(data.taskId, controller.signal))) throw new Error('The job was stopped before it started');
      const release = slots.hold(data.taskId, (error) => logger.warn('renewing a global task slot failed', { error: String(error) }));
      try {
        await run(data, controller.signal);
      } finally {
        await release();
      }
    })();
    running.add(work);
    try {
      return await work;
    } finally {
      running.delete(work);
      controllers.delete(data.taskId);
    }
  };

  const serve = (name: string) => {
    if (role === 'web' || closed || workers.has(name)) return;
    const worker = new Worker<TaskJob>(name, processJob, {
      connection: command,
      prefix: bullPrefix,
      concurrency: perHypervisor,
      lockDuration: lockDurationMs,
      stalledInterval: lockDurationMs,
      // A stalled job (its worker died) is failed, never run twice: the SDK's reaper recovers its task.
      maxStalledCount: 0,
    });
    worker.on('error', (error) => {
      if (!outage) logger.warn('BullMQ worker error', { queue: name, error: String(error) });
    });
    workers.set(name, worker);
    void queueFor(name).catch((error: unknown) => logger.warn('setting a queue limit failed', { queue: name, error: String(error) }));
  };

  const timeoutMs = options.enqueueTimeoutMs ?? 10_000;
  /** Stores a job in its hypervisor's queue (`again`: BullMQ lost it; the queue's limit is set again too). */
  const store = async (name: string, data: TaskJob, again: boolean) => {
    if ((await command.sadd(hypervisorSet, name)) === 1) await command.publish(channels.hypervisors, name);
    const queue = await queueFor(name);
    if (again) await queue.setGlobalConcurrency(perHypervisor);
    await queue.add(data.type, data, {
      jobId: jobIdOf(data.taskId),
      attempts: 1,
      removeOnComplete: { age: 3_600, count: 10_000 },
      removeOnFail: { age: 7 * 24 * 3_600 },
    });
  };
  const keeper = new JobKeeper(
    {
      state: async (name, jobId) => (await queueFor(name)).getJobState(jobId),
      remove: async (name, jobId) => void (await (await queueFor(name)).remove(jobId)),
      store,
    },
    () => logger,
    timeoutMs,
  );
  keeper.start(options.lostJobCheckIntervalMs ?? 10_000);

  const discover = async () => {
    for (const name of await command.smembers(hypervisorSet)) serve(name);
  };
  let discovery: ReturnType<typeof setInterval> | null = null;

  subscriber.on('message', (channel: string, message: string) => {
    if (channel === channels.events) bridge.receive(message);
    else if (channel === channels.cancel) controllers.get(message)?.abort();
    else if (channel === channels.hypervisors) serve(message);
  });
  const subscribed = subscriber.subscribe(channels.events, channels.cancel, channels.hypervisors);
  subscribed.catch((error: unknown) => logger.error('subscribing to Redis failed', { error: String(error) }));

  return {
    role,
    perHypervisorConcurrency: perHypervisor,
    bind(b: TaskQueueBinding) {
      if (binding) throw new Error('The BullMQ task queue is bound already (one queue per createInstanceImages)');
      binding = b;
      logger = b.logger;
      bridge.attach(b.events);
      if (role !== 'web') {
        serve(HYPERVISOR_QUEUE(null));
        discover().catch((error: unknown) => logger.warn('listing hypervisor queues failed', { error: String(error) }));
        discovery = setInterval(
          () => void discover().catch((error: unknown) => logger.warn('listing hypervisor queues failed', { error: String(error) })),
          options.discoveryIntervalMs ?? 5_000,
        );
        discovery.unref?.();
      }
    },
    async enqueue(job: TaskJob): Promise<void> {
      if (closed) throw new Error('The task queue is closed');
      const name = HYPERVISOR_QUEUE(job.hypervisorId);
      const data: TaskJob = {
        taskId: job.taskId,
        type: job.type,
        hypervisorId: job.hypervisorId,
        ...(job.params ? { params: job.params } : {}),
      };
      await within(store(name, data, false), timeoutMs, `Redis did not store the job within ${timeoutMs} ms`);
      // Kept until BullMQ completed it: stored again if BullMQ loses it meanwhile.
      keeper.keep(jobIdOf(job.taskId), name, data);
    },
    cancel(taskId: string) {
      const controller = controllers.get(taskId);
      controller?.abort();
      command
        .publish(channels.cancel, taskId)
        .catch((error: unknown) => logger.warn('publishing a cancel failed', { taskId, error: String(error) }));
      return controller !== undefined;
    },
    async onIdle() {
      while (running.size > 0) await Promise.allSettled([...running]);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (discovery) clearInterval(discovery);
      await keeper.stop();
      for (const controller of controllers.values()) controller.abort();
      await Promise.all([...workers.values()].map((worker) => settled(worker.close(), lockDurationMs)));
      await Promise.all([...queues.values()].map((queue) => settled(queue.then((q) => q.close()))));
      if (command.status === 'ready') {
        await settled(subscribed);
        await Promise.all([settled(subscriber.quit()), settled(command.quit())]);
      }
      subscriber.disconnect();
      command.disconnect();
    },
    handleOnce: (name, type, listener) => bridge.handleOnce(name, type, listener),
  };
}
