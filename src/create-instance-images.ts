/**
 * The facade: `createInstanceImages(options)` validates its options and wires repositories,
 * the host directory, drivers, the event emitter and the task queue.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { createEmitter, type InstanceImagesEmitter } from './events';
import { createMemoryRepositories } from './memory/repositories';
import type { ExecutorProvider } from './ports/executor';
import type { HostDirectory } from './ports/host-directory';
import type { HypervisorDriverFactory } from './ports/hypervisor-driver';
import type { Repositories } from './ports/repositories';
import type { StorageDriverFactory } from './ports/storage-driver';
import type { TaskQueue } from './ports/task-queue';
import { createTaskQueue } from './tasks/queue';
import { parseOrThrow } from './util/validate';

/** A minimal logger (console fits). Messages never contain secrets. */
export interface Logger {
  /** Detail for debugging. */
  debug(message: string, context?: Record<string, unknown>): void;
  /** Normal operation. */
  info(message: string, context?: Record<string, unknown>): void;
  /** Something unexpected that the SDK handled. */
  warn(message: string, context?: Record<string, unknown>): void;
  /** A failure. */
  error(message: string, context?: Record<string, unknown>): void;
}

/** A logger that drops everything (the default). */
export const silentLogger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

const hasMethods = (...names: string[]) => (value: unknown) =>
  typeof value === 'object' && value !== null && names.every((name) => typeof (value as Record<string, unknown>)[name] === 'function');

const repositoryMethods: Record<keyof Omit<Repositories, 'close'>, string[]> = {
  images: ['get', 'list', 'countActive', 'insert', 'insertIfUnderLimit', 'transition', 'update'],
  storages: ['get', 'list', 'insert', 'update', 'delete', 'bind', 'unbind', 'listBindings'],
  mediaGroups: ['get', 'list', 'insert', 'update', 'delete'],
  isos: ['get', 'list', 'insert', 'update', 'delete'],
  tasks: ['get', 'list', 'insert', 'update', 'transition', 'listStale'],
  usage: ['get', 'list', 'insert', 'close'],
  settings: ['getLocation', 'putLocation', 'listLocations', 'getAccountLimit', 'putAccountLimit'],
};

const RepositoriesSchema = z.object(
  Object.fromEntries(
    Object.entries(repositoryMethods).map(([key, methods]) => [key, z.custom((v) => hasMethods(...methods)(v), `must implement ${methods.join(', ')}`)]),
  ),
);

const QueueOptionsSchema = z.object({
  concurrency: z.number().int().min(1).max(256).optional(),
  perHypervisorConcurrency: z.number().int().min(1).max(64).optional(),
});

/** Options of {@link createInstanceImages}. */
export const InstanceImagesOptionsSchema = z.object({
  /** Repositories; default: fresh in-memory repositories (data is lost on exit). */
  repositories: RepositoriesSchema.optional(),
  /** The host panel's directory of instances and hypervisors. Required. */
  hostDirectory: z.custom<HostDirectory>(hasMethods('getInstance', 'getHypervisor'), 'must implement getInstance and getHypervisor'),
  /** Storage driver factories to register besides the built-ins. */
  storageDrivers: z.array(z.custom<StorageDriverFactory>(hasMethods('create'), 'must be a storage driver factory')).default([]),
  /** Creates the hypervisor driver for a hypervisor (e.g. `createLibvirtDriver`). */
  hypervisorDriver: z.custom<HypervisorDriverFactory>((v) => typeof v === 'function', 'must be a function').optional(),
  /** Gives the executor of a hypervisor (e.g. `createExecutorPool()`). */
  executors: z.custom<ExecutorProvider>((v) => typeof v === 'function', 'must be a function').optional(),
  /** A task queue, or options for the default in-process one. */
  queue: z.union([z.custom<TaskQueue>(hasMethods('enqueue', 'cancel', 'onIdle', 'close')), QueueOptionsSchema]).default({}),
  /** The clock. @default () => new Date() */
  clock: z.custom<() => Date>((v) => typeof v === 'function', 'must be a function').optional(),
  /** The id generator. @default crypto.randomUUID */
  generateId: z.custom<() => string>((v) => typeof v === 'function', 'must be a function').optional(),
  /** A logger; default silent. */
  logger: z.custom<Logger>(hasMethods('debug', 'info', 'warn', 'error'), 'must have debug, info, warn and error').optional(),
});

/** Options of {@link createInstanceImages} (see {@link InstanceImagesOptionsSchema} for each field). */
export interface InstanceImagesOptions {
  /** Repositories; default: fresh in-memory repositories (data is lost on exit). */
  repositories?: Repositories;
  /** The host panel's directory of instances and hypervisors. */
  hostDirectory: HostDirectory;
  /** Storage driver factories to register besides the built-ins. */
  storageDrivers?: StorageDriverFactory[];
  /** Creates the hypervisor driver for a hypervisor. */
  hypervisorDriver?: HypervisorDriverFactory;
  /** Gives the executor of a hypervisor. */
  executors?: ExecutorProvider;
  /** A task queue, or options for the default in-process one (concurrency 4, per hypervisor 1). */
  queue?: TaskQueue | { concurrency?: number; perHypervisorConcurrency?: number };
  /** The clock. */
  clock?: () => Date;
  /** The id generator. */
  generateId?: () => string;
  /** A logger; default silent. */
  logger?: Logger;
}

/** The wired SDK. */
export interface InstanceImages {
  /** The repositories in use. */
  readonly repositories: Repositories;
  /** Typed events. */
  readonly events: InstanceImagesEmitter;
  /** The task queue. */
  readonly queue: TaskQueue;
  /** The host directory. */
  readonly hostDirectory: HostDirectory;
  /** Registered storage driver factories by name. */
  readonly storageDrivers: ReadonlyMap<string, StorageDriverFactory>;
  /** The hypervisor driver factory, if configured. */
  readonly hypervisorDriver: HypervisorDriverFactory | undefined;
  /** The executor provider, if configured. */
  readonly executors: ExecutorProvider | undefined;
  /** The clock. */
  now(): Date;
  /** A new id. */
  newId(): string;
  /** The logger. */
  readonly logger: Logger;
  /** Stops the queue (aborting running tasks) and closes the repositories. */
  close(): Promise<void>;
}

function isTaskQueue(value: unknown): value is TaskQueue {
  return hasMethods('enqueue', 'cancel', 'onIdle', 'close')(value);
}

/**
 * Creates the SDK.
 * @throws InstanceImagesError VALIDATION_FAILED naming the bad option (e.g. `hostDirectory`).
 */
export function createInstanceImages(options: InstanceImagesOptions): InstanceImages {
  const parsed = parseOrThrow(InstanceImagesOptionsSchema, options, 'createInstanceImages options');
  const repositories = options.repositories ?? createMemoryRepositories();
  const queue = isTaskQueue(parsed.queue) ? parsed.queue : createTaskQueue(parsed.queue);
  const storageDrivers = new Map<string, StorageDriverFactory>();
  for (const factory of options.storageDrivers ?? []) storageDrivers.set(factory.name, factory);
  const clock = options.clock ?? (() => new Date());
  const generateId = options.generateId ?? randomUUID;
  return {
    repositories,
    events: createEmitter(),
    queue,
    hostDirectory: options.hostDirectory,
    storageDrivers,
    hypervisorDriver: options.hypervisorDriver,
    executors: options.executors,
    now: clock,
    newId: generateId,
    logger: options.logger ?? silentLogger,
    async close() {
      await queue.close();
      await repositories.close?.();
    },
  };
}
