import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestGuest, makeIso, sh, virsh, type TestGuest } from '../../support/guests';
import { freshScratchDir, imagesIdentical, leftovers, libvirtSkipReason, makeDriver, recordGuest } from './setup';
import { codeOf } from '../../support/errors';

const skip = libvirtSkipReason();

// Someone with write access to a shared image storage (another hypervisor of an NFS export) plants
// symbolic links below its root, so that a root-run tool on this hypervisor writes or reads a file
// of the host. With the storage root given, the driver refuses; without it, nothing is checked.
describe.skipIf(skip !== null)(`libvirt driver: symbolic links below a storage root${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let guest: TestGuest;
  let scratch: string;
  let base: string;
  let root: string;
  let outside: string;

  beforeAll(() => {
    guest = createTestGuest();
    scratch = freshScratchDir('links');
    // Shell metacharacters in every path the scripts handle.
    base = freshScratchDir("links-out $(touch x);'");
    root = `${base}/storage "root"`;
    outside = `${base}/host files`;
    mkdirSync(root, { recursive: true });
    mkdirSync(outside, { recursive: true });
  });
  afterAll(() => {
    guest?.remove();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    if (base) rmSync(base, { recursive: true, force: true });
  });

  it('a capture into a directory that is a link below the root is refused before any job starts; nothing is written there', async () => {
    symlinkSync(outside, `${root}/acct-linked`);
    const before = recordGuest(guest.name);
    const code = await codeOf(
      makeDriver(scratch).capture({ domainName: guest.name, output: { kind: 'path', path: `${root}/acct-linked/img.qcow2`, root } }),
    );
    expect(code).toBe('VALIDATION_FAILED');
    expect(readdirSync(outside)).toEqual([]);
    before.expectUntouched();
    expect(leftovers(scratch)).toEqual([]);
  });

  it('a capture whose directory is swapped for a link after the space check is refused by the write itself', async () => {
    // The directory exists and is real when the capture checks free space; once the backup job has
    // started (before the convert opens its output), it is swapped for a link.
    mkdirSync(`${root}/acct-swapped`);
    const driver = makeDriver(scratch, {
      hooks: {
        afterJobStart: () => {
          rmSync(`${root}/acct-swapped`, { recursive: true, force: true });
          symlinkSync(outside, `${root}/acct-swapped`);
        },
      },
    });
    const code = await codeOf(
      driver.capture({ domainName: guest.name, output: { kind: 'path', path: `${root}/acct-swapped/img.qcow2`, root } }),
    );
    expect(code).toBe('VALIDATION_FAILED');
    expect(readdirSync(outside)).toEqual([]);
    expect(leftovers(scratch)).toEqual([]);
    expect(await driver.recover(guest.name)).toEqual([]);
  });

  it('a capture below a root that is itself a link (an operator choice) works and publishes a regular file', async () => {
    const realRoot = `${base}/real-root`;
    mkdirSync(realRoot);
    symlinkSync(realRoot, `${base}/root-link`);
    const out = `${base}/root-link/acct/sub/img.qcow2`;
    // (a trailing slash on the root is fine; a relative root is not)
    const driver = makeDriver(scratch);
    expect(await codeOf(driver.capture({ domainName: guest.name, output: { kind: 'path', path: out, root: 'root-link' } }))).toBe(
      'VALIDATION_FAILED',
    );
    const result = await driver.capture({ domainName: guest.name, output: { kind: 'path', path: out, root: `${base}/root-link/` } });
    expect(result.format).toBe('qcow2');
    expect(lstatSync(`${realRoot}/acct/sub/img.qcow2`).isFile()).toBe(true);
    expect(imagesIdentical(guest.primaryPath, out)).toBe(true);
    expect(existsSync(`${out}.part`)).toBe(false);
    expect(leftovers(scratch)).toEqual([]);
  });

  it('a deploy from an image that is a link below the root is refused; without the root it is not checked', async () => {
    const image = `${outside}/secret.qcow2`;
    expect(sh('qemu-img', 'create', '-q', '-f', 'qcow2', image, '16M').code).toBe(0);
    mkdirSync(`${root}/images`, { recursive: true });
    symlinkSync(image, `${root}/images/linked.qcow2`);
    const target = `${base}/deployed-1.qcow2`;
    const driver = makeDriver(scratch);
    const refused = await codeOf(
      driver.materialize({
        source: { kind: 'path', path: `${root}/images/linked.qcow2`, root },
        sourceFormat: 'qcow2',
        targetPath: target,
      }),
    );
    expect(refused).toBe('VALIDATION_FAILED');
    expect(existsSync(target)).toBe(false);
    expect(existsSync(`${target}.part`)).toBe(false);
    // The same request without a root (a host's own path) follows the link as before.
    await driver.materialize({ source: { kind: 'path', path: `${root}/images/linked.qcow2` }, sourceFormat: 'qcow2', targetPath: target });
    expect(imagesIdentical(image, target)).toBe(true);
  });

  it('a deploy target whose part file name holds a planted link never writes through it', async () => {
    const victim = `${outside}/victim.txt`;
    writeFileSync(victim, 'precious');
    const image = `${root}/images/real.qcow2`;
    mkdirSync(`${root}/images`, { recursive: true });
    expect(sh('qemu-img', 'create', '-q', '-f', 'qcow2', image, '16M').code).toBe(0);
    const target = `${base}/deployed-2.qcow2`;
    symlinkSync(victim, `${target}.part`);
    await makeDriver(scratch).materialize({ source: { kind: 'path', path: image, root }, sourceFormat: 'qcow2', targetPath: target });
    expect(readFileSync(victim, 'utf8')).toBe('precious');
    expect(lstatSync(target).isFile()).toBe(true);
    expect(imagesIdentical(image, target)).toBe(true);
  });

  it('a deploy whose image is swapped after its checks for one naming a host file as backing file never copies that file', async () => {
    const secret = `${outside}/host-secret.raw`;
    writeFileSync(secret, Buffer.concat([Buffer.from('HOST-SECRET-BYTES'), Buffer.alloc(1024 * 1024 - 17)]));
    mkdirSync(`${root}/images`, { recursive: true });
    const image = `${root}/images/swapped.qcow2`;
    expect(sh('qemu-img', 'create', '-q', '-f', 'qcow2', image, '1M').code).toBe(0);
    const target = `${base}/deployed-3.qcow2`;
    const driver = makeDriver(scratch, {
      hooks: {
        beforeDeployConvert: () => {
          // Someone with write access to the storage replaces the checked image.
          expect(sh('qemu-img', 'create', '-q', '-f', 'qcow2', '-b', secret, '-F', 'raw', `${image}.evil`).code).toBe(0);
          renameSync(`${image}.evil`, image);
        },
      },
    });
    await driver
      .materialize({ source: { kind: 'path', path: image, root }, sourceFormat: 'qcow2', targetPath: target })
      .catch(() => undefined);
    if (existsSync(target)) {
      expect(sh('qemu-img', 'convert', '-O', 'raw', target, `${base}/deployed-3.raw`).code).toBe(0);
      expect(readFileSync(`${base}/deployed-3.raw`).includes('HOST-SECRET-BYTES')).toBe(false);
    }
    expect(existsSync(`${target}.part`)).toBe(false);
  });

  it('a deploy whose raw image is swapped after its checks for a link to a host file refuses, and one swapped for other bytes fails its checksum', async () => {
    const secret = `${outside}/host-secret-2.raw`;
    writeFileSync(secret, Buffer.concat([Buffer.from('HOST-SECRET-RAW'), Buffer.alloc(1024 * 1024 - 15)]));
    mkdirSync(`${root}/images`, { recursive: true });
    const image = `${root}/images/swapped.raw`;
    const bytes = Buffer.alloc(1024 * 1024, 7);
    writeFileSync(image, bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const swapTo = (make: () => void) =>
      makeDriver(scratch, {
        hooks: {
          beforeDeployConvert: () => {
            rmSync(image);
            make();
          },
        },
      });

    // A link to a host file: refused, nothing deployed.
    const linkTarget = `${base}/deployed-4.raw`;
    const linking = swapTo(() => symlinkSync(secret, image));
    expect(
      await codeOf(
        linking.materialize({
          source: { kind: 'path', path: image, root },
          sourceFormat: 'raw',
          targetFormat: 'raw',
          targetPath: linkTarget,
          sha256,
        }),
      ),
    ).toBe('VALIDATION_FAILED');
    expect(existsSync(linkTarget)).toBe(false);
    expect(existsSync(`${linkTarget}.part`)).toBe(false);

    // Other bytes under the name: the checksum is checked on what the copy reads.
    rmSync(image, { force: true });
    writeFileSync(image, bytes);
    const otherTarget = `${base}/deployed-5.raw`;
    const replacing = swapTo(() => writeFileSync(image, Buffer.alloc(1024 * 1024, 9)));
    expect(
      await codeOf(
        replacing.materialize({
          source: { kind: 'path', path: image, root },
          sourceFormat: 'raw',
          targetFormat: 'raw',
          targetPath: otherTarget,
          sha256,
        }),
      ),
    ).toBe('CHECKSUM_MISMATCH');
    expect(existsSync(otherTarget)).toBe(false);
    expect(existsSync(`${otherTarget}.part`)).toBe(false);

    // Untouched, the same deploy works.
    writeFileSync(image, bytes);
    await makeDriver(scratch).materialize({
      source: { kind: 'path', path: image, root },
      sourceFormat: 'raw',
      targetFormat: 'raw',
      targetPath: otherTarget,
      sha256,
    });
    expect(readFileSync(otherTarget).equals(bytes)).toBe(true);
  });

  it('an ISO that is a link below the root, or under a linked directory, is never attached', async () => {
    const iso = `${outside}/real.iso`;
    makeIso(iso);
    mkdirSync(`${root}/isos`, { recursive: true });
    symlinkSync(iso, `${root}/isos/linked.iso`);
    symlinkSync(outside, `${root}/isos-linked`);
    const inactive = virsh('dumpxml', '--inactive', '--domain', guest.name);
    const live = virsh('dumpxml', '--domain', guest.name);
    const driver = makeDriver(scratch);
    expect(await codeOf(driver.attachIso(guest.name, `${root}/isos/linked.iso`, { root }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(driver.attachIso(guest.name, `${root}/isos-linked/real.iso`, { root }))).toBe('VALIDATION_FAILED');
    expect(await codeOf(driver.attachIso(guest.name, `${root}/isos/missing.iso`, { root }))).toBe('NOT_FOUND');
    expect(virsh('dumpxml', '--inactive', '--domain', guest.name)).toBe(inactive);
    expect(virsh('dumpxml', '--domain', guest.name)).toBe(live);
    // A real ISO below the root attaches.
    makeIso(`${root}/isos/ok.iso`);
    await driver.attachIso(guest.name, `${root}/isos/ok.iso`, { root });
    expect(virsh('domblklist', '--domain', guest.name)).toContain(`${root}/isos/ok.iso`);
    await driver.detachIso(guest.name);
  });
});
