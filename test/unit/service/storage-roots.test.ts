import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { admin, alice, deployAndWait, setup } from './setup';

// A path storage's files reach the hypervisor driver with the storage root, so that the driver can
// refuse a path that is, or passes through, a symbolic link below it (see the libvirt driver).
describe('path storages hand their root to the hypervisor driver', () => {
  it('for a capture, a deploy from the image and an ISO mount', async () => {
    const h = await setup({ storage: 'path' });
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    h.world.addInstance('new-1', 'acct-alice');
    await deployAndWait(h.ii, alice, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new-1.qcow2' });
    const isoStore = await h.ii.storages.createStorage(admin, {
      name: 'iso-store',
      driver: 'fake-local',
      purpose: 'templates',
      config: { root: '/isos' },
    });
    await h.ii.storages.bindHypervisor(admin, isoStore.id, 'hv-1');
    const iso = await h.ii.catalog.uploadIso(
      admin,
      { name: 'Installer', storageId: isoStore.id, hypervisorId: 'hv-1', fileKey: 'setup.iso' },
      Readable.from([Buffer.from('ISO9660')]),
    );
    await h.ii.catalog.mountIso(alice, { instanceId: 'web-1', isoId: iso.id });

    const stored = await h.ii.images.getImage(alice, image.id);
    expect(h.world.pathRoots).toEqual([
      { operation: 'capture', path: `/hv-1/images/${stored.fileKey}`, root: '/hv-1/images' },
      { operation: 'materialize', path: `/hv-1/images/${stored.fileKey}`, root: '/hv-1/images' },
      { operation: 'attachIso', path: '/hv-1/isos/setup.iso', root: '/hv-1/isos' },
    ]);
  });
});
