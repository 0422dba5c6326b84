/**
 * libvirt checkpoints for incremental chunked captures: name checks, the proof that a checkpoint
 * can be trusted for an incremental read, and deletion (metadata and bitmaps only, never the
 * guest's data or disk chain).
 *
 * A checkpoint is trusted only when all of these hold; otherwise the capture reads everything:
 * - libvirt knows it for this domain, and it covers the current primary disk (`checkpoint='bitmap'`
 *   on that target, taken when the target was the same file as now);
 * - the disk is qcow2 and holds its persistent bitmap, which records (`auto` / `recording`) and is
 *   not flagged inconsistent (`in-use` on a disk nobody has open, `inconsistent` in `query-block`).
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { ExecResult } from '../../../src/ports/executor';
import { commandError, type HostCommands } from './commands';
import { domainXml } from './inspect';
import { parseDomainDisks, parseDomState } from './parsers';
import { child, childElements, parseXml, textOf, type XmlElement } from './xml';

/** Checkpoint names this driver creates and accepts: they reach virsh, qemu-img and NBD context names. */
const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** @throws VALIDATION_FAILED unless `name` is a plain checkpoint name. */
export function assertCheckpointName(name: unknown, field: string): asserts name is string {
  if (typeof name !== 'string' || !CHECKPOINT_NAME.test(name)) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      `${field} must be a checkpoint name of 1 to 100 letters, digits, "_", "." or "-", starting with a letter or digit`,
      { fields: [{ path: field, message: 'must be a plain checkpoint name' }] },
    );
  }
}

/** One disk of a checkpoint: its target and the bitmap recorded for it (null: not covered). */
export interface CheckpointDisk {
  target: string;
  bitmap: string | null;
}

/** What `virsh checkpoint-dumpxml` says about a checkpoint. */
export interface CheckpointXml {
  name: string;
  disks: CheckpointDisk[];
  /** The source of each disk of the domain when the checkpoint was taken, by target. */
  sources: Map<string, string>;
}

/** Parses `virsh checkpoint-dumpxml`. */
export function parseCheckpointXml(text: string): CheckpointXml {
  const root = parseXml(text);
  const nameElement = child(root, 'name');
  const disks = childElements(child(root, 'disks') ?? ({ name: 'disks', attributes: {}, children: [] } as XmlElement), 'disk').map(
    (disk) => ({
      target: disk.attributes.name ?? '',
      bitmap: disk.attributes.checkpoint === 'bitmap' ? (disk.attributes.bitmap ?? null) : null,
    }),
  );
  const sources = new Map<string, string>();
  const domain = child(root, 'domain');
  if (domain) for (const disk of parseDomainDisks(domain)) if (disk.source !== null) sources.set(disk.target, disk.source);
  return { name: nameElement ? textOf(nameElement).trim() : '', disks, sources };
}

/** A persistent bitmap of a disk and its state. */
export interface BitmapState {
  name: string;
  /** Records writes (`auto` in the image, `recording` in QEMU). */
  recording: boolean;
  /** Flagged inconsistent (`in-use` left in an image nobody has open, or `inconsistent` in QEMU). */
  inconsistent: boolean;
}

/** The bitmaps `qemu-img info --output=json` reports for a qcow2 image that no process has open. */
export function parseImageBitmaps(json: string): BitmapState[] {
  const info = JSON.parse(json) as { 'format-specific'?: { data?: { bitmaps?: Array<{ name?: unknown; flags?: unknown }> } } };
  const bitmaps = info['format-specific']?.data?.bitmaps ?? [];
  return bitmaps.map((b) => {
    const flags = Array.isArray(b.flags) ? b.flags.map(String) : [];
    return { name: String(b.name), recording: flags.includes('auto'), inconsistent: flags.includes('in-use') };
  });
}

/** The bitmaps of the block device whose top image is `path`, from QMP `query-block`. */
export function parseQueryBlockBitmaps(json: string, path: string): BitmapState[] | null {
  const reply = JSON.parse(json) as { return?: Array<{ inserted?: { file?: unknown; 'dirty-bitmaps'?: Array<Record<string, unknown>> } }> };
  const device = (reply.return ?? []).find((d) => d.inserted?.file === path);
  if (!device?.inserted) return null;
  return (device.inserted['dirty-bitmaps'] ?? []).map((b) => ({
    name: String(b.name),
    recording: b.recording === true && b.persistent === true,
    inconsistent: b.inconsistent === true,
  }));
}

/** The checkpoint's XML (with the domain's disks then), or null when the domain has no checkpoint of that name. */
export async function readCheckpoint(cmd: HostCommands, domainName: string, name: string): Promise<CheckpointXml | null> {
  return checkpointFromResult(cmd, await cmd.tryVirsh(['checkpoint-dumpxml', '--domain', domainName, '--checkpointname', name]));
}

/** The disk an incremental read would use, as the capture inspected it. */
export interface CheckpointedDisk {
  target: string;
  path: string;
  format: string;
  running: boolean;
}

/**
 * Why `since` cannot be trusted for an incremental read of `disk`, or null when it can (see the
 * module's rules), from libvirt's `checkpoint` (null: the domain has none of that name, or it
 * could not be read) and the disk's `bitmaps` (null: they could not be read). Never throws: a
 * missing or broken checkpoint only means a full read.
 */
export function incrementalRefusal(
  disk: CheckpointedDisk,
  since: string,
  checkpoint: CheckpointXml | null,
  bitmaps: readonly BitmapState[] | null,
): string | null {
  if (disk.format !== 'qcow2') return `the disk is ${disk.format}, not qcow2`;
  if (checkpoint === null) return `the domain has no checkpoint ${JSON.stringify(since)}`;
  const entry = checkpoint.disks.find((d) => d.target === disk.target);
  if (!entry?.bitmap) return `checkpoint ${JSON.stringify(since)} does not cover ${disk.target}`;
  if (checkpoint.sources.get(disk.target) !== disk.path) return `checkpoint ${JSON.stringify(since)} was taken on another disk file`;
  if (bitmaps === null) return 'the bitmaps of the disk could not be read';
  const bitmap = bitmaps.find((b) => b.name === entry.bitmap);
  if (!bitmap) return `the disk has no bitmap ${JSON.stringify(entry.bitmap)}`;
  if (bitmap.inconsistent) return `bitmap ${JSON.stringify(entry.bitmap)} is flagged inconsistent`;
  if (!bitmap.recording) return `bitmap ${JSON.stringify(entry.bitmap)} does not record writes`;
  return null;
}

/** The checkpoint `checkpoint-dumpxml` printed, null when the domain has none of that name. @throws COMMAND_FAILED otherwise. */
export function checkpointFromResult(cmd: HostCommands, result: ExecResult): CheckpointXml | null {
  if (result.exitCode === 0) return parseCheckpointXml(result.stdout);
  if (/checkpoint not found|no domain checkpoint/i.test(result.stderr)) return null;
  throw commandError(cmd.virshArgv(['checkpoint-dumpxml']), result);
}

/** The bitmaps in QMP `query-block`'s answer for the disk at `path`, null when unreadable. */
export function bitmapsFromQueryBlock(result: ExecResult, path: string): BitmapState[] | null {
  if (result.exitCode !== 0) return null;
  try {
    return parseQueryBlockBitmaps(result.stdout, path);
  } catch {
    return null;
  }
}

/** The bitmaps in a stopped qcow2 image's `qemu-img info --output=json`, null when unreadable. */
export function bitmapsFromImageInfo(result: ExecResult): BitmapState[] | null {
  if (result.exitCode !== 0) return null;
  try {
    return parseImageBitmaps(result.stdout);
  } catch {
    return null;
  }
}

/** Bitmaps of a qcow2 image nobody has open. */
async function imageBitmaps(cmd: HostCommands, path: string): Promise<BitmapState[] | null> {
  return bitmapsFromImageInfo(await cmd.tryRun(['qemu-img', 'info', '--output=json', '-U', '-f', 'qcow2', path]));
}

/**
 * Deletes one checkpoint; a name libvirt does not know is ignored. A running domain's checkpoint
 * goes through `virsh checkpoint-delete` (its bitmaps are removed or merged by libvirt). libvirt 9
 * cannot delete a checkpoint of a domain that is shut off, so there the bitmaps are removed from
 * the qcow2 disks with `qemu-img bitmap --remove` (every checkpoint's bitmap records on its own,
 * so nothing needs merging) and then the metadata with `checkpoint-delete --metadata`.
 * @throws COMMAND_FAILED when libvirt or qemu-img refuses.
 */
export async function deleteCheckpoint(cmd: HostCommands, domainName: string, name: string): Promise<void> {
  const checkpoint = await readCheckpoint(cmd, domainName, name);
  if (checkpoint === null) return;
  const state = parseDomState((await cmd.virsh(['domstate', '--domain', domainName])).stdout);
  if (state !== 'shutoff') {
    const result = await cmd.tryVirsh(['checkpoint-delete', '--domain', domainName, '--checkpointname', name]);
    if (result.exitCode === 0 || (await readCheckpoint(cmd, domainName, name)) === null) return;
    throw new InstanceImagesError('COMMAND_FAILED', `Could not delete checkpoint ${JSON.stringify(name)}: ${result.stderr.trim()}`);
  }
  const { root } = await domainXml(cmd, domainName, true);
  const disks = parseDomainDisks(root);
  for (const entry of checkpoint.disks) {
    const disk = disks.find((d) => d.target === entry.target);
    if (!entry.bitmap || disk?.source == null || disk.driverType !== 'qcow2') continue;
    const bitmaps = await imageBitmaps(cmd, disk.source);
    if (!bitmaps?.some((b) => b.name === entry.bitmap)) continue;
    await cmd.run(['qemu-img', 'bitmap', '--remove', '-f', 'qcow2', disk.source, entry.bitmap]);
  }
  await cmd.virsh(['checkpoint-delete', '--domain', domainName, '--checkpointname', name, '--metadata']);
}
