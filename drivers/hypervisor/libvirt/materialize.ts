/**
 * Materialization of a standalone disk for a new instance from an image (a path on the hypervisor,
 * a stream, or the data ranges of a chunked image): checksum, convert (or write over NBD), grow,
 * prove it has no backing file, fsync, rename.
 * @module
 */
import { createHash } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import { InstanceImagesError, isInstanceImagesError, toInstanceImagesError } from '../../../src/errors';
import type { DiskFormat } from '../../../src/model';
import type { ChunkedSource, ImportedDiskFormat, MaterializeRequest, MaterializeResult } from '../../../src/ports/hypervisor-driver';
import { assertAbsolutePath } from './capture';
import { linkedPath, PINNED_SOURCE, type HostCommands, type PinnedSource } from './commands';
import { chunkedSizes, writeChunkedDisk } from './materialize-chunks';
import type { QemuImgInfo } from './parsers';
import { captureScratch, PART_SUFFIX } from './names';
import type { LibvirtDriverHooks } from './options';

/** What materialization needs from the driver. */
export interface MaterializeContext {
  cmd: HostCommands;
  scratchDir: string;
  verify: boolean;
  spaceMarginBytes: number;
  /** NBD connections a chunked deploy writes the new disk over (default 1). */
  nbdConnections?: number;
  ensureScratchDir(): Promise<void>;
  /** Test and diagnostics hooks. */
  hooks?: LibvirtDriverHooks;
}

/** Reports a deploy's progress (a failing listener is ignored). */
type Progress = (step: string, done: number, total: number | null) => void;

function dirname(path: string): string {
  const index = path.lastIndexOf('/');
  return index <= 0 ? '/' : path.slice(0, index);
}

function checkFormat(value: string, field: string): DiskFormat {
  if (value !== 'qcow2' && value !== 'raw') {
    throw new InstanceImagesError('VALIDATION_FAILED', `${field} must be qcow2 or raw`, {
      fields: [{ path: field, message: 'must be qcow2 or raw' }],
    });
  }
  return value;
}

/**
 * How qemu-img opens the image to copy or compare: a qcow2 image through a `json:` spec with
 * `backing: null`, so that it never reads a backing file, even if the header was changed after
 * the checks (someone who can write to a shared storage could otherwise name a file of this host
 * as the backing file, and its bytes would land in the new disk). A raw image names no file.
 */
export function imageSourceArgs(path: string, format: DiskFormat | ImportedDiskFormat): string[] {
  if (format !== 'qcow2') return ['-f', format, path];
  return [`json:${JSON.stringify({ driver: 'qcow2', file: { driver: 'file', filename: path }, backing: null })}`];
}

/** What a received stream was: its length, and its sha256 as hashed in node on the way (when asked for). */
interface Received {
  sha256: string | null;
  bytes: number;
}

/**
 * Writes a stream into `file` on the hypervisor, hashing it in node when `hashed` (a source with
 * an expected sha256; an import's caller hashes the bytes it sends itself). `exclusive`: the file
 * is created anew through {@link HostCommands.runPinned} (never through a link planted under its
 * name), for files received next to a target on a storage.
 */
async function receiveStream(
  ctx: MaterializeContext,
  source: Readable,
  file: string,
  signal: AbortSignal | undefined,
  options: { exclusive: boolean; hashed: boolean },
): Promise<Received> {
  const hash = options.hashed ? createHash('sha256') : null;
  let bytes = 0;
  const counting = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash?.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  source.on('error', (error) => counting.destroy(error));
  source.pipe(counting);
  const result = options.exclusive
    ? await ctx.cmd.runPinned(
        ['sh', '-c', 'exec dd bs=4M status=none of="$1"', 'sh', file],
        { stdin: counting, signal },
        { output: file, writeBack: true },
      )
    : await ctx.cmd.tryRun(['dd', `of=${file}`, 'bs=4M', 'status=none'], { stdin: counting, signal });
  if (result.exitCode !== 0) {
    throw new InstanceImagesError(
      /No space left/i.test(result.stderr) ? 'STORAGE_FULL' : 'DEPLOY_FAILED',
      `Receiving the image on the hypervisor failed: ${result.stderr.trim()}`,
    );
  }
  if (counting.destroyed && !counting.writableFinished)
    throw new InstanceImagesError('DEPLOY_FAILED', 'The image stream failed before its end');
  return { sha256: hash ? hash.digest('hex') : null, bytes };
}

/** The request's fields, checked before any I/O. */
function validateRequest(request: MaterializeRequest): { sourceFormat: DiskFormat | ImportedDiskFormat; targetFormat: DiskFormat } {
  assertAbsolutePath(request.targetPath, 'targetPath');
  // vmdk, vhdx and vpc come from URL imports, whose format our own code detected (and checked for parent links).
  const imported = ['vmdk', 'vhdx', 'vpc'].includes(request.sourceFormat);
  const sourceFormat = imported ? (request.sourceFormat as ImportedDiskFormat) : checkFormat(request.sourceFormat, 'sourceFormat');
  const targetFormat = checkFormat(request.targetFormat ?? 'qcow2', 'targetFormat');
  if (request.source.kind === 'chunks' && sourceFormat !== 'raw') {
    throw new InstanceImagesError('VALIDATION_FAILED', 'A chunked image holds raw guest bytes: sourceFormat must be raw', {
      fields: [{ path: 'sourceFormat', message: 'must be raw for a chunked source' }],
    });
  }
  if (request.sizeBytes !== undefined && (!Number.isSafeInteger(request.sizeBytes) || request.sizeBytes <= 0)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'sizeBytes must be a positive integer', {
      fields: [{ path: 'sizeBytes', message: 'must be a positive integer' }],
    });
  }
  if (request.sha256 && !/^[0-9a-f]{64}$/.test(request.sha256)) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'sha256 must be a lowercase hex digest', {
      fields: [{ path: 'sha256', message: 'must be a lowercase hex sha256 digest' }],
    });
  }
  return { sourceFormat, targetFormat };
}

/** Where the deploy reads its image from: a checked path on the hypervisor, or a received stream. */
interface DeploySource {
  /** The path `qemu-img info` reads. */
  path: string;
  /** A received stream: what was received (null for a path source). */
  received: Received | null;
  /** A received stream that may become the disk as it is ({@link MaterializeRequest.reuseSource}). */
  reusable: boolean;
  /**
   * A path source, read through a descriptor the copy's own command opens and checks (link,
   * sha256): whatever is swapped in under its name afterwards, the copy reads the checked bytes.
   */
  pinned: PinnedSource | null;
}

/**
 * Resolves the request's source. A path is checked (a regular file, no link below its root); a
 * stream is received into a private scratch file (`received`, removed by the caller) and hashed on
 * the way. @throws NOT_FOUND, VALIDATION_FAILED, CHECKSUM_MISMATCH, DEPLOY_FAILED, STORAGE_FULL.
 */
async function resolveSource(
  ctx: MaterializeContext,
  request: MaterializeRequest & { source: Exclude<MaterializeRequest['source'], ChunkedSource> },
  sourceFormat: DiskFormat | ImportedDiskFormat,
  onReceived: (path: string) => void,
  progress: Progress,
): Promise<DeploySource> {
  const { cmd } = ctx;
  if (request.source.kind === 'path') {
    assertAbsolutePath(request.source.path, 'source.path');
    const found = await cmd.checkFile(request.source.path, request.source.root);
    if (found === 'linked') throw linkedPath('The image file');
    if (found === 'missing') throw new InstanceImagesError('NOT_FOUND', 'The image file does not exist on the hypervisor');
    return {
      path: request.source.path,
      received: null,
      // A fetched import's file (reuseSource): moved into place when it is a clean, standalone qcow2.
      reusable: reusableFormat(request, sourceFormat) && !request.sha256,
      pinned: { path: request.source.path, root: request.source.root, sha256: request.sha256 ?? undefined },
    };
  }
  // A source that may become the disk is received next to the target (same filesystem, renamed
  // into place); any other into the scratch directory.
  const reusable = reusableFormat(request, sourceFormat);
  let path: string;
  if (reusable) path = `${request.targetPath}${RECEIVED_SUFFIX}`;
  else {
    await ctx.ensureScratchDir();
    path = captureScratch(ctx.scratchDir, request.targetPath).received(sourceFormat);
  }
  onReceived(path);
  progress('receive', 0, null);
  const received = await receiveStream(ctx, request.source.stream, path, request.signal, {
    exclusive: reusable,
    hashed: Boolean(request.sha256),
  });
  if (request.sha256 && received.sha256 !== request.sha256) {
    throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The image does not match its recorded checksum; the deploy was stopped', {
      details: { expected: request.sha256, actual: received.sha256 },
    });
  }
  return { path, received, reusable, pinned: null };
}

/** Whether the source may become the disk as it is ({@link MaterializeRequest.reuseSource}): qcow2 into qcow2 of its own size. */
function reusableFormat(request: MaterializeRequest, sourceFormat: DiskFormat | ImportedDiskFormat): boolean {
  return (
    request.reuseSource === true &&
    sourceFormat === 'qcow2' &&
    (request.targetFormat ?? 'qcow2') === 'qcow2' &&
    request.sizeBytes === undefined
  );
}

/** Suffix of a streamed source received next to its target (removed whatever happens, unless it became the disk). */
const RECEIVED_SUFFIX = '.received';

/**
 * Keeps a received qcow2 as the disk when it is standalone, clean, without internal snapshots,
 * and exactly as long as what was sent: fsynced and renamed into place. Returns null (convert it
 * instead) otherwise. A backing or data file is refused outright, as for a converted source.
 */
async function keepReceived(ctx: MaterializeContext, request: MaterializeRequest, source: DeploySource): Promise<MaterializeResult | null> {
  const { cmd } = ctx;
  const { sizeBytes, info, checkExit } = await cmd.qcow2Facts(source.path, request.signal);
  if (info.backingFilename !== null || info.dataFile !== null) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      'The image refers to another file (backing or data file); only standalone images can be deployed',
    );
  }
  if (source.received && sizeBytes !== source.received.bytes)
    throw new InstanceImagesError('DEPLOY_FAILED', `The received file has ${sizeBytes} bytes where ${source.received.bytes} were sent`);
  if (info.format !== 'qcow2' || info.snapshots > 0 || checkExit !== 0) return null;
  await cmd.publish(source.path, request.targetPath, dirname(request.targetPath), { fsync: true });
  return { path: request.targetPath, format: 'qcow2', virtualSizeBytes: info.virtualSizeBytes, keptSource: true };
}

/**
 * Checks the image before it is copied: standalone (no backing or data file), not larger than the
 * requested disk, and room for it next to the target. Returns its `qemu-img info`.
 * @throws VALIDATION_FAILED, STORAGE_FULL.
 */
async function preflight(
  ctx: MaterializeContext,
  request: MaterializeRequest,
  source: DeploySource,
  sourceFormat: DiskFormat | ImportedDiskFormat,
): Promise<QemuImgInfo> {
  const { cmd } = ctx;
  const info = await cmd.qemuImgInfo(source.path, { format: sourceFormat, signal: request.signal });
  if (info.backingFilename !== null || info.dataFile !== null) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      'The image refers to another file (backing or data file); only standalone images can be deployed',
    );
  }
  if (request.sizeBytes !== undefined && request.sizeBytes < info.virtualSizeBytes) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      `The disk size ${request.sizeBytes} is smaller than the image's virtual size ${info.virtualSizeBytes}`,
      {
        fields: [{ path: 'sizeBytes', message: `must be at least ${info.virtualSizeBytes}` }],
      },
    );
  }
  const free = await cmd.freeBytes(dirname(request.targetPath));
  const need = (info.actualSizeBytes ?? 0) + ctx.spaceMarginBytes;
  if (free < need) {
    throw new InstanceImagesError('STORAGE_FULL', `Not enough free space for the new disk: ${free} bytes free, ${need} needed`, {
      details: { freeBytes: free, neededBytes: need },
    });
  }
  return info;
}

/** `qemu-img compare` of the image and the new disk (through the pinned descriptor for a path source). */
async function compareWithImage(
  ctx: MaterializeContext,
  source: DeploySource,
  sourceFormat: DiskFormat | ImportedDiskFormat,
  targetFormat: DiskFormat,
  part: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { cmd } = ctx;
  const { pinned } = source;
  const result = pinned
    ? await cmd.runPinned(
        ['qemu-img', 'compare', ...imageSourceArgs(PINNED_SOURCE, sourceFormat), '-F', targetFormat, part],
        { signal },
        { source: { path: pinned.path, root: pinned.root } },
      )
    : await cmd.tryRun(['qemu-img', 'compare', ...imageSourceArgs(source.path, sourceFormat), '-F', targetFormat, part], { signal });
  if (result.exitCode !== 0)
    throw new InstanceImagesError(
      'DEPLOY_FAILED',
      `The new disk does not match the image: ${result.stdout.trim()} ${result.stderr.trim()}`.trim(),
    );
}

/**
 * The target of a deploy must be free, in a directory that exists: CONFLICT when a file is there
 * (never overwritten), VALIDATION_FAILED naming `targetPath` when its directory is missing (a
 * mistyped path is the caller's error, not a hypervisor failure).
 */
export async function checkDeployTarget(cmd: HostCommands, targetPath: string): Promise<void> {
  assertAbsolutePath(targetPath, 'targetPath');
  const state = await cmd.targetState(targetPath, dirname(targetPath));
  if (state === 'exists') {
    throw new InstanceImagesError('CONFLICT', 'The target disk already exists; refusing to overwrite it', { details: { targetPath } });
  }
  if (state === 'no-directory') {
    const message = 'its directory does not exist on the hypervisor (or is not a directory); create it first';
    throw new InstanceImagesError('VALIDATION_FAILED', `targetPath: ${message}`, { fields: [{ path: 'targetPath', message }] });
  }
}

/**
 * Materializes a standalone disk at `request.targetPath`: resolve and check the source (a received
 * qcow2 may become the disk as it is, see {@link keepReceived}), convert it
 * into `<target>.part` (made anew, written back as it grows), grow it, prove it standalone,
 * compare it with the image while it is fsynced, then rename it into place. A chunked source is
 * written into the part file over NBD instead ({@link writeChunkedDisk}); `sha256` is not used
 * then (the caller checked every chunk's digest).
 * @throws DEPLOY_FAILED, CHECKSUM_MISMATCH, VALIDATION_FAILED, STORAGE_FULL, CONFLICT, NOT_FOUND, CANCELLED.
 */
export async function materializeDisk(ctx: MaterializeContext, request: MaterializeRequest): Promise<MaterializeResult> {
  const { cmd } = ctx;
  const signal = request.signal;
  const { sourceFormat, targetFormat } = validateRequest(request);
  const requested = request.source;
  const chunkSizes = requested.kind === 'chunks' ? chunkedSizes(requested, request) : null;
  await checkDeployTarget(cmd, request.targetPath);
  const part = `${request.targetPath}${PART_SUFFIX}`;
  let received = null as string | null;
  const progress: Progress = (step, done, total) => {
    try {
      request.onProgress?.({ step, bytesDone: done, bytesTotal: total });
    } catch {
      // a failing listener must not break the deploy
    }
  };
  try {
    if (requested.kind === 'chunks') {
      const sizes = chunkSizes ?? chunkedSizes(requested, request);
      await writeChunkedDisk({ ctx, request, sizes, format: targetFormat, part, progress }, requested);
      // fsync of the part, rename, fsync of the directory: in one remote command.
      await cmd.publish(part, request.targetPath, dirname(request.targetPath), { fsync: true });
      progress('done', sizes.diskSize, sizes.diskSize);
      return { path: request.targetPath, format: targetFormat, virtualSizeBytes: sizes.diskSize };
    }
    const source = await resolveSource(ctx, { ...request, source: requested }, sourceFormat, (path) => (received = path), progress);
    if (source.reusable) {
      progress('verify', 0, null);
      const kept = await keepReceived(ctx, request, source);
      if (kept) {
        received = null;
        progress('done', kept.virtualSizeBytes, kept.virtualSizeBytes);
        return kept;
      }
    }
    const info = await preflight(ctx, request, source, sourceFormat);
    const total = info.actualSizeBytes ?? info.virtualSizeBytes;
    progress('convert', 0, total);
    await ctx.hooks?.beforeDeployConvert?.({ sourcePath: source.path, targetPath: request.targetPath });
    // `flush`: the part file is made anew (never through a link) and written back while it grows.
    const readFrom = source.pinned ? PINNED_SOURCE : source.path;
    await cmd.qemuImgWithProgress(
      ['qemu-img', 'convert', '-p', ...imageSourceArgs(readFrom, sourceFormat), '-O', targetFormat, part],
      (p) => progress('convert', Math.round((p / 100) * total), total),
      {
        signal,
        fallback: 'DEPLOY_FAILED',
        flush: part,
        ...(source.pinned ? { source: source.pinned } : {}),
      },
    );
    if (request.sizeBytes !== undefined && request.sizeBytes > info.virtualSizeBytes) {
      await cmd.run(['qemu-img', 'resize', '-q', '-f', targetFormat, part, String(request.sizeBytes)], { signal }, 'DEPLOY_FAILED');
    }
    const result = await cmd.qemuImgInfo(part, { format: targetFormat, signal });
    if (result.backingFilename !== null || result.dataFile !== null)
      throw new InstanceImagesError('DEPLOY_FAILED', 'The new disk unexpectedly has a backing file');
    progress('verify', 0, null);
    await Promise.all([
      ctx.verify ? compareWithImage(ctx, source, sourceFormat, targetFormat, part, signal) : Promise.resolve(),
      cmd.fsync(part),
    ]);
    await cmd.publish(part, request.targetPath, dirname(request.targetPath));
    progress('done', result.virtualSizeBytes, result.virtualSizeBytes);
    return { path: request.targetPath, format: targetFormat, virtualSizeBytes: result.virtualSizeBytes };
  } catch (error) {
    await cmd.remove(part).catch(() => undefined);
    if (signal?.aborted) throw new InstanceImagesError('CANCELLED', 'The deploy was cancelled; nothing was kept', { cause: error });
    if (
      isInstanceImagesError(error) &&
      [
        'CANCELLED',
        'STORAGE_FULL',
        'NOT_FOUND',
        'HYPERVISOR_UNREACHABLE',
        'VALIDATION_FAILED',
        'DEPLOY_FAILED',
        'CHECKSUM_MISMATCH',
        'CONFLICT',
      ].includes(error.code)
    )
      throw error;
    throw toInstanceImagesError(error, 'DEPLOY_FAILED', 'Deploying the image failed');
  } finally {
    if (received !== null) await cmd.remove(received).catch(() => undefined);
  }
}
