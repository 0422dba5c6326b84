/**
 * Builders of the XML documents the driver hands to libvirt. Every value is escaped by the
 * serializer, so a path or name can never add elements or attributes.
 * @module
 */
import type { DomainDisk } from './parsers';
import { el, serializeXml, type XmlElement } from './xml';

/** The other disks of the domain, excluded from a backup or snapshot. */
function excluded(disks: readonly DomainDisk[], target: string, attribute: 'backup' | 'snapshot'): XmlElement[] {
  return disks.filter((d) => d.target !== '' && d.target !== target).map((d) => el('disk', { name: d.target, [attribute]: 'no' }));
}

/**
 * `<domainbackup mode='pull'>` exporting `target` over NBD on a unix socket with a scratch file;
 * with `incremental`, the export carries the bitmap `backup-<target>` of the blocks written since
 * that checkpoint.
 */
export function pullBackupXml(
  target: string,
  socketPath: string,
  scratchPath: string,
  disks: readonly DomainDisk[],
  incremental?: string,
): string {
  return serializeXml(
    el('domainbackup', { mode: 'pull' }, [
      ...(incremental === undefined ? [] : [el('incremental', {}, [incremental])]),
      el('server', { transport: 'unix', socket: socketPath }),
      el('disks', {}, [
        el('disk', { name: target, backup: 'yes', type: 'file' }, [el('scratch', { file: scratchPath })]),
        ...excluded(disks, target, 'backup'),
      ]),
    ]),
  );
}

/** `<domainbackup mode='push'>` writing `target` into a new file. */
export function pushBackupXml(target: string, targetPath: string, targetFormat: string, disks: readonly DomainDisk[]): string {
  return serializeXml(
    el('domainbackup', { mode: 'push' }, [
      el('disks', {}, [
        el('disk', { name: target, backup: 'yes', type: 'file' }, [
          el('target', { file: targetPath }),
          el('driver', { type: targetFormat }),
        ]),
        ...excluded(disks, target, 'backup'),
      ]),
    ]),
  );
}

/** A disk-only external snapshot of `target` into `overlayPath` (other disks untouched). */
export function overlaySnapshotXml(name: string, target: string, overlayPath: string, disks: readonly DomainDisk[]): string {
  return serializeXml(
    el('domainsnapshot', {}, [
      el('name', {}, [name]),
      el('description', {}, ['instance-images capture overlay; committed back at once']),
      el('disks', {}, [
        el('disk', { name: target, snapshot: 'external', type: 'file' }, [
          el('source', { file: overlayPath }),
          el('driver', { type: 'qcow2' }),
        ]),
        ...excluded(disks, target, 'snapshot'),
      ]),
    ]),
  );
}

/** `<domaincheckpoint>` named `name` with a bitmap on `target` only (other disks get none). */
export function checkpointXml(name: string, target: string, disks: readonly DomainDisk[]): string {
  return serializeXml(
    el('domaincheckpoint', {}, [
      el('name', {}, [name]),
      el('description', {}, ['instance-images chunked capture: blocks written since this capture']),
      el('disks', {}, [
        el('disk', { name: target, checkpoint: 'bitmap' }),
        ...disks.filter((d) => d.target !== '' && d.target !== target).map((d) => el('disk', { name: d.target, checkpoint: 'no' })),
      ]),
    ]),
  );
}
