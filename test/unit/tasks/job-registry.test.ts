import { describe, expect, it, vi } from 'vitest';
import {
  createInstanceImages,
  createTaskQueue,
  type TaskJob,
  type TaskJobHandle,
  type TaskQueue,
  type TaskQueueBinding,
} from '../../../src';
import { TaskJobRegistry } from '../../../src/services/task-jobs';
import { codeOf } from '../../support/errors';
import { alice, setup } from '../service/setup';

/** The in-process queue, but every job and every result crosses a JSON boundary (as on Redis); jobs are recorded. */
function jsonQueue(): TaskQueue & { jobs: TaskJob[] } {
  const inner = createTaskQueue();
  const jobs: TaskJob[] = [];
  return {
    jobs,
    bind: (binding: TaskQueueBinding) =>
      inner.bind({ ...binding, run: async (job, signal) => JSON.parse(JSON.stringify((await binding.run(job, signal)) ?? null)) }),
    async enqueue(job: TaskJob): Promise<TaskJobHandle> {
      const copy = JSON.parse(JSON.stringify(job)) as TaskJob;
      jobs.push(copy);
      return inner.enqueue(copy);
    },
    cancel: (taskId) => inner.cancel(taskId),
    onIdle: () => inner.onIdle(),
    close: () => inner.close(),
  };
}

describe('task job registry', () => {
  it('runs a job with the handler of its type; an unknown type or a second handler is refused', async () => {
    const registry = new TaskJobRegistry();
    const seen: string[] = [];
    registry.register('capture', async (job) => {
      seen.push(job.taskId);
      return { done: job.taskId };
    });
    expect(await registry.run({ taskId: 't1', type: 'capture', hypervisorId: 'hv-1' }, new AbortController().signal)).toEqual({
      done: 't1',
    });
    expect(seen).toEqual(['t1']);
    expect(await codeOf(registry.run({ taskId: 't2', type: 'deploy', hypervisorId: null }, new AbortController().signal))).toBe(
      'VALIDATION_FAILED',
    );
    expect(() => registry.register('capture', async () => undefined)).toThrow(/registered already/);
    expect(registry.types()).toEqual(['capture']);
  });

  it('capture, deploy and delete queue plain data that any process rebuilds the work from', async () => {
    const queue = jsonQueue();
    const h = await setup({ queue });
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web' });
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, image.id)).status).toBe('available');
    expect(queue.jobs[0]).toEqual({
      taskId: task.id,
      type: 'capture',
      hypervisorId: 'hv-1',
      params: { fileKey: image.fileKey, compress: false },
    });

    h.world.addInstance('new-1', 'acct-alice');
    const deployed = await h.ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new.qcow2' });
    expect(deployed.task.status).toBe('completed');
    expect(deployed.result.path).toBe('/disks/new.qcow2');
    expect(queue.jobs[1]).toMatchObject({
      type: 'deploy',
      params: { instanceId: 'new-1', targetPath: '/disks/new.qcow2', sizeBytes: null },
    });
    // A deploy that fails in the job comes back to the caller as the same typed error.
    const stored = [...h.world.files.entries()].find(([key]) => key.endsWith(image.fileKey))!;
    h.world.files.set(stored[0], { ...stored[1], bytes: Buffer.from('not the image') });
    expect(await codeOf(h.ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/b.qcow2' }))).toBe(
      'CHECKSUM_MISMATCH',
    );
    h.world.files.set(stored[0], stored[1]);

    await h.ii.images.deleteImage(alice, image.id);
    await h.ii.idle();
    expect(queue.jobs.at(-1)).toMatchObject({ type: 'delete', hypervisorId: null }); // a shared storage's image has no hypervisor
    expect(queue.jobs.every((job) => Object.keys(job).every((key) => ['taskId', 'type', 'hypervisorId', 'params'].includes(key)))).toBe(
      true,
    );
    await h.ii.close();
  });

  it('a job queued by one SDK instance runs in another one that shares the repositories', async () => {
    // The "worker": its own SDK on the same repositories; its bound runner is what a worker process runs.
    let workerBinding: TaskQueueBinding | null = null;
    const workerQueue: TaskQueue = {
      bind: (binding) => {
        workerBinding = binding;
      },
      enqueue: () => Promise.reject(new Error('the worker queues nothing here')),
      cancel: () => false,
      onIdle: async () => undefined,
      close: async () => undefined,
    };
    const ran: string[] = [];
    // The "web" process: it only hands jobs over, as JSON.
    const handoff: TaskQueue = {
      bind: () => undefined,
      enqueue: async (job) => {
        const copy = JSON.parse(JSON.stringify(job)) as TaskJob;
        ran.push(copy.type);
        const done = workerBinding!.run(copy, new AbortController().signal);
        return { finished: () => done };
      },
      cancel: () => false,
      onIdle: async () => undefined,
      close: async () => undefined,
    };
    const web = await setup({ queue: handoff });
    const worker = createInstanceImages({
      hostDirectory: web.world.hostDirectory(),
      executors: web.world.executors(),
      hypervisorDriver: web.world.hypervisorFactory(),
      storageDrivers: [
        web.world.storageFactory('fake-s3', { shared: true, pathAccess: false }),
        web.world.storageFactory('fake-local', { shared: false, pathAccess: true }),
      ],
      repositories: web.ii.repositories,
      queue: workerQueue,
      tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
    });
    const workerEvents: string[] = [];
    worker.events.on('*', (type) => workerEvents.push(type));
    const { image, task } = await web.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web' });
    await vi.waitFor(async () => expect((await web.ii.images.getTask(alice, task.id)).status).toBe('completed'));
    expect((await web.ii.images.getImage(alice, image.id)).status).toBe('available');
    expect(ran).toEqual(['capture']);
    // The work ran in the worker: its events were emitted there, not in the web process.
    expect(workerEvents).toContain('image.available');
    expect(web.events.map((e) => e.type)).not.toContain('image.available');
    await worker.close();
    await web.ii.close();
  });
});
