import { describe, expect, it } from 'vitest';
import { validateChunkOutput } from '../../../drivers/hypervisor/libvirt/capture-chunks';
import {
  assertCheckpointName,
  parseCheckpointXml,
  parseImageBitmaps,
  parseQueryBlockBitmaps,
} from '../../../drivers/hypervisor/libvirt/checkpoints';
import { captureScratch, isScratchName } from '../../../drivers/hypervisor/libvirt/names';
import type { DomainDisk } from '../../../drivers/hypervisor/libvirt/parsers';
import { checkpointXml, pullBackupXml } from '../../../drivers/hypervisor/libvirt/xml-builders';
import { parseXml } from '../../../drivers/hypervisor/libvirt/xml';
import type { ChunkCaptureOutput } from '../../../src/ports/hypervisor-driver';

const CHECKPOINT = `<domaincheckpoint>
  <name>ii-cp-1</name>
  <creationTime>1796275686</creationTime>
  <disks>
    <disk name='vda' checkpoint='bitmap' bitmap='ii-cp-1'/>
    <disk name='vdb' checkpoint='no'/>
  </disks>
  <domain type='qemu'>
    <name>vm</name>
    <devices>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/vm/primary.qcow2'/><target dev='vda' bus='virtio'/></disk>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/vm/data.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    </devices>
  </domain>
</domaincheckpoint>`;

const output = (over: Partial<ChunkCaptureOutput> = {}): ChunkCaptureOutput => ({
  kind: 'chunks',
  chunkSizeBytes: 4 * 1024 * 1024,
  consume: async () => ({ sha256: '0'.repeat(64), sizeBytes: 0 }),
  ...over,
});

describe('libvirt checkpoints', () => {
  it('accepts plain names and refuses anything a shell, virsh or an NBD context name could read differently', () => {
    for (const name of ['ii-cp-1', 'a', 'img_0f3a.2', '0123e4567-e89b-12d3-a456-426614174000', 'x'.repeat(100)]) {
      expect(() => assertCheckpointName(name, 'n')).not.toThrow();
    }
    for (const name of ['', '-x', '.hidden', '../a', 'a/b', 'a b', "a'b", '$(id)', 'a:b', 'é', 'a\nb', 'x'.repeat(101), 42, null]) {
      expect(() => assertCheckpointName(name, 'n')).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    }
  });

  it('parses a checkpoint: its bitmaps per disk and the disk files it was taken on', () => {
    const parsed = parseCheckpointXml(CHECKPOINT);
    expect(parsed.name).toBe('ii-cp-1');
    expect(parsed.disks).toEqual([
      { target: 'vda', bitmap: 'ii-cp-1' },
      { target: 'vdb', bitmap: null },
    ]);
    expect(parsed.sources.get('vda')).toBe('/vm/primary.qcow2');
  });

  it('reads bitmap states from qemu-img info and from query-block', () => {
    const info = JSON.stringify({
      format: 'qcow2',
      'format-specific': {
        type: 'qcow2',
        data: {
          bitmaps: [
            { flags: ['auto'], name: 'good', granularity: 65536 },
            { flags: ['in-use', 'auto'], name: 'torn', granularity: 65536 },
            { flags: [], name: 'disabled', granularity: 65536 },
          ],
        },
      },
    });
    expect(parseImageBitmaps(info)).toEqual([
      { name: 'good', recording: true, inconsistent: false },
      { name: 'torn', recording: true, inconsistent: true },
      { name: 'disabled', recording: false, inconsistent: false },
    ]);
    expect(parseImageBitmaps(JSON.stringify({ format: 'qcow2', 'format-specific': { data: {} } }))).toEqual([]);
    const block = JSON.stringify({
      return: [
        { device: '', inserted: { file: '/vm/data.qcow2', 'dirty-bitmaps': [{ name: 'x', recording: true, persistent: true }] } },
        {
          device: '',
          inserted: {
            file: '/vm/primary.qcow2',
            'dirty-bitmaps': [
              { name: 'ii-cp-1', recording: true, persistent: true, busy: false },
              { name: 'bad', recording: true, persistent: true, inconsistent: true },
              { name: 'transient', recording: true, persistent: false },
            ],
          },
        },
      ],
    });
    expect(parseQueryBlockBitmaps(block, '/vm/primary.qcow2')).toEqual([
      { name: 'ii-cp-1', recording: true, inconsistent: false },
      { name: 'bad', recording: true, inconsistent: true },
      { name: 'transient', recording: false, inconsistent: false },
    ]);
    expect(parseQueryBlockBitmaps(block, '/vm/other.qcow2')).toBeNull();
  });

  it('builds the checkpoint and incremental backup documents with every value escaped', () => {
    const disks = [{ target: 'vda' }, { target: 'vdb' }, { target: 'sda' }] as DomainDisk[];
    const checkpoint = parseXml(checkpointXml('ii-cp-2', 'vda', disks));
    expect(checkpoint.name).toBe('domaincheckpoint');
    const entries = (checkpoint.children.find((c) => typeof c !== 'string' && c.name === 'disks') as ReturnType<typeof parseXml>).children
      .filter((c) => typeof c !== 'string')
      .map((c) => (c as ReturnType<typeof parseXml>).attributes);
    expect(entries).toEqual([
      { name: 'vda', checkpoint: 'bitmap' },
      { name: 'vdb', checkpoint: 'no' },
      { name: 'sda', checkpoint: 'no' },
    ]);
    const backup = pullBackupXml('vda', '/s/n.sock', '/s/scr.qcow2', disks, "cp'<1>");
    expect(backup).toMatch(/^<domainbackup mode="pull"><incremental>cp&apos;&lt;1&gt;<\/incremental><server /);
    expect(pullBackupXml('vda', '/s/n.sock', '/s/scr.qcow2', disks)).not.toContain('incremental');
  });

  it('validates a chunked output', () => {
    expect(() => validateChunkOutput(output({ checkpoint: { create: 'a', since: 'b' } }), undefined, undefined)).not.toThrow();
    expect(() => validateChunkOutput(output({ checkpoint: { create: 'a', since: null } }), 'raw', false)).not.toThrow();
    const bad: Array<[ChunkCaptureOutput, unknown, unknown]> = [
      [output({ chunkSizeBytes: 3 * 1024 * 1024 }), undefined, undefined],
      [output({ chunkSizeBytes: 32 * 1024 }), undefined, undefined],
      [output({ chunkSizeBytes: 128 * 1024 * 1024 }), undefined, undefined],
      [output({ chunkSizeBytes: Number.NaN }), undefined, undefined],
      [output(), 'qcow2', undefined],
      [output(), undefined, true],
      [output({ checkpoint: { create: 'a', since: 'a' } }), undefined, undefined],
      [output({ checkpoint: { create: '-a' } }), undefined, undefined],
      [output({ checkpoint: { create: 'a', since: 'b c' } }), undefined, undefined],
    ];
    for (const [o, format, compress] of bad) {
      expect(() => validateChunkOutput(o, format, compress)).toThrow(expect.objectContaining({ code: 'VALIDATION_FAILED' }));
    }
  });

  it("names a qemu-nbd export's socket and pid file as scratch files of its domain", () => {
    const scratch = captureScratch('/var/tmp/s', 'vm');
    for (const path of [scratch.qemuNbdSocket, scratch.qemuNbdPid]) {
      const name = path.slice('/var/tmp/s/'.length);
      expect(isScratchName(name, scratch.tag)).toBe(true);
      expect(isScratchName(name, '00000000')).toBe(false);
    }
  });
});
