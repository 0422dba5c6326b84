import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, rmSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSshExecutor } from '../../../drivers/exec/ssh';
import type { CaptureMethod } from '../../../drivers/hypervisor/libvirt';
import { parseDomainDisks } from '../../../drivers/hypervisor/libvirt/parsers';
import { isInstanceImagesError } from '../../../src/errors';
import type { ByteProgress } from '../../../src/ports/hypervisor-driver';
import { createTestGuest, GUEST_ROOT, sh, uniqueSuffix, virsh, type TestGuest } from '../../support/guests';
import { sshTarget } from '../exec/ssh-target';
import { freshScratchDir, imageInfo, imagesIdentical, leftovers, libvirtSkipReason, makeDriver, recordGuest } from './setup';

const skip = libvirtSkipReason();
const disksOf = (xml: string) => parseDomainDisks(xml);
const sha256File = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

describe.skipIf(skip !== null)(`libvirt driver: capture and deploy${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let guest: TestGuest;
  let scratch: string;
  let outDir: string;

  beforeAll(() => {
    guest = createTestGuest();
    scratch = freshScratchDir('capture');
    outDir = freshScratchDir('capture-out');
  });
  afterAll(() => {
    guest?.remove();
    rmSync(scratch, { recursive: true, force: true });
    rmSync(outDir, { recursive: true, force: true });
  });

  it('inspects the running guest: primary disk by boot order, never the cdrom or the data disk', async () => {
    const info = await makeDriver(scratch).inspect(guest.name);
    expect(info.state).toBe('running');
    expect(info.primaryDisk).toMatchObject({ target: 'vda', path: guest.primaryPath, format: 'qcow2', virtualSizeBytes: 64 * 1024 * 1024 });
    expect(info.primaryDisk.allocationBytes).toBeGreaterThan(2 * 1024 * 1024);
    expect(info.hasGuestAgent).toBe(true);
    // What a capture records as the image's capability metadata: an x86 guest without a loader boots SeaBIOS.
    expect(info).toMatchObject({ firmware: 'bios', architecture: 'x86_64' });
    expect(info.guestAgentConnected).toBe(false);
    expect(info.capabilities.backup).toBe(true);
    expect(info.capabilities.liveMethods[0]).toBe('pull-backup');
  });

  it('reads the OS family from the libosinfo metadata as libvirt stores it, from the domain XML only', async () => {
    expect(await makeDriver(scratch).inspect(guest.name)).toMatchObject({ osType: null, cloudInit: null });
    // What virt-install and most panels record (here set the way a panel would, on a running domain).
    const os = `<libosinfo><os id="http://debian.org/debian/12"/></libosinfo>`;
    virsh(
      'metadata',
      '--domain',
      guest.name,
      '--uri',
      'http://libosinfo.org/xmlns/libvirt/domain/1.0',
      '--key',
      'libosinfo',
      '--set',
      os,
      '--live',
      '--config',
    );
    expect(await makeDriver(scratch).inspect(guest.name)).toMatchObject({ osType: 'linux', cloudInit: null });
  });

  it('reports a missing domain as NOT_FOUND', async () => {
    await expect(makeDriver(scratch).inspect(`ii-missing-${uniqueSuffix()}`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(
      makeDriver(scratch).capture({ domainName: `ii-missing-${uniqueSuffix()}`, output: { kind: 'path', path: `${outDir}/never.qcow2` } }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  for (const method of ['pull-backup', 'push-backup', 'snapshot-commit'] as CaptureMethod[]) {
    it(`captures the running guest by ${method}: identical image, same QEMU process, chain and XML unchanged`, async () => {
      const before = recordGuest(guest.name);
      const out = `${outDir}/${method}.qcow2`;
      const progress: ByteProgress[] = [];
      const result = await makeDriver(scratch, { method }).capture({
        domainName: guest.name,
        output: { kind: 'path', path: out },
        onProgress: (p) => progress.push(p),
      });
      expect(result).toMatchObject({ format: 'qcow2', method, consistency: 'crash-consistent', virtualSizeBytes: 64 * 1024 * 1024 });
      expect(result.sizeBytes).toBe(Number(sh('stat', '-c', '%s', out).stdout.trim()));
      expect(result.sha256).toBe(sha256File(out));
      expect(imagesIdentical(guest.primaryPath, out)).toBe(true);
      expect(imagesIdentical(guest.dataPath, out)).toBe(false);
      expect(imageInfo(out).backing).toBeNull();
      expect(existsSync(`${out}.part`)).toBe(false);
      expect(progress.at(-1)?.step).toBe('done');
      before.expectUntouched();
      expect(leftovers(scratch)).toEqual([]);
    });
  }

  it('captures over SSH into a stream, hashing while streaming', async () => {
    const target = await sshTarget();
    if ('skip' in target) throw new Error(target.skip);
    const executor = createSshExecutor(target.connection);
    try {
      const before = recordGuest(guest.name);
      let received = Buffer.alloc(0);
      let announced = -1;
      const result = await makeDriver(scratch, {}, executor).capture({
        domainName: guest.name,
        output: {
          kind: 'stream',
          async consume(stream: Readable, size: number) {
            announced = size;
            const chunks: Buffer[] = [];
            for await (const chunk of stream) chunks.push(chunk as Buffer);
            received = Buffer.concat(chunks);
          },
        },
      });
      expect(result.method).toBe('snapshot-commit');
      expect(received.length).toBe(result.sizeBytes);
      expect(announced).toBe(result.sizeBytes);
      expect(createHash('sha256').update(received).digest('hex')).toBe(result.sha256);
      const copy = `${outDir}/streamed.qcow2`;
      await import('node:fs/promises').then((fs) => fs.writeFile(copy, received));
      expect(imagesIdentical(guest.primaryPath, copy)).toBe(true);
      before.expectUntouched();
      expect(leftovers(scratch)).toEqual([]);
    } finally {
      await executor.close();
    }
  });

  it('captures a stopped guest (qcow2 compressed, raw), deploys each, boots from it, and survives deleting the image', async () => {
    const cold = createTestGuest({ start: false });
    const deployed: TestGuest[] = [];
    try {
      const driver = makeDriver(scratch);
      const variants = [
        { format: 'qcow2' as const, compress: true, targetFormat: 'qcow2' as const },
        { format: 'raw' as const, compress: false, targetFormat: 'raw' as const },
      ];
      for (const variant of variants) {
        const image = `${outDir}/cold-${variant.format}.img`;
        const result = await driver.capture({
          domainName: cold.name,
          output: { kind: 'path', path: image },
          format: variant.format,
          compress: variant.compress,
        });
        expect(result).toMatchObject({ method: 'cold-convert', consistency: 'cold', format: variant.format });
        expect(imageInfo(image).format).toBe(variant.format);
        expect(imagesIdentical(cold.primaryPath, image)).toBe(true);
        if (variant.compress) expect(sh('qemu-img', 'info', image).stdout).toMatch(/compression type: zstd/);
        if (variant.format === 'raw') expect(Number(sh('du', '-B1', image).stdout.split('\t')[0])).toBeLessThan(result.virtualSizeBytes);

        // Deploy: half from the path, half from a stream, always grown to 128 MiB.
        const host = createTestGuest({ start: false, cdrom: false, agentChannel: false });
        deployed.push(host);
        const disk = `${host.dir}/deployed.${variant.targetFormat}`;
        const source =
          variant.format === 'raw'
            ? ({ kind: 'stream', stream: createReadStream(image) } as const)
            : ({ kind: 'path', path: image } as const);
        const made = await driver.materialize({
          source,
          sourceFormat: variant.format,
          sha256: result.sha256,
          targetPath: disk,
          targetFormat: variant.targetFormat,
          sizeBytes: 128 * 1024 * 1024,
        });
        expect(made).toEqual({ path: disk, format: variant.targetFormat, virtualSizeBytes: 128 * 1024 * 1024 });
        rmSync(image);
        expect(imageInfo(disk).backing).toBeNull();
        expect(sh('qemu-io', '-f', variant.targetFormat, '-c', 'read -P 0xab 0 1M', '-c', 'read -P 0xcd 32M 1M', disk).code).toBe(0);
        expect(sh('qemu-io', '-f', variant.targetFormat, '-c', 'read -P 0xab 0 1M', disk).stdout).not.toMatch(
          /Pattern verification failed/,
        );
        // Boot a guest from the new disk.
        virsh('detach-disk', '--domain', host.name, '--target', 'vda', '--config');
        virsh('attach-disk', '--domain', host.name, '--source', disk, '--target', 'vda', '--subdriver', variant.targetFormat, '--config');
        virsh('start', '--domain', host.name);
        expect(virsh('domstate', '--domain', host.name).trim()).toBe('running');
        expect(virsh('domblklist', '--domain', host.name)).toContain(disk);
      }
      expect(leftovers(scratch)).toEqual([]);
    } finally {
      cold.remove();
      for (const host of deployed) host.remove();
    }
  });

  it('refuses deploys that would shrink the disk, mismatch the checksum or reference another file', async () => {
    const driver = makeDriver(scratch);
    const image = `${outDir}/deploy-src.qcow2`;
    const result = await driver.capture({ domainName: guest.name, output: { kind: 'path', path: image } });
    const target = `${outDir}/deploy-target.qcow2`;
    await expect(
      driver.materialize({ source: { kind: 'path', path: image }, sourceFormat: 'qcow2', targetPath: target, sizeBytes: 1024 * 1024 }),
    ).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
    await expect(
      driver.materialize({ source: { kind: 'path', path: image }, sourceFormat: 'qcow2', targetPath: target, sha256: '0'.repeat(64) }),
    ).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    await expect(
      driver.materialize({
        source: { kind: 'stream', stream: createReadStream(image) },
        sourceFormat: 'qcow2',
        targetPath: target,
        sha256: 'f'.repeat(64),
      }),
    ).rejects.toMatchObject({ code: 'CHECKSUM_MISMATCH' });
    expect(existsSync(target)).toBe(false);
    expect(existsSync(`${target}.part`)).toBe(false);
    const overlay = `${outDir}/overlay.qcow2`;
    sh('qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', image, overlay);
    const error = await driver
      .materialize({ source: { kind: 'path', path: overlay }, sourceFormat: 'qcow2', targetPath: target })
      .catch((e: unknown) => e);
    expect(isInstanceImagesError(error, 'VALIDATION_FAILED')).toBe(true);
    expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(leftovers(scratch)).toEqual([]);
  });

  it('mounts an ISO as the first boot device (live and persistent) and unmounts it', async () => {
    const driver = makeDriver(scratch);
    const iso = `${GUEST_ROOT}/${uniqueSuffix()}.iso`;
    const { makeIso } = await import('../../support/guests');
    makeIso(iso, 'INSTALLER');
    try {
      await driver.attachIso(guest.name, iso);
      const live = disksOf(virsh('dumpxml', '--domain', guest.name));
      const inactive = disksOf(virsh('dumpxml', '--inactive', '--domain', guest.name));
      expect(live.find((d) => d.device === 'cdrom')).toMatchObject({ source: iso, readonly: true });
      expect(inactive.find((d) => d.device === 'cdrom')).toMatchObject({ source: iso, readonly: true, bootOrder: 1 });
      expect(inactive.find((d) => d.source === guest.primaryPath)?.bootOrder).toBe(2);
      expect(inactive.find((d) => d.source === guest.dataPath)?.bootOrder).toBeNull();
      await driver.detachIso(guest.name);
      await driver.detachIso(guest.name);
      const after = disksOf(virsh('dumpxml', '--inactive', '--domain', guest.name));
      expect(after.find((d) => d.device === 'cdrom')).toMatchObject({ source: null, bootOrder: null });
      expect(after.find((d) => d.source === guest.primaryPath)?.bootOrder).toBe(1);
      expect(disksOf(virsh('dumpxml', '--domain', guest.name)).find((d) => d.device === 'cdrom')?.source).toBeNull();
    } finally {
      rmSync(iso, { force: true });
    }
  });

  it('adds a cdrom to a domain without one', async () => {
    const bare = createTestGuest({ start: false, cdrom: false });
    try {
      const iso = `${bare.dir}/boot.iso`;
      const { makeIso } = await import('../../support/guests');
      makeIso(iso);
      await makeDriver(scratch).attachIso(bare.name, iso);
      const disks = disksOf(virsh('dumpxml', '--inactive', '--domain', bare.name));
      expect(disks.find((d) => d.device === 'cdrom')).toMatchObject({ source: iso, readonly: true, bootOrder: 1, bus: 'sata' });
      expect(disks.find((d) => d.source === bare.primaryPath)?.bootOrder).toBe(2);
      virsh('start', '--domain', bare.name);
      expect(virsh('domblklist', '--domain', bare.name)).toContain(iso);
    } finally {
      bare.remove();
    }
  });
});
