/**
 * What every process of the real-parts cluster test builds alike: the SDK on shared PostgreSQL
 * repositories and the BullMQ task queue on real Redis, two hypervisor records (`hv-a`, `hv-b`,
 * distinct ids and scratch directories) on this machine's libvirt reached over sshd, real test
 * guests, and a local path storage. A capture of a domain named in `holdFile`'s directory waits,
 * once its backup job runs, until `release-<domain>` exists there (cancel and crash tests).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createBullmqTaskQueue, type BullmqTaskQueue } from '../../../adapters/bullmq';
import { createPostgresRepositories } from '../../../adapters/postgres';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { createInstanceImages, type HostHypervisor, type InstanceImages } from '../../../src';
import { sshTarget } from '../exec/ssh-target';

/** What the test hands each process. */
export interface RealClusterConfig {
  redisUrl: string;
  prefix: string;
  databaseUrl: string;
  schema: string;
  /** Hypervisor id → its scratch directory. */
  hypervisors: Record<string, string>;
  /** Instance id → its hypervisor and libvirt domain. */
  instances: Record<string, { hypervisorId: string; domainName: string }>;
  /** Directory of the hold markers: `hold-<domain>` makes a capture wait for `release-<domain>`. */
  controlDir: string;
  /** Every capture waits this long once its job runs, so the hypervisor-side sampler sees it. */
  minJobMs: number;
}

export const REAL_ACCOUNT = 'acct-real';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The SDK of one process of the real cluster. */
export async function realClusterProcess(
  config: RealClusterConfig,
  role: 'web' | 'worker',
  workerId: string,
): Promise<{ ii: InstanceImages; queue: BullmqTaskQueue }> {
  const target = await sshTarget();
  if ('skip' in target) throw new Error(target.skip);
  const executor = createSshExecutor(target.connection);
  const hypervisors = new Map<string, HostHypervisor>(
    Object.entries(config.hypervisors).map(([id, scratchDir]) => [
      id,
      { id, name: id, locationId: 'loc', connection: target.connection, scratchDir },
    ]),
  );
  const queue = createBullmqTaskQueue({
    connection: config.redisUrl,
    prefix: config.prefix,
    role,
    concurrency: 4,
    perHypervisorConcurrency: 1,
    lockDurationMs: 2_000,
    discoveryIntervalMs: 500,
  });
  const ii = createInstanceImages({
    repositories: await createPostgresRepositories({ connectionString: config.databaseUrl, schema: config.schema, maxConnections: 4 }),
    hostDirectory: {
      getInstance: async (id) => {
        const instance = config.instances[id];
        return instance ? { id, name: id, accountId: REAL_ACCOUNT, locationId: 'loc', ...instance } : null;
      },
      getHypervisor: async (id) => hypervisors.get(id) ?? null,
    },
    storageDrivers: builtinStorageDrivers,
    executors: () => executor,
    hypervisorDriver: (hv, exec) =>
      createLibvirtDriver(hv, exec, {
        method: 'pull-backup',
        hooks: {
          async afterJobStart({ domainName }) {
            await sleep(config.minJobMs);
            if (!existsSync(join(config.controlDir, `hold-${domainName}`))) return;
            process.send?.({ held: domainName, pid: process.pid });
            while (!existsSync(join(config.controlDir, `release-${domainName}`))) await sleep(100);
          },
        },
      }),
    queue,
    // The web process's reaper waits an hour: a dead worker's task is recovered by a live worker.
    tasks: {
      progressIntervalMs: 0,
      heartbeatIntervalMs: 200,
      heartbeatTimeoutMs: role === 'web' ? 3_600_000 : 3_000,
      reaperIntervalMs: 500,
      workerId,
    },
  });
  return { ii, queue };
}
