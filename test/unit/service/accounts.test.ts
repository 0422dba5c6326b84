import { describe, expect, it } from 'vitest';
import type { Task } from '../../../src';
import { TASK_STEPS } from '../../../src/tasks/progress';
import { admin, alice, bob, codeOf, deployAndWait, setup, type Harness } from './setup';

async function availableImage(h: Harness, name: string, instanceId = 'web-1') {
  const { image } = await h.ii.images.createImage(alice, { instanceId, name });
  await h.ii.idle();
  return h.ii.images.getImage(alice, image.id);
}

const eventsOf = (h: Harness, type: string) => h.events.filter((e) => e.type === type).map((e) => e.payload);

describe('host lifecycle hooks: an account suspended', () => {
  it('refuses new captures, retries and deploys; existing images stay and are billed; unsuspend allows them again', async () => {
    const h = await setup();
    const image = await availableImage(h, 'kept');
    h.world.addInstance('new-1', 'acct-alice');
    h.clock.now = new Date('2026-11-04T00:00:00.000Z');

    const state = await h.ii.accounts.suspendAccount(admin, 'acct-alice');
    expect(state).toMatchObject({ accountId: 'acct-alice', status: 'suspended', since: h.clock.now });
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'new' }))).toBe('ACCOUNT_SUSPENDED');
    expect(await codeOf(h.ii.images.createImage(admin, { instanceId: 'web-1', name: 'new' }))).toBe('ACCOUNT_SUSPENDED');
    expect(
      await codeOf(h.ii.catalog.deployImage(admin, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new-1.qcow2' })),
    ).toBe('ACCOUNT_SUSPENDED');
    // nothing was started for the refused calls
    expect((await h.ii.images.listTasks(admin, { type: 'deploy' })).items).toEqual([]);
    expect((await h.ii.images.listImages(alice)).items.map((i) => [i.id, i.status])).toEqual([[image.id, 'available']]);
    expect((await h.ii.repositories.usage.list({ imageId: image.id, openOnly: true })).items).toHaveLength(1);
    // another account is not affected
    expect(await codeOf(h.ii.images.createImage(bob, { instanceId: 'bob-1', name: 'bobs' }))).toBe('resolved');

    // idempotent: the first suspension time is kept, one event
    h.clock.now = new Date('2026-11-05T00:00:00.000Z');
    expect(await h.ii.accounts.suspendAccount(admin, 'acct-alice')).toEqual(state);
    expect(eventsOf(h, 'account.suspended')).toEqual([{ state }]);
    expect(await h.ii.accounts.getAccountState(admin, 'acct-alice')).toEqual(state);

    await h.ii.accounts.unsuspendAccount(admin, 'acct-alice');
    await h.ii.accounts.unsuspendAccount(admin, 'acct-alice');
    expect(eventsOf(h, 'account.unsuspended')).toEqual([{ accountId: 'acct-alice' }]);
    expect(await h.ii.accounts.getAccountState(admin, 'acct-alice')).toBeNull();
    const deployed = await deployAndWait(h.ii, admin, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new-1.qcow2' });
    expect(deployed.task.status).toBe('completed');
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'new' }))).toBe('resolved');
    await h.ii.close();
  });

  it('the hooks are the host’s (admin) calls and check the account id', async () => {
    const h = await setup();
    expect(await codeOf(h.ii.accounts.suspendAccount(alice, 'acct-alice'))).toBe('FORBIDDEN');
    expect(await codeOf(h.ii.accounts.closeAccount(alice, 'acct-alice'))).toBe('FORBIDDEN');
    expect(await codeOf(h.ii.accounts.instanceDeleted(alice, 'web-1'))).toBe('FORBIDDEN');
    expect(await codeOf(h.ii.accounts.suspendAccount(admin, ''))).toBe('VALIDATION_FAILED');
    await h.ii.close();
  });
});

describe('host lifecycle hooks: an account closed', () => {
  it('stops billing at the call, cancels captures, deletes every image in a task with progress, and refuses new work', async () => {
    const h = await setup();
    const kept = await availableImage(h, 'kept');
    h.world.failNextCapture = 'CAPTURE_FAILED';
    const failed = await availableImage(h, 'failed');
    expect(failed.status).toBe('error');
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const { image: capturing } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'capturing' });
    const bobs = await h.ii.images.createImage(bob, { instanceId: 'bob-1', name: 'bobs' });
    await new Promise((r) => setTimeout(r, 20));
    const seen: Task[] = [];
    h.ii.events.on('task.progress', ({ task }) => seen.push(task));

    const closedAt = new Date('2026-11-10T12:00:00.000Z');
    h.clock.now = closedAt;
    const closing = await h.ii.accounts.closeAccount(admin, 'acct-alice');
    expect(closing.state).toMatchObject({ status: 'closed', since: closedAt });
    expect(closing.task).toMatchObject({ type: 'close-account', subjectKind: 'account', subjectId: 'acct-alice', status: 'queued' });
    // billing stopped at the call, before any file is gone
    const intervals = (await h.ii.repositories.usage.list({ accountId: 'acct-alice' })).items;
    expect(intervals.length).toBeGreaterThan(0);
    expect(intervals.every((i) => i.to?.getTime() === closedAt.getTime())).toBe(true);

    const finished = await h.ii.images.waitForTask(admin, closing.task!.id);
    expect(finished).toMatchObject({ status: 'completed', progress: { step: 'completed', percent: 100 } });
    open();
    await h.ii.idle();
    for (const id of [kept.id, failed.id, capturing.id]) expect((await h.ii.repositories.images.get(id))?.status, id).toBe('deleted');
    expect(h.world.files.has(`bucket:${kept.fileKey}`)).toBe(false);
    expect((await h.ii.repositories.images.get(bobs.image.id))?.status).toBe('available');
    const steps = [...TASK_STEPS['close-account'].map((s) => s.step), 'completed'];
    const own = seen.filter((t) => t.id === closing.task!.id).map((t) => t.progress);
    expect(own.every((p) => steps.includes(p.step))).toBe(true);
    const percents = own.map((p) => p.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    expect(own.at(-1)).toMatchObject({ step: 'deleting images', bytesDone: 3, bytesTotal: 3 });

    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'after' }))).toBe('ACCOUNT_CLOSED');
    expect(await codeOf(h.ii.accounts.unsuspendAccount(admin, 'acct-alice'))).toBe('INVALID_STATE');
    expect(await codeOf(h.ii.accounts.suspendAccount(admin, 'acct-alice'))).toBe('INVALID_STATE');

    // idempotent: the first close time is kept, nothing left to do, one event
    h.clock.now = new Date('2026-11-11T00:00:00.000Z');
    expect(await h.ii.accounts.closeAccount(admin, 'acct-alice')).toEqual({ state: closing.state, task: null });
    expect(eventsOf(h, 'account.closed')).toEqual([{ state: closing.state }]);
    await h.ii.close();
  });

  it('an image whose removal failed is retried by closing again', async () => {
    const h = await setup();
    const image = await availableImage(h, 'stuck');
    h.world.failDeletes = true;
    const first = await h.ii.accounts.closeAccount(admin, 'acct-alice');
    await h.ii.images.waitForTask(admin, first.task!.id);
    await h.ii.idle();
    expect((await h.ii.repositories.images.get(image.id))?.status).toBe('error');
    h.world.failDeletes = false;
    const again = await h.ii.accounts.closeAccount(admin, 'acct-alice');
    expect(again.state).toEqual(first.state);
    expect(again.task).not.toBeNull();
    await h.ii.images.waitForTask(admin, again.task!.id);
    await h.ii.idle();
    expect((await h.ii.repositories.images.get(image.id))?.status).toBe('deleted');
    await h.ii.close();
  });
});

describe('host lifecycle hooks: an instance deleted', () => {
  it('keeps its images, marks them, cancels a capture from it, and leaves other instances’ images alone', async () => {
    const h = await setup();
    const fromWeb = await availableImage(h, 'from-web');
    const fromDb = await availableImage(h, 'from-db', 'db-1');
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const { image: capturing } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'capturing' });
    await new Promise((r) => setTimeout(r, 20));
    const deletedAt = new Date('2026-11-06T08:00:00.000Z');
    h.clock.now = deletedAt;

    const result = await h.ii.accounts.instanceDeleted(admin, 'web-1');
    open();
    await h.ii.idle();
    expect(result.images.map((i) => i.id).sort()).toEqual([fromWeb.id, capturing.id].sort());
    expect(result.images.every((i) => i.sourceInstanceDeletedAt?.getTime() === deletedAt.getTime())).toBe(true);
    const kept = await h.ii.images.getImage(alice, fromWeb.id);
    expect(kept).toMatchObject({ status: 'available', sourceInstanceDeletedAt: deletedAt });
    expect((await h.ii.images.getImage(alice, capturing.id)).statusReason?.code).toBe('CANCELLED');
    expect((await h.ii.images.getImage(alice, fromDb.id)).sourceInstanceDeletedAt ?? null).toBeNull();
    expect((await h.ii.repositories.usage.list({ imageId: fromWeb.id, openOnly: true })).items).toHaveLength(1);

    // idempotent: the first mark is kept, one event
    h.clock.now = new Date('2026-11-07T08:00:00.000Z');
    const again = await h.ii.accounts.instanceDeleted(admin, 'web-1');
    expect(again.images.every((i) => i.sourceInstanceDeletedAt?.getTime() === deletedAt.getTime())).toBe(true);
    expect(eventsOf(h, 'instance.deleted')).toHaveLength(1);

    // the kept image still deploys
    h.world.addInstance('new-1', 'acct-alice');
    const deployed = await deployAndWait(h.ii, admin, { imageId: fromWeb.id, instanceId: 'new-1', targetPath: '/disks/new-1.qcow2' });
    expect(deployed.task.status).toBe('completed');
    await h.ii.close();
  });
});
