import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  lastProgressPercent,
  parseBackupXml,
  parseDfAvail,
  parseDomBlkInfoAll,
  parseDomJobInfo,
  parseDomState,
  parseDomainBoot,
  parseDomainDisks,
  parseGuestAgentChannel,
  parseQemuImgCheck,
  parseQemuImgInfo,
  parseVirshVersion,
  selectPrimaryDisk,
  versionAtLeast,
} from '../../../drivers/hypervisor/libvirt/parsers';
import { isMarkerOverlay, isScratchName, captureScratch } from '../../../drivers/hypervisor/libvirt/names';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', name), 'utf8');

describe('virsh text outputs (recorded from libvirt 9.0.0)', () => {
  it('maps domstate with and without --reason', () => {
    expect(parseDomState(fixture('domstate-running.txt'))).toBe('running');
    expect(parseDomState(fixture('domstate-reason-running.txt'))).toBe('running');
    expect(parseDomState(fixture('domstate-shutoff.txt'))).toBe('shutoff');
    expect(parseDomState(fixture('domstate-reason-shutoff.txt'))).toBe('shutoff');
    expect(parseDomState('paused (user)\n')).toBe('paused');
    expect(parseDomState('crashed\n')).toBe('other');
  });

  it('reads the row of a target from domblkinfo --all', () => {
    // Real output of `virsh -q domblkinfo --all` (libvirt 9.0), and a disk without media.
    const all = fixture('domblkinfo-all.txt');
    expect(parseDomBlkInfoAll(all, 'vda')).toEqual({ capacityBytes: 2147483648, allocationBytes: 1074081792, physicalBytes: 1074135040 });
    expect(parseDomBlkInfoAll(all, 'vdb')?.capacityBytes).toBe(16777216);
    expect(parseDomBlkInfoAll(all, 'sda')).toBeNull();
    expect(parseDomBlkInfoAll(all, 'vd')).toBeNull();
    expect(parseDomBlkInfoAll('', 'vda')).toBeNull();
  });

  it('reads versions and compares them', () => {
    const v = parseVirshVersion(fixture('virsh-version.txt'));
    expect(v.libvirt).toEqual({ major: 9, minor: 0, micro: 0 });
    expect(v.qemu).toEqual({ major: 7, minor: 2, micro: 22 });
    expect(versionAtLeast(v.libvirt, 7, 2)).toBe(true);
    expect(versionAtLeast({ major: 7, minor: 1, micro: 9 }, 7, 2)).toBe(false);
    expect(versionAtLeast(null, 1, 0)).toBe(false);
  });

  it('reads domjobinfo of a running pull backup and of no job', () => {
    expect(parseDomJobInfo(fixture('domjobinfo-pull.txt'))).toMatchObject({ active: true, operation: 'Backup' });
    expect(parseDomJobInfo('Job type:         None        \n').active).toBe(false);
  });

  it('reads df and qemu-img progress', () => {
    expect(parseDfAvail('  Avail\n8388608\n')).toBe(8388608);
    expect(() => parseDfAvail('df: /x: No such file or directory\n')).toThrow();
    expect(lastProgressPercent(fixture('qemu-img-convert-progress.txt'))).toBe(100);
    expect(lastProgressPercent('    (12.50/100%)\r    (37.25/100%)\r')).toBe(37.25);
    expect(lastProgressPercent('nothing')).toBeNull();
  });
});

describe('domain XML', () => {
  it('picks the boot-order disk as primary, never the cdrom or the extra disk', () => {
    const disks = parseDomainDisks(fixture('dumpxml-running.xml'));
    expect(disks.map((d) => [d.device, d.target])).toEqual([
      ['cdrom', 'sda'],
      ['disk', 'vda'],
      ['disk', 'vdb'],
    ]);
    const primary = selectPrimaryDisk(disks);
    expect(primary).toMatchObject({
      target: 'vda',
      source: '/var/tmp/iitest/d1.qcow2',
      driverType: 'qcow2',
      bootOrder: 1,
      backingChain: [],
    });
    expect(selectPrimaryDisk(parseDomainDisks(fixture('dumpxml-inactive.xml')))?.target).toBe('vda');
  });

  it('sees an encrypted disk: encryption in its source, in the disk (older libvirt), or in a backing layer', () => {
    const disk = (inner: string) =>
      parseDomainDisks(
        `<domain><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>${inner}<target dev='vda' bus='virtio'/></disk></devices></domain>`,
      )[0]?.encrypted;
    const luks = "<encryption format='luks'><secret type='passphrase' uuid='0f3c0b4e-1c1a-4f1e-9a53-3f8a6f1d2b7c'/></encryption>";
    expect(disk(`<source file='/d.qcow2'>${luks}</source>`)).toBe(true);
    expect(disk(`<source file='/d.qcow2'/>${luks}`)).toBe(true);
    expect(
      disk(
        `<source file='/top.qcow2'/><backingStore type='file'><format type='qcow2'/><source file='/base.qcow2'>${luks}</source><backingStore/></backingStore>`,
      ),
    ).toBe(true);
    expect(disk(`<source file='/d.qcow2'/>`)).toBe(false);
    expect(parseDomainDisks(fixture('dumpxml-running.xml')).some((d) => d.encrypted)).toBe(false);
  });

  it('falls back to the first disk device when no disk has a boot order', () => {
    const xml = fixture('dumpxml-inactive.xml').replace(/<boot order='1'\/>/g, '');
    const primary = selectPrimaryDisk(parseDomainDisks(xml));
    expect(primary?.device).toBe('disk');
    expect(primary?.target).toBe('vda');
    const cdromOnly = `<domain><devices><disk type='file' device='cdrom'><source file='/x.iso'/><target dev='sda' bus='sata'/><boot order='1'/></disk></devices></domain>`;
    expect(selectPrimaryDisk(parseDomainDisks(cdromOnly))).toBeNull();
  });

  it('sees a capture overlay with its backing chain, and an active-commit mirror', () => {
    const overlay = selectPrimaryDisk(parseDomainDisks(fixture('dumpxml-overlay.xml')));
    expect(overlay?.source).toBe('/var/tmp/iitest/ii-overlay-1.qcow2');
    expect(overlay?.backingChain).toEqual(['/var/tmp/iitest/d1.qcow2']);
    expect(isMarkerOverlay(overlay?.source ?? '')).toBe(true);
    const mirror = selectPrimaryDisk(parseDomainDisks(fixture('dumpxml-active-commit-ready.xml')));
    expect(mirror?.mirror).toEqual({ job: 'active-commit', ready: true });
  });

  it('finds the guest agent channel and its state', () => {
    expect(parseGuestAgentChannel(fixture('dumpxml-running.xml'))).toEqual({ present: true, connected: false });
    expect(parseGuestAgentChannel(fixture('dumpxml-running.xml').replace("state='disconnected'", "state='connected'"))).toEqual({
      present: true,
      connected: true,
    });
    expect(parseGuestAgentChannel('<domain><devices/></domain>')).toEqual({ present: false, connected: false });
  });

  it('reads the firmware and architecture a domain boots with', () => {
    expect(parseDomainBoot(fixture('dumpxml-running.xml'))).toEqual({ firmware: 'bios', architecture: 'x86_64' });
    expect(parseDomainBoot(`<domain><os firmware='efi'><type arch='x86_64'>hvm</type></os></domain>`)).toEqual({
      firmware: 'uefi',
      architecture: 'x86_64',
    });
    const pflash = `<domain><os><type arch='aarch64'>hvm</type><loader readonly='yes' type='pflash'>/usr/share/AAVMF/AAVMF_CODE.fd</loader></os></domain>`;
    expect(parseDomainBoot(pflash)).toEqual({ firmware: 'uefi', architecture: 'aarch64' });
    expect(
      parseDomainBoot(`<domain><os><type arch='x86_64'>hvm</type><loader>/usr/share/OVMF/OVMF_CODE.fd</loader></os></domain>`),
    ).toEqual({
      firmware: 'uefi',
      architecture: 'x86_64',
    });
    // aarch64 without a loader: unknown firmware; a hostile arch string is dropped
    expect(parseDomainBoot(`<domain><os><type arch='aarch64'>hvm</type></os></domain>`)).toEqual({
      firmware: null,
      architecture: 'aarch64',
    });
    expect(parseDomainBoot(`<domain><os><type arch='x86 64; rm'>hvm</type></os></domain>`)).toEqual({ firmware: null, architecture: null });
    expect(parseDomainBoot('<domain/>')).toEqual({ firmware: null, architecture: null });
  });

  it('reads an empty cdrom as having no source', () => {
    const xml = `<domain><devices>${fixture('cdrom-ejected-fragment.xml')
      .replace(/^[\s\S]*?(<disk)/, '$1')
      .replace(/<disk type='file' device='disk'>[\s\S]*$/, '')}</devices></domain>`;
    const [cdrom] = parseDomainDisks(xml);
    expect(cdrom).toMatchObject({ device: 'cdrom', source: null, readonly: true });
  });
});

describe('disks on an iothread', () => {
  const domain = (devices: string) => `<domain type='kvm'><name>d</name><devices>${devices}</devices></domain>`;
  const disk = (target: string, bus: string, driver = `<driver name='qemu' type='qcow2'/>`) =>
    `<disk type='file' device='disk'>${driver}<source file='/d/${target}.qcow2'/><target dev='${target}' bus='${bus}'/></disk>`;

  it("reads the disk driver's iothread, and a virtio-scsi controller's for its SCSI disks", () => {
    const own = parseDomainDisks(domain(disk('vda', 'virtio', `<driver name='qemu' type='qcow2' iothread='1'/>`) + disk('vdb', 'virtio')));
    expect(own.map((d) => [d.target, d.iothread])).toEqual([
      ['vda', true],
      ['vdb', false],
    ]);
    const scsi = `<controller type='scsi' index='0' model='virtio-scsi'><driver iothread='2'/></controller>`;
    const viaController = parseDomainDisks(domain(scsi + disk('sda', 'scsi') + disk('vda', 'virtio')));
    expect(viaController.map((d) => [d.target, d.iothread])).toEqual([
      ['sda', true],
      ['vda', false],
    ]);
    expect(parseDomainDisks(fixture('dumpxml-running.xml')).every((d) => !d.iothread)).toBe(true);
  });
});

describe('qemu-img info JSON', () => {
  it('reads format, sizes and the absence of a backing file', () => {
    expect(parseQemuImgInfo(fixture('qemu-img-info-qcow2.json'))).toEqual({
      format: 'qcow2',
      virtualSizeBytes: 67108864,
      actualSizeBytes: 2367488,
      backingFilename: null,
      dataFile: null,
      snapshots: 0,
    });
  });
  it('counts internal snapshots', () => {
    const json = JSON.stringify({
      format: 'qcow2',
      'virtual-size': 1,
      snapshots: [
        { id: '1', name: 'a' },
        { id: '2', name: 'b' },
      ],
    });
    expect(parseQemuImgInfo(json).snapshots).toBe(2);
  });
  it('reads a backing file and a data file', () => {
    const json = JSON.stringify({
      format: 'qcow2',
      'virtual-size': 1,
      'backing-filename': '/etc/shadow',
      'format-specific': { type: 'qcow2', data: { 'data-file': '/dev/sda' } },
    });
    expect(parseQemuImgInfo(json)).toMatchObject({ backingFilename: '/etc/shadow', dataFile: '/dev/sda' });
    expect(() => parseQemuImgInfo('not json')).toThrow();
  });
});

describe('qemu-img check JSON (recorded from QEMU 7.2)', () => {
  it('reads a clean image, a truncated one (corruptions) and one whose L1 table was wiped (leaks)', () => {
    expect(parseQemuImgCheck(fixture('qemu-img-check-clean.json'))).toEqual({
      corruptions: 0,
      leaks: 0,
      checkErrors: 0,
      imageEndOffset: 105185280,
    });
    expect(parseQemuImgCheck(fixture('qemu-img-check-truncated.json'))).toMatchObject({ corruptions: 805, leaks: 0 });
    expect(parseQemuImgCheck(fixture('qemu-img-check-leaks.json'))).toMatchObject({ corruptions: 0, leaks: 1601 });
    expect(() => parseQemuImgCheck('')).toThrow();
  });
});

describe('backup-dumpxml and scratch names', () => {
  it('reads the socket and scratch file of a pull backup', () => {
    const xml = `<domainbackup mode='pull'>
  <server transport='unix' socket='/var/tmp/iitest/nbd.sock'/>
  <disks>
    <disk name='vda' backup='yes' type='file' backupmode='full' exportname='vda' index='4'>
      <driver type='qcow2'/>
      <scratch file='/var/tmp/iitest/scratch.qcow2'/>
    </disk>
    <disk name='vdb' backup='no'/>
  </disks>
</domainbackup>`;
    expect(parseBackupXml(xml)).toEqual({ mode: 'pull', socket: '/var/tmp/iitest/nbd.sock', files: ['/var/tmp/iitest/scratch.qcow2'] });
  });

  it('names temporary files by kind, domain tag and id; recognizes only its own', () => {
    const a = captureScratch('/var/tmp/instance-images/', "evil $(x);'name");
    const name = a.socket.slice(a.socket.lastIndexOf('/') + 1);
    expect(a.socket.length).toBeLessThan(108);
    expect(name).not.toContain('evil');
    expect(isScratchName(name)).toBe(true);
    expect(isScratchName(name, a.tag)).toBe(true);
    expect(isScratchName(name, '00000000')).toBe(false);
    expect(isScratchName('ii-nbd-zz.sock')).toBe(false);
    expect(isScratchName('important.qcow2')).toBe(false);
  });
});
