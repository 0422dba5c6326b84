/**
 * Capture of a domain's primary disk: pull-mode backup (default for running domains), push-mode
 * backup, snapshot + blockcommit, or a cold convert of a stopped domain. Whatever happens, the
 * domain ends on its original disk chain with no job running and no temporary file left.
 * @module
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { InstanceImagesError, isInstanceImagesError, toInstanceImagesError } from '../../../src/errors';
import type { DiskFormat } from '../../../src/model';
import type { ByteProgress, CaptureRequest, CaptureResult } from '../../../src/ports/hypervisor-driver';
import type { HostCommands } from './commands';
import { inspectDomain, type HypervisorCapabilities, type LibvirtDomainInfo } from './inspect';
import { captureScratch, PART_SUFFIX, type CaptureScratch } from './names';
import type { CaptureMethod, LibvirtDriverHooks } from './options';
import { parseDomainDisks, parseDomJobInfo, parseLabelledLines, selectPrimaryDisk } from './parsers';
import { overlaySnapshotXml, pullBackupXml, pushBackupXml } from './xml-builders';
import { domainXml } from './inspect';
import { escapeXml } from './xml';

/** What the capture needs from the driver. */
export interface CaptureContext {
  cmd: HostCommands;
  scratchDir: string;
  method: CaptureMethod;
  freezeTimeoutMs: number;
  verify: boolean;
  spaceMarginBytes: number;
  hooks: LibvirtDriverHooks;
  capabilities(): Promise<HypervisorCapabilities>;
  ensureScratchDir(): Promise<void>;
}

type LiveMethod = 'pull-backup' | 'push-backup' | 'snapshot-commit';

/** One capture in progress: its request, domain, temporary names and cleanup duties. */
interface Run {
  ctx: CaptureContext;
  request: CaptureRequest;
  domain: LibvirtDomainInfo;
  format: DiskFormat;
  compress: boolean;
  zstd: boolean;
  scratch: CaptureScratch;
  /** Where the converted image is written before it is published or streamed. */
  outFile: string;
  signal: AbortSignal | undefined;
  /** Set once `outFile` is known to be gone (published or removed), so it is not removed again. */
  outFileGone: boolean;
  progress(step: string, done: number, total: number | null): void;
}

/** The finished output's size and `qemu-img info`. */
type OutputFacts = Awaited<ReturnType<HostCommands['fileSizeAndInfo']>>;

/** What a capture method hands back to {@link captureDomain}. */
interface Sealed {
  sha256: string | null;
  /** Whether the stream output was already sent to its consumer. */
  streamed: boolean;
  /** The output's size and info, when the method already read them. */
  facts?: OutputFacts;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new InstanceImagesError('CANCELLED', 'The capture was cancelled');
}

function dirname(path: string): string {
  const index = path.lastIndexOf('/');
  return index <= 0 ? '/' : path.slice(0, index);
}

/** Validates the request's own fields. */
function validate(request: CaptureRequest): { format: DiskFormat; compress: boolean } {
  const format = request.format ?? 'qcow2';
  if (format !== 'qcow2' && format !== 'raw') {
    throw new InstanceImagesError('VALIDATION_FAILED', `Unsupported output format ${JSON.stringify(format)}`, { fields: [{ path: 'format', message: 'must be qcow2 or raw' }] });
  }
  const compress = request.compress ?? false;
  if (compress && format === 'raw') {
    throw new InstanceImagesError('VALIDATION_FAILED', 'Compression needs the qcow2 format', { fields: [{ path: 'compress', message: 'only with format qcow2' }] });
  }
  if (request.output.kind === 'path') assertAbsolutePath(request.output.path, 'output.path');
  if (request.domainName === '' || request.domainName.includes('\u0000')) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'A domain name is required', { fields: [{ path: 'domainName', message: 'must not be empty' }] });
  }
  return { format, compress };
}

/** Paths reach qemu-img, which reads `proto:...` specially unless the path starts with `/`. */
export function assertAbsolutePath(path: string, field: string): void {
  // eslint-disable-next-line no-control-regex
  if (!path.startsWith('/') || /[\u0000-\u001f]/.test(path) || path.split('/').includes('..') || path.endsWith('/')) {
    throw new InstanceImagesError('VALIDATION_FAILED', `${field} must be an absolute file path without "..", control characters or a trailing slash`, {
      fields: [{ path: field, message: 'must be an absolute file path' }],
    });
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

/** Tries a guest-agent filesystem freeze; returns whether it took effect. */
async function freeze(run: Run): Promise<boolean> {
  const { ctx, request, domain } = run;
  if (request.freeze === false || !domain.guestAgentConnected) return false;
  try {
    const result = await ctx.cmd.tryVirsh(['domfsfreeze', '--domain', domain.name], { timeoutMs: ctx.freezeTimeoutMs });
    return result.exitCode === 0;
  } catch {
    return false;
  }
}

/** Thaws after a freeze attempt; a failure here is reported but never blocks the cleanup. */
async function thaw(run: Run): Promise<void> {
  try {
    await run.ctx.cmd.tryVirsh(['domfsthaw', '--domain', run.domain.name], { timeoutMs: run.ctx.freezeTimeoutMs });
  } catch {
    // the guest agent thaws by itself after its own timeout
  }
}

/** Starts the point-in-time operation inside a freeze window (thaw always attempted). */
async function withFreeze(run: Run, start: () => Promise<void>): Promise<boolean> {
  const frozen = await freeze(run);
  try {
    await start();
  } finally {
    if (frozen || (run.request.freeze !== false && run.domain.guestAgentConnected)) await thaw(run);
  }
  return frozen;
}

/** Converts `source` into `run.outFile` with progress against the disk's allocation. */
async function convert(run: Run, sourceArgs: string[], step: string): Promise<void> {
  const total = Math.max(run.domain.primaryDisk.allocationBytes, 1);
  run.progress(step, 0, total);
  await run.ctx.cmd.qemuImgWithProgress(['qemu-img', 'convert', '-p', ...sourceArgs, ...outputArgs(run), run.outFile], (percent) => run.progress(step, Math.round((percent / 100) * total), total), {
    signal: run.signal,
    fallback: 'CAPTURE_FAILED',
    // A path output is written through a descriptor of a file made anew (never through a link),
    // and written back while it is being made, since it is fsynced before it is published.
    ...(run.request.output.kind === 'path' ? { flush: run.outFile, ...(run.request.output.root ? { root: run.request.output.root } : {}) } : {}),
  });
}

/** `qemu-img compare` of the source and the output: exit 0 proves every byte arrived. */
async function compare(run: Run, sourceArgs: string[]): Promise<void> {
  if (!run.ctx.verify) return;
  const argv = ['qemu-img', 'compare', ...sourceArgs, '-F', run.format, run.outFile];
  const result = await run.ctx.cmd.tryRun(argv, { signal: run.signal });
  if (result.exitCode !== 0) {
    throw new InstanceImagesError('CAPTURE_FAILED', `The captured image does not match the disk (qemu-img compare exit ${result.exitCode}): ${result.stdout.trim()} ${result.stderr.trim()}`.trim());
  }
}

/**
 * Finishes the output while the source is still held. A path output is fsynced and hashed in
 * parallel with the compare. A stream output (with `overlapStream`) is streamed to its consumer in
 * parallel with the compare, so the proof costs no extra time; a failed compare stops the stream,
 * which makes the consumer fail and discard what it received.
 */
async function verifyAndSeal(run: Run, sourceArgs: string[], overlapStream = false): Promise<Sealed> {
  run.progress('verify', 0, null);
  const output = run.request.output;
  const { cmd } = run.ctx;
  if (output.kind === 'stream' && overlapStream) {
    const facts = await cmd.fileSizeAndInfo(run.outFile, run.format);
    const stop = new AbortController();
    const streaming = streamOut(run, facts.sizeBytes, output.consume, stop.signal);
    const comparing = compare(run, sourceArgs).catch((error: unknown) => {
      stop.abort();
      throw error;
    });
    const [compared, streamed] = await Promise.allSettled([comparing, streaming]);
    if (compared.status === 'rejected') throw compared.reason;
    if (streamed.status === 'rejected') throw streamed.reason;
    return { sha256: streamed.value, streamed: true, facts };
  }
  const isPath = output.kind === 'path';
  const [, , sha256, facts] = await Promise.all([
    compare(run, sourceArgs),
    isPath ? cmd.fsync(run.outFile) : Promise.resolve(),
    isPath ? cmd.sha256(run.outFile, run.signal) : Promise.resolve(null),
    cmd.fileSizeAndInfo(run.outFile, run.format),
  ]);
  return { sha256, streamed: false, facts };
}

/** Cold capture of a stopped domain. */
async function captureCold(run: Run): Promise<Sealed> {
  const { path, format } = run.domain.primaryDisk;
  const source = ['-U', '-f', String(format), path];
  await convert(run, source, 'copy');
  return verifyAndSeal(run, source, true);
}

/** Waits until no block job (backup) is active on the domain. */
async function waitJobGone(run: Run, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const info = await run.ctx.cmd.tryVirsh(['domjobinfo', '--domain', run.domain.name]);
    if (info.exitCode !== 0 || !parseDomJobInfo(info.stdout).active) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Whether a job (ours: a domain runs one at a time) is active on the domain. */
async function jobActive(run: Run): Promise<boolean> {
  const info = await run.ctx.cmd.tryVirsh(['domjobinfo', '--domain', run.domain.name]);
  return info.exitCode === 0 && parseDomJobInfo(info.stdout).active;
}

/**
 * Ends a backup job and removes its files. Safe to call when no job runs; `running` says the
 * caller started the job and it was not seen to end (no need to ask libvirt first).
 */
async function endBackupJob(run: Run, files: string[], running: boolean): Promise<void> {
  const { cmd } = run.ctx;
  if (running || (await jobActive(run))) {
    await cmd.tryVirsh(['domjobabort', '--domain', run.domain.name]);
    // QEMU may still hold the scratch file for a moment: unlinking it meanwhile is harmless.
    await Promise.all([waitJobGone(run), cmd.remove(...files)]);
  } else {
    await cmd.remove(...files);
  }
}

/** Live capture by a pull-mode backup exported over NBD on a unix socket. */
async function capturePull(run: Run): Promise<Sealed & { frozen: boolean }> {
  const { cmd } = run.ctx;
  const { target } = run.domain.primaryDisk;
  const { socket, backupScratch } = run.scratch;
  const xml = pullBackupXml(target, socket, backupScratch, run.domain.disks);
  let started = false;
  try {
    const frozen = await withFreeze(run, async () => {
      await cmd.virshWithFile(run.ctx.scratchDir, xml, (file) => ['backup-begin', '--domain', run.domain.name, '--backupxml', file], 'CAPTURE_FAILED');
      started = true;
    });
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'pull-backup' });
    throwIfAborted(run.signal);
    const source = ['-f', 'raw', `nbd+unix:///${target}?socket=${socket}`];
    await convert(run, source, 'copy');
    // The backup job stays open while the stream goes out: only guest writes land in its scratch file.
    const sealed = await verifyAndSeal(run, source, true);
    return { ...sealed, frozen };
  } finally {
    // A stream output has been sent (or has failed) by now: its scratch file goes with the job's.
    const files = run.request.output.kind === 'stream' ? [socket, backupScratch, run.outFile] : [socket, backupScratch];
    if (started || (await cmd.exists(socket))) await endBackupJob(run, files, started);
    else await cmd.remove(...files);
    if (files.includes(run.outFile)) run.outFileGone = true;
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
    const frozen = await withFreeze(run, async () => {
      await cmd.virshWithFile(run.ctx.scratchDir, xml, (file) => ['backup-begin', '--domain', run.domain.name, '--backupxml', file], 'CAPTURE_FAILED');
      started = true;
    });
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'push-backup' });
    const total = disk.virtualSizeBytes;
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
    started = false;
    await waitReleased(run, target);
    if (direct) {
      // The job completed: QEMU wrote and flushed every block of the point-in-time copy.
      run.progress('verify', 0, null);
      const isPath = run.request.output.kind === 'path';
      const [, sha256] = await Promise.all([isPath ? cmd.fsync(run.outFile) : Promise.resolve(), isPath ? cmd.sha256(run.outFile, run.signal) : Promise.resolve(null)]);
      return { sha256, frozen, streamed: false };
    }
    const source = ['-f', 'qcow2', target];
    await convert(run, source, 'convert');
    return { ...(await verifyAndSeal(run, source)), frozen };
  } finally {
    if (started) await endBackupJob(run, [], true);
    await cmd.remove(run.scratch.pushTarget);
  }
}

/** Commits the marker overlay back into the base and pivots; verifies the chain is the original. */
export async function commitOverlay(cmd: HostCommands, domainName: string, target: string): Promise<void> {
  const result = await cmd.tryVirsh(['blockcommit', '--domain', domainName, '--path', target, '--active', '--pivot', '--wait']);
  if (result.exitCode !== 0) {
    // A commit that reached the ready phase only needs the pivot.
    const pivot = await cmd.tryVirsh(['blockjob', '--domain', domainName, '--path', target, '--pivot']);
    if (pivot.exitCode !== 0) {
      throw new InstanceImagesError('CAPTURE_FAILED', `Could not merge the capture overlay back (run recovery): ${result.stderr.trim()}`);
    }
  }
}

/** Live capture by an external snapshot (marker overlay), copy of the frozen base, blockcommit. */
async function captureSnapshot(run: Run): Promise<Sealed & { frozen: boolean }> {
  const { cmd } = run.ctx;
  const disk = run.domain.primaryDisk;
  const name = `ii-snap-${run.scratch.tag}-${run.scratch.id}`;
  const xml = overlaySnapshotXml(name, disk.target, run.scratch.overlay, run.domain.disks);
  let overlaid = false;
  try {
    const frozen = await withFreeze(run, async () => {
      await cmd.virshWithFile(run.ctx.scratchDir, xml, (file) => ['snapshot-create', '--domain', run.domain.name, '--xmlfile', file, '--disk-only', '--atomic', '--no-metadata'], 'CAPTURE_FAILED');
      overlaid = true;
    });
    await run.ctx.hooks.afterSnapshot?.({ domainName: run.domain.name, overlayPath: run.scratch.overlay });
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'snapshot-commit' });
    throwIfAborted(run.signal);
    const source = ['-U', '-f', String(disk.format), disk.path];
    await convert(run, source, 'copy');
    return { ...(await verifyAndSeal(run, source)), frozen };
  } finally {
    if (overlaid) {
      await commitOverlay(cmd, run.domain.name, disk.target);
      const { root } = await domainXml(cmd, run.domain.name);
      const primary = selectPrimaryDisk(parseDomainDisks(root));
      if (primary?.source !== disk.path) {
        // eslint-disable-next-line no-unsafe-finally
        throw new InstanceImagesError('CAPTURE_FAILED', 'The domain is not back on its original disk after the commit (run recovery)');
      }
    }
    await cmd.remove(run.scratch.overlay);
  }
}

/** Picks the live method: the configured one, or the best the hypervisor supports. */
function chooseLiveMethod(method: CaptureMethod, capabilities: HypervisorCapabilities): LiveMethod {
  if (method === 'auto') return capabilities.liveMethods[0] ?? 'snapshot-commit';
  if (!capabilities.liveMethods.includes(method)) {
    throw new InstanceImagesError('CAPTURE_FAILED', `This hypervisor does not support the ${method} capture method (libvirt ${capabilities.libvirtVersion ?? 'unknown'})`);
  }
  return method;
}

/** Streams the finished scratch output to the consumer while hashing it; returns the sha256. */
async function streamOut(run: Run, sizeBytes: number, consume: (stream: Transform, size: number) => Promise<void>, stop?: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  let sent = 0;
  const hashing = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      sent += chunk.length;
      run.progress('transfer', sent, sizeBytes);
      callback(null, chunk);
    },
  });
  const abortCat = new AbortController();
  const onAbort = () => abortCat.abort();
  run.signal?.addEventListener('abort', onAbort, { once: true });
  stop?.addEventListener('abort', onAbort, { once: true });
  try {
    const cat = await run.ctx.cmd.executor.stream(['cat', '--', run.outFile], { signal: abortCat.signal });
    cat.stdout.on('error', (error) => hashing.destroy(error));
    cat.stdout.pipe(hashing);
    const catDone = cat.done.then((result) => {
      if (result.exitCode !== 0) {
        const error = new InstanceImagesError('CAPTURE_FAILED', `Reading the captured image failed: ${result.stderr.trim()}`);
        hashing.destroy(error);
        throw error;
      }
    });
    catDone.catch((error: unknown) => hashing.destroy(error instanceof Error ? error : new Error(String(error))));
    try {
      await Promise.all([consume(hashing, sizeBytes), catDone]);
    } catch (error) {
      cat.kill();
      throw error;
    }
  } finally {
    run.signal?.removeEventListener('abort', onAbort);
    stop?.removeEventListener('abort', onAbort);
  }
  if (stop?.aborted) throw new InstanceImagesError('CAPTURE_FAILED', 'The transfer was stopped because the image could not be verified');
  if (sent !== sizeBytes) throw new InstanceImagesError('CAPTURE_FAILED', `Streamed ${sent} bytes of a ${sizeBytes}-byte image`);
  return hash.digest('hex');
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
  const domain = await inspectDomain(ctx.cmd, request.domainName, capabilities);
  const scratch = captureScratch(ctx.scratchDir, domain.name);
  const extension = format === 'raw' ? 'raw' : 'qcow2';
  const outFile = request.output.kind === 'path' ? `${request.output.path}${PART_SUFFIX}` : scratch.output(extension);
  const run: Run = {
    ctx,
    request,
    domain,
    format,
    compress,
    zstd: capabilities.zstd,
    scratch,
    outFile,
    signal,
    outFileGone: false,
    progress(step, done, total) {
      const event: ByteProgress = { step, bytesDone: done, bytesTotal: total };
      try {
        request.onProgress?.(event);
      } catch {
        // a failing listener must not break the capture
      }
    },
  };
  let method: CaptureResult['method'];
  if (domain.state === 'shutoff') method = 'cold-convert';
  else if (domain.state === 'running' || domain.state === 'paused') method = chooseLiveMethod(ctx.method, capabilities);
  else throw new InstanceImagesError('INVALID_STATE', `Domain ${JSON.stringify(domain.name)} is neither running nor shut off`);

  const { cmd } = ctx;
  // libvirt creates a push-mode target itself and refuses an existing file; qemu-img convert replaces it.
  await Promise.all([preflightSpace(run), method === 'push-backup' ? cmd.remove(outFile) : Promise.resolve()]);
  let published = false;
  try {
    let outcome: Sealed & { frozen?: boolean };
    if (method === 'cold-convert') outcome = await captureCold(run);
    else if (method === 'pull-backup') outcome = await capturePull(run);
    else if (method === 'push-backup') outcome = await capturePush(run);
    else outcome = await captureSnapshot(run);
    throwIfAborted(signal);

    const { sizeBytes, info } = outcome.facts ?? (await cmd.fileSizeAndInfo(outFile, format));
    let sha256 = outcome.sha256;
    if (request.output.kind === 'path') {
      // From here a failure removes the published file too: it belongs to this capture only.
      published = true;
      await cmd.publish(outFile, request.output.path, dirname(request.output.path));
      run.outFileGone = true;
    } else if (!outcome.streamed) {
      sha256 = await streamOut(run, sizeBytes, request.output.consume);
    }
    if (sha256 === null) throw new InstanceImagesError('CAPTURE_FAILED', 'No checksum was computed');
    const consistency: CaptureResult['consistency'] = method === 'cold-convert' ? 'cold' : outcome.frozen ? 'filesystem-frozen' : 'crash-consistent';
    run.progress('done', sizeBytes, sizeBytes);
    return { format, sizeBytes, virtualSizeBytes: info.virtualSizeBytes, sha256, consistency, method };
  } catch (error) {
    if (published && request.output.kind === 'path') await cmd.remove(request.output.path).catch(() => undefined);
    if (signal?.aborted) throw new InstanceImagesError('CANCELLED', 'The capture was cancelled; nothing was kept', { cause: error });
    if (isInstanceImagesError(error) && ['CANCELLED', 'STORAGE_FULL', 'NOT_FOUND', 'HYPERVISOR_UNREACHABLE', 'VALIDATION_FAILED', 'CAPTURE_FAILED', 'INVALID_STATE'].includes(error.code)) throw error;
    throw toInstanceImagesError(error, 'CAPTURE_FAILED', `Capturing the disk of ${JSON.stringify(domain.name)} failed`);
  } finally {
    if (!run.outFileGone) await cmd.remove(outFile).catch(() => undefined);
  }
}
