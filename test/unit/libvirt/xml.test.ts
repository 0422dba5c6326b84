import { describe, expect, it } from 'vitest';
import { parseXml, serializeXml, el, textOf, child } from '../../../drivers/hypervisor/libvirt/xml';
import { pullBackupXml, overlaySnapshotXml } from '../../../drivers/hypervisor/libvirt/xml-builders';
import { parseBackupXml, parseDomainDisks } from '../../../drivers/hypervisor/libvirt/parsers';

describe('xml reader/writer', () => {
  it('reads declarations, comments, entities and CDATA', () => {
    const root = parseXml(`<?xml version="1.0"?>\n<!-- c --><a x="1 &amp; 2" y='&lt;&#65;&#x42;'><b>t&gt;</b><![CDATA[<raw>]]></a>`);
    expect(root.attributes).toEqual({ x: '1 & 2', y: '<AB' });
    expect(textOf(child(root, 'b')!)).toBe('t>');
    expect(textOf(root)).toContain('<raw>');
  });

  it('rejects malformed documents', () => {
    for (const bad of ['<a>', '<a></b>', '<a/><b/>', 'text', '<a x=1/>', '<a>&bogus;</a>']) expect(() => parseXml(bad)).toThrow();
  });

  it('escapes hostile values so they cannot change the structure', () => {
    const hostile = `/x/'"><source file='/etc/shadow'/>&`;
    const doc = serializeXml(el('disk', { name: hostile }, [hostile]));
    const back = parseXml(doc);
    expect(back.attributes.name).toBe(hostile);
    expect(back.children).toEqual([hostile]);
  });

  it('builds backup and snapshot XML that excludes every other disk', () => {
    const disks = parseDomainDisks(
      `<domain><devices><disk device='cdrom'><target dev='sda'/></disk><disk device='disk'><source file='/a'/><target dev='vda'/></disk><disk device='disk'><target dev='vdb'/></disk></devices></domain>`,
    );
    const pull = pullBackupXml('vda', '/s/n.sock', "/s/sc'r.qcow2", disks);
    expect(parseBackupXml(pull)).toEqual({ mode: 'pull', socket: '/s/n.sock', files: ["/s/sc'r.qcow2"] });
    expect(pull).toContain('<disk name="sda" backup="no"/>');
    expect(pull).toContain('<disk name="vdb" backup="no"/>');
    const snap = parseXml(overlaySnapshotXml('n', 'vda', '/s/ii-overlay-1.qcow2', disks));
    const snapDisks = child(snap, 'disks')!.children.filter((c) => typeof c !== 'string');
    expect(snapDisks.map((d) => (typeof d === 'string' ? '' : `${d.attributes.name}:${d.attributes.snapshot}`))).toEqual([
      'vda:external',
      'sda:no',
      'vdb:no',
    ]);
  });
});
