/**
 * Names of the driver's temporary files. Each carries a kind, a tag derived from the domain name
 * (so recovery of one domain never touches another's files) and a random id. The overlay prefix
 * is the marker recovery looks for in a domain's disk chain.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';

/** Prefix of every temporary file the driver creates in the scratch directory. */
export const SCRATCH_PREFIX = 'ii-';
/** Marker in the file name of a capture overlay (snapshot-commit method). */
export const OVERLAY_MARKER = 'ii-overlay-';
/** Suffix of a path output while it is being written. */
export const PART_SUFFIX = '.part';

/** An 8-hex tag of a domain name (file names never contain the name itself). */
export function domainTag(domainName: string): string {
  return createHash('sha256').update(domainName).digest('hex').slice(0, 8);
}

/** The temporary paths of one capture. */
export interface CaptureScratch {
  tag: string;
  id: string;
  /** NBD unix socket of a pull-mode backup. */
  socket: string;
  /** Scratch file of a pull-mode backup (holds blocks the guest overwrites during the copy). */
  backupScratch: string;
  /** Push-mode target when the output needs a second conversion. */
  pushTarget: string;
  /** Marker overlay of the snapshot-commit method. */
  overlay: string;
  /** Unix socket of the `qemu-nbd` export of a stopped domain's disk (chunked captures). */
  qemuNbdSocket: string;
  /** Pid file of that `qemu-nbd`. */
  qemuNbdPid: string;
  /** Work directory of a chunked capture's start (its XML files and answers; removed when it ends). */
  session: string;
  /** Output in the scratch directory for stream outputs. */
  output(extension: string): string;
  /** A received image (stream sources of a deploy). */
  received(extension: string): string;
}

/** Fresh temporary paths for one capture of `domainName` under `scratchDir`. */
export function captureScratch(scratchDir: string, domainName: string): CaptureScratch {
  const tag = domainTag(domainName);
  const id = randomBytes(4).toString('hex');
  const base = `${scratchDir.replace(/\/+$/, '')}/`;
  return {
    tag,
    id,
    socket: `${base}ii-nbd-${tag}-${id}.sock`,
    backupScratch: `${base}ii-scratch-${tag}-${id}.qcow2`,
    pushTarget: `${base}ii-push-${tag}-${id}.qcow2`,
    overlay: `${base}${OVERLAY_MARKER}${tag}-${id}.qcow2`,
    qemuNbdSocket: `${base}ii-qnbd-${tag}-${id}.sock`,
    qemuNbdPid: `${base}ii-qnbd-${tag}-${id}.pid`,
    session: `${base}ii-xml-${tag}-${id}.d`,
    output: (extension) => `${base}ii-out-${tag}-${id}.${extension}`,
    received: (extension) => `${base}ii-src-${tag}-${id}.${extension}`,
  };
}

/** Whether a file name in the scratch directory is one of ours (optionally: of this domain tag). */
export function isScratchName(name: string, tag?: string): boolean {
  const match = /^ii-(?:nbd|qnbd|scratch|push|overlay|out|src|probe|xml)-([0-9a-f]{8})-[0-9a-f]{8}(?:\.[a-z0-9]+)?$/.exec(name);
  return match !== null && (tag === undefined || match[1] === tag);
}

/** Whether a path's file name carries the overlay marker. */
export function isMarkerOverlay(path: string): boolean {
  const name = path.slice(path.lastIndexOf('/') + 1);
  return name.startsWith(OVERLAY_MARKER);
}
