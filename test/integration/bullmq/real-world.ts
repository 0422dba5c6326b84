/**
 * What every process of the real-parts cluster test builds alike: the SDK on shared PostgreSQL
 * repositories and the BullMQ task queue on real Redis, two hypervisor records (`hv-a`, `hv-b`,
 * distinct ids and scratch directories) on this machine's libvirt reached over sshd, real test
 * guests, and the built-in storage drivers (the test stores into radosgw). Control markers in
 * `controlDir`: with `hold-<domain>`, a capture of that domain waits, once its backup job runs,
 * until `release-<domain>` exists (the cancel test); with `hold-upload`, an upload into S3 waits
 * once more than {@link HOLD_UPLOAD_AFTER} bytes went through (its multipart upload open, a part
 * stored) until `release-upload` exists (the crash test).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline, Transform } from 'node:stream';
import { createBullmqTaskQueue, type BullmqTaskQueue } from '../../../adapters/bullmq';
import { createPostgresRepositories } from '../../../adapters/postgres';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import { createLibvirtDriver } from '../../../drivers/hypervisor/libvirt';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { createInstanceImages, type HostHypervisor, type InstanceImages, type StorageDriverFactory } from '../../../src';
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
  /** The queue's `lostJobCheckIntervalMs` (jobs Redis lost are stored again within a few). */
  lostJobCheckIntervalMs: number;
}

/** Bytes an upload passes before a `hold-upload` marker stops it: more than one 5 MiB part. */
export const HOLD_UPLOAD_AFTER = 6 * 1024 * 1024;

export const REAL_ACCOUNT = 'acct-real';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The built-in `s3` driver with its uploads held at the `hold-upload` marker: past
 * {@link HOLD_UPLOAD_AFTER} bytes, the body stops (after telling the test `{ heldUpload: key, pid }`)
 * until `release-upload` exists.
 */
function holdingS3(s3: StorageDriverFactory, controlDir: string): StorageDriverFactory {
  return {
    ...s3,
    create(options, context) {
      const driver = s3.create(options, context);
      return {
        ...driver,
        put(key, body, putOptions) {
          if (!existsSync(join(controlDir, 'hold-upload'))) return driver.put(key, body, putOptions);
          let passed = 0;
          let held = false;
          const gate = new Transform({
            transform(chunk: Buffer, _encoding, callback) {
              passed += chunk.length;
              if (held || passed <= HOLD_UPLOAD_AFTER) return callback(null, chunk);
              held = true;
              console.error(new Date().toISOString(), process.pid, 'holds the upload of', key, 'after', passed, 'bytes');
              process.send?.({ heldUpload: key, pid: process.pid });
              void (async () => {
                while (!existsSync(join(controlDir, 'release-upload'))) await sleep(100);
                callback(null, chunk);
              })();
            },
          });
          pipeline(body, gate, () => undefined);
          return driver.put(key, gate, putOptions);
        },
      };
    },
  };
}

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
    // Generous for a loaded 2-core machine: a live worker must never be taken for dead.
    lockDurationMs: 12_000,
    discoveryIntervalMs: 500,
    lostJobCheckIntervalMs: config.lostJobCheckIntervalMs,
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
    storageDrivers: builtinStorageDrivers.map((factory) => (factory.name === 's3' ? holdingS3(factory, config.controlDir) : factory)),
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
    // Warnings and errors of every process, with its role and time, on the test's stderr.
    logger: {
      debug: () => undefined,
      info: () => undefined,
      warn: (message, context) => console.error(new Date().toISOString(), workerId, 'warn', message, JSON.stringify(context ?? {})),
      error: (message, context) => console.error(new Date().toISOString(), workerId, 'error', message, JSON.stringify(context ?? {})),
    },
    // The web process's reaper waits an hour: a dead worker's task is recovered by a live worker.
    tasks: {
      progressIntervalMs: 0,
      heartbeatIntervalMs: 200,
      // Longer than BullMQ's stall detection (lockDurationMs to twice that): BullMQ frees a killed
      // worker's hypervisor slot before the SDK takes its task for dead, so the next capture there
      // must wait for that recovery (the hypervisor gate), or it would overlap the dead one's leftovers.
      heartbeatTimeoutMs: role === 'web' ? 3_600_000 : 30_000,
      reaperIntervalMs: 500,
      workerId,
    },
  });
  return { ii, queue };
}
