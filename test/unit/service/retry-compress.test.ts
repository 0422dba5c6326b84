/**
 * A retry captures the way the original request asked: its `compress` choice is kept on the image
 * (so it survives a restart), not replaced by the service-wide default.
 */
import { describe, expect, it } from 'vitest';
import { createInstanceImages, type InstanceImages } from '../../../src';
import type { Repositories } from '../../../src/ports/repositories';
import type { CaptureRequest, HypervisorDriverFactory } from '../../../src/ports/hypervisor-driver';
import { FakeWorld } from '../../support/fakes';
import { admin, alice } from './setup';

interface Panel {
  ii: InstanceImages;
  world: FakeWorld;
  /** `compress` of every capture the hypervisor driver was asked for, in order. */
  compressed: (boolean | undefined)[];
}

/** An SDK on the fakes whose hypervisor driver records each capture request. */
function panel(options: { defaultCompress: boolean; repositories?: Repositories; world?: FakeWorld }): Panel {
  const world = options.world ?? new FakeWorld();
  const compressed: (boolean | undefined)[] = [];
  const inner = world.hypervisorFactory();
  const recording: HypervisorDriverFactory = (hypervisor, executor) => {
    const driver = inner(hypervisor, executor);
    return {
      ...driver,
      capture: (request: CaptureRequest) => {
        compressed.push(request.compress);
        return driver.capture(request);
      },
    };
  };
  const ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    executors: world.executors(),
    hypervisorDriver: recording,
    storageDrivers: [
      world.storageFactory('fake-s3', { shared: true, pathAccess: false }),
      world.storageFactory('fake-local', { shared: false, pathAccess: true }),
    ],
    tasks: { progressIntervalMs: 0, heartbeatIntervalMs: 50 },
    capture: { compress: options.defaultCompress },
    ...(options.repositories ? { repositories: options.repositories } : {}),
  });
  return { ii, world, compressed };
}

async function freshPanel(defaultCompress: boolean, storage: 'fake-s3' | 'fake-local'): Promise<Panel> {
  const p = panel({ defaultCompress });
  p.world.addHypervisor('hv-1');
  await p.ii.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 5 });
  const created = await p.ii.storages.createStorage(admin, {
    name: 'images',
    driver: storage,
    config: { root: storage === 'fake-s3' ? 'bucket' : '/images' },
  });
  await p.ii.storages.bindHypervisor(admin, created.id, 'hv-1');
  p.world.addInstance('web-1', 'acct-alice');
  return p;
}

describe('retrying a failed capture keeps the request’s compress choice', () => {
  for (const storage of ['fake-s3', 'fake-local'] as const) {
    for (const requested of [true, false]) {
      it(`compress ${requested} while the default is ${!requested} (${storage})`, async () => {
        const p = await freshPanel(!requested, storage);
        p.world.failNextCapture = 'CAPTURE_FAILED';
        const { image } = await p.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web', compress: requested });
        await p.ii.idle();
        expect((await p.ii.images.getImage(alice, image.id)).status).toBe('error');
        await p.ii.images.retryImage(alice, image.id);
        await p.ii.idle();
        expect((await p.ii.images.getImage(alice, image.id)).status).toBe('available');
        expect(p.compressed).toEqual([requested, requested]);
      });
    }
  }

  it('without a choice in the request, the default at creation is kept (even when the default changes before the retry)', async () => {
    const first = await freshPanel(true, 'fake-s3');
    first.world.failNextCapture = 'CAPTURE_FAILED';
    const { image } = await first.ii.images.createImage(alice, { instanceId: 'web-1', name: 'web' });
    await first.ii.idle();
    expect(first.compressed).toEqual([true]);
    expect((await first.ii.repositories.images.get(image.id))?.compressed).toBe(true);
    // a restarted panel with another default, over the same repositories
    const second = panel({ defaultCompress: false, repositories: first.ii.repositories, world: first.world });
    await second.ii.images.retryImage(alice, image.id);
    await second.ii.idle();
    expect((await second.ii.images.getImage(alice, image.id)).status).toBe('available');
    expect(second.compressed).toEqual([true]);
  });

  it('an image recorded before the choice was kept retries with the current default', async () => {
    const p = await freshPanel(true, 'fake-s3');
    p.world.failNextCapture = 'CAPTURE_FAILED';
    const { image } = await p.ii.images.createImage(alice, { instanceId: 'web-1', name: 'old', compress: false });
    await p.ii.idle();
    // what an SQL row written before the column existed reads back as
    await p.ii.repositories.images.update(image.id, { compressed: null }, new Date());
    await p.ii.images.retryImage(alice, image.id);
    await p.ii.idle();
    expect(p.compressed).toEqual([false, true]);
  });
});
