import { describe, expect, it } from 'vitest';
import { sha256 } from '../../support/fakes';
import { admin, alice, bob, codeOf, setup } from './setup';

describe('create image from an instance', () => {
  for (const storage of ['stream', 'path'] as const) {
    it(`captures a running instance into ${storage} storage and makes it available`, async () => {
      const h = await setup({ storage });
      const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'production-web-server-v2' });
      expect(image.status).toBe('creating');
      expect(image.name).toBe('production-web-server-v2');
      expect(image.sourceInstanceName).toBe('vm-web-1');
      expect(task.status).toBe('queued');
      await h.ii.idle();
      const done = await h.ii.images.getImage(alice, image.id);
      const disk = h.world.domains.get('dom-web-1')!.disk;
      expect(done.status).toBe('available');
      expect(done.sizeBytes).toBe(disk.length);
      expect(done.sha256).toBe(sha256(disk));
      expect(done.consistency).toBe('crash-consistent');
      expect(done.availableAt).not.toBeNull();
      const finished = await h.ii.images.getTask(alice, task.id);
      expect(finished.status).toBe('completed');
      expect(finished.attempts).toBe(1);
      const types = h.events.map((e) => e.type);
      expect(types).toEqual(
        expect.arrayContaining(['task.progress', 'image.status-changed', 'image.available', 'usage.started', 'task.finished']),
      );
      const usage = await h.ii.repositories.usage.list({ imageId: image.id });
      expect(usage.items).toHaveLength(1);
      expect(usage.items[0]).toMatchObject({ rate: '0.05', sizeBytes: disk.length, to: null, accountId: 'acct-alice' });
    });
  }

  it('captures a stopped instance cold', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'db-1', name: 'db' });
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, image.id)).consistency).toBe('cold');
  });

  it('checks in the documented order and fails fast without leaving anything', async () => {
    const h = await setup({ limit: 1 });
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'web-1', name: '' }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'bob-1', name: 'x' }))).toBe('NOT_FOUND');
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'nope', name: 'x' }))).toBe('NOT_FOUND');
    h.world.storageFree = 10;
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' }))).toBe('STORAGE_FULL');
    h.world.storageFree = null;
    h.world.scratchFree = 10;
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' }))).toBe('STORAGE_FULL');
    h.world.scratchFree = 1e12;
    expect((await h.ii.images.listImages(alice)).items).toHaveLength(0);
    await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'first' });
    const limited = h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'second' });
    await expect(limited).rejects.toMatchObject({ code: 'IMAGE_LIMIT_REACHED', message: 'Maximum image limit reached' });
    await h.ii.settings.setAccountLimit(admin, 'acct-alice', 2);
    await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'second' });
    await h.ii.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: false });
    await expect(h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'third' })).rejects.toMatchObject({
      code: 'FEATURE_DISABLED',
      message: 'Image feature is not enabled',
    });
    await h.ii.idle();
  });

  it('NO_IMAGE_STORAGE when nothing is bound to the hypervisor', async () => {
    const h = await setup();
    h.world.addInstance('far', 'acct-alice', { hypervisorId: 'hv-2' });
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'far', name: 'x' }))).toBe('NO_IMAGE_STORAGE');
  });

  it('picks the bound storage with the most free space', async () => {
    const h = await setup({ storage: 'path' });
    const second = await h.ii.storages.createStorage(admin, { name: 'second', driver: 'fake-s3', config: { root: 'b2' } });
    await h.ii.storages.bindHypervisor(admin, second.id, 'hv-1');
    h.world.storageFree = 1e9; // both report the same; the unlimited-or-larger wins deterministically: first found keeps ties
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    expect([h.storageId, second.id]).toContain(image.storageId);
    await h.ii.idle();
  });

  it('20 parallel creates under a cap of 3 leave exactly 3 images', async () => {
    const h = await setup({ limit: 3 });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => h.ii.images.createImage(alice, { instanceId: 'web-1', name: `img-${i}` })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(3);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { code: string }).code).toBe('IMAGE_LIMIT_REACHED');
    await h.ii.idle();
    expect((await h.ii.images.listImages(alice)).items).toHaveLength(3);
  });

  it('a failed capture ends in error with an actionable reason, no file left, and can be retried', async () => {
    const h = await setup();
    h.world.failNextCapture = 'STORAGE_FULL';
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    const failed = await h.ii.images.getImage(alice, image.id);
    expect(failed.status).toBe('error');
    expect(failed.statusReason?.code).toBe('STORAGE_FULL');
    expect(failed.statusReason?.message).toMatch(/free space/);
    expect(await h.ii.images.getTask(alice, task.id)).toMatchObject({ status: 'failed', errorCode: 'STORAGE_FULL' });
    expect([...h.world.files.keys()].filter((k) => k.includes(image.id))).toEqual([]);
    expect(h.events.some((e) => e.type === 'image.failed')).toBe(true);
    const retried = await h.ii.images.retryImage(alice, image.id);
    expect(retried.image.status).toBe('creating');
    expect(retried.image.fileKey).not.toBe(image.fileKey);
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, image.id)).status).toBe('available');
    expect(await codeOf(h.ii.images.retryImage(alice, image.id))).toBe('INVALID_STATE');
  });

  it('a stream whose checksum does not match is rejected and removed', async () => {
    const h = await setup();
    h.world.corruptNextStream = true;
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await h.ii.idle();
    const failed = await h.ii.images.getImage(alice, image.id);
    expect(failed.status).toBe('error');
    expect(failed.statusReason?.code).toBe('CHECKSUM_MISMATCH');
    expect([...h.world.files.keys()].filter((k) => k.includes(image.id))).toEqual([]);
  });

  it('cancel stops a running capture: error CANCELLED, nothing stored', async () => {
    const h = await setup();
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    await new Promise((r) => setTimeout(r, 20));
    expect(await codeOf(h.ii.images.cancelCapture(bob, image.id))).toBe('NOT_FOUND');
    const cancelled = await h.ii.images.cancelCapture(alice, image.id);
    await h.ii.idle();
    open();
    expect(cancelled.status).toBe('error');
    expect((await h.ii.images.getImage(alice, image.id)).statusReason?.code).toBe('CANCELLED');
    expect((await h.ii.images.getTask(alice, task.id)).status).toBe('cancelled');
    expect([...h.world.files.keys()].filter((k) => k.includes(image.id))).toEqual([]);
  });

  it('the capture of an instance deleted meanwhile fails with a clear reason', async () => {
    const h = await setup();
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'x' });
    h.world.domains.delete('dom-web-1');
    open();
    await h.ii.idle();
    expect((await h.ii.images.getImage(alice, image.id)).status).toBe('error');
  });
});
