import { describe, expect, it } from 'vitest';
import { createInstanceImages, type InstanceImages } from '../../../src';
import type { CaptureRequest, HypervisorDriverFactory } from '../../../src/ports/hypervisor-driver';
import { FakeWorld } from '../../support/fakes';
import { admin, alice, codeOf, setup } from './setup';

/**
 * An SDK on the fakes whose captures wait on `hold` and then finish even when aborted: the disk copy
 * had already completed when the cancel arrived (a real driver has such a window).
 */
async function racyHarness(): Promise<{
  world: FakeWorld;
  ii: InstanceImages;
  release: () => void;
  storageFile: (key: string) => boolean;
}> {
  const world = new FakeWorld();
  world.addHypervisor('hv-1');
  let release!: () => void;
  const hold = new Promise<void>((resolve) => (release = resolve));
  const inner = world.hypervisorFactory();
  const hypervisorDriver: HypervisorDriverFactory = (hypervisor, executor) => {
    const driver = inner(hypervisor, executor);
    return {
      ...driver,
      async capture(request: CaptureRequest) {
        await hold;
        const { signal: _ignored, ...rest } = request;
        return driver.capture(rest);
      },
    };
  };
  const ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver,
    storageDrivers: [world.storageFactory('fake-s3', { shared: true, pathAccess: false })],
    tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
  });
  await ii.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 5 });
  const storage = await ii.storages.createStorage(admin, { name: 's3', driver: 'fake-s3', config: { root: 'bucket' } });
  await ii.storages.bindHypervisor(admin, storage.id, 'hv-1');
  world.addInstance('web-1', 'acct-alice');
  return { world, ii, release, storageFile: (key) => world.files.has(`bucket:${key}`) };
}

describe('review: races of cancel, retry and completion', () => {
  it('a cancelled capture that still completes after a retry never hijacks the retried attempt', async () => {
    const h = await racyHarness();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web' });
    // Let the first task start and wait in the driver.
    await new Promise((resolve) => setTimeout(resolve, 20));
    const cancelled = await h.ii.images.cancelCapture(alice, image.id);
    expect(cancelled.status).toBe('error');
    const retried = await h.ii.images.retryImage(alice, image.id);
    expect(retried.image.fileKey).not.toBe(image.fileKey);
    h.release();
    await h.ii.idle();
    const final = await h.ii.images.getImage(alice, image.id);
    expect(final.status).toBe('available');
    expect(final.fileKey).toBe(retried.image.fileKey);
    // The available image's file exists; the cancelled attempt left nothing behind.
    expect(h.storageFile(final.fileKey)).toBe(true);
    expect(h.storageFile(image.fileKey)).toBe(false);
    expect((await h.ii.images.getTask(alice, retried.task.id)).status).toBe('completed');
    await h.ii.close();
  });
});

describe('review: a throwing event listener of the host', () => {
  it('does not make an available image lose its file or its billing', async () => {
    const h = await setup();
    h.ii.events.on('image.available', () => {
      throw new Error('host webhook bug');
    });
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web' });
    await h.ii.idle();
    const done = await h.ii.images.getImage(alice, image.id);
    expect(done.status).toBe('available');
    expect(h.world.files.has(`bucket:${done.fileKey}`)).toBe(true);
    const usage = await h.ii.repositories.usage.list({ imageId: image.id, openOnly: true });
    expect(usage.items).toHaveLength(1);
  });

  it('an async listener that rejects is logged, not left unhandled', async () => {
    const h = await setup();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      // eslint-disable-next-line @typescript-eslint/no-misused-promises -- hosts do pass async listeners; that is the case under test
      h.ii.events.on('image.available', async () => {
        throw new Error('async host webhook bug');
      });
      const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web' });
      await h.ii.idle();
      await new Promise((r) => setTimeout(r, 20));
      expect((await h.ii.images.getImage(alice, image.id)).status).toBe('available');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('does not keep billing an image after its delete request', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web' });
    await h.ii.idle();
    h.ii.events.on('image.status-changed', () => {
      throw new Error('host webhook bug');
    });
    await h.ii.images.deleteImage(alice, image.id).catch(() => undefined);
    await h.ii.idle();
    const open = await h.ii.repositories.usage.list({ imageId: image.id, openOnly: true });
    expect(open.items).toHaveLength(0);
  });
});

describe('review: ids are validated before they reach the host directory or repositories', () => {
  it('answers VALIDATION_FAILED for malformed ids on customer calls', async () => {
    const h = await setup();
    const bad = 'x'.repeat(5000);
    expect(await codeOf(h.ii.images.getImage(alice, bad))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.images.getTask(alice, bad))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.catalog.mountIso(alice, { instanceId: bad, isoId: 'iso' }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.catalog.getIso(alice, bad))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.catalog.unmountIso(alice, { instanceId: bad }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(h.ii.settings.getAccountLimit(admin, bad))).toBe('VALIDATION_FAILED');
  });
});

describe('review: reconcile racing a capture', () => {
  it('never deletes a file whose image record appeared while the storage was being listed', async () => {
    const h = await setup();
    const base = h.world.storageFactory('fake-hooked', { shared: true, pathAccess: false });
    let hook: (() => Promise<void>) | null = null;
    h.ii.storageDrivers.register({
      ...base,
      create(options, context) {
        const driver = base.create(options, context);
        return {
          ...driver,
          async list(opts) {
            const run = hook;
            hook = null;
            if (run) await run();
            return driver.list(opts);
          },
        };
      },
    });
    const storage = await h.ii.storages.createStorage(admin, { name: 'hooked', driver: 'fake-hooked', config: { root: 'hooked' } });
    await h.ii.storages.bindHypervisor(admin, storage.id, 'hv-1');
    // A capture that starts while reconcile runs: its record is written first, then its file.
    hook = async () => {
      const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'racing' });
      await h.ii.idle();
      expect((await h.ii.images.getImage(alice, image.id)).storageId).toBe(storage.id);
    };
    await h.ii.storages.unbindHypervisor(admin, h.storageId, 'hv-1');
    await h.ii.storages.reconcile(admin, storage.id, { deleteOrphans: true, dryRun: false });
    const [image] = (await h.ii.images.listImages(alice)).items;
    expect(image?.status).toBe('available');
    expect(h.world.files.has(`hooked:${image?.fileKey ?? ''}`)).toBe(true);
  });
});
