/**
 * POST /deployments is open to customers, and its targetPath is where the hypervisor (as root)
 * writes a disk whose bytes the customer controls (their own captured image, deployed as raw).
 * A customer must not be able to aim it at system files.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startExpressHarness, type ExpressHarness } from '../../support/express-harness';

let h: ExpressHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

describe('express router: deploy target paths chosen by customers', () => {
  it('refuses system locations and non-disk file names with VALIDATION_FAILED, deploying nothing', async () => {
    const t = (h = await startExpressHarness());
    const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'mine' } });
    await t.ii.idle();
    const imageId = created.json.image.id as string;
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
    for (const targetPath of hostile) {
      const res = await t.call('POST', '/deployments', { json: { imageId, instanceId: 'web-1', targetPath, targetFormat: 'raw' } });
      expect([targetPath, res.status, res.json.code, res.json.fields?.[0]?.path]).toEqual([targetPath, 400, 'VALIDATION_FAILED', 'targetPath']);
    }
    expect([...t.world.files.keys()].filter((key) => key.startsWith('hv-1:/') && !key.startsWith('hv-1:/images'))).toEqual([]);
    const tasks = await t.call('GET', '/tasks');
    expect((tasks.json.items as { type: string }[]).filter((task) => task.type === 'deploy')).toEqual([]);

    const fine = await t.call('POST', '/deployments', { json: { imageId, instanceId: 'web-1', targetPath: '/var/lib/libvirt/images/new-9.qcow2' } });
    expect(fine.status).toBe(200);
  });
});
