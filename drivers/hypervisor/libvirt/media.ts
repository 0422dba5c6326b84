/**
 * ISO media: insert an ISO into the domain's cdrom (adding a read-only cdrom when it has none),
 * boot from it first; eject it and boot from the disk first again. The persistent definition is
 * rewritten (with `--security-info`, so no password is lost); a running domain also gets the
 * media change live. QEMU cannot change boot order live: it applies from the next start.
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import { linkedPath, type HostCommands } from './commands';
import { assertAbsolutePath } from './capture';
import { parseDomState, parseDomainDisks, selectPrimaryDisk } from './parsers';
import { child, childElements, el, parseXml, removeChildren, serializeXml, type XmlElement } from './xml';

const BOOTABLE = ['disk', 'interface', 'hostdev', 'redirdev', 'filesystem'];

function cdroms(devices: XmlElement): XmlElement[] {
  return childElements(devices, 'disk').filter((d) => d.attributes.device === 'cdrom');
}

function targetOf(disk: XmlElement): string {
  return child(disk, 'target')?.attributes.dev ?? '';
}

function setSource(disk: XmlElement, path: string | null): void {
  removeChildren(disk, 'source');
  if (path !== null) {
    const index = disk.children.findIndex((c) => typeof c !== 'string' && c.name === 'driver');
    disk.children.splice(index + 1, 0, el('source', { file: path }));
  }
}

/**
 * Re-numbers per-device boot order: `first` (when given) gets 1, then the primary disk, then every
 * other device that had a boot order, in its old order. Removes `<os><boot dev>` (the two styles
 * cannot be mixed).
 */
function renumberBoot(root: XmlElement, first: XmlElement | null): void {
  const os = child(root, 'os');
  if (os) removeChildren(os, 'boot');
  const devices = child(root, 'devices');
  if (!devices) return;
  const bootable = BOOTABLE.flatMap((name) => childElements(devices, name));
  const disks = parseDomainDisks(root);
  const primaryTarget = selectPrimaryDisk(disks)?.target;
  const primary = childElements(devices, 'disk').find((d) => d.attributes.device !== 'cdrom' && targetOf(d) === primaryTarget) ?? null;
  const others = bootable
    .filter((d) => d !== first && d !== primary && child(d, 'boot') !== undefined)
    .filter((d) => !(d.name === 'disk' && d.attributes.device === 'cdrom' && first === null))
    .sort((a, b) => Number(child(a, 'boot')?.attributes.order ?? 0) - Number(child(b, 'boot')?.attributes.order ?? 0));
  for (const device of bootable) removeChildren(device, 'boot');
  let order = 1;
  for (const device of [first, primary, ...others]) {
    if (!device) continue;
    const boot = el('boot', { order: String(order++) });
    const target = device.children.findIndex((c) => typeof c !== 'string' && c.name === 'target');
    if (target >= 0) device.children.splice(target + 1, 0, boot);
    else device.children.push(boot);
  }
}

function freeTarget(devices: XmlElement, prefix: string): string {
  const used = new Set(childElements(devices, 'disk').map(targetOf));
  for (let i = 0; i < 26; i++) {
    const name = `${prefix}${String.fromCharCode(97 + i)}`;
    if (!used.has(name)) return name;
  }
  throw new InstanceImagesError('INVALID_STATE', 'The domain has no free device name for a cdrom');
}

/** Where media operations keep the definition file while virsh reads it. */
export interface MediaContext {
  cmd: HostCommands;
  scratchDir: string;
  ensureScratchDir(): Promise<void>;
}

async function defineFrom(ctx: MediaContext, root: XmlElement): Promise<void> {
  await ctx.ensureScratchDir();
  await ctx.cmd.virshWithFile(ctx.scratchDir, serializeXml(root), (file) => ['define', '--file', file]);
}

async function isRunning(cmd: HostCommands, domainName: string): Promise<boolean> {
  const state = await cmd.virsh(['domstate', '--domain', domainName]);
  return ['running', 'paused'].includes(parseDomState(state.stdout));
}

/** Refuses an ISO that is missing, or is or passes through a symbolic link below `root`. */
async function checkIso(cmd: HostCommands, isoPath: string, root: string | undefined): Promise<void> {
  const found = await cmd.checkFile(isoPath, root);
  if (found === 'linked') throw linkedPath('The ISO file');
  if (found === 'missing')
    throw new InstanceImagesError('NOT_FOUND', 'The ISO file does not exist on the hypervisor', { details: { isoPath } });
}

/**
 * Attaches `isoPath` read-only as the cdrom and makes it the first boot device. With a storage
 * `root`, a path that is or passes through a symbolic link below it is refused, before the attach
 * and again after it (libvirt opens the path by name): a link swapped in meanwhile is detached.
 */
export async function attachIso(ctx: MediaContext, domainName: string, isoPath: string, options: { root?: string } = {}): Promise<void> {
  const { cmd } = ctx;
  assertAbsolutePath(isoPath, 'isoPath');
  await checkIso(cmd, isoPath, options.root);
  await attachChecked(ctx, domainName, isoPath);
  if (options.root !== undefined) {
    try {
      await checkIso(cmd, isoPath, options.root);
    } catch (error) {
      await detachIso(ctx, domainName);
      throw error;
    }
  }
}

async function attachChecked(ctx: MediaContext, domainName: string, isoPath: string): Promise<void> {
  const { cmd } = ctx;
  const running = await isRunning(cmd, domainName);
  const inactive = parseXml((await cmd.virsh(['dumpxml', '--inactive', '--security-info', '--domain', domainName])).stdout);
  const devices = child(inactive, 'devices');
  if (!devices) throw new InstanceImagesError('INVALID_STATE', 'The domain definition has no devices');
  let cdrom = cdroms(devices).find((d) => child(d, 'source') === undefined) ?? cdroms(devices)[0];
  if (!cdrom) {
    const scsi = childElements(devices, 'controller').some((c) => c.attributes.type === 'scsi');
    const bus = scsi ? 'scsi' : 'sata';
    cdrom = el('disk', { type: 'file', device: 'cdrom' }, [
      el('driver', { name: 'qemu', type: 'raw' }),
      el('target', { dev: freeTarget(devices, 'sd'), bus }),
      el('readonly'),
    ]);
    const lastDisk = devices.children.lastIndexOf(childElements(devices, 'disk').at(-1) as XmlElement);
    devices.children.splice(lastDisk + 1, 0, cdrom);
  }
  cdrom.attributes.type = 'file';
  setSource(cdrom, isoPath);
  if (!child(cdrom, 'readonly')) cdrom.children.push(el('readonly'));
  renumberBoot(inactive, cdrom);
  await defineFrom(ctx, inactive);

  if (running) {
    const target = targetOf(cdrom);
    const live = parseDomainDisks((await cmd.virsh(['dumpxml', '--domain', domainName])).stdout).find(
      (d) => d.device === 'cdrom' && d.target === target,
    );
    if (live) {
      await cmd.virsh([
        'change-media',
        '--domain',
        domainName,
        '--path',
        target,
        '--source',
        isoPath,
        live.source ? '--update' : '--insert',
        '--live',
      ]);
    } else {
      // SATA cannot be hot-plugged; SCSI can when the domain has a SCSI controller.
      await cmd.tryVirsh([
        'attach-disk',
        '--domain',
        domainName,
        '--source',
        isoPath,
        '--target',
        target,
        '--type',
        'cdrom',
        '--mode',
        'readonly',
        '--targetbus',
        child(cdrom, 'target')?.attributes.bus ?? 'sata',
        '--live',
      ]);
    }
  }
}

/** Ejects the boot cdrom's media and restores disk-first boot order; idempotent. */
export async function detachIso(ctx: MediaContext, domainName: string): Promise<void> {
  const { cmd } = ctx;
  const running = await isRunning(cmd, domainName);
  const inactive = parseXml((await cmd.virsh(['dumpxml', '--inactive', '--security-info', '--domain', domainName])).stdout);
  const devices = child(inactive, 'devices');
  if (!devices) return;
  const booting = cdroms(devices).filter((d) => child(d, 'boot') !== undefined);
  const targets = booting.map(targetOf);
  if (booting.length > 0) {
    for (const cdrom of booting) setSource(cdrom, null);
    renumberBoot(inactive, null);
    await defineFrom(ctx, inactive);
  }
  if (running) {
    const live = parseDomainDisks((await cmd.virsh(['dumpxml', '--domain', domainName])).stdout);
    for (const disk of live) {
      if (disk.device === 'cdrom' && disk.source !== null && (targets.includes(disk.target) || disk.bootOrder !== null)) {
        await cmd.virsh(['change-media', '--domain', domainName, '--path', disk.target, '--eject', '--live', '--force']);
      }
    }
  }
}
