/**
 * Parsers for virsh and qemu-img output. They read labels and XML structure, never fixed columns,
 * and are tested on outputs recorded from real libvirt 9 / QEMU 7.2.
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { DomainState } from '../../../src/ports/hypervisor-driver';
import { child, childElements, descend, parseXml, textOf, type XmlElement } from './xml';

/** Maps `virsh domstate` output (optionally with `--reason`) to a {@link DomainState}. */
export function parseDomState(output: string): DomainState {
  const line = (output.split('\n').find((l) => l.trim() !== '') ?? '').trim().toLowerCase();
  const state = line.replace(/\s*\(.*\)$/, '');
  if (state === 'running') return 'running';
  if (state === 'paused' || state === 'pmsuspended') return 'paused';
  if (state === 'shut off' || state === 'shutoff') return 'shutoff';
  return 'other';
}

/** Parses `Label: value` lines (domblkinfo, domjobinfo, blockjob --info) into a map keyed by label. */
export function parseLabelledLines(output: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const line of output.split(/\r?\n|\r/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    map.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return map;
}

/** Block device sizes from `virsh domblkinfo DOM TARGET` (plain, not `--human`). */
export interface BlockInfo {
  capacityBytes: number;
  allocationBytes: number;
  physicalBytes: number;
}

/**
 * The row of `target` in `virsh -q domblkinfo --all` (`TARGET CAPACITY ALLOCATION PHYSICAL`, one
 * disk per line; `-` for a disk without media); null when the target has no numeric row.
 */
export function parseDomBlkInfoAll(output: string, target: string): BlockInfo | null {
  for (const line of output.split('\n')) {
    const [name, capacity, allocation, physical] = line.trim().split(/\s+/);
    if (name !== target) continue;
    if (![capacity, allocation, physical].every((value) => value !== undefined && /^\d+$/.test(value))) return null;
    return { capacityBytes: Number(capacity), allocationBytes: Number(allocation), physicalBytes: Number(physical) };
  }
  return null;
}

/** A version as three numbers. */
export interface Version {
  major: number;
  minor: number;
  micro: number;
}

/** Parses `1.2.3` (extra text around it ignored); null when none. */
export function parseVersion(text: string): Version | null {
  const match = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!match) return null;
  return { major: Number(match[1]), minor: Number(match[2]), micro: Number(match[3] ?? 0) };
}

/** True when `v` ≥ `major.minor.micro`. */
export function versionAtLeast(v: Version | null, major: number, minor: number, micro = 0): boolean {
  if (!v) return false;
  if (v.major !== major) return v.major > major;
  if (v.minor !== minor) return v.minor > minor;
  return v.micro >= micro;
}

/** Library and hypervisor versions from `virsh version`. */
export interface VirshVersions {
  libvirt: Version | null;
  qemu: Version | null;
}

/** Parses `virsh version` ("Using library: libvirt X", "Running hypervisor: QEMU Y"). */
export function parseVirshVersion(output: string): VirshVersions {
  const map = parseLabelledLines(output);
  const library = map.get('Using library') ?? map.get('Compiled against library') ?? '';
  const hypervisor = map.get('Running hypervisor') ?? '';
  return { libvirt: parseVersion(library), qemu: /qemu/i.test(hypervisor) ? parseVersion(hypervisor) : null };
}

/** One `<disk>` of a domain, as far as the driver needs it. */
export interface DomainDisk {
  /** `disk`, `cdrom`, `floppy`, `lun`. */
  device: string;
  /** `file`, `block`, `network`, `volume`. */
  type: string;
  target: string;
  bus: string | null;
  /** Path of the active layer (`source file` or `source dev`); null for an empty cdrom. */
  source: string | null;
  /** Driver type of the active layer (`qcow2`, `raw`). */
  driverType: string | null;
  bootOrder: number | null;
  readonly: boolean;
  /** Paths of the backing chain below the active layer, top first. */
  backingChain: string[];
  /** An ongoing block job mirror (`active-commit`, `copy`), if any. */
  mirror: { job: string; ready: boolean } | null;
  /**
   * The disk's I/O runs on an iothread: its `<driver iothread='N'>`, or (a SCSI disk) a virtio-scsi
   * controller with one. QEMU asserts, and the guest dies, when a client of a backup job's NBD
   * export disconnects from such a disk (`nbd_blockdev_client_closed`, seen on QEMU 7.2).
   */
  iothread: boolean;
  /**
   * The disk, or a layer of its backing chain, is encrypted by QEMU (an `<encryption>` element in
   * its `<source>`, or directly in `<disk>` as older libvirt writes it): its bytes can only be
   * read with the secret libvirt holds, and a backup export would serve them decrypted.
   */
  encrypted: boolean;
}

function sourcePath(source: XmlElement | undefined): string | null {
  if (!source) return null;
  return source.attributes.file ?? source.attributes.dev ?? source.attributes.name ?? null;
}

/** Whether `disk` or a layer of its backing chain carries an `<encryption>` element. */
function encryptedLayers(disk: XmlElement): boolean {
  let layer: XmlElement | undefined = disk;
  while (layer) {
    if (child(layer, 'encryption') !== undefined || child(child(layer, 'source') ?? layer, 'encryption') !== undefined) return true;
    layer = child(layer, 'backingStore');
  }
  return false;
}

function backingChainOf(disk: XmlElement): string[] {
  const chain: string[] = [];
  let store = child(disk, 'backingStore');
  while (store && Object.keys(store.attributes).length + store.children.length > 0) {
    const path = sourcePath(child(store, 'source'));
    if (path !== null) chain.push(path);
    store = child(store, 'backingStore');
  }
  return chain;
}

/** Reads every `<devices><disk>` of a domain XML document. */
export function parseDomainDisks(domainXml: string | XmlElement): DomainDisk[] {
  const root = typeof domainXml === 'string' ? parseXml(domainXml) : domainXml;
  const devices = child(root, 'devices');
  if (!devices) return [];
  // A virtio-scsi controller on an iothread puts its disks there too.
  const scsiIothread = childElements(devices, 'controller').some(
    (c) => c.attributes.type === 'scsi' && child(c, 'driver')?.attributes.iothread !== undefined,
  );
  return childElements(devices, 'disk').map((disk) => {
    const mirror = child(disk, 'mirror');
    const bus = child(disk, 'target')?.attributes.bus ?? null;
    const boot = child(disk, 'boot')?.attributes.order;
    return {
      device: disk.attributes.device ?? 'disk',
      type: disk.attributes.type ?? 'file',
      target: child(disk, 'target')?.attributes.dev ?? '',
      bus,
      source: sourcePath(child(disk, 'source')),
      driverType: child(disk, 'driver')?.attributes.type ?? null,
      bootOrder: boot !== undefined && /^\d+$/.test(boot) ? Number(boot) : null,
      readonly: child(disk, 'readonly') !== undefined,
      backingChain: backingChainOf(disk),
      mirror: mirror ? { job: mirror.attributes.job ?? '', ready: mirror.attributes.ready === 'yes' } : null,
      iothread: child(disk, 'driver')?.attributes.iothread !== undefined || (bus === 'scsi' && scsiIothread),
      encrypted: encryptedLayers(disk),
    };
  });
}

/**
 * The primary disk: the `device='disk'` with the lowest boot order, else the first
 * `device='disk'`. Never a cdrom or floppy. Null when the domain has no disk.
 */
export function selectPrimaryDisk(disks: readonly DomainDisk[]): DomainDisk | null {
  const candidates = disks.filter((d) => d.device === 'disk' && d.target !== '');
  const booted = candidates.filter((d) => d.bootOrder !== null).sort((a, b) => (a.bootOrder ?? 0) - (b.bootOrder ?? 0));
  return booted[0] ?? candidates[0] ?? null;
}

/** The guest agent channel of a domain: present, and whether libvirt sees it connected. */
export interface GuestAgentChannel {
  present: boolean;
  connected: boolean;
}

/** Finds the `org.qemu.guest_agent.0` channel in a domain XML document. */
export function parseGuestAgentChannel(domainXml: string | XmlElement): GuestAgentChannel {
  const root = typeof domainXml === 'string' ? parseXml(domainXml) : domainXml;
  const devices = child(root, 'devices');
  for (const channel of devices ? childElements(devices, 'channel') : []) {
    const target = child(channel, 'target');
    if (target?.attributes.name === 'org.qemu.guest_agent.0') {
      return { present: true, connected: target.attributes.state === 'connected' };
    }
  }
  return { present: false, connected: false };
}

/** Whether the domain boots by `<os><boot dev=...>` rather than per-device boot order. */
export function usesOsBootDevices(domainXml: XmlElement): boolean {
  const os = descend(domainXml, ['os']);
  return os !== undefined && childElements(os, 'boot').length > 0;
}

/** How a domain boots: its firmware and CPU architecture (null when the XML does not say). */
export interface DomainBoot {
  firmware: 'bios' | 'uefi' | null;
  architecture: string | null;
}

/**
 * Reads `<os firmware=...>`, `<os><loader>` and `<os><type arch=...>`: UEFI when the firmware
 * attribute is `efi`, or a pflash loader or an OVMF/AAVMF/edk2 loader is named; BIOS when the
 * attribute is `bios`, or an x86 domain names no loader (SeaBIOS, QEMU's default there).
 */
export function parseDomainBoot(domainXml: string | XmlElement): DomainBoot {
  const root = typeof domainXml === 'string' ? parseXml(domainXml) : domainXml;
  const os = child(root, 'os');
  const rawArch = os ? child(os, 'type')?.attributes.arch : undefined;
  const architecture = rawArch && /^[a-z0-9_]{2,20}$/.test(rawArch) ? rawArch : null;
  if (!os) return { firmware: null, architecture };
  const loader = child(os, 'loader');
  const loaderPath = loader ? textOf(loader).trim() : '';
  let firmware: DomainBoot['firmware'] = null;
  if (os.attributes.firmware === 'efi' || loader?.attributes.type === 'pflash' || /ovmf|aavmf|edk2|efi/i.test(loaderPath))
    firmware = 'uefi';
  else if (os.attributes.firmware === 'bios' || (!loader && (architecture === 'x86_64' || architecture === 'i686'))) firmware = 'bios';
  return { firmware, architecture };
}

/** The fields of `qemu-img info --output=json` the driver uses. */
export interface QemuImgInfo {
  format: string;
  virtualSizeBytes: number;
  actualSizeBytes: number | null;
  backingFilename: string | null;
  /** qcow2 external data file, if any (never accepted as a deploy source). */
  dataFile: string | null;
  /** How many internal snapshots the image holds (qcow2). */
  snapshots: number;
}

/** Parses `qemu-img info --output=json` (one image, not `--backing-chain`). */
export function parseQemuImgInfo(json: string): QemuImgInfo {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new InstanceImagesError('COMMAND_FAILED', 'qemu-img info did not print JSON', { cause: error });
  }
  if (typeof value !== 'object' || value === null) throw new InstanceImagesError('COMMAND_FAILED', 'qemu-img info printed unexpected JSON');
  const info = value as Record<string, unknown>;
  const format = info.format;
  const virtual = info['virtual-size'];
  if (typeof format !== 'string' || typeof virtual !== 'number') {
    throw new InstanceImagesError('COMMAND_FAILED', 'qemu-img info JSON lacks format or virtual-size');
  }
  const specific = info['format-specific'] as { data?: Record<string, unknown> } | undefined;
  const dataFile = specific?.data?.['data-file'];
  const backing = info['full-backing-filename'] ?? info['backing-filename'];
  return {
    format,
    virtualSizeBytes: virtual,
    actualSizeBytes: typeof info['actual-size'] === 'number' ? info['actual-size'] : null,
    backingFilename: typeof backing === 'string' ? backing : null,
    dataFile: typeof dataFile === 'string' ? dataFile : null,
    snapshots: Array.isArray(info.snapshots) ? info.snapshots.length : 0,
  };
}

/** The result of `qemu-img check --output=json` of a qcow2 image (metadata only: it reads no data cluster). */
export interface QemuImgCheck {
  /** Clusters referenced wrongly (beyond the end of the file, refcounts that disagree). */
  corruptions: number;
  /** Clusters allocated but referenced by nothing (e.g. an L1 or L2 table that was wiped). */
  leaks: number;
  /** Errors that stopped the check from completing. */
  checkErrors: number;
  /** Where the image's last allocated cluster ends, in bytes; null when not reported. */
  imageEndOffset: number | null;
}

/** Parses `qemu-img check --output=json` (printed for a clean image and for one with errors alike). */
export function parseQemuImgCheck(json: string): QemuImgCheck {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch (error) {
    throw new InstanceImagesError('COMMAND_FAILED', 'qemu-img check did not print JSON', { cause: error });
  }
  if (typeof value !== 'object' || value === null)
    throw new InstanceImagesError('COMMAND_FAILED', 'qemu-img check printed unexpected JSON');
  const check = value as Record<string, unknown>;
  const count = (key: string): number => (typeof check[key] === 'number' ? check[key] : 0);
  return {
    corruptions: count('corruptions'),
    leaks: count('leaks'),
    checkErrors: count('check-errors'),
    imageEndOffset: typeof check['image-end-offset'] === 'number' ? check['image-end-offset'] : null,
  };
}

/**
 * Reads qemu-img `-p` progress ("    (12.34/100%)\r") from a chunk of output; returns the last
 * percentage in it (0–100), or null when the chunk holds none.
 */
export function lastProgressPercent(chunk: string): number | null {
  let last: number | null = null;
  for (const match of chunk.matchAll(/\((\d+(?:\.\d+)?)\/100%\)/g)) last = Number(match[1]);
  return last;
}

/** Parses `df -B1 --output=avail PATH` (a header line, then the number). */
export function parseDfAvail(output: string): number {
  const value = parseDfAvailList(output).at(-1);
  if (value === undefined) throw new InstanceImagesError('COMMAND_FAILED', 'Unexpected df output: no available byte count');
  return value;
}

/** Every available byte count of `df -B1 --output=avail PATH...` output, in the order of the paths. */
export function parseDfAvailList(output: string): number[] {
  return output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\d+$/.test(l))
    .map(Number);
}

/** A running libvirt backup job as `virsh backup-dumpxml` describes it. */
export interface BackupJobXml {
  mode: 'push' | 'pull';
  socket: string | null;
  /** Scratch files (pull) and targets (push) of the disks being backed up. */
  files: string[];
}

/** Parses `virsh backup-dumpxml` output. */
export function parseBackupXml(xml: string): BackupJobXml {
  const root = parseXml(xml);
  const server = child(root, 'server');
  const files: string[] = [];
  for (const disk of childElements(child(root, 'disks') ?? root, 'disk')) {
    for (const name of ['scratch', 'target']) {
      const path = sourcePath(child(disk, name));
      if (path !== null) files.push(path);
    }
  }
  return { mode: root.attributes.mode === 'pull' ? 'pull' : 'push', socket: server?.attributes.socket ?? null, files };
}

/** Whether `virsh domjobinfo` output reports an active job; `operation` when it does. */
export function parseDomJobInfo(output: string): { active: boolean; operation: string | null; status: string | null } {
  const map = parseLabelledLines(output);
  const type = map.get('Job type') ?? 'None';
  return { active: !/^(none|completed|failed|cancelled)$/i.test(type), operation: map.get('Operation') ?? null, status: type };
}

/** Splits `virsh list --name` output into names (blank lines dropped; names kept verbatim). */
export function parseNameList(output: string): string[] {
  return output.split('\n').filter((l) => l.trim() !== '');
}
