/**
 * What every service shares: repositories, events, queue, host directory, drivers, clock, ids,
 * logger and options; plus the helpers that open storages and hypervisor drivers.
 * @module
 */
import { InstanceImagesError, notFound } from '../errors';
import type { InstanceImagesEmitter } from '../events';
import type { BillingPolicy } from '../billing';
import type { ImageStorage } from '../model/image-storage';
import type { Executor, ExecutorProvider } from '../ports/executor';
import type { HostDirectory, HostHypervisor } from '../ports/host-directory';
import type { HypervisorDriver, HypervisorDriverFactory } from '../ports/hypervisor-driver';
import type { Logger } from '../ports/logger';
import type { Repositories } from '../ports/repositories';
import type { TaskQueue } from '../ports/task-queue';
import type { Telemetry } from '../telemetry';
import { wrapStorageDriver, type StorageDisk, type StorageRegistry } from '../storage';
import { REGISTER_HINT } from '../storage/registry';
import { withInfrastructureErrors } from '../util/public-error';
import type { TaskJobRegistry } from './task-jobs';

// The Logger port used to live here; it stays importable from this module.
export type { Logger } from '../ports/logger';

/** Tunables of the services (all have defaults). */
export interface ServiceSettings {
  /** How often a running task writes its heartbeat. @default 5000 */
  heartbeatIntervalMs: number;
  /** A running task whose heartbeat is older than this is considered dead at recovery. @default 60000 */
  heartbeatTimeoutMs: number;
  /** How often the reaper looks for tasks whose worker died. @default 10000 */
  reaperIntervalMs: number;
  /** Progress is persisted and emitted at most this often per task. @default 1000 */
  progressIntervalMs: number;
  /** Temp files and incomplete uploads older than this are "leftovers" in the image browser. @default 3600000 */
  leftoverAgeMs: number;
  /** Format of captured images. @default 'qcow2' */
  captureFormat: 'qcow2' | 'raw';
  /** Compress captured qcow2 images. @default false */
  captureCompress: boolean;
  /** The billing policy of usage reports. */
  billingPolicy: BillingPolicy;
  /** The largest disk (bytes) a deploy may ask for. @default MAX_DEPLOY_DISK_BYTES (64 TiB) */
  deployMaxDiskBytes: number;
}

/** The shared state of the services. */
export interface ServiceContext {
  readonly repos: Repositories;
  readonly events: InstanceImagesEmitter;
  readonly queue: TaskQueue;
  /** The handlers of queued jobs, registered by the services (the queue's runner). */
  readonly jobs: TaskJobRegistry;
  readonly host: HostDirectory;
  readonly registry: StorageRegistry;
  readonly hypervisorDriver: HypervisorDriverFactory | undefined;
  readonly executors: ExecutorProvider | undefined;
  readonly logger: Logger;
  /** Spans and metrics (a no-op until the host installs an OpenTelemetry SDK). */
  readonly telemetry: Telemetry;
  readonly settings: ServiceSettings;
  /** This process as a worker: its stable id and the id of this run (recorded on the tasks it holds). */
  readonly worker: { readonly workerId: string; readonly incarnationId: string };
  now(): Date;
  newId(): string;
}

/** Caches opened storages and hypervisor drivers; closes them on shutdown. */
export class DriverCache {
  private readonly disks = new Map<string, StorageDisk>();
  private readonly hypervisors = new Map<string, HypervisorDriver>();

  constructor(private readonly ctx: ServiceContext) {}

  /** The hypervisor, or NOT_FOUND. */
  async hypervisor(hypervisorId: string): Promise<HostHypervisor> {
    const hypervisor = await this.ctx.host.getHypervisor(hypervisorId);
    if (!hypervisor) throw notFound('Hypervisor', hypervisorId);
    return hypervisor;
  }

  /** The hypervisor driver of a hypervisor. @throws HYPERVISOR_UNREACHABLE when no driver is configured. */
  async hypervisorDriver(hypervisorId: string): Promise<HypervisorDriver> {
    const cached = this.hypervisors.get(hypervisorId);
    if (cached) return cached;
    const { hypervisorDriver, executors } = this.ctx;
    if (!hypervisorDriver || !executors) {
      throw new InstanceImagesError(
        'HYPERVISOR_UNREACHABLE',
        'No hypervisor driver is configured: pass `hypervisorDriver` and `executors` to createInstanceImages',
      );
    }
    const hypervisor = await this.hypervisor(hypervisorId);
    // What a driver throws quotes commands, paths and hosts: marked, so customers see only its code.
    const driver = withInfrastructureErrors(hypervisorDriver(hypervisor, executors(hypervisor)));
    this.hypervisors.set(hypervisorId, driver);
    return driver;
  }

  /**
   * Opens a storage, behind the core wrapper. Drivers that act through a hypervisor (local, NFS)
   * use `hypervisorId`, else the first hypervisor bound to the storage (see {@link viaHypervisor}).
   */
  async storage(storage: ImageStorage, hypervisorId?: string | null): Promise<StorageDisk> {
    if (!this.ctx.registry.has(storage.driver)) {
      throw new InstanceImagesError(
        'STORAGE_UNAVAILABLE',
        `Storage ${JSON.stringify(storage.name)} uses the storage driver ${JSON.stringify(storage.driver)}, which is not registered: ${REGISTER_HINT}`,
        { details: { storageId: storage.id, driver: storage.driver } },
      );
    }
    const factory = this.ctx.registry.get(storage.driver);
    const hv = factory.needsHypervisor ? await this.viaHypervisor(storage, hypervisorId) : null;
    if (factory.needsHypervisor && hv === null) {
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `Storage ${JSON.stringify(storage.name)} is reached through a hypervisor, and none is bound to it`,
        { fields: [{ path: 'hypervisorId', message: 'is required for this storage' }] },
      );
    }
    const key = JSON.stringify([storage.id, storage.updatedAt.getTime(), hv]);
    const cached = this.disks.get(key);
    if (cached) return cached;
    const context = hv === null ? {} : await this.hypervisorContext(hv);
    const driver = withInfrastructureErrors(this.ctx.registry.createDriver(storage.driver, storage.config, context));
    const disk = wrapStorageDriver(driver);
    this.disks.set(key, disk);
    return disk;
  }

  /** The hypervisor a storage is reached through: the given one, else the first one bound to it (null when none). */
  async viaHypervisor(storage: ImageStorage, hypervisorId?: string | null): Promise<string | null> {
    if (hypervisorId) return hypervisorId;
    const bindings = await this.ctx.repos.storages.listBindings({ storageId: storage.id });
    return bindings[0]?.hypervisorId ?? null;
  }

  /** The executor of a hypervisor (commands run there, e.g. reading back a converted scratch file). */
  async executor(hypervisorId: string): Promise<Executor> {
    return (await this.hypervisorContext(hypervisorId)).executor;
  }

  private async hypervisorContext(hypervisorId: string) {
    const hypervisor = await this.hypervisor(hypervisorId);
    if (!this.ctx.executors)
      throw new InstanceImagesError('HYPERVISOR_UNREACHABLE', 'No executors are configured: pass `executors` to createInstanceImages');
    return { hypervisor, executor: this.ctx.executors(hypervisor) };
  }

  /** Closes every opened storage. */
  async close(): Promise<void> {
    const disks = [...this.disks.values()];
    this.disks.clear();
    this.hypervisors.clear();
    await Promise.allSettled(disks.map((disk) => disk.close()));
  }
}
