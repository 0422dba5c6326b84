/** Format detection on crafted headers: qcow2 (backing file, data file, extensions, encryption), VMDK, VHDX, VHD, ISO, raw. */
import { describe, expect, it } from 'vitest';
import { detectDiskFormat, type DetectedFormat } from '../../../src/import/format';
import { isInstanceImagesError } from '../../../src/errors';

const GiB = 1024 ** 3;

function qcow2(
  options: { version?: 2 | 3; backingOffset?: number; incompat?: bigint; crypt?: number; extensions?: Array<[number, Buffer]> } = {},
): Buffer {
  const version = options.version ?? 3;
  const head = Buffer.alloc(64 * 1024);
  head.writeUInt32BE(0x514649fb, 0);
  head.writeUInt32BE(version, 4);
  head.writeBigUInt64BE(BigInt(options.backingOffset ?? 0), 8);
  head.writeUInt32BE(options.backingOffset ? 10 : 0, 16);
  head.writeUInt32BE(16, 20);
  head.writeBigUInt64BE(BigInt(GiB), 24);
  head.writeUInt32BE(options.crypt ?? 0, 32);
  let at = 72;
  if (version === 3) {
    head.writeBigUInt64BE(options.incompat ?? 0n, 72);
    head.writeUInt32BE(4, 96);
    head.writeUInt32BE(104, 100);
    at = 104;
  }
  for (const [type, data] of options.extensions ?? []) {
    head.writeUInt32BE(type, at);
    head.writeUInt32BE(data.length, at + 4);
    data.copy(head, at + 8);
    at += 8 + Math.ceil(data.length / 8) * 8;
  }
  head.writeUInt32BE(0, at);
  head.writeUInt32BE(0, at + 4);
  return head;
}

function detect(head: Buffer, complete = true): DetectedFormat {
  const found = detectDiskFormat(head, complete);
  if (!('format' in found)) throw new Error(`needs ${found.needBytes} bytes`);
  return found;
}

function reasonOf(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    if (isInstanceImagesError(error, 'UNSUPPORTED_IMAGE')) return error.details.reason;
    throw error;
  }
  return 'accepted';
}

function vmdk(descriptor: string): Buffer {
  const head = Buffer.alloc(64 * 1024);
  head.write('KDMV', 0, 'latin1');
  head.writeUInt32LE(1, 4);
  head.writeBigUInt64LE(2097152n, 12); // capacity in sectors: 1 GiB
  head.writeBigUInt64LE(128n, 20);
  head.writeBigUInt64LE(1n, 28); // descriptor at sector 1
  head.writeBigUInt64LE(20n, 36); // 20 sectors
  head.write(descriptor, 512, 'latin1');
  return head;
}

describe('disk format detection', () => {
  it('reads a standalone qcow2 v3 and v2 with harmless extensions', () => {
    expect(detect(qcow2())).toEqual({ format: 'qcow2', virtualSizeBytes: GiB });
    expect(detect(qcow2({ version: 2 }))).toEqual({ format: 'qcow2', virtualSizeBytes: GiB });
    expect(detect(qcow2({ extensions: [[0x6803f857, Buffer.alloc(48)]] })).format).toBe('qcow2');
  });

  it('refuses a qcow2 naming a backing file, an external data file (flag or extension), a backing format, or encryption', () => {
    expect(reasonOf(() => detect(qcow2({ backingOffset: 512 })))).toBe('qcow2-backing-file');
    expect(reasonOf(() => detect(qcow2({ version: 2, backingOffset: 512 })))).toBe('qcow2-backing-file');
    expect(reasonOf(() => detect(qcow2({ incompat: 1n << 2n })))).toBe('qcow2-data-file');
    expect(reasonOf(() => detect(qcow2({ extensions: [[0x44415441, Buffer.from('/etc/shadow')]] })))).toBe('qcow2-data-file');
    expect(
      reasonOf(() =>
        detect(
          qcow2({
            extensions: [
              [0x6803f857, Buffer.alloc(16)],
              [0xe2792aca, Buffer.from('raw')],
            ],
          }),
        ),
      ),
    ).toBe('qcow2-backing-file');
    expect(reasonOf(() => detect(qcow2({ crypt: 1 })))).toBe('qcow2-encrypted');
    expect(reasonOf(() => detect(qcow2().subarray(0, 50)))).toBe('qcow2-truncated');
  });

  it('asks for more bytes until it has the head (never guesses from a partial one)', () => {
    expect(detectDiskFormat(qcow2().subarray(0, 100), false)).toEqual({ needBytes: 64 * 1024 });
  });

  it('reads a sparse VMDK and refuses delta disks and descriptor files', () => {
    expect(detect(vmdk('# Disk DescriptorFile\ncreateType="monolithicSparse"\n'))).toEqual({ format: 'vmdk', virtualSizeBytes: GiB });
    expect(detect(vmdk('createType="streamOptimized"\n')).format).toBe('vmdk');
    expect(reasonOf(() => detect(vmdk('createType="monolithicSparse"\nparentFileNameHint="base.vmdk"\n')))).toBe('vmdk-parent');
    expect(reasonOf(() => detect(vmdk('createType="twoGbMaxExtentFlat"\n')))).toBe('vmdk-type');
    expect(reasonOf(() => detect(Buffer.from('# Disk DescriptorFile\nRW 100 FLAT "/etc/passwd" 0\n')))).toBe('vmdk-descriptor');
  });

  it('tells VHDX, VHD (refusing differencing disks), ISO and raw apart, and refuses QED, VDI, LUKS and empty files', () => {
    const vhdx = Buffer.alloc(64 * 1024);
    vhdx.write('vhdxfile', 0, 'latin1');
    expect(detect(vhdx).format).toBe('vhdx');
    const vhd = Buffer.alloc(64 * 1024);
    vhd.write('conectix', 0, 'latin1');
    vhd.writeUInt32BE(3, 60);
    expect(detect(vhd).format).toBe('vpc');
    vhd.writeUInt32BE(4, 60);
    expect(reasonOf(() => detect(vhd))).toBe('vpc-differencing');
    const iso = Buffer.alloc(64 * 1024);
    iso.write('CD001', 0x8001, 'latin1');
    expect(detect(iso).format).toBe('iso');
    expect(detect(Buffer.alloc(64 * 1024, 0xab))).toEqual({ format: 'raw', virtualSizeBytes: null });
    expect(detect(Buffer.from('short raw file'), true).format).toBe('raw');
    expect(reasonOf(() => detect(Buffer.from('QED\0xxxxxxxxxxxxxxxx')))).toBe('qed');
    const vdi = Buffer.alloc(512);
    vdi.writeUInt32LE(0xbeda107f, 64);
    expect(reasonOf(() => detect(vdi))).toBe('vdi');
    expect(reasonOf(() => detect(Buffer.from('LUKS\xba\xbe\0\x01', 'latin1')))).toBe('luks');
    expect(reasonOf(() => detect(Buffer.alloc(0)))).toBe('empty');
  });
});
