/**
 * What every process of the BullMQ cluster test builds alike: the same fake hypervisors and
 * instances (each process has its own in-memory copy; a capture runs wholly in one process), the
 * shared PostgreSQL repositories, the BullMQ task queue, and a hypervisor driver that records on
 * the hypervisor side, in one append-only file shared by all processes, when each capture starts
 * and ends, when it saw its cancel, and every recovery (lines are appended in one total order).
 */
import { appendFileSync } from 'node:fs';
import { createPostgresRepositories } from '../../../adapters/postgres';
import { createBullmqTaskQueue, type BullmqTaskQueue } from '../../../adapters/bullmq';
import { createInstanceImages, InstanceImagesError, type HypervisorDriverFactory, type InstanceImages } from '../../../src';
import { FakeWorld } from '../../support/fakes';

/** What the test hands each process. */
export interface ClusterConfig {
  redisUrl: string;
  prefix: string;
  databaseUrl: string;
  schema: string;
  /** The shared record of the hypervisor side. */
  logFile: string;
  /** How long a capture of an ordinary instance takes (a `slow-*` instance takes until cancelled). */
  captureMs: number;
  /** The deployment's limits. @default 4 and 1 */
  concurrency?: number;
  perHypervisorConcurrency?: number;
  /** Hypervisors `hv-1`…`hv-N` (@default 2) and instances `i-0`…`i-(M-1)` (@default 10). */
  hypervisors?: number;
  instances?: number;
  /** The queue's `enqueueTimeoutMs` (the Redis outage test). @default the queue's default */
  enqueueTimeoutMs?: number;
  /** The queue's `lostJobCheckIntervalMs` (the lost-jobs test). @default the queue's default */
  lostJobCheckIntervalMs?: number;
}

/** One line of the record. */
export interface HypervisorRecord {
  event: 'start' | 'end' | 'abort' | 'recover' | 'once';
  hypervisorId: string;
  domainName: string | null;
  pid: number;
}

export const ACCOUNT = 'acct-alice';
/** Instances: `i-0`…`i-(M-1)` (`i-N` on hv-(N mod hypervisors + 1)), and `slow-1`, `slow-2` (on hv-1). */
export function instancesOf(config: ClusterConfig): { id: string; hypervisorId: string }[] {
  const hypervisors = config.hypervisors ?? 2;
  return [
    ...Array.from({ length: config.instances ?? 10 }, (_, i) => ({ id: `i-${i}`, hypervisorId: `hv-${(i % hypervisors) + 1}` })),
    { id: 'slow-1', hypervisorId: 'hv-1' },
    { id: 'slow-2', hypervisorId: 'hv-1' },
  ];
}

function record(config: ClusterConfig, line: Omit<HypervisorRecord, 'pid'>): void {
  appendFileSync(config.logFile, `${JSON.stringify({ ...line, pid: process.pid })}\n`);
}

/** The fake world every process builds, with a recording, slow hypervisor driver. */
export function clusterWorld(config: ClusterConfig): { world: FakeWorld; hypervisorDriver: HypervisorDriverFactory } {
  const world = new FakeWorld();
  for (let i = 1; i <= (config.hypervisors ?? 2); i++) world.addHypervisor(`hv-${i}`);
  for (const { id, hypervisorId } of instancesOf(config)) world.addInstance(id, ACCOUNT, { hypervisorId });
  const inner = world.hypervisorFactory();
  const hypervisorDriver: HypervisorDriverFactory = (hypervisor, executor) => {
    const driver = inner(hypervisor, executor);
    return {
      ...driver,
      async capture(request) {
        const at = { hypervisorId: hypervisor.id, domainName: request.domainName };
        record(config, { event: 'start', ...at });
        try {
          const slow = request.domainName.startsWith('dom-slow');
          await new Promise<void>((resolve, reject) => {
            const timer = slow ? null : setTimeout(resolve, config.captureMs);
            request.signal?.addEventListener(
              'abort',
              () => {
                if (timer) clearTimeout(timer);
                record(config, { event: 'abort', ...at });
                reject(new InstanceImagesError('CANCELLED', 'Capture cancelled'));
              },
              { once: true },
            );
          });
          return await driver.capture(request);
        } finally {
          record(config, { event: 'end', ...at });
        }
      },
      async recover(domainName) {
        record(config, { event: 'recover', hypervisorId: hypervisor.id, domainName: domainName ?? null });
        return driver.recover(domainName);
      },
    };
  };
  return { world, hypervisorDriver };
}

/** The SDK of one process of the cluster. */
export async function clusterProcess(
  config: ClusterConfig,
  role: 'web' | 'worker',
  workerId: string,
): Promise<{ ii: InstanceImages; queue: BullmqTaskQueue; world: FakeWorld }> {
  const { world, hypervisorDriver } = clusterWorld(config);
  const queue = createBullmqTaskQueue({
    connection: config.redisUrl,
    prefix: config.prefix,
    role,
    concurrency: config.concurrency ?? 4,
    perHypervisorConcurrency: config.perHypervisorConcurrency ?? 1,
    lockDurationMs: 2_000,
    discoveryIntervalMs: 500,
    ...(config.enqueueTimeoutMs ? { enqueueTimeoutMs: config.enqueueTimeoutMs } : {}),
    ...(config.lostJobCheckIntervalMs ? { lostJobCheckIntervalMs: config.lostJobCheckIntervalMs } : {}),
  });
  const ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver,
    storageDrivers: [world.storageFactory('fake-s3', { shared: true, pathAccess: false })],
    repositories: await createPostgresRepositories({ connectionString: config.databaseUrl, schema: config.schema, maxConnections: 4 }),
    queue,
    tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 200, heartbeatTimeoutMs: 3_000, reaperIntervalMs: 500, workerId },
  });
  // Exactly one process of the cluster records each available image.
  queue.handleOnce('audit', 'image.available', ({ image }) =>
    record(config, { event: 'once', hypervisorId: image.hypervisorId ?? '', domainName: image.id }),
  );
  return { ii, queue, world };
}
