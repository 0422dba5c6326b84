import { describe, expect, it } from 'vitest';
import { admin, alice, bob, codeOf, setup } from './setup';

describe('My Images, tasks, delete and billing', () => {
  it('lists own images only, paged and sorted, and hides foreign ids as NOT_FOUND', async () => {
    const h = await setup({ limit: null });
    const ids: string[] = [];
    for (const name of ['charlie', 'alpha', 'bravo']) {
      h.clock.now = new Date(h.clock.now.getTime() + 60_000);
      ids.push((await h.ii.images.createImage(alice, { instanceId: 'web-1', name })).image.id);
    }
    const bobs = await h.ii.images.createImage(bob, { instanceId: 'bob-1', name: 'bob-image' });
    await h.ii.idle();
    const first = await h.ii.images.listImages(alice, { limit: 2 });
    expect(first.items.map((i) => i.name)).toEqual(['bravo', 'alpha']);
    const second = await h.ii.images.listImages(alice, { limit: 2, cursor: first.nextCursor });
    expect(second.items.map((i) => i.name)).toEqual(['charlie']);
    expect(second.nextCursor).toBeNull();
    expect((await h.ii.images.listImages(alice, { sort: 'name' })).items.map((i) => i.name)).toEqual(['alpha', 'bravo', 'charlie']);
    expect((await h.ii.images.listImages(admin)).items).toHaveLength(4);
    expect((await h.ii.images.listImages(admin, { accountId: 'acct-bob' })).items).toHaveLength(1);
    expect(await codeOf(h.ii.images.getImage(alice, bobs.image.id))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.images.deleteImage(alice, bobs.image.id))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.images.getTask(alice, bobs.task.id))).toBe('NOT_FOUND');
    const tasks = await h.ii.images.listTasks(alice);
    expect(tasks.items).toHaveLength(3);
    expect(tasks.items.every((t) => t.accountId === 'acct-alice')).toBe(true);
    expect((await h.ii.images.listTasks(admin, { type: 'capture' })).items).toHaveLength(4);
    expect(await codeOf(h.ii.images.listImages(alice, { limit: 0 }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.images.listImages(alice, { cursor: 'garbage' }))).toBe('VALIDATION_FAILED');
  });

  it('delete: billing stops at the request, the file is removed, deleted is hidden; idempotent', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    expect(h.world.files.size).toBe(1);
    h.clock.now = new Date('2026-11-05T12:30:00.000Z');
    const { image: deleting } = await h.ii.images.deleteImage(alice, image.id);
    expect(deleting.status).toBe('deleting');
    const [interval] = (await h.ii.repositories.usage.list({ imageId: image.id })).items;
    expect(interval?.to?.toISOString()).toBe('2026-11-05T12:30:00.000Z');
    await h.ii.idle();
    expect(h.world.files.size).toBe(0);
    expect(await codeOf(h.ii.images.getImage(alice, image.id))).toBe('NOT_FOUND');
    expect((await h.ii.images.listImages(alice)).items).toHaveLength(0);
    const again = await h.ii.images.deleteImage(alice, image.id);
    expect(again.image.status).toBe('deleted');
    expect(h.events.filter((e) => e.type === 'image.deleted')).toHaveLength(1);
    // the usage report still shows the image with the hours it existed
    const report = await h.ii.settings.usageReport(alice, { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' });
    expect(report.images.lines).toHaveLength(1);
    expect(report.images.lines[0]?.billedHours).toBe('51');
  });

  it('a failed removal is visible and retryable', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    h.world.failDeletes = true;
    await h.ii.images.deleteImage(alice, image.id);
    await h.ii.idle();
    const failed = await h.ii.images.getImage(alice, image.id);
    expect(failed.status).toBe('error');
    expect(failed.statusReason?.code).toBe('DELETE_FAILED');
    expect(await codeOf(h.ii.images.retryImage(alice, image.id))).toBe('INVALID_STATE');
    h.world.failDeletes = false;
    await h.ii.images.deleteImage(alice, image.id);
    await h.ii.idle();
    expect((await h.ii.repositories.images.get(image.id))?.status).toBe('deleted');
    expect(h.world.files.size).toBe(0);
  });

  it('cannot delete an image while it is being created; a delete racing completion stays consistent', async () => {
    const h = await setup();
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    expect(await codeOf(h.ii.images.deleteImage(alice, image.id))).toBe('INVALID_STATE');
    open();
    const racing = h.ii.images.deleteImage(alice, image.id).catch((e: { code: string }) => e.code);
    await h.ii.idle();
    await racing;
    await h.ii.idle();
    const final = await h.ii.repositories.images.get(image.id);
    // Either the delete came too early (INVALID_STATE) and the image is available with its file,
    // or it won after completion and the image is deleted without its file; never a mix.
    if (final?.status === 'available') expect(h.world.files.size).toBe(1);
    else {
      expect(final?.status).toBe('deleted');
      expect(h.world.files.size).toBe(0);
    }
    const open_ = (await h.ii.repositories.usage.list({ imageId: image.id, openOnly: true })).items;
    expect(open_.length).toBe(final?.status === 'available' ? 1 : 0);
  });

  it('a price change splits open intervals; the report bills each part at its rate', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    h.clock.now = new Date('2026-11-04T10:15:00.000Z');
    await h.ii.settings.setLocationSettings(admin, 'loc-1', { pricePerGbMonth: '0.10' });
    const intervals = (await h.ii.repositories.usage.list({ imageId: image.id })).items;
    expect(intervals.map((i) => [i.rate, i.to?.toISOString() ?? null])).toEqual([
      ['0.05', '2026-11-04T10:15:00.000Z'],
      ['0.1', null],
    ]);
    const report = await h.ii.settings.usageReport(admin, { from: '2026-11-01T00:00:00Z', to: '2026-11-05T10:15:00Z' });
    expect(report.images.lines.length).toBeGreaterThanOrEqual(1);
    expect(report.currency).toBe('USD');
  });

  it('a report over the current month bills open images up to now, not to the end of the month', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    h.clock.now = new Date(h.clock.now.getTime() + 2.5 * 3_600_000);
    const report = await h.ii.settings.usageReport(alice, { from: '2026-11-01T00:00:00Z', to: '2026-12-01T00:00:00Z' });
    expect(report.images.lines.find((l) => l.imageId === image.id)?.billedHours).toBe('3');
    expect(await codeOf(h.ii.settings.usageReport(alice, { from: '2026-12-01T00:00:00Z', to: '2026-11-01T00:00:00Z' }))).toBe(
      'VALIDATION_FAILED',
    );
  });

  it('only admins change settings, limits and see operator reports', async () => {
    const h = await setup();
    expect(await codeOf(h.ii.settings.setLocationSettings(alice, 'loc-1', { imagesEnabled: true }))).toBe('FORBIDDEN');
    expect(await codeOf(h.ii.settings.setAccountLimit(alice, 'acct-alice', 100))).toBe('FORBIDDEN');
    expect(await codeOf(h.ii.settings.setLocationSettings(admin, 'loc-1', { pricePerGbMonth: '-1' }))).toBe('VALIDATION_FAILED');
    const report = await h.ii.settings.usageReport(alice, {
      from: '2026-11-01T00:00:00Z',
      to: '2026-12-01T00:00:00Z',
      accountId: 'acct-bob',
    });
    expect(report.accountId).toBe('acct-alice');
  });
});
