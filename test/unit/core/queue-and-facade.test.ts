import { describe, expect, it } from 'vitest';
import type { InstanceImagesError} from '../../../src';
import { createInstanceImages, createTaskQueue, type HostDirectory } from '../../../src';

const host: HostDirectory = { getInstance: async () => null, getHypervisor: async () => null };

describe('task queue', () => {
  it('limits concurrency per hypervisor and globally', async () => {
    const queue = createTaskQueue({ concurrency: 3, perHypervisorConcurrency: 1 });
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
    for (let i = 0; i < 20; i++) queue.enqueue({ taskId: `t${i}`, hypervisorId: `hv${i % 5}`, run: job(`hv${i % 5}`) });
    await queue.onIdle();
    expect(maxGlobal).toBe(3);
    for (const value of maxPer.values()) expect(value).toBe(1);
  });

  it('cancel aborts the job signal; errors of jobs do not escape', async () => {
    const errors: string[] = [];
    const queue = createTaskQueue({ onJobError: (id) => errors.push(id) });
    let aborted = false;
    queue.enqueue({
      taskId: 'long',
      hypervisorId: null,
      run: (signal) =>
        new Promise((_, reject) => {
          signal.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('aborted'));
          });
        }),
    });
    expect(queue.cancel('long')).toBe(true);
    expect(queue.cancel('unknown')).toBe(false);
    await queue.onIdle();
    expect(aborted).toBe(true);
    expect(errors).toEqual(['long']);
    await queue.close();
    expect(() => queue.enqueue({ taskId: 'x', hypervisorId: null, run: async () => undefined })).toThrow();
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
    expect(images.storageDrivers.names()).toEqual(expect.arrayContaining(['local', 'nfs', 's3']));
    await images.close();
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
