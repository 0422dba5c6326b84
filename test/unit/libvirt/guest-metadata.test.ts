import { describe, expect, it } from 'vitest';
import { osTypeOfLibosinfoId, parseDomainGuest } from '../../../drivers/hypervisor/libvirt/guest-metadata';
import { parseXml } from '../../../drivers/hypervisor/libvirt/xml';

// As virt-install writes it (libvirt keeps the application's prefix and namespace).
const withOs = (id: string, prefix = 'libosinfo') =>
  parseXml(
    `<domain type='qemu'><name>vm</name><metadata><${prefix}:libosinfo xmlns:${prefix}="http://libosinfo.org/xmlns/libvirt/domain/1.0">` +
      `<${prefix}:os id="${id}"/></${prefix}:libosinfo></metadata><os><type arch='x86_64'>hvm</type></os></domain>`,
  );

describe('what the domain XML says about the guest', () => {
  it('reads the OS family from the libosinfo metadata, whatever its prefix', () => {
    expect(parseDomainGuest(withOs('http://ubuntu.com/ubuntu/22.04'))).toEqual({ osType: 'linux', cloudInit: null });
    expect(parseDomainGuest(withOs('http://microsoft.com/win/2k22', 'osinfo')).osType).toBe('windows');
    expect(parseDomainGuest(withOs('http://freebsd.org/freebsd/14.0')).osType).toBe('bsd');
  });

  it('maps libosinfo ids to linux, windows or bsd, and anything else to unknown', () => {
    const cases: Array<[string, string | null]> = [
      ['http://debian.org/debian/12', 'linux'],
      ['http://redhat.com/rhel/9.2', 'linux'],
      ['http://rockylinux.org/rocky/9', 'linux'],
      ['http://fedoraproject.org/fedora/39', 'linux'],
      ['http://oracle.com/ol/8.8', 'linux'],
      ['http://libosinfo.org/linux/2022', 'linux'],
      ['http://microsoft.com/win/10', 'windows'],
      ['http://microsoft.com/msdos/6.22', null],
      ['http://openbsd.org/openbsd/7.4', 'bsd'],
      ['http://netbsd.org/netbsd/9.3', 'bsd'],
      ['http://oracle.com/solaris/11', null],
      ['http://apple.com/macos/14', null],
      ['http://evil.example/ubuntu.com', null],
      ['not a url', null],
    ];
    for (const [id, expected] of cases) expect(osTypeOfLibosinfoId(id), id).toBe(expected);
  });

  it('ignores metadata of other namespaces and an os without id', () => {
    const other = parseXml(
      `<domain><metadata><app:info xmlns:app="http://example.com/app"><app:os id="http://ubuntu.com/ubuntu/22.04"/></app:info>` +
        `<libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0"><libosinfo:os/></libosinfo:libosinfo></metadata></domain>`,
    );
    expect(parseDomainGuest(other)).toEqual({ osType: null, cloudInit: null });
    expect(parseDomainGuest(parseXml('<domain/>'))).toEqual({ osType: null, cloudInit: null });
  });

  it('sees cloud-init when the SMBIOS serial the guest gets names the NoCloud datasource', () => {
    const smbios = (serial: string, mode = 'sysinfo') =>
      parseXml(
        `<domain><os><type>hvm</type><smbios mode='${mode}'/></os><sysinfo type='smbios'><system>` +
          `<entry name='manufacturer'>panel</entry><entry name='serial'>${serial}</entry></system></sysinfo></domain>`,
      );
    expect(parseDomainGuest(smbios('ds=nocloud;s=http://10.0.0.1/seed/')).cloudInit).toBe(true);
    expect(parseDomainGuest(smbios('ds=nocloud-net;s=http://10.0.0.1/')).cloudInit).toBe(true);
    // Not passed to the guest without <smbios mode='sysinfo'>; another serial says nothing.
    expect(parseDomainGuest(smbios('ds=nocloud', 'host')).cloudInit).toBeNull();
    expect(parseDomainGuest(smbios('SN-12345')).cloudInit).toBeNull();
  });
});
