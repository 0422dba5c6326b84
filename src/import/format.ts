/**
 * Disk format detection from an image's first bytes, by our own code: the result is then passed
 * explicitly to qemu-img (`-f`), which never probes a file a customer wrote. qcow2 headers and
 * header extensions are parsed so that an image naming a backing file, an external data file or
 * encryption is refused before any tool opens it; VMDK descriptors are read for a parent link.
 * Pure functions: no I/O.
 * @module
 */
import { InstanceImagesError } from '../errors';

/** A format an import can be in. `iso` is stored and deployed as raw bytes. */
export type ImportFormat = 'qcow2' | 'raw' | 'vmdk' | 'vhdx' | 'vpc' | 'iso';

/** What detection found. */
export interface DetectedFormat {
  format: ImportFormat;
  /** The guest-visible size when the header says it (qcow2, vmdk). */
  virtualSizeBytes: number | null;
}

/** Detection needs more bytes first: at least `bytes` of the head (or the whole file when shorter). */
export interface NeedMoreBytes {
  needBytes: number;
}

/** Bytes of the head every detection looks at (ISO's volume descriptor lies at 32 KiB). */
export const DETECT_HEAD_BYTES = 64 * 1024;
/** The largest head detection ever asks for (a qcow2 cluster holding header extensions, a VMDK descriptor). */
export const MAX_HEAD_BYTES = 2 * 1024 * 1024;

const QCOW2_MAGIC = 0x514649fb;
const QCOW2_EXT_END = 0;
const QCOW2_EXT_BACKING_FORMAT = 0xe2792aca;
const QCOW2_EXT_DATA_FILE = 0x44415441;
const QCOW2_INCOMPAT_DATA_FILE = 1n << 2n;

/** An image whose format or content we refuse (stable code UNSUPPORTED_IMAGE). */
export function unsupportedImage(message: string, reason: string): InstanceImagesError {
  return new InstanceImagesError('UNSUPPORTED_IMAGE', message, { details: { reason } });
}

function ascii(head: Buffer, offset: number, text: string): boolean {
  return head.length >= offset + text.length && head.toString('latin1', offset, offset + text.length) === text;
}

/** Checks a qcow2 header and its extensions; returns the virtual size, or the bytes still needed. */
function inspectQcow2(head: Buffer, complete: boolean): number | NeedMoreBytes {
  if (head.length < 104 && !complete) return { needBytes: 104 };
  if (head.length < 72) throw unsupportedImage('The qcow2 header is truncated', 'qcow2-truncated');
  const version = head.readUInt32BE(4);
  if (version !== 2 && version !== 3) throw unsupportedImage(`qcow2 version ${version} is not supported`, 'qcow2-version');
  const backingOffset = head.readBigUInt64BE(8);
  const backingSize = head.readUInt32BE(16);
  if (backingOffset !== 0n || backingSize !== 0)
    throw unsupportedImage(
      'The qcow2 image names a backing file: only standalone images can be imported (flatten it with qemu-img convert first)',
      'qcow2-backing-file',
    );
  const clusterBits = head.readUInt32BE(20);
  if (clusterBits < 9 || clusterBits > 21) throw unsupportedImage(`The qcow2 cluster size 2^${clusterBits} is not valid`, 'qcow2-header');
  const virtualSize = head.readBigUInt64BE(24);
  if (head.readUInt32BE(32) !== 0) throw unsupportedImage('The qcow2 image is encrypted; import an unencrypted image', 'qcow2-encrypted');
  let extensionsAt = 72;
  if (version === 3) {
    if (head.length < 104) throw unsupportedImage('The qcow2 v3 header is truncated', 'qcow2-truncated');
    if ((head.readBigUInt64BE(72) & QCOW2_INCOMPAT_DATA_FILE) !== 0n)
      throw unsupportedImage('The qcow2 image keeps its data in an external data file; import a standalone image', 'qcow2-data-file');
    extensionsAt = head.readUInt32BE(100);
    if (extensionsAt < 104) throw unsupportedImage('The qcow2 header length is not valid', 'qcow2-header');
  }
  // Header extensions lie in the first cluster; walk them to their end marker.
  const clusterSize = 2 ** clusterBits;
  let at = extensionsAt;
  for (;;) {
    if (at + 8 > clusterSize) throw unsupportedImage('The qcow2 header extensions run past the first cluster', 'qcow2-header');
    if (head.length < at + 8) {
      if (complete) throw unsupportedImage('The qcow2 header extensions are truncated', 'qcow2-truncated');
      return { needBytes: Math.min(clusterSize, MAX_HEAD_BYTES) };
    }
    const type = head.readUInt32BE(at);
    const length = head.readUInt32BE(at + 4);
    if (type === QCOW2_EXT_END) break;
    if (type === QCOW2_EXT_DATA_FILE)
      throw unsupportedImage('The qcow2 image names an external data file; import a standalone image', 'qcow2-data-file');
    if (type === QCOW2_EXT_BACKING_FORMAT)
      throw unsupportedImage('The qcow2 image names a backing file format: only standalone images can be imported', 'qcow2-backing-file');
    at += 8 + Math.ceil(length / 8) * 8;
  }
  if (virtualSize <= 0n || virtualSize > BigInt(Number.MAX_SAFE_INTEGER))
    throw unsupportedImage('The qcow2 virtual size is not valid', 'qcow2-header');
  return Number(virtualSize);
}

/** Checks a sparse VMDK's embedded descriptor (no parent link, a single-file type); returns the virtual size. */
function inspectVmdk(head: Buffer, complete: boolean): number | NeedMoreBytes {
  if (head.length < 44) {
    if (complete) throw unsupportedImage('The VMDK header is truncated', 'vmdk-truncated');
    return { needBytes: 512 };
  }
  const capacitySectors = head.readBigUInt64LE(12);
  const descriptorOffset = Number(head.readBigUInt64LE(28)) * 512;
  const descriptorSize = Number(head.readBigUInt64LE(36)) * 512;
  if (descriptorOffset === 0 || descriptorSize === 0 || descriptorOffset + descriptorSize > MAX_HEAD_BYTES)
    throw unsupportedImage('The VMDK has no embedded descriptor where expected', 'vmdk-descriptor');
  if (head.length < descriptorOffset + descriptorSize) {
    if (complete) throw unsupportedImage('The VMDK descriptor is truncated', 'vmdk-truncated');
    return { needBytes: descriptorOffset + descriptorSize };
  }
  const descriptor = head.toString('latin1', descriptorOffset, descriptorOffset + descriptorSize).replace(/\0.*$/s, '');
  if (/^\s*parentFileNameHint\s*=\s*"[^"]+"/m.test(descriptor))
    throw unsupportedImage('The VMDK is a delta disk naming a parent; import a standalone image', 'vmdk-parent');
  const type = /^\s*createType\s*=\s*"([^"]*)"/m.exec(descriptor)?.[1];
  if (type !== 'monolithicSparse' && type !== 'streamOptimized')
    throw unsupportedImage(
      `The VMDK type ${JSON.stringify(type ?? 'unknown')} is not supported; import a single-file VMDK (monolithicSparse or streamOptimized)`,
      'vmdk-type',
    );
  return Number(capacitySectors) * 512;
}

/**
 * Detects the format of an image from its head. `complete` says the head is the whole file.
 * Returns the format, or how many bytes of the head detection needs first.
 * @throws UNSUPPORTED_IMAGE for formats and images we refuse (qcow2 with a backing or external
 *   data file, encrypted; VMDK descriptors and delta disks; VHD differencing disks; QED, VDI, LUKS,
 *   Parallels; an empty file).
 */
export function detectDiskFormat(head: Buffer, complete: boolean): DetectedFormat | NeedMoreBytes {
  if (head.length < DETECT_HEAD_BYTES && !complete) return { needBytes: DETECT_HEAD_BYTES };
  if (head.length === 0) throw unsupportedImage('The image is empty', 'empty');
  if (head.length >= 4 && head.readUInt32BE(0) === QCOW2_MAGIC) {
    const size = inspectQcow2(head, complete);
    return typeof size === 'number' ? { format: 'qcow2', virtualSizeBytes: size } : size;
  }
  if (ascii(head, 0, 'KDMV')) {
    const size = inspectVmdk(head, complete);
    return typeof size === 'number' ? { format: 'vmdk', virtualSizeBytes: size } : size;
  }
  if (ascii(head, 0, '# Disk DescriptorFile') || ascii(head, 0, 'COWD'))
    throw unsupportedImage('This VMDK is a descriptor of other files; import a single-file VMDK', 'vmdk-descriptor');
  if (ascii(head, 0, 'vhdxfile')) return { format: 'vhdx', virtualSizeBytes: null };
  if (ascii(head, 0, 'conectix')) {
    if (head.length >= 64 && head.readUInt32BE(60) === 4)
      throw unsupportedImage('The VHD is a differencing disk; import a standalone image', 'vpc-differencing');
    return { format: 'vpc', virtualSizeBytes: null };
  }
  const refused: Array<[boolean, string, string]> = [
    [ascii(head, 0, 'QED\0'), 'QED', 'qed'],
    [head.length >= 68 && head.readUInt32LE(64) === 0xbeda107f, 'VDI', 'vdi'],
    [ascii(head, 0, 'LUKS\xba\xbe'), 'LUKS-encrypted', 'luks'],
    [ascii(head, 0, 'WithoutFreeSpace') || ascii(head, 0, 'WithouFreSpacExt'), 'Parallels', 'parallels'],
  ];
  for (const [found, name, reason] of refused)
    if (found) throw unsupportedImage(`${name} images are not supported; convert it to qcow2 or raw first`, reason);
  if (ascii(head, 0x8001, 'CD001')) return { format: 'iso', virtualSizeBytes: null };
  return { format: 'raw', virtualSizeBytes: null };
}

/** The format qemu-img is told (`-f`): an ISO is raw bytes. */
export function qemuFormatOf(format: ImportFormat): Exclude<ImportFormat, 'iso'> {
  return format === 'iso' ? 'raw' : format;
}
