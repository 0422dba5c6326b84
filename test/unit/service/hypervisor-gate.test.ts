/**
 * The hypervisor gate (issue 15): a capture starts on a hypervisor only once the tasks the queue
 * does not count there are gone: a dead worker's capture is recovered first (its hypervisor side
 * cleaned up before it ends), a live one whose job the queue lost (Redis lost its data) is waited
 * for. And a heartbeat that loses the race with its task's own end says nothing.
 */
import { describe, expect, it, vi } from 'vitest';
import { createMemoryRepositories, type Logger, type Repositories } from '../../../src';
import { makeImage, makeTask } from '../../../src/testing';
import { alice, setup, type Harness } from './setup';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A capture of bob-1 on hv-1 that another process (worker `panel-b`) runs, or ran before it died. */
async function othersCapture(h: Harness) {
  const image = makeImage({
    accountId: 'acct-bob',
    storageId: h.storageId,
    hypervisorId: 'hv-1',
    sourceInstanceId: 'bob-1',
    sourceInstanceName: 'vm-bob-1',
    updatedAt: h.clock.now,
  });
  await h.ii.repositories.images.insert(image);
  const task = makeTask({
    subjectId: image.id,
    status: 'running',
    accountId: 'acct-bob',
    hypervisorId: 'hv-1',
    heartbeatAt: h.clock.now,
    workerId: 'panel-b',
    incarnationId: 'run-1',
  });
  await h.ii.repositories.tasks.insert(task);
  return { image, task };
}

describe('the hypervisor gate', () => {
  it("a dead worker's capture on the hypervisor is recovered (its hypervisor side first) before the next capture starts there", async () => {
    const h = await setup();
    const dead = await othersCapture(h);
    let recoveriesAtItsEnd = -1;
    h.ii.events.on('task.finished', ({ task }) => {
      if (task.id === dead.task.id) recoveriesAtItsEnd = h.world.recoveries.length;
    });
    const next = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'next' });
    // The dead worker's heartbeat has not lapsed yet: nobody knows it is dead; the hypervisor is its.
    await sleep(300);
    expect(h.world.captures).toBe(0);
    expect(h.world.recoveries).toEqual([]);

    h.clock.now = new Date(h.clock.now.getTime() + 61_000);
    await vi.waitFor(() => expect(h.world.captures).toBe(1), { timeout: 15_000 });
    // By then hv-1 was recovered (all of it: nothing else ran there) and the dead task ended INTERRUPTED.
    expect(h.world.recoveries).toContainEqual({ hypervisorId: 'hv-1', domainName: null });
    expect(await h.ii.repositories.tasks.get(dead.task.id)).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED' });
    // Its domain was recovered before its task ended (a task waiting there counts on that).
    expect(recoveriesAtItsEnd).toBeGreaterThan(0);
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, next.image.id)).status).toBe('available');
    await h.ii.close();
  });

  it('a live capture the queue does not count (its job lost with Redis) holds the hypervisor until it ends', async () => {
    const h = await setup();
    const live = await othersCapture(h);
    const next = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'next' });
    // Its worker keeps it alive: never recovered, and the next capture waits.
    for (let i = 0; i < 4; i++) {
      await sleep(100);
      await h.ii.repositories.tasks.transition(live.task.id, ['running'], 'running', { heartbeatAt: h.clock.now }, h.clock.now);
    }
    expect(h.world.captures).toBe(0);
    expect((await h.ii.repositories.tasks.get(next.task.id))?.status).toBe('queued');
    expect(h.world.recoveries).toEqual([]);

    await h.ii.repositories.tasks.transition(live.task.id, ['running'], 'completed', { finishedAt: h.clock.now }, h.clock.now);
    await h.ii.idle();
    expect(h.world.captures).toBe(1);
    expect((await h.ii.images.getImage(alice, next.image.id)).status).toBe('available');
    await h.ii.close();
  });

  it('a capture cancelled while it waits for its hypervisor (still queued) ends cancelled, never having started there', async () => {
    const h = await setup();
    await othersCapture(h);
    const next = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'next' });
    await sleep(200);
    expect((await h.ii.repositories.tasks.get(next.task.id))?.status).toBe('queued');
    await h.ii.images.cancelCapture(alice, next.image.id);
    await h.ii.idle();
    expect((await h.ii.repositories.tasks.get(next.task.id))?.status).toBe('cancelled');
    expect((await h.ii.images.getImage(alice, next.image.id)).status).toBe('error');
    expect(h.world.captures).toBe(0);
    await h.ii.close();
  });
});

describe('a heartbeat in flight when its task ends', () => {
  it('stays silent: the task was not recovered by another process', async () => {
    const warnings: string[] = [];
    const logger: Logger = { debug: () => undefined, info: () => undefined, warn: (m) => warnings.push(m), error: (m) => warnings.push(m) };
    // Heartbeats (a patch of `heartbeatAt` alone) are held until the task has ended: each one loses the race.
    const repositories: Repositories = createMemoryRepositories();
    let ended!: () => void;
    const end = new Promise<void>((resolve) => (ended = resolve));
    let held = 0;
    const transition = repositories.tasks.transition.bind(repositories.tasks);
    repositories.tasks.transition = async (id, from, to, patch, now, events) => {
      if (to === 'running' && Object.keys(patch).join() === 'heartbeatAt') {
        held++;
        await end;
        return transition(id, from, to, patch, now, events);
      }
      const task = await transition(id, from, to, patch, now, events);
      if (to === 'completed') setTimeout(ended, 0);
      return task;
    };
    const h = await setup({ repositories, logger });
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'raced' });
    await vi.waitFor(() => expect(held).toBeGreaterThan(0), { timeout: 15_000 });
    open();
    await h.ii.idle();
    expect((await h.ii.repositories.tasks.get(task.id))?.status).toBe('completed');
    expect((await h.ii.images.getImage(alice, image.id)).status).toBe('available');
    // The held heartbeats have found the task completed.
    await sleep(100);
    expect(warnings.filter((m) => m.includes('recovered by another process'))).toEqual([]);
    await h.ii.close();
  });
});
