/**
 * Jobs as data: every task type the SDK queues has a registered handler that rebuilds the work
 * from the repositories (no closure crosses the queue), and a job handed over as JSON to another
 * SDK instance on the same repositories runs there.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { TaskTypeSchema } from '../../../src/schemas';
import { createInstanceImages, type InstanceImages, type TaskJob, type TaskQueue, type TaskQueueBinding } from '../../../src';
import { INLINE_TASK_TYPES, TaskJobRegistry } from '../../../src/services/task-jobs';
import { makeTask } from '../../../src/testing';
import { codeOf } from '../../support/errors';
import { serveBytes, type ImageServer } from '../../support/image-server';
import { admin, alice, setup, type Harness } from '../service/setup';

/** A queue that only keeps the binding: jobs are run by the test through `binding.run`. */
function capturingQueue(): TaskQueue & { binding: () => TaskQueueBinding } {
  let bound: TaskQueueBinding | null = null;
  return {
    binding: () => bound!,
    bind: (binding) => {
      bound = binding;
    },
    enqueue: () => Promise.reject(new Error('this queue runs nothing by itself')),
    cancel: () => false,
    onIdle: async () => undefined,
    close: async () => undefined,
  };
}

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
});

describe('task job registry', () => {
  it('runs a job with the handler of its type; an unknown type or a second handler is refused; missing() names the rest', async () => {
    const registry = new TaskJobRegistry();
    const seen: string[] = [];
    registry.register('capture', async (job) => {
      seen.push(job.taskId);
    });
    await registry.run({ taskId: 't1', type: 'capture', hypervisorId: 'hv-1' }, new AbortController().signal);
    expect(seen).toEqual(['t1']);
    expect(await codeOf(registry.run({ taskId: 't2', type: 'deploy', hypervisorId: null }, new AbortController().signal))).toBe(
      'VALIDATION_FAILED',
    );
    expect(() => registry.register('capture', async () => undefined)).toThrow(/registered already/);
    expect(registry.types()).toEqual(['capture']);
    expect(registry.missing()).toEqual(TaskTypeSchema.options.filter((t) => t !== 'capture' && !INLINE_TASK_TYPES.includes(t)));
  });

  it('every task type is either queued with a handler in the SDK or run inline (never queued)', async () => {
    const queue = capturingQueue();
    const ii = createInstanceImages({ hostDirectory: { getInstance: async () => null, getHypervisor: async () => null }, queue });
    cleanup.push(() => ii.close());
    for (const type of TaskTypeSchema.options) {
      const task = makeTask({ id: `task-${type}`, type, status: 'queued', subjectId: `subject-${type}` });
      await ii.repositories.tasks.insert(task);
      // A job of a missing subject: the handler runs and ends the task; only a missing handler says "No handler".
      await queue
        .binding()
        .run({ taskId: task.id, type, hypervisorId: null }, new AbortController().signal)
        .catch(() => undefined);
      const ended = await ii.repositories.tasks.get(task.id);
      const noHandler = ended?.errorMessage?.startsWith('No handler') ?? false;
      expect({ type, noHandler }).toEqual({ type, noHandler: INLINE_TASK_TYPES.includes(type) });
    }
  });

  it('no service queues anything but a job (the one enqueue is enqueueTask); inline types are never enqueued', () => {
    const dir = join(import.meta.dirname, '../../../src/services');
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'task-jobs.ts')) {
      const text = readFileSync(join(dir, file), 'utf8');
      expect({ file, enqueue: /queue\.enqueue\(/.test(text) }).toEqual({ file, enqueue: false });
      for (const type of INLINE_TASK_TYPES)
        expect({ file, type, queued: new RegExp(`enqueueTask\\([^)]*type: '${type}'`, 's').test(text) }).toMatchObject({ queued: false });
    }
  });
});

describe('jobs handed over as JSON to another SDK instance on the same repositories', () => {
  let servers: ImageServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  /** A web SDK that only queues (each job crosses as JSON) and a worker SDK that runs what it gets. */
  async function webAndWorker(): Promise<{ web: Harness; worker: InstanceImages; ran: TaskJob[]; workerEvents: string[] }> {
    const ran: TaskJob[] = [];
    const running = new Set<Promise<void>>();
    let runner: TaskQueueBinding['run'] | null = null;
    // Both processes queue onto the same "engine": each job crosses as JSON and runs in the worker.
    const engine = (bind: boolean): TaskQueue => ({
      bind: (binding) => {
        if (bind) runner = binding.run;
      },
      enqueue: async (job) => {
        const copy = JSON.parse(JSON.stringify(job)) as TaskJob;
        ran.push(copy);
        const run = runner!(copy, new AbortController().signal);
        running.add(run);
        void run.finally(() => running.delete(run));
      },
      cancel: () => false,
      onIdle: async () => {
        while (running.size > 0) await Promise.allSettled([...running]);
      },
      close: async () => undefined,
    });
    const handoff = engine(false);
    const workerQueue = engine(true);
    const web = await setup({ queue: handoff, limit: null, imports: { allowNetworks: ['127.0.0.2/32'], idleTimeoutMs: 2000 } });
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
      imports: { allowNetworks: ['127.0.0.2/32'], idleTimeoutMs: 2000 },
      imageCopies: { allowCustomers: true },
    });
    const workerEvents: string[] = [];
    worker.events.on('*', (type) => workerEvents.push(type));
    cleanup.push(
      () => web.ii.close(),
      () => worker.close(),
    );
    return { web, worker, ran, workerEvents };
  }

  const done = async (ii: InstanceImages, taskId: string) => {
    await vi.waitFor(async () => expect(['completed', 'failed', 'cancelled']).toContain((await ii.images.getTask(admin, taskId)).status), {
      timeout: 5_000,
    });
    return ii.images.getTask(admin, taskId);
  };

  it('capture, deploy, copy, import, delete and close-account run in the worker from plain data', async () => {
    const { web, ran, workerEvents } = await webAndWorker();
    const { image, task } = await web.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web' });
    expect(await done(web.ii, task.id)).toMatchObject({ status: 'completed' });
    expect((await web.ii.images.getImage(alice, image.id)).status).toBe('available');

    await web.ii.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, urlImportEnabled: true });
    const bytes = Buffer.alloc(256 * 1024, 7);
    const server = await serveBytes(bytes, { host: '127.0.0.2' });
    servers.push(server);
    const imported = await web.ii.imports.importImage(alice, { url: server.url, name: 'imported', locationId: 'loc-1' });
    expect(await done(web.ii, imported.task.id)).toMatchObject({ errorMessage: null, status: 'completed' });
    expect((await web.ii.images.getImage(alice, imported.image.id)).status).toBe('available');

    web.world.addInstance('new-1', 'acct-alice');
    const deployed = await web.ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new.qcow2' });
    expect(await done(web.ii, deployed.task.id)).toMatchObject({ status: 'completed' });

    const local = await web.ii.storages.createStorage(admin, { name: 'local', driver: 'fake-local', config: { root: 'copies' } });
    await web.ii.storages.bindHypervisor(admin, local.id, 'hv-1');
    const copy = await web.ii.copies.copyImage(admin, image.id, { storageId: local.id, hypervisorId: 'hv-1', name: 'copy' });
    expect(await done(web.ii, copy.task.id)).toMatchObject({ status: 'completed' });
    expect((await web.ii.images.getImage(alice, copy.image.id)).status).toBe('available');

    const removed = await web.ii.images.deleteImage(alice, copy.image.id);
    expect(await done(web.ii, removed.task!.id)).toMatchObject({ status: 'completed' });

    const closing = await web.ii.accounts.closeAccount(admin, 'acct-alice');
    expect(await done(web.ii, closing.task!.id)).toMatchObject({ errorMessage: null, status: 'completed' });

    expect(ran.map((job) => job.type)).toEqual(['capture', 'import', 'deploy', 'copy', 'delete', 'close-account', 'delete', 'delete']);
    // Only the four fields of a job, params of JSON scalars.
    for (const job of ran) {
      expect(Object.keys(job).every((key) => ['taskId', 'type', 'hypervisorId', 'params'].includes(key))).toBe(true);
      expect(Object.values(job.params ?? {}).every((v) => v === null || ['string', 'number', 'boolean'].includes(typeof v))).toBe(true);
    }
    expect(ran[2]).toMatchObject({ params: { instanceId: 'new-1', targetPath: '/disks/new.qcow2', sizeBytes: null } });
    // The work ran in the worker: its events were emitted there, not in the web process.
    expect(workerEvents).toEqual(expect.arrayContaining(['image.available', 'image.deployed']));
    expect(web.events.map((e) => e.type)).not.toContain('image.available');
    expect(web.events.map((e) => e.type)).not.toContain('image.deployed');
  });

  it('a job with unreadable params fails its task (VALIDATION_FAILED) instead of running', async () => {
    const queue = capturingQueue();
    const ii = createInstanceImages({ hostDirectory: { getInstance: async () => null, getHypervisor: async () => null }, queue });
    cleanup.push(() => ii.close());
    const task = makeTask({ id: 'deploy-1', type: 'deploy', status: 'queued' });
    await ii.repositories.tasks.insert(task);
    const run = queue
      .binding()
      .run({ taskId: task.id, type: 'deploy', hypervisorId: null, params: { targetPath: 7 } }, new AbortController().signal);
    expect(await codeOf(run)).toBe('VALIDATION_FAILED');
    expect(await ii.repositories.tasks.get(task.id)).toMatchObject({ status: 'failed', errorCode: 'VALIDATION_FAILED' });
  });
});
