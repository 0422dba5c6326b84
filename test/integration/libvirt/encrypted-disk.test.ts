/**
 * A guest whose primary disk is encrypted by QEMU (LUKS in qcow2, its passphrase in a libvirt
 * secret, as a provider encrypting disks at rest sets it up). `qemu-img` cannot read it without
 * the secret, and a backup export would serve the guest's data decrypted into an image others may
 * deploy or download: the driver refuses to capture it, running or stopped, into files or chunks,
 * before anything runs — no snapshot, job or checkpoint, the guest untouched.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInstanceImagesError } from '../../../src/errors';
import { mapConsumer } from '../../support/chunk-consumer';
import { createTestGuest, virsh, type TestGuest } from '../../support/guests';
import { freshScratchDir, leftovers, libvirtSkipReason, makeDriver, recordGuest } from './setup';

const skip = libvirtSkipReason();

describe.skipIf(skip !== null)(`libvirt driver: an encrypted disk${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 120_000 }, () => {
  let guest: TestGuest;
  let scratch: string;
  let outDir: string;

  beforeAll(() => {
    guest = createTestGuest({ encrypted: true, cdrom: false });
    scratch = freshScratchDir('encrypted');
    outDir = freshScratchDir('encrypted-out');
  });
  afterAll(() => {
    guest?.remove();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  const expectRefused = (error: unknown) => {
    expect(isInstanceImagesError(error, 'INVALID_STATE')).toBe(true);
    expect((error as { details?: { reason?: string } }).details?.reason).toBe('encrypted-disk');
    expect((error as Error).message).toMatch(/encrypted/);
  };

  it('the running guest really runs on a LUKS disk', () => {
    expect(virsh('domstate', '--domain', guest.name).trim()).toBe('running');
    expect(virsh('dumpxml', '--domain', guest.name)).toMatch(/<encryption format='luks'/);
  });

  it('running: every method and a chunked capture are refused before anything runs', async () => {
    const before = recordGuest(guest.name);
    for (const method of ['auto', 'snapshot-commit', 'pull-backup', 'push-backup'] as const) {
      const path = `${outDir}/${method}.qcow2`;
      const error = await makeDriver(scratch, { method })
        .capture({ domainName: guest.name, output: { kind: 'path', path } })
        .catch((e: unknown) => e);
      expectRefused(error);
    }
    const { output } = mapConsumer({ checkpoint: { create: 'ii-enc-1' } });
    expectRefused(
      await makeDriver(scratch)
        .capture({ domainName: guest.name, output })
        .catch((e: unknown) => e),
    );
    before.expectUntouched();
    expect(virsh('checkpoint-list', '--name', '--domain', guest.name).trim()).toBe('');
    expect(virsh('snapshot-list', '--name', '--domain', guest.name).trim()).toBe('');
    expect(leftovers(scratch)).toEqual([]);
    expect(leftovers(outDir)).toEqual([]);
  });

  it('stopped: a cold capture and a chunked one are refused too', async () => {
    virsh('destroy', '--domain', guest.name);
    const error = await makeDriver(scratch)
      .capture({ domainName: guest.name, output: { kind: 'path', path: `${outDir}/cold.qcow2` } })
      .catch((e: unknown) => e);
    expectRefused(error);
    const { output } = mapConsumer({});
    expectRefused(
      await makeDriver(scratch)
        .capture({ domainName: guest.name, output })
        .catch((e: unknown) => e),
    );
    expect(leftovers(scratch)).toEqual([]);
    expect(leftovers(outDir)).toEqual([]);
  });
});
