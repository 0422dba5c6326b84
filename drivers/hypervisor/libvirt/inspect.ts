/**
 * Inspection of a domain and of the hypervisor's capabilities.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { InstanceImagesError } from '../../../src/errors';
import type { DomainInfo } from '../../../src/ports/hypervisor-driver';
import { commandError, type HostCommands } from './commands';
import {
  parseDomBlkInfoAll,
  parseDomainBoot,
  parseDomState,
  parseDomainDisks,
  parseGuestAgentChannel,
  parseVirshVersion,
  selectPrimaryDisk,
  versionAtLeast,
  type DomainDisk,
  type Version,
} from './parsers';
import { parseXml, type XmlElement } from './xml';
import { parseDomainGuest } from './guest-metadata';
import { askVirsh } from './virsh-batch';

/** What the hypervisor supports, detected once per driver. */
export interface HypervisorCapabilities {
  /** libvirt library version, e.g. `9.0.0`. */
  libvirtVersion: string | null;
  /** QEMU version, e.g. `7.2.22`. */
  qemuVersion: string | null;
  /** `virsh backup-begin` works (libvirt ≥ 7.2 with QEMU ≥ 4.2): pull and push mode backups. */
  backup: boolean;
  /** qcow2 zstd compression is available in qemu-img. */
  zstd: boolean;
  /** Live capture methods in order of preference. */
  liveMethods: Array<'pull-backup' | 'push-backup' | 'snapshot-commit'>;
}

/** Extra facts the libvirt driver reports beyond the port's {@link DomainInfo}. */
export interface LibvirtDomainInfo extends DomainInfo {
  /** The guest agent channel exists and libvirt sees the agent connected. */
  guestAgentConnected: boolean;
  /** Every `<disk>` of the live definition (cdroms and extra disks included). */
  disks: DomainDisk[];
  /** The hypervisor's versions and capture methods. */
  capabilities: HypervisorCapabilities;
}

function versionText(v: Version | null): string | null {
  return v ? `${v.major}.${v.minor}.${v.micro}` : null;
}

/** Detects versions, backup support and zstd support. `probeDir` must exist (the scratch dir). */
export async function detectCapabilities(cmd: HostCommands, probeDir: string): Promise<HypervisorCapabilities> {
  const version = await cmd.virsh(['version'], {}, 'HYPERVISOR_UNREACHABLE');
  const { libvirt, qemu } = parseVirshVersion(version.stdout);
  const backupCommand = await cmd.tryVirsh(['help', 'backup-begin']);
  const backup = backupCommand.exitCode === 0 && versionAtLeast(libvirt, 7, 2) && (qemu === null || versionAtLeast(qemu, 4, 2));
  const probe = `${probeDir.replace(/\/+$/, '')}/ii-probe-00000000-${randomBytes(4).toString('hex')}.qcow2`;
  const zstdProbe = await cmd.tryRun(['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', 'compression_type=zstd', probe, '1M']);
  await cmd.remove(probe);
  return {
    libvirtVersion: versionText(libvirt),
    qemuVersion: versionText(qemu),
    backup,
    zstd: zstdProbe.exitCode === 0,
    liveMethods: backup ? ['pull-backup', 'push-backup', 'snapshot-commit'] : ['snapshot-commit'],
  };
}

/** The live XML of a domain, parsed. @throws NOT_FOUND. */
export async function domainXml(cmd: HostCommands, domainName: string, inactive = false): Promise<{ text: string; root: XmlElement }> {
  const result = await cmd.virsh(['dumpxml', ...(inactive ? ['--inactive'] : []), '--domain', domainName]);
  return { text: result.stdout, root: parseXml(result.stdout) };
}

/**
 * A domain as its state (`virsh domstate`) and live XML describe it, before its disk's sizes are
 * known (`sizes`: zero when not measured; a chunked capture learns the size from its export).
 * @throws INVALID_STATE when it has no disk.
 */
export function domainFromXml(
  domainName: string,
  stateText: string,
  root: XmlElement,
  capabilities: HypervisorCapabilities,
  sizes: { virtualSizeBytes: number; allocationBytes: number } = { virtualSizeBytes: 0, allocationBytes: 0 },
): LibvirtDomainInfo {
  const state = parseDomState(stateText);
  const disks = parseDomainDisks(root);
  const primary = selectPrimaryDisk(disks);
  if (!primary || primary.source === null) {
    throw new InstanceImagesError('INVALID_STATE', `Domain ${JSON.stringify(domainName)} has no disk to capture`, {
      details: { domainName },
    });
  }
  const agent = parseGuestAgentChannel(root);
  return {
    name: domainName,
    state,
    // Never probe: a raw disk's bytes belong to the guest, which could write a qcow2 header naming a
    // host file as its backing file. libvirt treats a disk without a driver type as raw; so do we.
    primaryDisk: { target: primary.target, path: primary.source, format: primary.driverType ?? 'raw', ...sizes },
    hasGuestAgent: agent.present,
    ...parseDomainBoot(root),
    ...parseDomainGuest(root),
    guestAgentConnected: agent.connected,
    disks,
    capabilities,
  };
}

/**
 * Inspects a domain: its state, XML and every disk's sizes in ONE `virsh` (see virsh-batch.ts);
 * `qemu-img info` of the disk only when libvirt could not give its sizes.
 * @throws NOT_FOUND when it does not exist; INVALID_STATE when it has no disk.
 */
export async function inspectDomain(
  cmd: HostCommands,
  domainName: string,
  capabilities: HypervisorCapabilities,
): Promise<LibvirtDomainInfo> {
  const domain = ['--domain', domainName];
  const answers = await askVirsh(cmd, [
    { name: 'state', words: ['domstate', ...domain] },
    { name: 'xml', words: ['dumpxml', ...domain] },
    { name: 'blocks', words: ['domblkinfo', ...domain, '--all'] },
  ]);
  const answer = (name: string, words: string[]) => {
    const record = answers.get(name);
    if (record === undefined || record.exitCode !== 0) {
      const result = { exitCode: record?.exitCode ?? 1, stdout: record?.stdout ?? '', stderr: record?.stderr ?? '' };
      throw commandError(cmd.virshArgv(words), result);
    }
    return record.stdout;
  };
  const state = answer('state', ['domstate']);
  const found = domainFromXml(domainName, state, parseXml(answer('xml', ['dumpxml'])), capabilities);
  const { path, format, target } = found.primaryDisk;
  const blocks = answers.get('blocks');
  const sizes = blocks?.exitCode === 0 ? parseDomBlkInfoAll(blocks.stdout, target) : null;
  if (sizes !== null) {
    return {
      ...found,
      primaryDisk: { ...found.primaryDisk, virtualSizeBytes: sizes.capacityBytes, allocationBytes: sizes.allocationBytes },
    };
  }
  const info = await cmd.qemuImgInfo(path, { shared: true, format });
  return {
    ...found,
    primaryDisk: { ...found.primaryDisk, virtualSizeBytes: info.virtualSizeBytes, allocationBytes: info.actualSizeBytes ?? 0 },
  };
}

/** The `<disk>` entry of the domain's primary disk (null only for a domain built by hand). */
function primaryEntry(domain: LibvirtDomainInfo): DomainDisk | null {
  return domain.disks.find((disk) => disk.target === domain.primaryDisk.target) ?? null;
}

/** Whether the domain's primary disk does its I/O on an iothread (see {@link DomainDisk.iothread}). */
export function primaryOnIothread(domain: LibvirtDomainInfo): boolean {
  return primaryEntry(domain)?.iothread === true;
}

/**
 * Refuses to capture a domain whose primary disk is encrypted by QEMU (LUKS, see
 * {@link DomainDisk.encrypted}), before anything runs: `qemu-img` cannot read its layers without
 * the secret libvirt holds, and a backup export would serve the guest's data decrypted, into an
 * image that anyone allowed to deploy or download it could read. Capturing such a disk would need
 * an image format that keeps the encryption and a key the image carries; until then, none is made.
 * @throws INVALID_STATE (`details.reason` `encrypted-disk`).
 */
export function refuseEncryptedDisk(domain: LibvirtDomainInfo): void {
  if (primaryEntry(domain)?.encrypted !== true) return;
  throw new InstanceImagesError(
    'INVALID_STATE',
    `The disk of ${JSON.stringify(domain.name)} is encrypted (LUKS): an image of it would hold its data unencrypted, so encrypted disks are not captured`,
    { details: { domainName: domain.name, reason: 'encrypted-disk' } },
  );
}

/**
 * The refusal of a live NBD export of a disk on an iothread: QEMU asserts, and the guest dies,
 * when a client of a backup job's NBD export disconnects from such a disk (seen on QEMU 7.2;
 * `nbd_blockdev_client_closed`). `instead` says what the operator or customer can do.
 */
export function iothreadExportRefused(domainName: string, instead: string): InstanceImagesError {
  return new InstanceImagesError(
    'INVALID_STATE',
    `The disk of ${JSON.stringify(domainName)} runs on an I/O thread, and QEMU stops a running guest whose disk is on an I/O thread when a reader of its backup export disconnects: a live export is refused. ${instead}`,
    { details: { domainName, reason: 'disk-on-iothread' } },
  );
}
