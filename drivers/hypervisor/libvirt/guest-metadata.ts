/**
 * What a domain's definition says about its guest, read from the domain XML only (nothing runs
 * inside the guest and its disk is not probed): the OS family from the libosinfo metadata that
 * virt-install, virt-manager, GNOME Boxes and most panels write, and whether the domain hands
 * cloud-init a datasource through its SMBIOS system serial (cloud-init's NoCloud `ds=nocloud`).
 * @module
 */
import type { OsType } from '../../../src/model/image';
import { child, childElements, descend, textOf, type XmlElement } from './xml';

/** The namespace of libosinfo's domain metadata. */
export const LIBOSINFO_NAMESPACE = 'http://libosinfo.org/xmlns/libvirt/domain/1.0';

/** What the domain XML says about the guest (null: it does not say). */
export interface DomainGuest {
  /** From `<metadata><libosinfo:libosinfo><libosinfo:os id="…">`. */
  osType: OsType | null;
  /** `true` when the SMBIOS system serial the guest sees names cloud-init's NoCloud datasource; else null. */
  cloudInit: true | null;
}

const localName = (element: XmlElement) => element.name.slice(element.name.indexOf(':') + 1);

/** The libosinfo OS id of the domain (e.g. `http://ubuntu.com/ubuntu/22.04`), whatever prefix its namespace has. */
export function libosinfoOsId(domain: XmlElement): string | null {
  const metadata = child(domain, 'metadata');
  if (!metadata) return null;
  for (const entry of childElements(metadata)) {
    const prefix = entry.name.includes(':') ? entry.name.slice(0, entry.name.indexOf(':')) : null;
    const namespace = entry.attributes[prefix ? `xmlns:${prefix}` : 'xmlns'];
    if (namespace !== LIBOSINFO_NAMESPACE) continue;
    const os = childElements(entry).find((element) => localName(element) === 'os');
    const id = os?.attributes.id?.trim();
    if (id) return id;
  }
  return null;
}

// libosinfo's vendors of Linux distributions (the host of the OS id); BSDs are `*bsd.org`.
const LINUX_HOSTS =
  /(^|\.)(ubuntu\.com|debian\.org|fedoraproject\.org|redhat\.com|centos\.org|almalinux\.org|rockylinux\.org|opensuse\.org|suse\.com|novell\.com|archlinux\.org|alpinelinux\.org|gentoo\.org|mageia\.org|mandriva\.com|openmandriva\.org|slackware\.com|linuxmint\.com|nixos\.org|voidlinux\.org|clearlinux\.org|kali\.org|openeuler\.org|cirros-cloud\.net|amazon\.com|endlessos\.com|elementary\.io|eurolinux\.com|guix\.gnu\.org|trisquel\.info|rosalinux\.ru|miraclelinux\.com)$/;

/**
 * The OS family of a libosinfo OS id: `windows` for Microsoft's Windows ids (`http://microsoft.com/win/…`),
 * `bsd` for the BSDs, `linux` for known Linux vendors, Oracle Linux and libosinfo's generic
 * `linux` ids; null for anything else (DOS, Solaris, macOS, Haiku, an unknown vendor).
 */
export function osTypeOfLibosinfoId(id: string): OsType | null {
  let url: URL;
  try {
    url = new URL(id);
  } catch {
    return null;
  }
  const host = url.hostname.toLowerCase();
  const path = url.pathname.toLowerCase();
  if (host === 'microsoft.com') return path.startsWith('/win') ? 'windows' : null;
  if (/(^|\.)[a-z]*bsd\.org$/.test(host)) return 'bsd';
  if (LINUX_HOSTS.test(host)) return 'linux';
  if (host === 'oracle.com') return path.startsWith('/ol') ? 'linux' : null;
  if (host === 'libosinfo.org') return path.startsWith('/linux') ? 'linux' : null;
  return null;
}

/**
 * Whether the domain gives the guest cloud-init's NoCloud datasource in its SMBIOS system serial
 * (`<os><smbios mode="sysinfo"/>` with `<sysinfo type="smbios"><system><entry name="serial">ds=nocloud…`).
 */
export function handsCloudInitDatasource(domain: XmlElement): boolean {
  const smbios = descend(domain, ['os', 'smbios']);
  if (smbios?.attributes.mode !== 'sysinfo') return false;
  return childElements(domain, 'sysinfo')
    .filter((sysinfo) => sysinfo.attributes.type === 'smbios')
    .flatMap((sysinfo) => childElements(sysinfo, 'system'))
    .flatMap((system) => childElements(system, 'entry'))
    .some((entry) => entry.attributes.name === 'serial' && /^ds=nocloud(-net)?([;\s]|$)/i.test(textOf(entry).trim()));
}

/** What the domain XML says about the guest. */
export function parseDomainGuest(domain: XmlElement): DomainGuest {
  const id = libosinfoOsId(domain);
  return { osType: id === null ? null : osTypeOfLibosinfoId(id), cloudInit: handsCloudInitDatasource(domain) ? true : null };
}
