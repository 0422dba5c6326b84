/**
 * Inspection of a domain and of the hypervisor's capabilities.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { InstanceImagesError } from '../../../src/errors';
import type { DomainInfo } from '../../../src/ports/hypervisor-driver';
import type { HostCommands } from './commands';
import {
  parseDomBlkInfo,
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

/** What the first round of {@link inspectDomain} learned: the state and the primary disk, without its sizes. */
export interface DomainOutline {
  name: string;
  state: DomainInfo['state'];
  primaryDisk: { target: string; path: string; format: string };
}

/**
 * Inspects a domain. `whileSizing` is called with the state and primary disk as soon as they are
 * known, so a caller can start its own remote commands beside the second round (the disk's sizes).
 * @throws NOT_FOUND when it does not exist; INVALID_STATE when it has no disk.
 */
export async function inspectDomain(
  cmd: HostCommands,
  domainName: string,
  capabilities: HypervisorCapabilities,
  whileSizing?: (outline: DomainOutline) => void,
): Promise<LibvirtDomainInfo> {
  // Two rounds of two commands in parallel: the state and the XML, then the disk's info and allocation.
  const [stateResult, { root }] = await Promise.all([cmd.virsh(['domstate', '--domain', domainName]), domainXml(cmd, domainName)]);
  const state = parseDomState(stateResult.stdout);
  const disks = parseDomainDisks(root);
  const primary = selectPrimaryDisk(disks);
  if (!primary || primary.source === null) {
    throw new InstanceImagesError('INVALID_STATE', `Domain ${JSON.stringify(domainName)} has no disk to capture`, {
      details: { domainName },
    });
  }
  const agent = parseGuestAgentChannel(root);
  // Never probe: a raw disk's bytes belong to the guest, which could write a qcow2 header naming a
  // host file as its backing file. libvirt treats a disk without a driver type as raw; so do we.
  const format = primary.driverType ?? 'raw';
  whileSizing?.({ name: domainName, state, primaryDisk: { target: primary.target, path: primary.source, format } });
  const [info, blk] = await Promise.all([
    cmd.qemuImgInfo(primary.source, { shared: true, format }),
    cmd.tryVirsh(['domblkinfo', '--domain', domainName, '--device', primary.target]),
  ]);
  let allocationBytes = info.actualSizeBytes ?? 0;
  if (blk.exitCode === 0) allocationBytes = parseDomBlkInfo(blk.stdout).allocationBytes;
  return {
    name: domainName,
    state,
    primaryDisk: {
      target: primary.target,
      path: primary.source,
      format,
      virtualSizeBytes: info.virtualSizeBytes,
      allocationBytes,
    },
    hasGuestAgent: agent.present,
    ...parseDomainBoot(root),
    ...parseDomainGuest(root),
    guestAgentConnected: agent.connected,
    disks,
    capabilities,
  };
}
