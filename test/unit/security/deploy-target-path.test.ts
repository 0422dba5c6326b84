/**
 * A deploy writes, as root on the hypervisor, a disk whose bytes the image's owner controls
 * (e.g. their own captured image deployed as raw). Customers must never aim it at system files:
 * over HTTP the deploy is an operator/host route, and in-process a customer actor may only name a
 * plain disk image path outside system directories.
 */
import { describe, expect, it } from 'vitest';
import { ADMIN, useExpressHarness } from '../../support/express-harness';
import { alice, codeOf, setup } from '../service/setup';

const harness = useExpressHarness();

const hostile = [
  '/root/.ssh/authorized_keys2',
  '/etc/cron.d/pwn',
  '/etc/logrotate.d/pwn.img',
  '/home/admin/.ssh/x.qcow2',
  '/var/spool/cron/crontabs/root',
  '/usr/lib/x.raw',
  '/disks/../etc/x.qcow2',
  '/disks//x.qcow2',
  '/disks/x.qcow2.sh',
];

describe('deploy target paths', () => {
  it('customers cannot call the deploy route at all', async () => {
    const t = await harness();
    const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'mine' } });
    await t.ii.idle();
    const res = await t.call('POST', '/admin/deployments', {
      json: { imageId: created.json.image.id, instanceId: 'web-1', targetPath: '/root/.ssh/authorized_keys2', targetFormat: 'raw' },
    });
    expect([res.status, res.json.code]).toEqual([403, 'FORBIDDEN']);
    const fine = await t.call('POST', '/admin/deployments', {
      actor: ADMIN,
      json: { imageId: created.json.image.id, instanceId: 'web-1', targetPath: '/var/lib/libvirt/images/new-9.qcow2' },
    });
    expect(fine.status).toBe(202);
  });

  it('a customer actor in-process may not name system locations or non-disk files; nothing is deployed', async () => {
    const s = await setup();
    const { image } = await s.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await s.ii.idle();
    for (const targetPath of hostile) {
      const error = await s.ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'web-1', targetPath, targetFormat: 'raw' }).then(
        () => null,
        (e: { code: string; fields: { path: string }[] }) => e,
      );
      expect([targetPath, error?.code, error?.fields[0]?.path]).toEqual([targetPath, 'VALIDATION_FAILED', 'targetPath']);
    }
    expect([...s.world.files.keys()].filter((key) => key.startsWith('hv-1:'))).toEqual([]);
    expect((await s.ii.images.listTasks(alice, { type: 'deploy' })).items).toEqual([]);
    expect(
      await codeOf(
        s.ii.catalog.deployImage(alice, { imageId: image.id, instanceId: 'web-1', targetPath: '/var/lib/libvirt/images/ok.qcow2' }),
      ),
    ).toBe('resolved');
  });
});
