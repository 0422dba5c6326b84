import { describe, expect, it } from 'vitest';
import type { InstanceImagesError } from '../../../src';
import { builtinStorageDrivers } from '../../../drivers/storage';
import { createInstanceImages, createTaskQueue, silentLogger, type HostDirectory, type TaskJob } from '../../../src';
import { createEmitter } from '../../../src/events';

const host: HostDirectory = { getInstance: async () => null, getHypervisor: async () => null };

/** An in-process queue whose runner runs the closure given for each task id (jobs are data). */
function queueWith(options: Parameters<typeof createTaskQueue>[0], work: Map<string, (signal: AbortSignal) => Promise<unknown>>) {
  const queue = createTaskQueue(options);
  queue.bind({
    events: createEmitter(),
    logger: silentLogger,
    run: async (job: TaskJob, signal) => void (await work.get(job.taskId)!(signal)),
  });
  return queue;
}

describe('task queue', () => {
  it('limits concurrency per hypervisor and globally', async () => {
    const work = new Map<string, (signal: AbortSignal) => Promise<unknown>>();
    const queue = queueWith({ concurrency: 3, perHypervisorConcurrency: 1 }, work);
    const running = new Map<string, number>();
    let globalRunning = 0;
    let maxGlobal = 0;
    const maxPer = new Map<string, number>();
    const job = (hv: string) => async () => {
      globalRunning++;
      running.set(hv, (running.get(hv) ?? 0) + 1);
      maxGlobal = Math.max(maxGlobal, globalRunning);
      maxPer.set(hv, Math.max(maxPer.get(hv) ?? 0, running.get(hv)!));
      await new Promise((r) => setTimeout(r, 5));
      running.set(hv, running.get(hv)! - 1);
      globalRunning--;
    };
    for (let i = 0; i < 20; i++) {
      work.set(`t${i}`, job(`hv${i % 5}`));
      await queue.enqueue({ taskId: `t${i}`, type: 'capture', hypervisorId: `hv${i % 5}` });
    }
    await queue.onIdle();
    expect(maxGlobal).toBe(3);
    for (const value of maxPer.values()) expect(value).toBe(1);
  });

  it('cancel aborts the job signal; errors of jobs do not escape', async () => {
    const errors: string[] = [];
    const work = new Map<string, (signal: AbortSignal) => Promise<unknown>>();
    const queue = queueWith({ onJobError: (id) => errors.push(id) }, work);
    let aborted = false;
    work.set(
      'long',
      (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          });
        }),
    );
    await queue.enqueue({ taskId: 'long', type: 'capture', hypervisorId: null });
    expect(queue.cancel('long')).toBe(true);
    expect(queue.cancel('unknown')).toBe(false);
    await queue.onIdle();
    expect(aborted).toBe(true);
    expect(errors).toEqual(['long']);
    await queue.close();
    await expect(queue.enqueue({ taskId: 'x', type: 'capture', hypervisorId: null })).rejects.toThrow();
  });
});

describe('createInstanceImages', () => {
  it('wires defaults', async () => {
    const images = createInstanceImages({ hostDirectory: host });
    expect(images.repositories.images).toBeDefined();
    let seen = 0;
    images.events.on('task.progress', () => seen++);
    images.events.emit('task.progress', { task: {} as never });
    expect(seen).toBe(1);
    expect(images.storageDrivers.names()).toEqual([]);
    await images.close();
  });

  it('registers the storage drivers the host passes, the built-ins in one line', async () => {
    const images = createInstanceImages({ hostDirectory: host, storageDrivers: builtinStorageDrivers });
    expect(images.storageDrivers.names()).toEqual(['local', 'nfs', 's3']);
    await images.close();
  });

  it('says which storage driver is missing and how to register it', async () => {
    const images = createInstanceImages({ hostDirectory: host });
    const error = (await images.storages.createStorage({ kind: 'admin', userId: 'op' }, { name: 'bucket', driver: 's3', config: {} }).then(
      () => null,
      (e: unknown) => e,
    )) as InstanceImagesError;
    expect(error.code).toBe('VALIDATION_FAILED');
    expect(error.fields?.[0]).toMatchObject({ path: 'driver' });
    expect(error.fields?.[0]?.message).toContain('no storage driver named "s3" is registered');
    expect(error.fields?.[0]?.message).toContain('storageDrivers');
    expect(error.fields?.[0]?.message).toContain('instance-images/drivers/storage');
    await images.close();
  });

  it('an existing storage whose driver is not registered fails with STORAGE_UNAVAILABLE naming the driver, its secrets masked', async () => {
    const admin = { kind: 'admin' as const, userId: 'op' };
    const first = createInstanceImages({ hostDirectory: host, storageDrivers: builtinStorageDrivers });
    const storage = await first.storages.createStorage(admin, {
      name: 'bucket',
      driver: 's3',
      config: {
        endpoint: 'http://127.0.0.1:1',
        region: 'us-east-1',
        bucket: 'images-bucket',
        accessKeyId: 'AKIAEXAMPLE',
        secretAccessKey: 'very-secret',
      },
    });
    const second = createInstanceImages({ hostDirectory: host, repositories: first.repositories });
    const error = (await second.storages.browse(admin, storage.id, {}).then(
      () => null,
      (e: unknown) => e,
    )) as InstanceImagesError;
    expect(error.code).toBe('STORAGE_UNAVAILABLE');
    expect(error.message).toContain('"s3"');
    expect(error.message).toContain('storageDrivers');
    expect(JSON.stringify(await second.storages.getStorage(admin, storage.id))).not.toContain('very-secret');
    await second.close();
  });

  it('names the bad option', () => {
    const attempt = (options: unknown) => {
      try {
        createInstanceImages(options as never);
      } catch (error) {
        return error as InstanceImagesError;
      }
      return null;
    };
    const missing = attempt({});
    expect(missing?.code).toBe('VALIDATION_FAILED');
    expect(missing?.fields.map((f) => f.path)).toContain('hostDirectory');
    const badQueue = attempt({ hostDirectory: host, queue: { concurrency: 0 } });
    expect(badQueue?.fields.map((f) => f.path).join()).toContain('queue');
    const badRepo = attempt({ hostDirectory: host, repositories: { images: {} } });
    expect(badRepo?.fields.map((f) => f.path)).toContain('repositories.images');
  });
});
