/**
 * A guest whose primary disk runs on an iothread. QEMU 7.2 aborts the whole guest
 * (`nbd_blockdev_client_closed: Assertion 'qemu_in_main_thread() && nbd_server' failed`) when a
 * client of a pull-mode backup's NBD export disconnects from such a disk: the bench saw the guest
 * die after its first capture. So the driver never exports such a disk live: `auto` captures it with
 * snapshot-commit (its first choice anyway), an explicit pull-backup and a live chunked capture are refused, and the
 * guest keeps running through all of it.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isInstanceImagesError } from '../../../src/errors';
import { mapConsumer } from '../../support/chunk-consumer';
import { createTestGuest, virsh, type TestGuest } from '../../support/guests';
import { freshScratchDir, imagesIdentical, leftovers, libvirtSkipReason, makeDriver, recordGuest } from './setup';

const skip = libvirtSkipReason();

describe.skipIf(skip !== null)(`libvirt driver: a disk on an iothread${skip ? ` (skipped: ${skip})` : ''}`, { timeout: 120_000 }, () => {
  let guest: TestGuest;
  let scratch: string;
  let outDir: string;

  beforeAll(() => {
    guest = createTestGuest({ iothread: true, cdrom: false });
    scratch = freshScratchDir('iothread');
    outDir = freshScratchDir('iothread-out');
  });
  afterAll(() => {
    guest?.remove();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (outDir) rmSync(outDir, { recursive: true, force: true });
  });

  it('the domain XML has the iothread the test is about', () => {
    expect(virsh('dumpxml', '--domain', guest.name)).toMatch(/<driver name='qemu' type='qcow2' iothread='1'\/>/);
  });

  it('auto (snapshot-commit) and push-backup capture it live without an NBD export, and the guest keeps running', async () => {
    const before = recordGuest(guest.name);
    const cases = [
      { method: 'auto', expected: 'snapshot-commit' },
      { method: 'push-backup', expected: 'push-backup' },
    ] as const;
    for (const { method, expected } of cases) {
      const path = `${outDir}/${method}.qcow2`;
      const result = await makeDriver(scratch, { method }).capture({ domainName: guest.name, output: { kind: 'path', path } });
      expect(result.method).toBe(expected);
      expect(imagesIdentical(guest.primaryPath, path)).toBe(true);
    }
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
  });

  it('an explicit pull-backup is refused before any job starts', async () => {
    const before = recordGuest(guest.name);
    const error = await makeDriver(scratch, { method: 'pull-backup' })
      .capture({ domainName: guest.name, output: { kind: 'path', path: `${outDir}/pull.qcow2` } })
      .catch((e: unknown) => e);
    expect(isInstanceImagesError(error, 'INVALID_STATE')).toBe(true);
    expect((error as { details?: { reason?: string } }).details?.reason).toBe('disk-on-iothread');
    expect((error as Error).message).toMatch(/I\/O thread/);
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
  });

  it('a live chunked capture is refused: no job, no checkpoint, nothing left, the guest running', async () => {
    const before = recordGuest(guest.name);
    const { output } = mapConsumer({ checkpoint: { create: 'ii-io-1' } });
    const error = await makeDriver(scratch)
      .capture({ domainName: guest.name, output })
      .catch((e: unknown) => e);
    expect(isInstanceImagesError(error, 'INVALID_STATE')).toBe(true);
    expect((error as { details?: { reason?: string } }).details?.reason).toBe('disk-on-iothread');
    before.expectUntouched();
    expect(virsh('checkpoint-list', '--name', '--domain', guest.name).trim()).toBe('');
    expect(leftovers(scratch)).toEqual([]);
  });

  it('stopped, the same disk is captured in chunks (qemu-nbd serves the file, no guest to crash)', async () => {
    virsh('destroy', '--domain', guest.name);
    try {
      const { output, kept } = mapConsumer();
      const result = await makeDriver(scratch).capture({ domainName: guest.name, output });
      expect(result.method).toBe('cold-convert');
      expect(kept.counts.data).toBeGreaterThan(0);
      expect(leftovers(scratch)).toEqual([]);
    } finally {
      virsh('start', '--domain', guest.name);
    }
  });
});
