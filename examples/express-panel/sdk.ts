/**
 * The SDK as every process of the example panel builds it: the panel process and, with
 * `--workers N`, each worker process (`worker.ts`) alike. SQLite repositories in one file of the
 * data directory (WAL: the processes share it), the libvirt driver on this machine (local
 * executor), the built-in storage drivers, and a task queue: the default in-process one, or the
 * BullMQ one on Redis when the work runs in worker processes (see docs/scaling.md).
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createBullmqTaskQueue } from '../../adapters/bullmq';
import { createSqliteRepositories } from '../../adapters/sqlite';
import { createExecutorPool, type ExecutorPool } from '../../drivers/exec';
import { createLibvirtDriver } from '../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../drivers/storage';
import { createInstanceImages, type HostHypervisor, type HostInstance, type ImportOptions, type InstanceImages } from '../../src';

export const DEMO_LOCATION = 'demo-location';
export const DEMO_HYPERVISOR = 'hv-local';

/** The Redis the panel's processes share when the work runs in workers. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6390';

/** This machine, as the panel's one hypervisor. */
export function demoHypervisor(dataDir: string): HostHypervisor {
  return {
    id: DEMO_HYPERVISOR,
    name: 'this machine',
    locationId: DEMO_LOCATION,
    connection: { type: 'local' },
    scratchDir: join(dataDir, 'scratch'),
  };
}

/** Where the work of the panel's tasks runs. */
export type PanelRole =
  /** Everything in the one panel process (the default in-process queue). */
  | { kind: 'single' }
  /** The panel process only enqueues, or a worker process runs jobs: BullMQ on `redisUrl`. */
  | { kind: 'web' | 'worker'; redisUrl: string; workerId: string };

/** Options of {@link createPanelSdk}. */
export interface PanelSdkOptions {
  dataDir: string;
  /** The panel's record of its instances (a worker asks the panel process). */
  getInstance(id: string): Promise<HostInstance | null>;
  role: PanelRole;
  /** Prefix of the log lines. */
  label: string;
  /** URL imports' rules (e.g. `allowNetworks` for a test server on loopback). @default the SDK's (no private networks) */
  imports?: ImportOptions;
  /** More hypervisors of the panel besides this machine (e.g. one in a second location). @default none */
  hypervisors?: HostHypervisor[];
  /** Who may copy images to other locations (`createInstanceImages({ imageCopies })`). @default the SDK's (operators only) */
  imageCopies?: PanelImageCopies;
}

/** Who may copy images, and whether copies are billed (JSON: it reaches the worker processes too). */
export interface PanelImageCopies {
  allowCustomers?: boolean;
  billed?: boolean;
}

/** The panel's hypervisors: this machine first, then the extra ones of `options`. */
export function panelHypervisors(dataDir: string, extra: HostHypervisor[] = []): HostHypervisor[] {
  return [demoHypervisor(dataDir), ...extra];
}

/** The panel's export-link secret: made once per data directory, shared by its processes. */
function exportSecret(dataDir: string): string {
  const file = join(dataDir, 'export-secret');
  try {
    writeFileSync(file, randomBytes(32).toString('base64url'), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  return readFileSync(file, 'utf8').trim();
}

/** The Redis prefix of one panel (its data directory): two panels on one Redis never mix their jobs. */
export function redisPrefix(dataDir: string): string {
  return `ii-panel-${createHash('sha256').update(dataDir).digest('hex').slice(0, 12)}`;
}

/** Builds the SDK of one panel process; close the pool after the SDK. */
export function createPanelSdk(options: PanelSdkOptions): { sdk: InstanceImages; pool: ExecutorPool } {
  const hypervisors = new Map(panelHypervisors(options.dataDir, options.hypervisors).map((h) => [h.id, h]));
  const { role } = options;
  const pool = createExecutorPool();
  const sdk = createInstanceImages({
    repositories: createSqliteRepositories({ filename: join(options.dataDir, 'panel.db') }),
    hostDirectory: {
      getInstance: options.getInstance,
      getHypervisor: async (id) => hypervisors.get(id) ?? null,
    },
    executors: pool.executorFor,
    hypervisorDriver: createLibvirtDriver,
    storageDrivers: builtinStorageDrivers,
    // Resumable uploads are staged beside the database (every process of the panel reads them);
    // exports of local images are signed panel links.
    uploads: { directory: join(options.dataDir, 'uploads') },
    exports: { secret: exportSecret(options.dataDir) },
    ...(options.imports ? { imports: options.imports } : {}),
    ...(options.imageCopies ? { imageCopies: options.imageCopies } : {}),
    ...(role.kind === 'single'
      ? {}
      : {
          queue: createBullmqTaskQueue({ connection: role.redisUrl, prefix: redisPrefix(options.dataDir), role: role.kind }),
          tasks: { workerId: role.workerId },
        }),
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (m, c) => console.warn(`[${options.label}] ${m}`, c ?? ''),
      error: (m, c) => console.error(`[${options.label}] ${m}`, c ?? ''),
    },
  });
  return { sdk, pool };
}
