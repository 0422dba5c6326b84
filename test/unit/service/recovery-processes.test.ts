/**
 * Recovery when several panel processes share the repositories: each may call recover() at
 * start-up without failing the tasks another live process holds, or disturbing its captures.
 */
import { describe, expect, it, vi } from 'vitest';
import { createInstanceImages, createTaskQueue, type InstanceImages } from '../../../src';
import { makeImage, makeTask } from '../../../src/testing';
import { alice, setup, type Harness } from './setup';

/** A second SDK (another panel process) over the same repositories, world and clock. */
function otherProcess(h: Harness): InstanceImages {
  return createInstanceImages({
    hostDirectory: h.world.hostDirectory(),
    executors: h.world.executors(),
    hypervisorDriver: h.world.hypervisorFactory(),
    storageDrivers: [
      h.world.storageFactory('fake-s3', { shared: true, pathAccess: false }),
      h.world.storageFactory('fake-local', { shared: false, pathAccess: true }),
    ],
    repositories: h.ii.repositories,
    tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
    clock: () => new Date(h.clock.now.getTime()),
  });
}

/**
 * Waits until the heartbeats (every 50 ms) have stamped each task at the harness clock's time: a
 * condition, not a duration, so a loaded machine that runs the timers late only waits longer.
 */
async function heartbeatsAt(h: Harness, ...taskIds: string[]): Promise<void> {
  const at = h.clock.now.getTime();
  await vi.waitFor(
    async () => {
      for (const id of taskIds) expect((await h.ii.repositories.tasks.get(id))?.heartbeatAt?.getTime(), id).toBe(at);
    },
    { timeout: 15_000 },
  );
}

describe('recovery with several panel processes', () => {
  it("leaves another live process's running and queued tasks alone, long after they were created", async () => {
    const h = await setup();
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    // One capture per hypervisor at a time: the first runs, the second waits in this process's queue.
    const first = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'first' });
    const second = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'second' });
    expect((await h.ii.repositories.tasks.get(second.task.id))?.status).toBe('queued');
    h.clock.now = new Date(h.clock.now.getTime() + 10 * 60_000); // far beyond the 60 s timeout
    await heartbeatsAt(h, first.task.id, second.task.id);

    const other = otherProcess(h);
    const report = await other.recover();
    expect(report.interruptedTasks).toEqual([]);
    expect(report.failedImages).toEqual([]);
    expect(h.world.recoveries).toEqual([]);

    open();
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, first.image.id)).status).toBe('available');
    expect((await h.ii.images.getImage(alice, second.image.id)).status).toBe('available');
    await other.close();
    await h.ii.close();
  });

  it('still fails a queued task no process keeps alive, and an old orphan image, but not a fresh one', async () => {
    const h = await setup();
    const image = makeImage({ accountId: 'acct-alice', storageId: h.storageId, hypervisorId: null });
    await h.ii.repositories.images.insert(image);
    const task = makeTask({
      subjectId: image.id,
      status: 'queued',
      accountId: 'acct-alice',
      heartbeatAt: new Date(h.clock.now.getTime() - 5 * 60_000),
    });
    await h.ii.repositories.tasks.insert(task);
    // An image another process inserted a moment ago, its task not yet inserted.
    const fresh = makeImage({
      accountId: 'acct-alice',
      storageId: h.storageId,
      hypervisorId: null,
      createdAt: h.clock.now,
      updatedAt: h.clock.now,
    });
    await h.ii.repositories.images.insert(fresh);

    const report = await otherProcess(h).recover();
    expect(report.interruptedTasks).toEqual([task.id]);
    expect(report.failedImages).toEqual([image.id]);
    expect((await h.ii.repositories.images.get(fresh.id))?.status).toBe('creating');
    await h.ii.close();
  });

  it('recovers only the crashed capture’s domain on a hypervisor where another process is capturing', async () => {
    // Two at once per hypervisor: the live capture starts beside the crashed one, not yet known dead.
    const h = await setup({ queue: createTaskQueue({ perHypervisorConcurrency: 2 }) });
    // A capture of bob-1 (on hv-1) left running by a crashed process.
    const crashed = makeImage({
      accountId: 'acct-bob',
      storageId: h.storageId,
      hypervisorId: 'hv-1',
      sourceInstanceId: 'bob-1',
      sourceInstanceName: 'vm-bob-1',
    });
    await h.ii.repositories.images.insert(crashed);
    const crashedTask = makeTask({
      subjectId: crashed.id,
      status: 'running',
      accountId: 'acct-bob',
      hypervisorId: 'hv-1',
      heartbeatAt: h.clock.now,
    });
    await h.ii.repositories.tasks.insert(crashedTask);
    // Meanwhile this live process captures web-1 on the same hypervisor.
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const live = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'live' });
    await vi.waitFor(async () => expect((await h.ii.repositories.tasks.get(live.task.id))?.status).toBe('running'), { timeout: 15_000 });
    // The crashed one's heartbeat lapses; the live one's goes on.
    h.clock.now = new Date(h.clock.now.getTime() + 5 * 60_000);
    await vi.waitFor(
      async () => expect((await h.ii.repositories.tasks.get(live.task.id))?.heartbeatAt?.getTime()).toBe(h.clock.now.getTime()),
      { timeout: 15_000 },
    );

    // The other process's recovery, or this process's own reaper: exactly one of them takes it.
    await otherProcess(h).recover();
    await vi.waitFor(async () => expect((await h.ii.repositories.tasks.get(crashedTask.id))?.errorCode).toBe('INTERRUPTED'), {
      timeout: 15_000,
    });
    // The hypervisor side is cleaned up before the task ends, so two recoveries that found it at
    // once may both clean up; only the crashed capture's domain, never the whole hypervisor.
    expect(h.world.recoveries).toContainEqual({ hypervisorId: 'hv-1', domainName: 'dom-bob-1' });
    expect(h.world.recoveries.filter((r) => r.domainName !== 'dom-bob-1')).toEqual([]);

    open();
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, live.image.id)).status).toBe('available');
    // With the hypervisor idle, a later recovery covers all of it again.
    await h.ii.repositories.tasks.insert(
      makeTask({ subjectId: crashed.id, status: 'running', accountId: 'acct-bob', hypervisorId: 'hv-1', heartbeatAt: new Date(0) }),
    );
    await otherProcess(h).recover();
    expect(h.world.recoveries.at(-1)).toEqual({ hypervisorId: 'hv-1', domainName: null });
    await h.ii.close();
  });
});
