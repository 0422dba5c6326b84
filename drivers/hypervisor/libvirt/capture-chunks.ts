/**
 * Chunked captures (`output.kind === 'chunks'`): the disk is read from the panel through an NBD
 * export on a unix socket of the hypervisor (an SSH stream-local channel, or the socket itself
 * for a local executor), in fixed-size chunks handed to the output's consumer.
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
import type { CaptureResult, CapturedChunk, ChunkCaptureOutput, ChunkSourceInfo } from '../../../src/ports/hypervisor-driver';
import { BASE_ALLOCATION, connectNbd, dirtyBitmapContext, readNbdChunks, type NbdClient } from '../../nbd';
import { beginBackup, endBackupJob, withFreeze } from './backup-job';
import { stage, throwIfAborted, type CaptureContext, type Run } from './capture-run';
import type { DomainOutline } from './inspect';
import type { HostCommands } from './commands';
import { assertCheckpointName, deleteCheckpoint, incrementalRefusal, readCheckpoint } from './checkpoints';
import { checkpointXml, pullBackupXml } from './xml-builders';

/** What a chunked capture hands back to {@link captureDomain}. */
type ChunkedOutcome = Pick<CaptureResult, 'sha256' | 'sizeBytes' | 'virtualSizeBytes' | 'checkpoint' | 'incrementalSince'> & {
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

/** The `since` checkpoint to read incrementally from, or undefined for a full read. */
async function trustedSince(
  cmd: HostCommands,
  domain: DomainOutline,
  output: ChunkCaptureOutput,
  running: boolean,
): Promise<string | undefined> {
  const since = output.checkpoint?.since ?? null;
  if (since === null) return undefined;
  const refusal = await incrementalRefusal(cmd, domain.name, { ...domain.primaryDisk, running }, since);
  return refusal === null ? since : undefined;
}

/** What a chunked capture asks before it starts anything (see {@link chunkPrechecks}). */
export interface ChunkPrechecks {
  /** The checkpoint to read incrementally from, or undefined for a full read. */
  since: string | undefined;
  /** A checkpoint named `create` exists already (left by an interrupted attempt at this same image). */
  leftover: boolean;
}

/**
 * The questions a chunked capture asks before it starts anything, all at once (one round trip;
 * they only read), as soon as the domain's state and disk are known: room in the scratch directory
 * for a running domain's backup job, whether `since` can be trusted, and whether `create` exists.
 * @throws STORAGE_FULL when the scratch directory lacks the space margin.
 */
export async function chunkPrechecks(ctx: CaptureContext, domain: DomainOutline, output: ChunkCaptureOutput): Promise<ChunkPrechecks> {
  const running = domain.state !== 'shutoff';
  const create = output.checkpoint?.create;
  const [, since, leftover] = await Promise.all([
    running ? checkScratchSpace(ctx) : undefined,
    trustedSince(ctx.cmd, domain, output, running),
    running && create !== undefined ? readCheckpoint(ctx.cmd, domain.name, create) : null,
  ]);
  return { since, leftover: leftover !== null };
}

/** A running domain's backup job keeps a small file in the scratch directory: its margin must be free. */
async function checkScratchSpace(ctx: CaptureContext): Promise<void> {
  const [available = 0] = await ctx.cmd.freeBytesOf([ctx.scratchDir]);
  if (available < ctx.spaceMarginBytes) {
    throw new InstanceImagesError(
      'STORAGE_FULL',
      `Not enough free space in the scratch directory on the hypervisor: ${available} bytes free, ${ctx.spaceMarginBytes} needed for the backup job`,
      { details: { where: 'scratch', freeBytes: available, neededBytes: ctx.spaceMarginBytes } },
    );
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
 * is called once the consumer has taken the last chunk (nothing more is read; it may still be
 * storing).
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
  async function* chunks(): AsyncGenerator<CapturedChunk, void, undefined> {
    try {
      for await (const chunk of readNbdChunks(client, {
        chunkSize: output.chunkSizeBytes,
        connections: readers,
        ...(dirtyContext === undefined ? {} : { dirtyContext }),
        ...(run.signal ? { signal: run.signal } : {}),
        onProgress: (p) => run.progress('copy', p.processedBytes, p.totalBytes),
      })) {
        handed++;
        yield chunk;
      }
      finished = true;
      readsDone();
    } catch (error) {
      readError = readFailure(run, error);
      throw readError;
    }
  }
  run.progress('copy', 0, client.info.size);
  let result: { sha256: string; sizeBytes: number };
  try {
    result = await stage(run, 'copy', () => output.consume(chunks(), info));
  } catch (error) {
    throw readError ?? error;
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
 * before this returns.
 */
async function readExport(
  run: Run,
  output: ChunkCaptureOutput,
  socket: string,
  exportName: string,
  since: string | undefined,
  bitmap: string | undefined,
  afterReads: () => Promise<void> = () => Promise.resolve(),
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
    await readsDone();
    return { ...result, virtualSizeBytes: client.info.size, incrementalSince: info.incrementalSince };
  } finally {
    for (const c of [client, ...readers]) c.destroy();
  }
}

/** Starts the pull-mode job (and checkpoint); an incremental start libvirt refuses is retried as a full one. */
async function startPullJob(run: Run, create: string | undefined, since: string | undefined): Promise<string | undefined> {
  const { target } = run.domain.primaryDisk;
  const { socket, backupScratch } = run.scratch;
  const checkpoint = create === undefined ? undefined : checkpointXml(create, target, run.domain.disks);
  if (since !== undefined) {
    try {
      await beginBackup(run, pullBackupXml(target, socket, backupScratch, run.domain.disks, since), checkpoint);
      return since;
    } catch (error) {
      // libvirt checks the bitmap chain itself; its refusal (virsh failed, no job) only means a
      // full read. The backup and checkpoint are one transaction; still, no half-made checkpoint stays.
      if (!isInstanceImagesError(error) || error.code !== 'CAPTURE_FAILED' || (await run.ctx.cmd.exists(socket))) throw error;
      if (create !== undefined) await deleteCheckpoint(run.ctx.cmd, run.domain.name, create);
    }
  }
  await beginBackup(run, pullBackupXml(target, socket, backupScratch, run.domain.disks), checkpoint);
  return undefined;
}

/** A running domain: pull-mode backup, checkpoint in the same transaction. */
async function captureRunning(run: Run, output: ChunkCaptureOutput, prechecks: Promise<ChunkPrechecks>): Promise<ChunkedOutcome> {
  const { cmd } = run.ctx;
  const { target } = run.domain.primaryDisk;
  const { socket, backupScratch } = run.scratch;
  const files = [socket, backupScratch];
  const create = output.checkpoint?.create;
  const asked = await prechecks;
  let since = asked.since;
  // A checkpoint of this name can only be left by an interrupted attempt at this same image.
  if (create !== undefined && asked.leftover) await deleteCheckpoint(cmd, run.domain.name, create);
  let job = 'not started' as 'not started' | 'running' | 'ended';
  let stored = false;
  // Ended once (as soon as every chunk was read, while the consumer may still be storing).
  let ending: Promise<void> | null = null;
  const endJob = (): Promise<void> => (ending ??= endBackupJob(run, files));
  try {
    const frozen = await withFreeze(run, () =>
      stage(run, 'start-job', async () => {
        since = await startPullJob(run, create, since);
        job = 'running';
      }),
    );
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'pull-backup' });
    throwIfAborted(run.signal);
    const read = await readExport(run, output, socket, target, since, since === undefined ? undefined : `backup-${target}`, endJob);
    job = 'ended';
    await endJob();
    stored = true;
    return { ...read, frozen, checkpoint: create ?? null };
  } finally {
    try {
      if (job === 'running') await endJob();
      else if (job === 'not started') await ((await cmd.exists(socket)) ? endBackupJob(run, files) : cmd.remove(...files));
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
 * disconnects) and is stopped and its files removed afterwards.
 */
async function captureStopped(run: Run, output: ChunkCaptureOutput, prechecks: Promise<ChunkPrechecks>): Promise<ChunkedOutcome> {
  const { path, format, target } = run.domain.primaryDisk;
  const { qemuNbdSocket: socket, qemuNbdPid: pidFile } = run.scratch;
  const { since } = await prechecks;
  const argv = [
    'qemu-nbd',
    '--read-only',
    `--format=${String(format)}`,
    '--fork',
    // One client per connection the read uses (with more than one, qemu-nbd 7.2 keeps serving
    // after the last disconnects: it is stopped below).
    `--shared=${run.ctx.nbdConnections}`,
    `--pid-file=${pidFile}`,
    `--socket=${socket}`,
    `--export-name=${target}`,
    ...(since === undefined ? [] : [`--bitmap=${since}`]),
    '--',
    path,
  ];
  try {
    await stage(run, 'start-job', () => run.ctx.cmd.run(['sh', '-c', 'exec "$@" >/dev/null', 'sh', ...argv], {}, 'CAPTURE_FAILED'));
    await run.ctx.hooks.afterJobStart?.({ domainName: run.domain.name, method: 'cold-convert' });
    throwIfAborted(run.signal);
    const read = await readExport(run, output, socket, target, since, since);
    return { ...read, frozen: false, checkpoint: null };
  } finally {
    await stopQemuNbd(run.ctx.cmd, pidFile, socket);
  }
}

/**
 * Captures the primary disk into chunks (see the module). `prechecks` are the answers of
 * {@link chunkPrechecks}, asked by the caller while it inspected the domain.
 */
export async function captureChunks(run: Run, output: ChunkCaptureOutput, prechecks: Promise<ChunkPrechecks>): Promise<ChunkedOutcome> {
  return run.domain.state === 'shutoff' ? captureStopped(run, output, prechecks) : captureRunning(run, output, prechecks);
}
