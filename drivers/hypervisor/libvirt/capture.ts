/**
 * Capture of a domain's primary disk: snapshot + copy + blockcommit (`auto`'s first choice for a
 * running domain), pull-mode backup, push-mode backup, or a cold convert of a stopped domain.
 * Whatever happens, the domain ends on its original disk chain with no job running and no
 * temporary file left (an overlay whose merge failed is kept for recovery).
 * @module
 */
import { InstanceImagesError } from '../../../src/errors';
import type { DiskFormat } from '../../../src/model';
import type { CaptureRequest, CaptureResult } from '../../../src/ports/hypervisor-driver';
import {
  captureFailure,
  dirname,
  newRun,
  reportStage,
  stage,
  throwIfAborted,
  type CaptureContext,
  type Run,
  type Sealed,
} from './capture-run';
import type { HostCommands } from './commands';
import {
  inspectDomain,
  iothreadExportRefused,
  primaryOnIothread,
  refuseEncryptedDisk,
  type HypervisorCapabilities,
  type LibvirtDomainInfo,
} from './inspect';
import { captureScratch, PART_SUFFIX } from './names';
import type { CaptureMethod } from './options';
import { parseDomainDisks, parseDomJobInfo, parseLabelledLines, selectPrimaryDisk } from './parsers';
import { beginBackup, endBackupJob, withFreeze } from './backup-job';
import { captureChunked, validateChunkOutput } from './capture-chunks';
import { seal } from './seal';
import { overlaySnapshotXml, pullBackupXml, pushBackupXml } from './xml-builders';
import { domainXml } from './inspect';
import { escapeXml, parseXml, type XmlElement } from './xml';
import { askVirsh } from './virsh-batch';

export type { CaptureContext } from './capture-run';

type LiveMethod = 'pull-backup' | 'push-backup' | 'snapshot-commit';

/** Validates the request's own fields. */
function validate(request: CaptureRequest): { format: DiskFormat; compress: boolean } {
  if (request.output.kind === 'chunks') {
    validateChunkOutput(request.output, request.format, request.compress);
    validateDomainName(request.domainName);
    return { format: 'raw', compress: false };
  }
  const format = request.format ?? 'qcow2';
  if (format !== 'qcow2' && format !== 'raw') {
    throw new InstanceImagesError('VALIDATION_FAILED', `Unsupported output format ${JSON.stringify(format)}`, {
      fields: [{ path: 'format', message: 'must be qcow2 or raw' }],
    });
  }
  const compress = request.compress ?? false;
  if (compress && format === 'raw') {
    throw new InstanceImagesError('VALIDATION_FAILED', 'Compression needs the qcow2 format', {
      fields: [{ path: 'compress', message: 'only with format qcow2' }],
    });
  }
  if (request.output.kind === 'path') assertAbsolutePath(request.output.path, 'output.path');
  validateDomainName(request.domainName);
  return { format, compress };
}

function validateDomainName(domainName: string): void {
  if (domainName === '' || domainName.includes('\u0000')) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'A domain name is required', {
      fields: [{ path: 'domainName', message: 'must not be empty' }],
    });
  }
}

/** Paths reach qemu-img, which reads `proto:...` specially unless the path starts with `/`. */
export function assertAbsolutePath(path: string, field: string): void {
  // eslint-disable-next-line no-control-regex
  if (!path.startsWith('/') || /[\u0000-\u001f]/.test(path) || path.split('/').includes('..') || path.endsWith('/')) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      `${field} must be an absolute file path without "..", control characters or a trailing slash`,
      {
        fields: [{ path: field, message: 'must be an absolute file path' }],
      },
    );
  }
}

/** The `-O FMT [-c -o compression_type=...]` arguments of the output. */
function outputArgs(run: Run): string[] {
  const args = ['-O', run.format];
  if (run.compress) args.push('-c', '-o', `compression_type=${run.zstd ? 'zstd' : 'zlib'}`);
  return args;
}

/** Checks that the scratch directory and the output location can hold the disk (one remote command). */
async function preflightSpace(run: Run): Promise<void> {
  const { ctx, request, domain } = run;
  const need = domain.primaryDisk.allocationBytes + ctx.spaceMarginBytes;
  const checks: Array<{ where: string; path: string; need: number }> = [];
  // The storage's key may name sub-directories that do not exist yet (images/<account>/...).
  const create = request.output.kind === 'path' ? dirname(request.output.path) : undefined;
  const root = request.output.kind === 'path' ? request.output.root : undefined;
  if (create !== undefined) checks.push({ where: 'target', path: create, need });
  // A stream output is converted into the scratch directory; live methods keep a small file there.
  const scratchNeed = request.output.kind === 'stream' ? need : domain.state === 'shutoff' ? 0 : ctx.spaceMarginBytes;
  if (scratchNeed > 0) checks.push({ where: 'scratch', path: ctx.scratchDir, need: scratchNeed });
  if (checks.length === 0) return;
  const free = await ctx.cmd.freeBytesOf(
    checks.map((check) => check.path),
    create,
    root,
  );
  checks.forEach((check, index) => {
    const available = free[index] ?? 0;
    if (available < check.need) {
      throw new InstanceImagesError(
        'STORAGE_FULL',
        `Not enough free space in the ${check.where} directory on the hypervisor: ${available} bytes free, ${check.need} needed for a disk holding ${domain.primaryDisk.allocationBytes} bytes`,
        { details: { where: check.where, freeBytes: available, neededBytes: check.need } },
      );
    }
  });
}

/** Converts `source` into `run.outFile` with progress against the disk's allocation. */
async function convert(run: Run, sourceArgs: string[], step: string): Promise<void> {
  const total = Math.max(run.domain.primaryDisk.allocationBytes, 1);
  run.progress(step, 0, total);
  await stage(run, 'copy', () =>
    run.ctx.cmd.qemuImgWithProgress(
      ['qemu-img', 'convert', '-p', ...sourceArgs, ...outputArgs(run), run.outFile],
      (percent) => run.progress(step, Math.round((percent / 100) * total), total),
      {
        signal: run.signal,
        fallback: 'CAPTURE_FAILED',
        // A path output is written through a descriptor of a file made anew (never through a link).
        // It is not written back during the copy: its fsync runs beside the hash, which reads it anyway.
        ...(run.request.output.kind === 'path'
          ? { flush: run.outFile, writeBack: false, ...(run.request.output.root ? { root: run.request.output.root } : {}) }
          : {}),
      },
    ),
  );
}

/** Cold capture of a stopped domain. */
async function captureCold(run: Run): Promise<Sealed> {
  const { path, format } = run.domain.primaryDisk;
  const source = ['-U', '-f', String(format), path];
  await convert(run, source, 'copy');
  return seal(run);
}

/** Live capture by a pull-mode backup exported over NBD on a unix socket. */
async function capturePull(run: Run): Promise<Sealed & { frozen: boolean }> {
  const { cmd } = run.ctx;
  const { target } = run.domain.primaryDisk;
  const { socket, backupScratch } = run.scratch;
  const xml = pullBackupXml(target, socket, backupScratch, run.domain.disks);
  const files = [socket, backupScratch];
  let job = 'not started' as 'not started' | 'running' | 'ending';
  try {
    const frozen = await withFreeze(run, () =>
      stage(run, 'start-job', async () => {
        await beginBackup(run, xml);
        job = 'running';
      }),
    );
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'pull-backup' });
    throwIfAborted(run.signal);
    await convert(run, ['-f', 'raw', `nbd+unix:///${target}?socket=${socket}`], 'copy');
    // The converter has read every block: the job ends while the output is sealed (or streamed).
    job = 'ending';
    const sealed = await seal(run, () => endBackupJob(run, files));
    return { ...sealed, frozen };
  } finally {
    // A job whose start failed midway (a dropped connection) may still exist: its socket tells.
    if (job === 'running') await endBackupJob(run, files);
    else if (job === 'not started') await ((await cmd.exists(socket)) ? endBackupJob(run, files) : cmd.remove(...files));
  }
}

/** The QEMU process id of a running domain, from libvirt's pid file; null when unknown. */
async function qemuPid(run: Run): Promise<number | null> {
  // libvirt 9 names the pid file after the XML-escaped domain name; try both spellings.
  for (const name of new Set([run.domain.name, escapeXml(run.domain.name)])) {
    const result = await run.ctx.cmd.tryRun(['cat', '--', `/run/libvirt/qemu/${name}.pid`]);
    const pid = Number(result.stdout.trim());
    if (result.exitCode === 0 && Number.isSafeInteger(pid) && pid > 0) return pid;
  }
  return null;
}

/**
 * Waits until QEMU has released `path` (it still holds it for a few ms after a push job completes):
 * the file is no longer among the QEMU process's open files, and a `qemu-img info` without `-U`
 * gets its shared lock.
 */
async function waitReleased(run: Run, path: string, timeoutMs = 30_000): Promise<void> {
  const { cmd } = run.ctx;
  const pid = await qemuPid(run);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    let open = false;
    if (pid !== null) {
      const fds = await cmd.tryRun(['find', `/proc/${pid}/fd`, '-mindepth', '1', '-maxdepth', '1', '-type', 'l', '-printf', '%l\\0']);
      open = fds.exitCode === 0 && fds.stdout.split('\u0000').includes(path);
    }
    if (!open && (await cmd.tryRun(['qemu-img', 'info', '--output=json', path])).exitCode === 0) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new InstanceImagesError('CAPTURE_FAILED', 'QEMU did not release the backup target in time');
}

/** Live capture by a push-mode backup into a qcow2 file, converted again only when needed. */
async function capturePush(run: Run): Promise<Sealed & { frozen: boolean }> {
  const { cmd } = run.ctx;
  const direct = run.format === 'qcow2' && !run.compress;
  const target = direct ? run.outFile : run.scratch.pushTarget;
  const disk = run.domain.primaryDisk;
  const xml = pushBackupXml(disk.target, target, 'qcow2', run.domain.disks);
  let started = false;
  try {
    const frozen = await withFreeze(run, () =>
      stage(run, 'start-job', async () => {
        await beginBackup(run, xml);
        started = true;
      }),
    );
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'push-backup' });
    await stage(run, 'copy', () => waitPushJob(run, target));
    started = false;
    // The job completed: QEMU wrote and flushed every block of the point-in-time copy.
    if (direct) return { ...(await seal(run)), frozen };
    await convert(run, ['-f', 'qcow2', target], 'convert');
    return { ...(await seal(run, () => cmd.remove(run.scratch.pushTarget))), frozen };
  } finally {
    if (started) await endBackupJob(run, []);
    await cmd.remove(run.scratch.pushTarget);
  }
}

/** Follows a push-mode backup job to its end (progress from its statistics) and until QEMU released `target`. */
async function waitPushJob(run: Run, target: string): Promise<void> {
  const { cmd } = run.ctx;
  const total = run.domain.primaryDisk.virtualSizeBytes;
  for (;;) {
    throwIfAborted(run.signal);
    const info = await cmd.tryVirsh(['domjobinfo', '--domain', run.domain.name]);
    const job = parseDomJobInfo(info.stdout);
    if (info.exitCode !== 0 || !job.active) break;
    const raw = await cmd.tryVirsh(['domjobinfo', '--domain', run.domain.name, '--rawstats']);
    const stats = parseLabelledLines(raw.stdout);
    const processed = Number(stats.get('disk_processed') ?? stats.get('data_processed') ?? NaN);
    if (Number.isFinite(processed)) run.progress('copy', processed, total);
    await new Promise((r) => setTimeout(r, 200));
  }
  const completed = await cmd.tryVirsh(['domjobinfo', '--domain', run.domain.name, '--completed']);
  const status = parseLabelledLines(completed.stdout).get('Job type') ?? '';
  if (!/completed/i.test(status)) {
    throw new InstanceImagesError('CAPTURE_FAILED', `The push-mode backup job did not complete (${status || 'no result'})`);
  }
  await waitReleased(run, target);
}

/**
 * Commits the marker overlay back into the base and pivots, and returns the domain's live XML as
 * it is afterwards (for the caller to check the chain): the commit and the `dumpxml` are ONE
 * `virsh` (it runs beside the output's hash, which every extra process start slows).
 */
export async function commitOverlay(cmd: HostCommands, domainName: string, target: string): Promise<XmlElement> {
  const answers = await askVirsh(cmd, [
    { name: 'commit', words: ['blockcommit', '--domain', domainName, '--path', target, '--active', '--pivot', '--wait'] },
    { name: 'xml', words: ['dumpxml', '--domain', domainName] },
  ]);
  const committed = answers.get('commit');
  const xml = answers.get('xml');
  if (committed?.exitCode === 0 && xml?.exitCode === 0) return parseXml(xml.stdout);
  if (committed?.exitCode !== 0) {
    // A commit that reached the ready phase only needs the pivot.
    const pivot = await cmd.tryVirsh(['blockjob', '--domain', domainName, '--path', target, '--pivot']);
    if (pivot.exitCode !== 0) {
      throw new InstanceImagesError(
        'CAPTURE_FAILED',
        `Could not merge the capture overlay back (run recovery): ${(committed?.stderr ?? '').trim()}`,
      );
    }
  }
  return (await domainXml(cmd, domainName)).root;
}

/** Live capture by an external snapshot (marker overlay), copy of the frozen base, blockcommit. */
async function captureSnapshot(run: Run): Promise<Sealed & { frozen: boolean }> {
  const { cmd } = run.ctx;
  const disk = run.domain.primaryDisk;
  const name = `ii-snap-${run.scratch.tag}-${run.scratch.id}`;
  const xml = overlaySnapshotXml(name, disk.target, run.scratch.overlay, run.domain.disks);
  let overlaid = false;
  // The overlay file is removed only once merged: after a failed merge the domain may still write
  // into it, and recovery commits it back.
  let keep = false;
  let removed = false;
  // Merges the overlay back and checks that the domain is on its original disk again.
  const commit = async () => {
    keep = true;
    const root = await commitOverlay(cmd, run.domain.name, disk.target);
    const primary = selectPrimaryDisk(parseDomainDisks(root));
    if (primary?.source !== disk.path) {
      throw new InstanceImagesError('CAPTURE_FAILED', 'The domain is not back on its original disk after the commit (run recovery)');
    }
    keep = false;
    // Merged and off the chain: the overlay goes now, beside the sealing rather than after it.
    await cmd.remove(run.scratch.overlay);
    removed = true;
  };
  try {
    const frozen = await withFreeze(run, () =>
      stage(run, 'start-job', async () => {
        await cmd.virshWithFile(
          run.ctx.scratchDir,
          xml,
          (file) => ['snapshot-create', '--domain', run.domain.name, '--xmlfile', file, '--disk-only', '--atomic', '--no-metadata'],
          'CAPTURE_FAILED',
        );
        overlaid = true;
      }),
    );
    await run.ctx.hooks.afterSnapshot?.({ domainName: run.domain.name, overlayPath: run.scratch.overlay });
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'snapshot-commit' });
    throwIfAborted(run.signal);
    await convert(run, ['-U', '-f', String(disk.format), disk.path], 'copy');
    // The base has been read: the overlay is merged back while the output is sealed.
    overlaid = false;
    return { ...(await seal(run, commit)), frozen };
  } finally {
    if (overlaid) await commit();
    if (!removed && !keep) await cmd.remove(run.scratch.overlay);
  }
}

/**
 * The order in which `auto` picks a live method for a file or stream output. snapshot-commit first:
 * its copy reads the disk's file directly, where a pull-mode backup's copy is served over NBD by
 * the running guest's QEMU (0.35–0.44 s against 0.56–0.60 s for 1 GiB here, 3 s when that QEMU
 * faults in a new buffer per request; the whole capture 1.31–1.38× the floor on a fresh clone
 * against pull mode's 1.49–1.57×, see docs/drivers.md), and it needs no NBD export, which QEMU 7.2
 * cannot end safely for a disk on an iothread. The domain's chain is back as it was when the
 * capture returns (checked), and recovery merges an overlay left by a crash.
 */
const AUTO_ORDER: readonly LiveMethod[] = ['snapshot-commit', 'pull-backup', 'push-backup'];

/**
 * The live method for a running domain: the configured one, or for `auto` the first of
 * {@link AUTO_ORDER} the hypervisor supports. A disk on an iothread is never exported over NBD (a
 * pull-mode backup): `auto` never picks it, and an explicit pull-backup is refused (see
 * {@link iothreadExportRefused}).
 */
function chooseLiveMethod(method: CaptureMethod, capabilities: HypervisorCapabilities, domain: LibvirtDomainInfo): LiveMethod {
  const noExport = primaryOnIothread(domain);
  if (method === 'auto') {
    const usable = (m: LiveMethod) => capabilities.liveMethods.includes(m) && !(noExport && m === 'pull-backup');
    return AUTO_ORDER.find(usable) ?? 'snapshot-commit';
  }
  if (method === 'pull-backup' && noExport)
    throw iothreadExportRefused(domain.name, 'Use the push-backup or snapshot-commit capture method (or auto) for this hypervisor.');
  if (!capabilities.liveMethods.includes(method)) {
    throw new InstanceImagesError(
      'CAPTURE_FAILED',
      `This hypervisor does not support the ${method} capture method (libvirt ${capabilities.libvirtVersion ?? 'unknown'})`,
    );
  }
  return method;
}

/**
 * Captures the primary disk of `request.domainName`.
 * @throws CAPTURE_FAILED, STORAGE_FULL, CANCELLED, NOT_FOUND, VALIDATION_FAILED.
 */
export async function captureDomain(ctx: CaptureContext, request: CaptureRequest): Promise<CaptureResult> {
  const { format, compress } = validate(request);
  const signal = request.signal;
  throwIfAborted(signal);
  await ctx.ensureScratchDir();
  const capabilities = await ctx.capabilities();
  if (request.output.kind === 'chunks') return captureChunked(ctx, request, request.output, capabilities);
  const domain = await reportStage(ctx, 'inspect', () => inspectDomain(ctx.cmd, request.domainName, capabilities));
  refuseEncryptedDisk(domain);
  const scratch = captureScratch(ctx.scratchDir, domain.name);
  const extension = format === 'raw' ? 'raw' : 'qcow2';
  const outFile = request.output.kind === 'path' ? `${request.output.path}${PART_SUFFIX}` : scratch.output(extension);
  let method: CaptureResult['method'];
  if (domain.state === 'shutoff') method = 'cold-convert';
  else if (domain.state === 'running' || domain.state === 'paused') method = chooseLiveMethod(ctx.method, capabilities, domain);
  else throw new InstanceImagesError('INVALID_STATE', `Domain ${JSON.stringify(domain.name)} is neither running nor shut off`);
  const run = newRun(ctx, request, domain, method, scratch, { format, compress, zstd: capabilities.zstd, outFile });

  const { cmd } = ctx;
  // libvirt creates a push-mode target itself and refuses an existing file; qemu-img convert replaces it.
  await stage(run, 'preflight', () =>
    Promise.all([preflightSpace(run), method === 'push-backup' ? cmd.remove(outFile) : Promise.resolve()]),
  );
  let published = false;
  try {
    let outcome: Sealed & { frozen?: boolean };
    if (method === 'cold-convert') outcome = await captureCold(run);
    else if (method === 'pull-backup') outcome = await capturePull(run);
    else if (method === 'push-backup') outcome = await capturePush(run);
    else outcome = await captureSnapshot(run);
    throwIfAborted(signal);

    const { sha256, facts } = outcome;
    const { sizeBytes, info } = facts;
    if (request.output.kind === 'path') {
      const target = request.output.path;
      // From here a failure removes the published file too: it belongs to this capture only.
      published = true;
      await stage(run, 'publish', () => cmd.publish(outFile, target, dirname(target)));
      run.outFileGone = true;
    }
    const consistency: CaptureResult['consistency'] =
      method === 'cold-convert' ? 'cold' : outcome.frozen ? 'filesystem-frozen' : 'crash-consistent';
    run.progress('done', sizeBytes, sizeBytes);
    return { format, sizeBytes, virtualSizeBytes: info.virtualSizeBytes, sha256, consistency, method };
  } catch (error) {
    if (published && request.output.kind === 'path') await cmd.remove(request.output.path).catch(() => undefined);
    throw captureFailure(error, signal, domain.name);
  } finally {
    if (!run.outFileGone) await cmd.remove(outFile).catch(() => undefined);
  }
}
