/**
 * The SDK's own reaper (issue 13): while a process runs, lapsed tasks are recovered without anyone
 * calling recover(); a process started again with the same worker id recovers the tasks of its
 * previous run at once; a live task is never taken; heartbeats never revive a recovered task.
 */
import { describe, expect, it, vi } from 'vitest';
import { createInstanceImages, type InstanceImages } from '../../../src';
import { makeImage, makeTask } from '../../../src/testing';
import { defaultWorkerId } from '../../../src/tasks/reaper';
import { alice, setup, type Harness } from './setup';

/** Another panel process over the same repositories, world and clock. */
function process2(h: Harness, tasks: { workerId?: string; heartbeatTimeoutMs?: number; reaperIntervalMs?: number }): InstanceImages {
  return createInstanceImages({
    hostDirectory: h.world.hostDirectory(),
    executors: h.world.executors(),
    hypervisorDriver: h.world.hypervisorFactory(),
    storageDrivers: [
      h.world.storageFactory('fake-s3', { shared: true, pathAccess: false }),
      h.world.storageFactory('fake-local', { shared: false, pathAccess: true }),
    ],
    repositories: h.ii.repositories,
    tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50, ...tasks },
    clock: () => new Date(h.clock.now.getTime()),
  });
}

/** A capture left by a crashed process: image creating, task running with the given owner and heartbeat. */
async function crashedCapture(h: Harness, owner: { workerId: string; incarnationId: string }, heartbeatAt: Date) {
  const image = makeImage({
    accountId: 'acct-bob',
    storageId: h.storageId,
    hypervisorId: 'hv-1',
    sourceInstanceId: 'bob-1',
    sourceInstanceName: 'vm-bob-1',
    updatedAt: heartbeatAt,
  });
  await h.ii.repositories.images.insert(image);
  const task = makeTask({ subjectId: image.id, status: 'running', accountId: 'acct-bob', hypervisorId: 'hv-1', heartbeatAt, ...owner });
  await h.ii.repositories.tasks.insert(task);
  return { image, task };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the reaper', () => {
  it('recovers a task whose heartbeat lapses while the process runs, with no recover() call', async () => {
    const h = await setup();
    const other = process2(h, { workerId: 'panel-b', heartbeatTimeoutMs: 60_000, reaperIntervalMs: 100 });
    // Another worker's capture, alive a moment ago.
    const { image, task } = await crashedCapture(h, { workerId: 'panel-a', incarnationId: 'run-1' }, h.clock.now);
    await sleep(300);
    expect((await h.ii.repositories.tasks.get(task.id))?.status).toBe('running');
    // Its heartbeat lapses (60 s pass without one).
    h.clock.now = new Date(h.clock.now.getTime() + 61_000);
    await vi.waitFor(async () => expect((await h.ii.repositories.tasks.get(task.id))?.errorCode).toBe('INTERRUPTED'), { timeout: 15_000 });
    const after = await h.ii.repositories.images.get(image.id);
    expect(after?.status).toBe('error');
    expect(after?.statusReason?.code).toBe('INTERRUPTED');
    expect(h.world.recoveries).toEqual([{ hypervisorId: 'hv-1', domainName: null }]);
    await other.close();
    await h.ii.close();
  });

  it("recovers its own previous run's tasks at once, whatever their heartbeat, and no one else's", async () => {
    const h = await setup();
    const fresh = h.clock.now;
    const mine = await crashedCapture(h, { workerId: 'panel-a', incarnationId: 'killed-run' }, fresh);
    const queued = makeTask({
      status: 'queued',
      subjectId: mine.image.id,
      workerId: 'panel-a',
      incarnationId: 'killed-run',
      heartbeatAt: fresh,
    });
    await h.ii.repositories.tasks.insert(queued);
    const theirs = await crashedCapture(h, { workerId: 'panel-b', incarnationId: 'alive' }, fresh);
    // Started again with the same worker id; the heartbeat timeout alone would wait an hour.
    const restarted = process2(h, { workerId: 'panel-a', heartbeatTimeoutMs: 3_600_000 });
    await vi.waitFor(async () => expect((await h.ii.repositories.tasks.get(mine.task.id))?.errorCode).toBe('INTERRUPTED'), {
      timeout: 15_000,
    });
    expect((await h.ii.repositories.tasks.get(queued.id))?.errorCode).toBe('INTERRUPTED');
    expect((await h.ii.repositories.images.get(mine.image.id))?.statusReason?.code).toBe('INTERRUPTED');
    expect((await h.ii.repositories.tasks.get(theirs.task.id))?.status).toBe('running');
    expect((await h.ii.repositories.images.get(theirs.image.id))?.status).toBe('creating');
    // panel-b's capture runs on hv-1: only the crashed capture's domain is recovered.
    expect(h.world.recoveries).toEqual([{ hypervisorId: 'hv-1', domainName: 'dom-bob-1' }]);
    expect((await restarted.recover()).interruptedTasks).toEqual([]);
    await restarted.close();
    await h.ii.close();
  });

  it('never takes the tasks of a live SDK of the same worker in this process', async () => {
    const h = await setup();
    const first = process2(h, { workerId: 'panel-a' });
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const live = await first.images.createImage(alice, { instanceId: 'web-1', name: 'live' });
    await vi.waitFor(async () => expect((await h.ii.repositories.tasks.get(live.task.id))?.status).toBe('running'), { timeout: 15_000 });
    expect(await h.ii.repositories.tasks.get(live.task.id)).toMatchObject({ workerId: 'panel-a' });
    const second = process2(h, { workerId: 'panel-a' });
    expect((await second.recover()).interruptedTasks).toEqual([]);
    open();
    await first.idle();
    expect((await first.images.getImage(alice, live.image.id)).status).toBe('available');
    await second.close();
    await first.close();
    await h.ii.close();
  });

  it('a task recovered by another process while it still runs here is stopped; its heartbeat does not revive it', async () => {
    const h = await setup();
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const live = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'live' });
    await vi.waitFor(async () => expect((await h.ii.repositories.tasks.get(live.task.id))?.status).toBe('running'), { timeout: 15_000 });
    // Another process took it for dead (e.g. this one was paused for minutes) and failed it.
    const at = h.clock.now;
    await h.ii.repositories.tasks.transition(
      live.task.id,
      ['running'],
      'failed',
      { finishedAt: at, errorCode: 'INTERRUPTED', errorMessage: 'interrupted' },
      at,
    );
    h.clock.now = new Date(at.getTime() + 1000);
    await h.ii.idle();
    const task = await h.ii.repositories.tasks.get(live.task.id);
    expect(task).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED' });
    expect(task?.heartbeatAt?.getTime()).toBeLessThanOrEqual(at.getTime());
    const image = await h.ii.images.getImage(alice, live.image.id);
    expect(image.status).toBe('error');
    expect(image.statusReason?.code).toBe('INTERRUPTED');
    open();
    await h.ii.close();
  });

  it('the worker id: stable by default, and a bad one is refused naming the option', async () => {
    expect(defaultWorkerId()).toBe(defaultWorkerId());
    expect(defaultWorkerId()).toMatch(/^[^\s]+:[0-9a-f]{12}$/);
    const h = await setup();
    expect(() => process2(h, { workerId: 'two words' })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', message: expect.stringContaining('workerId') }),
    );
    await h.ii.close();
  });
});
