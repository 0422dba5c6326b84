/**
 * Chunked captures (`output.kind === 'chunks'`): the disk is read from the panel through an NBD
 * export on a unix socket of the hypervisor (an SSH stream-local channel, or the socket itself
 * for a local executor), in fixed-size chunks handed to the output's consumer. Everything before
 * the read — inspection, checks, checkpoint and job start, the socket ready — is one remote command
 * (chunk-session.ts).
 *
 * - Running domain: a pull-mode backup job exports the disk at one point in time; libvirt creates
 *   the checkpoint `output.checkpoint.create` in the same transaction. With a trusted `since`
 *   checkpoint the job is incremental and only chunks its bitmap marks dirty are read.
 * - Stopped domain: `qemu-nbd --read-only` exports the disk with its explicit format (with
 *   `since`'s bitmap when trusted). libvirt 9 cannot create a checkpoint for a domain that is shut
 *   off, so such a capture leaves none (`checkpoint: null`).
 *
 * Whatever happens, the job is ended, `qemu-nbd` stopped, the scratch files removed, and a
 * checkpoint created by a capture that then fails is deleted again: the next capture never trusts a
 * checkpoint whose image was not stored.
 * @module
 */
import type { Duplex } from 'node:stream';
import { InstanceImagesError, isInstanceImagesError } from '../../../src/errors';
import type {
  CaptureRequest,
  CaptureResult,
  CapturedChunk,
  ChunkCaptureOutput,
  ChunkSourceInfo,
} from '../../../src/ports/hypervisor-driver';
import { BASE_ALLOCATION, connectNbd, dirtyBitmapContext, readNbdChunks, type NbdClient } from '../../nbd';
import { endBackupJob } from './backup-job';
import { captureFailure, newRun, stage, throwIfAborted, type CaptureContext, type Run } from './capture-run';
import {
  assertCheckpointName,
  bitmapsFromImageInfo,
  bitmapsFromQueryBlock,
  checkpointFromResult,
  deleteCheckpoint,
  incrementalRefusal,
  type CheckpointXml,
} from './checkpoints';
import { asResult, recordOf, StartSession, type SessionRecord, type SessionStep } from './chunk-session';
import { commandError, type HostCommands } from './commands';
import {
  domainFromXml,
  iothreadExportRefused,
  primaryOnIothread,
  refuseEncryptedDisk,
  type HypervisorCapabilities,
  type LibvirtDomainInfo,
} from './inspect';
import { captureScratch } from './names';
import { parseDfAvailList } from './parsers';
import { parseXml } from './xml';
import { checkpointXml, pullBackupXml } from './xml-builders';
import { openRpcStart, rpcBeginBackup, rpcEndJob, rpcInspection, type BeginBackupOptions } from './rpc-start';

/** What a chunked capture hands back to {@link captureDomain}. */
type ChunkedOutcome = Pick<CaptureResult, 'sha256' | 'sizeBytes' | 'virtualSizeBytes' | 'checkpoint' | 'incrementalSince' | 'ended'> & {
  frozen: boolean;
};

/**
 * Checks a chunked output: chunk size, checkpoint names, and that `format`/`compress` are left
 * unset (a chunked image is raw chunks; any compression is the consumer's codec).
 * @throws VALIDATION_FAILED
 */
export function validateChunkOutput(output: ChunkCaptureOutput, format: unknown, compress: unknown): void {
  const size = output.chunkSizeBytes;
  if (!Number.isSafeInteger(size) || size < 64 * 1024 || size > 64 * 1024 * 1024 || (size & (size - 1)) !== 0) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'output.chunkSizeBytes must be a power of two from 64 KiB to 64 MiB', {
      fields: [{ path: 'output.chunkSizeBytes', message: 'must be a power of two from 65536 to 67108864' }],
    });
  }
  if (typeof output.consume !== 'function') {
    throw new InstanceImagesError('VALIDATION_FAILED', 'output.consume must be a function', {
      fields: [{ path: 'output.consume', message: 'must be a function' }],
    });
  }
  if ((format !== undefined && format !== 'raw') || compress === true) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'A chunked capture stores raw chunks: leave format and compress unset', {
      fields: [{ path: format !== undefined && format !== 'raw' ? 'format' : 'compress', message: 'not used by chunked captures' }],
    });
  }
  const checkpoint = output.checkpoint;
  if (checkpoint === undefined) return;
  assertCheckpointName(checkpoint.create, 'output.checkpoint.create');
  if (checkpoint.since !== undefined && checkpoint.since !== null) {
    assertCheckpointName(checkpoint.since, 'output.checkpoint.since');
    if (checkpoint.since === checkpoint.create) {
      throw new InstanceImagesError('VALIDATION_FAILED', 'output.checkpoint.since must differ from the checkpoint created', {
        fields: [{ path: 'output.checkpoint.since', message: 'must differ from create' }],
      });
    }
  }
}

/**
 * Opens the NBD export at `socket` on the hypervisor and negotiates `exportName`, with
 * `base:allocation` and `contexts`, or with no metadata context at all (`contexts` null: a
 * connection that only reads).
 */
async function openExport(run: Run, socket: string, exportName: string, contexts: string[] | null, label = ''): Promise<NbdClient> {
  const { executor } = run.ctx.cmd;
  if (!executor.openStreamLocal) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      `The executor ${executor.label} cannot open unix sockets, which chunked captures need`,
    );
  }
  const stream: Duplex = await executor.openStreamLocal(socket, { signal: run.signal });
  try {
    return await connectNbd(stream, {
      exportName,
      metaContexts: contexts === null ? [] : [BASE_ALLOCATION, ...contexts],
      label: `the disk export of ${JSON.stringify(run.domain.name)}${label}`,
      signal: run.signal,
    });
  } catch (error) {
    stream.destroy();
    throw error;
  }
}

/**
 * Opens `count` more connections that only read, each its own channel (an SSH stream-local
 * channel on the pooled connection): the reads are spread over them. One that cannot be opened is
 * left out (the read goes on over the others).
 */
async function openReaders(run: Run, socket: string, exportName: string, count: number): Promise<NbdClient[]> {
  const opened = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => openExport(run, socket, exportName, null, ` (connection ${i + 2})`)),
  );
  return opened.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
}

/** A failure while reading the export, as the capture reports it. */
function readFailure(run: Run, error: unknown): InstanceImagesError {
  if (isInstanceImagesError(error) && error.code === 'CANCELLED') return error;
  if (run.signal?.aborted) return new InstanceImagesError('CANCELLED', 'The capture was cancelled', { cause: error });
  const detail = error instanceof Error ? error.message : String(error);
  return new InstanceImagesError('CAPTURE_FAILED', `Reading the disk of ${JSON.stringify(run.domain.name)} failed: ${detail}`, {
    cause: error,
  });
}

/**
 * Hands every chunk of the export to the consumer and checks that it took them all. `readsDone`
 * is called once every chunk has been read, at the latest when the consumer has taken the last
 * chunk (nothing more is read; it may still be storing).
 * @returns the consumer's digest and stored size.
 */
async function feed(
  run: Run,
  client: NbdClient,
  readers: NbdClient[],
  output: ChunkCaptureOutput,
  info: ChunkSourceInfo,
  dirtyContext: string | undefined,
  readsDone: () => void,
): Promise<{ sha256: string; sizeBytes: number }> {
  const total = Math.ceil(client.info.size / output.chunkSizeBytes);
  let handed = 0;
  let finished = false;
  let readError: InstanceImagesError | null = null;
  const source = readNbdChunks(client, {
    chunkSize: output.chunkSizeBytes,
    connections: readers,
    ...(dirtyContext === undefined ? {} : { dirtyContext }),
    ...(run.signal ? { signal: run.signal } : {}),
    onProgress: (p) => run.progress('copy', p.processedBytes, p.totalBytes),
    // Every chunk read (an incremental read is done long before the consumer has checked the
    // unchanged chunks): the export ends while the consumer stores.
    onReadsDone: readsDone,
  });
  // Block status and the first reads start now, while the consumer prepares (its lease, the GC marker).
  const primed = source.next();
  primed.catch(() => undefined);
  async function* chunks(): AsyncGenerator<CapturedChunk, void, undefined> {
    try {
      for (let next = await primed; !next.done; next = await source.next()) {
        handed++;
        yield next.value;
      }
      finished = true;
      readsDone();
    } catch (error) {
      readError = readFailure(run, error);
      throw readError;
    } finally {
      // A consumer that stops early stops the reads.
      if (!finished) await source.return(undefined).catch(() => undefined);
    }
  }
  run.progress('copy', 0, client.info.size);
  let result: { sha256: string; sizeBytes: number };
  try {
    result = await stage(run, 'copy', () => output.consume(chunks(), info));
  } catch (error) {
    throw readError ?? error;
  } finally {
    // A consumer that never took a chunk leaves the primed read: stopped here without waiting
    // (a read still in flight ends when the caller destroys the connections).
    if (!finished) void source.return(undefined).catch(() => undefined);
  }
  throwIfAborted(run.signal);
  if (!finished || handed !== total) {
    throw new InstanceImagesError('CAPTURE_FAILED', `The chunk consumer returned after taking ${handed} of ${total} chunks`);
  }
  if (
    typeof result?.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(result.sha256) ||
    !Number.isSafeInteger(result.sizeBytes) ||
    result.sizeBytes < 0
  ) {
    throw new InstanceImagesError('CAPTURE_FAILED', 'The chunk consumer did not return a sha256 and a size in bytes');
  }
  return { sha256: result.sha256, sizeBytes: result.sizeBytes };
}

/**
 * Reads the export and feeds the consumer; the connections are closed (or destroyed) whatever
 * happens. `afterReads` (ending the export) starts as soon as every chunk has been read and the
 * connections closed, while the consumer may still be storing the last chunks; it is awaited
 * before this returns, unless the output says `endLater`: the outcome's `ended` is then the
 * closing of the connections and `afterReads` (the caller ends the export itself when it rejects).
 */
async function readExport(
  run: Run,
  output: ChunkCaptureOutput,
  socket: string,
  exportName: string,
  since: string | undefined,
  bitmap: string | undefined,
  afterReads: () => Promise<void> = () => Promise.resolve(),
  onConnected: () => void = () => undefined,
): Promise<Omit<ChunkedOutcome, 'frozen' | 'checkpoint'>> {
  const dirtyContext = bitmap === undefined ? undefined : dirtyBitmapContext(bitmap);
  // The extra connections open while the first one negotiates.
  const opening = openReaders(run, socket, exportName, run.ctx.nbdConnections - 1);
  let client: NbdClient;
  try {
    client = await openExport(run, socket, exportName, dirtyContext === undefined ? [] : [dirtyContext]);
  } catch (error) {
    for (const reader of await opening) reader.destroy();
    throw error;
  }
  let readers = await opening;
  // Connections used together need a server that says they see the same data (QEMU does for read-only exports).
  if (!client.info.canMultiConn) {
    for (const reader of readers) reader.destroy();
    readers = [];
  }
  onConnected();
  let handedOff = false;
  const destroyAll = () => {
    for (const c of [client, ...readers]) c.destroy();
  };
  try {
    // A server that does not agree to the bitmap's context cannot say what changed: read it all.
    const incremental = dirtyContext !== undefined && client.info.metaContexts.has(dirtyContext);
    const info: ChunkSourceInfo = {
      virtualSizeBytes: client.info.size,
      chunkSizeBytes: output.chunkSizeBytes,
      incrementalSince: incremental ? (since ?? null) : null,
    };
    let closing: Promise<void> | null = null;
    const readsDone = (): Promise<void> => {
      closing ??= Promise.all([client, ...readers].map((c) => c.close())).then(afterReads);
      closing.catch(() => undefined);
      return closing;
    };
    const result = await feed(run, client, readers, output, info, incremental ? dirtyContext : undefined, () => void readsDone());
    const outcome = { ...result, virtualSizeBytes: client.info.size, incrementalSince: info.incrementalSince };
    if (output.endLater === true) {
      // Every chunk was read and consumed: the image is whole; the export ends behind the result.
      const ended = readsDone().finally(() => destroyAll());
      handedOff = true;
      return { ...outcome, ended };
    }
    await readsDone();
    return outcome;
  } finally {
    if (!handedOff) destroyAll();
  }
}

/** STORAGE_FULL when `df`'s record shows less free space in the scratch directory than the margin; else null. */
function scratchShortage(run: Run, df: SessionRecord): InstanceImagesError | null {
  const [available = 0] = parseDfAvailList(df.stdout);
  const needed = run.ctx.spaceMarginBytes;
  if (available >= needed) return null;
  return new InstanceImagesError(
    'STORAGE_FULL',
    `Not enough free space in the scratch directory on the hypervisor: ${available} bytes free, ${needed} needed for the backup job`,
    { details: { where: 'scratch', freeBytes: available, neededBytes: needed } },
  );
}

/** The free bytes `df` printed for the scratch directory. @throws COMMAND_FAILED (df), STORAGE_FULL below the space margin. */
function checkScratchSpace(run: Run, df: SessionRecord): void {
  if (df.exitCode !== 0) throw commandError(['df'], asResult(df));
  const shortage = scratchShortage(run, df);
  if (shortage) throw shortage;
}

/** The `since` checkpoint as `checkpoint-dumpxml` printed it; null when missing or unreadable (a full read). */
function sinceCheckpoint(run: Run, step: SessionStep): CheckpointXml | null {
  try {
    return checkpointFromResult(run.ctx.cmd, asResult(recordOf(step, 'since')));
  } catch {
    return null;
  }
}

/**
 * How a running domain's backup job is begun and ended: by the session's script and `virsh`, or over
 * the capture's libvirt RPC connection (rpc-start.ts); both answer with the same records.
 */
interface JobControl {
  beginBackup(options: BeginBackupOptions): Promise<SessionStep>;
  /** Ends the job; `removed` is the removal of `files` when it was begun already (else it is begun here). */
  endJob(run: Run, files: string[], removed?: Promise<void>): Promise<void>;
  /**
   * The job's files (the export's socket, the scratch image) may be removed as soon as the export's
   * connections are open (they stay open; QEMU keeps the scratch image it opened), rather than when
   * the job ends, where that removal was the longest step.
   */
  removesEarly?: boolean;
  /**
   * `df`'s record when it was not in the inspection's answers: the job is begun without waiting for
   * it, the space checked once the job runs (a short space ends it), and a start that failed is
   * reported as STORAGE_FULL when the space was short.
   */
  scratchSpace?: Promise<SessionRecord>;
}

/** A running domain: pull-mode backup, checkpoint in the same transaction, started by the session. */
async function captureRunning(run: Run, output: ChunkCaptureOutput, jobs: JobControl, step: SessionStep): Promise<ChunkedOutcome> {
  const { cmd } = run.ctx;
  const { target } = run.domain.primaryDisk;
  const { socket, backupScratch } = run.scratch;
  const files = [socket, backupScratch];
  const create = output.checkpoint?.create;
  const asked = output.checkpoint?.since ?? null;
  const deferred = jobs.scratchSpace;
  if (deferred === undefined) checkScratchSpace(run, recordOf(step, 'df'));
  /** A failed start on a short scratch directory is reported as that. */
  const shortageFirst = async (error: unknown): Promise<never> => {
    const df = await deferred?.catch(() => null);
    throw (df && df.exitCode === 0 && scratchShortage(run, df)) || error;
  };
  let since: string | undefined;
  if (asked !== null) {
    const bitmaps = bitmapsFromQueryBlock(asResult(recordOf(step, 'blocks')), run.domain.primaryDisk.path);
    const disk = { ...run.domain.primaryDisk, running: true };
    if (incrementalRefusal(disk, asked, sinceCheckpoint(run, step), bitmaps) === null) since = asked;
  }
  // A checkpoint of this name can only be left by an interrupted attempt at this same image.
  const leftover = create !== undefined && checkpointFromResult(cmd, asResult(recordOf(step, 'create'))) !== null;
  let job = 'not started' as 'not started' | 'running' | 'ended';
  let stored = false;
  // Ended once (as soon as every chunk was read, while the consumer may still be storing).
  let ending: Promise<void> | null = null;
  let removed: Promise<void> | undefined;
  const removeEarly = () => {
    if (jobs.removesEarly)
      removed ??= cmd.tryRun(['rm', '-f', '--', ...files]).then(
        () => undefined,
        () => undefined,
      );
  };
  const endJob = (): Promise<void> => (ending ??= jobs.endJob(run, files, removed));
  try {
    const { disks } = run.domain;
    const freeze = run.request.freeze !== false && run.domain.guestAgentConnected;
    const started = await stage(run, 'start-job', () =>
      jobs.beginBackup({
        incremental: since === undefined ? null : pullBackupXml(target, socket, backupScratch, disks, since),
        full: pullBackupXml(target, socket, backupScratch, disks),
        checkpoint: create === undefined ? null : checkpointXml(create, target, disks),
        checkpointName: create ?? null,
        deleteLeftover: leftover,
        freezeSeconds: freeze ? run.ctx.freezeTimeoutMs / 1000 : null,
        socket,
      }),
    ).catch(shortageFirst);
    const left = started.get('left');
    if (left)
      await shortageFirst(
        new InstanceImagesError('COMMAND_FAILED', `Could not delete checkpoint ${JSON.stringify(create)}: ${left.stderr.trim()}`),
      );
    const mode = recordOf(started, 'mode').stdout;
    if (mode !== 'incremental' && mode !== 'full')
      await shortageFirst(commandError(cmd.virshArgv(['backup-begin']), asResult(recordOf(started, 'begin')), 'CAPTURE_FAILED'));
    job = 'running';
    if (deferred !== undefined) checkScratchSpace(run, await deferred);
    // libvirt refused the incremental job: the session started a full one.
    if (mode === 'full') since = undefined;
    const frozen = started.get('freeze')?.exitCode === 0;
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'pull-backup' });
    throwIfAborted(run.signal);
    const bitmap = since === undefined ? undefined : `backup-${target}`;
    const read = await readExport(run, output, socket, target, since, bitmap, endJob, removeEarly);
    job = 'ended';
    if (read.ended) {
      // The image is whole: the checkpoint stays whatever ending the job does (it was made with
      // the job, and a job left over is for recovery). The job is ended even when closing the
      // connections failed before it.
      stored = true;
      const ended = read.ended.catch(() => undefined).then(endJob);
      return { ...read, ended, frozen, checkpoint: create ?? null };
    }
    await endJob();
    stored = true;
    return { ...read, frozen, checkpoint: create ?? null };
  } finally {
    try {
      if (job === 'running') await endJob();
      // A start whose answer was lost (a dropped connection) may have started the job: its socket tells.
      else if (job === 'not started') await ((await cmd.exists(socket)) ? jobs.endJob(run, files) : cmd.remove(...files));
    } finally {
      // Even when ending the job failed: a checkpoint whose image was not stored must not stay.
      if (!stored && create !== undefined) await deleteCheckpoint(cmd, run.domain.name, create);
    }
  }
}

/** `sh -c` script: stops the qemu-nbd whose pid file is `$1` (if it still serves socket `$2`), removes both files. */
const STOP_QEMU_NBD_SCRIPT = [
  'p=$(cat -- "$1" 2>/dev/null)',
  'case "$p" in ""|*[!0-9]*) p="" ;; esac',
  // A zombie (a container whose init does not reap) has exited: its descriptors and lock are gone.
  'alive() { [ -d "/proc/$p" ] && ! grep -q "^State:[[:space:]]*Z" "/proc/$p/status" 2>/dev/null; }',
  'if [ -n "$p" ] && tr "\\000" "\\n" < "/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "--socket=$2"; then',
  '  kill "$p" 2>/dev/null',
  '  i=0; while alive && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done',
  '  if alive; then kill -9 "$p" 2>/dev/null; fi',
  'fi',
  'rm -f -- "$1" "$2"',
].join('\n');

/** Stops a `qemu-nbd` started by {@link captureStopped} (or left by an interrupted one) and removes its files. */
export async function stopQemuNbd(cmd: HostCommands, pidFile: string, socket: string): Promise<void> {
  await cmd.run(['sh', '-c', STOP_QEMU_NBD_SCRIPT, 'sh', pidFile, socket]);
}

/**
 * A stopped domain: `qemu-nbd --read-only` with the disk's explicit format (never probed), without
 * `--force-share`, so the domain cannot start while its disk is read. It serves the read's
 * connections (`--shared`; with more than one, qemu-nbd 7.2 keeps serving after the last
 * disconnects) and is stopped and its files removed afterwards. Its bitmaps are read and qemu-nbd
 * started by the session.
 */
async function captureStopped(run: Run, output: ChunkCaptureOutput, session: StartSession, step: SessionStep): Promise<ChunkedOutcome> {
  const { path, format, target } = run.domain.primaryDisk;
  const { qemuNbdSocket: socket, qemuNbdPid: pidFile } = run.scratch;
  const asked = output.checkpoint?.since ?? null;
  let since: string | undefined;
  if (asked !== null) {
    const checkpoint = sinceCheckpoint(run, step);
    const disk = { ...run.domain.primaryDisk, running: false };
    // The image's bitmaps are worth asking for only when the checkpoint itself is usable.
    const bitmaps =
      checkpoint !== null && format === 'qcow2' ? bitmapsFromImageInfo(asResult(recordOf(await session.imageInfo(path), 'img'))) : null;
    if (incrementalRefusal(disk, asked, checkpoint, bitmaps) === null) since = asked;
  }
  let handedOff = false;
  try {
    await stage(run, 'start-job', async () => {
      const started = await session.startQemuNbd({
        path,
        format: String(format),
        exportName: target,
        bitmap: since ?? null,
        // One client per connection the read uses.
        shared: run.ctx.nbdConnections,
      });
      const nbd = recordOf(started, 'nbd');
      if (nbd.exitCode !== 0) throw commandError(['qemu-nbd'], asResult(nbd), 'CAPTURE_FAILED');
    });
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'cold-convert' });
    throwIfAborted(run.signal);
    const read = await readExport(run, output, socket, target, since, since);
    if (read.ended) {
      handedOff = true;
      const ended = read.ended.catch(() => undefined).then(() => stopQemuNbd(run.ctx.cmd, pidFile, socket));
      return { ...read, ended, frozen: false, checkpoint: null };
    }
    return { ...read, frozen: false, checkpoint: null };
  } finally {
    if (!handedOff) await stopQemuNbd(run.ctx.cmd, pidFile, socket);
  }
}

/** The domain as the session's first answers describe it. @throws NOT_FOUND, INVALID_STATE. */
function inspected(cmd: HostCommands, domainName: string, step: SessionStep, capabilities: HypervisorCapabilities): LibvirtDomainInfo {
  const state = recordOf(step, 'state');
  if (state.exitCode !== 0) throw commandError(cmd.virshArgv(['domstate']), asResult(state));
  const xml = recordOf(step, 'xml');
  if (xml.exitCode !== 0) throw commandError(cmd.virshArgv(['dumpxml']), asResult(xml));
  return domainFromXml(domainName, state.stdout, parseXml(xml.stdout), capabilities);
}

/**
 * Captures the primary disk into chunks (see the module): everything up to the export's socket is
 * one remote command (a {@link StartSession}); then the export is read from the panel.
 * @throws CAPTURE_FAILED, STORAGE_FULL, CANCELLED, NOT_FOUND, INVALID_STATE.
 */
export async function captureChunked(
  ctx: CaptureContext,
  request: CaptureRequest,
  output: ChunkCaptureOutput,
  capabilities: HypervisorCapabilities,
): Promise<CaptureResult> {
  const scratch = captureScratch(ctx.scratchDir, request.domainName);
  const since = output.checkpoint?.since ?? null;
  const create = output.checkpoint?.create ?? null;
  let session: StartSession | null = null;
  // The script, inspecting the domain itself or not (when the RPC connection did).
  const script = (inspect: boolean): StartSession =>
    (session ??= new StartSession(ctx.cmd, {
      domainName: request.domainName,
      scratchDir: ctx.scratchDir,
      workDir: scratch.session,
      since,
      create,
      socket: scratch.socket,
      qemuNbdPid: scratch.qemuNbdPid,
      qemuNbdSocket: scratch.qemuNbdSocket,
      signal: request.signal,
      inspect,
    }));
  let rpc = ctx.libvirtRpc ? await openRpcStart(ctx.cmd, request.signal) : null;
  // An abort drops the connection: a call libvirt never answers cannot hold the capture (what is
  // left to do then — end a job — the script does over a new connection).
  const dropRpc = () => rpc?.rpc.destroy();
  request.signal?.addEventListener('abort', dropRpc, { once: true });
  let handedOff = false;
  // The script has exited after the job or qemu-nbd started; otherwise this ends it.
  const closeAll = async (): Promise<void> => {
    try {
      await (session as StartSession | null)?.close();
    } finally {
      request.signal?.removeEventListener('abort', dropRpc);
      await rpc?.rpc.close();
    }
  };
  try {
    let first: SessionStep | null = null;
    let scratchSpace: Promise<SessionRecord> | undefined;
    if (rpc !== null) {
      try {
        const inspection = await rpcInspection(rpc, ctx.cmd, { domainName: request.domainName, scratchDir: ctx.scratchDir, since, create });
        first = inspection.step;
        scratchSpace = inspection.scratchSpace;
      } catch {
        // The connection failed before anything was started: the script does it all.
        rpc.rpc.destroy();
        rpc = null;
      }
    }
    first ??= await script(true).inspection();
    const domain = inspected(ctx.cmd, request.domainName, first, capabilities);
    refuseEncryptedDisk(domain);
    let method: CaptureResult['method'];
    if (domain.state === 'shutoff') method = 'cold-convert';
    else if (domain.state === 'running' || domain.state === 'paused') {
      // Only a pull-mode backup exports the disk over NBD, whatever method is configured.
      if (!capabilities.backup) {
        throw new InstanceImagesError(
          'CAPTURE_FAILED',
          `A chunked capture of a running domain needs libvirt backup jobs (libvirt ≥ 7.2, QEMU ≥ 4.2); this hypervisor has libvirt ${capabilities.libvirtVersion ?? 'unknown'}`,
        );
      }
      if (primaryOnIothread(domain))
        throw iothreadExportRefused(
          domain.name,
          'Stop the instance to capture it into this storage, or capture it into a storage with the files layout.',
        );
      method = 'pull-backup';
    } else throw new InstanceImagesError('INVALID_STATE', `Domain ${JSON.stringify(domain.name)} is neither running nor shut off`);
    const run = newRun(ctx, request, domain, method, scratch, {
      format: 'raw',
      compress: false,
      zstd: capabilities.zstd,
      outFile: scratch.output('raw'),
      outFileGone: true,
    });
    const start = rpc;
    const jobs: JobControl =
      start !== null
        ? {
            beginBackup: (options) => rpcBeginBackup(start, ctx.cmd, options),
            endJob: (r, files, removed) => rpcEndJob(start, r, files, removed),
            removesEarly: true,
            ...(scratchSpace ? { scratchSpace } : {}),
          }
        : { beginBackup: (options) => script(false).beginBackup(options), endJob: endBackupJob };
    const chunked =
      method === 'cold-convert' ? await captureStopped(run, output, script(false), first) : await captureRunning(run, output, jobs, first);
    const { frozen, ended, ...rest } = chunked;
    const consistency: CaptureResult['consistency'] =
      method === 'cold-convert' ? 'cold' : frozen ? 'filesystem-frozen' : 'crash-consistent';
    run.progress('done', chunked.virtualSizeBytes, chunked.virtualSizeBytes);
    if (ended === undefined) return { format: 'raw', ...rest, consistency, method };
    // The job ends behind the result; the connections it uses close after it. A cancel from now
    // on no longer drops them: the image is whole, and ending the job is what a cancel would do.
    request.signal?.removeEventListener('abort', dropRpc);
    handedOff = true;
    const over = ended
      .catch((error: unknown) => {
        throw captureFailure(error, undefined, request.domainName);
      })
      .finally(() => closeAll());
    over.catch(() => undefined);
    return { format: 'raw', ...rest, consistency, method, ended: over };
  } catch (error) {
    throw captureFailure(error, request.signal, request.domainName);
  } finally {
    if (!handedOff) await closeAll();
  }
}
