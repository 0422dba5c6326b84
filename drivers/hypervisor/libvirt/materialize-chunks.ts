/**
 * Materialization from a chunked image: the data ranges come from the panel (already checked by
 * the caller) and are written over NBD into a new disk that `qemu-nbd` serves on the hypervisor,
 * through the executor's stream-local channel. Nothing but qemu-img and qemu-nbd runs there.
 *
 * The part file is created (never through a link), then served by `qemu-nbd`, which exits when
 * its last client disconnects. The panel writes the non-zero ranges with a
 * bounded window of WRITE requests (the source is not read ahead of it), spread over
 * `nbdConnections` connections (qemu-nbd `--shared=N` advertises multi-conn for a writable
 * export: one server process, one cache), then FLUSHes each, then disconnects; qemu-nbd exits when
 * the last one has gone, and the disk is then checked. On any failure, abort or rejection of the source the
 * server is killed and its socket and pid file removed; the caller removes the part file.
 * @module
 */
import { InstanceImagesError, isInstanceImagesError } from '../../../src/errors';
import type { DiskFormat } from '../../../src/model';
import type { ExecResult } from '../../../src/ports/executor';
import type { ChunkedSource, ChunkedSourceRange, MaterializeRequest } from '../../../src/ports/hypervisor-driver';
import { connectNbd, type NbdClient } from '../../nbd';
import { commandError, QEMU_NBD_MALLOC_ENV, tail } from './commands';
import type { MaterializeContext } from './materialize';
import { captureScratch } from './names';
import { isZeroRange, ZERO_BLOCK_BYTES } from '../../../src/util/zero';

/** Reports a deploy's progress. */
type Progress = (step: string, done: number, total: number | null) => void;

/** WRITE requests in flight at most per connection, and their payload bytes at most in all (the source waits beyond). */
const WINDOW_REQUESTS = 8;
const WINDOW_BYTES = 64 * 1024 * 1024;
/** Time allowed for qemu-nbd to listen, and to exit once the client disconnected. */
const SERVER_START_MS = 30_000;
const SERVER_EXIT_MS = 60_000;

/**
 * The qemu-nbd argv serving `part`: the explicit format (never probed), `clients` clients at once,
 * write-back cache made durable by the clients' FLUSH, its pid in a file (so that it can be found
 * and killed whatever happened to the command's channel), and an exit as soon as the last client
 * disconnects (`--shared` given explicitly: qemu-nbd 7.2 keeps serving after the last client
 * without it).
 */
function serveArgv(part: string, format: DiskFormat, socket: string, pidFile: string, clients: number): string[] {
  return [
    'env',
    QEMU_NBD_MALLOC_ENV,
    'qemu-nbd',
    `--format=${format}`,
    '--cache=writeback',
    '--aio=threads',
    '--discard=unmap',
    `--shared=${clients}`,
    `--socket=${socket}`,
    `--pid-file=${pidFile}`,
    part,
  ];
}

/**
 * `sh -c` script, run through {@link HostCommands.runPinned} with the part file as its output (so
 * `$1` is the part file's pinned descriptor, made anew and never through a link): creates the disk
 * (`qemu-img create -f $2 … $3`), then runs the qemu-nbd argv that follows as this very process
 * (`exec`, so that its pid file names it). One remote command for both: each costs a round trip
 * (0.5–0.9 s measured on a loaded hypervisor).
 *
 * `runPinned`'s write-back is on: the part file is written back every 100 ms while qemu-nbd serves
 * it (`sync -d`, the shared background flusher of drivers/exec/scripts), as the files layout's convert output is, so the data the clients
 * write reach the disk during the transfer and the FLUSH at the end (which makes them durable, as
 * before) waits for the tail only. Without it a deploy of 1 GiB left all of it dirty in the page
 * cache (far below the kernel's background threshold) for that FLUSH.
 */
const SERVE_SCRIPT = ['f=$1; fmt=$2; size=$3; shift 3', 'qemu-img create -q -f "$fmt" "$f" "$size" || exit 1', 'exec "$@"'].join('\n');

/**
 * `sh -c` script: kills the qemu-nbd whose pid file is `$1` if it still serves socket `$2` (the
 * pid is checked against its command line, so a reused pid is never hit), waits for it to end,
 * and removes the socket and the pid file.
 */
const STOP_SCRIPT = [
  'p=$(cat -- "$1" 2>/dev/null)',
  'case "$p" in ""|*[!0-9]*) ;; *)',
  '  if tr "\\0" "\\n" < "/proc/$p/cmdline" 2>/dev/null | grep -qxF -- "--socket=$2"; then',
  '    kill -9 "$p"; n=0; while kill -0 "$p" 2>/dev/null && [ $n -lt 200 ]; do sleep 0.05; n=$((n + 1)); done',
  '  fi ;;',
  'esac',
  'rm -f -- "$1" "$2"',
].join('\n');

/** Zero detection granularity: the default qcow2 cluster. */
const ZERO_BLOCK = ZERO_BLOCK_BYTES;

/**
 * The pieces of `bytes` to write, `[start, end)`: its 64 KiB blocks that are not all zero, merged,
 * split into at most `max` bytes. The new disk reads zeroes elsewhere, so zero blocks are neither
 * sent nor allocated.
 */
export function* dataPieces(bytes: Buffer, max: number): Generator<[number, number]> {
  let start = -1;
  for (let at = 0; at < bytes.length; at += ZERO_BLOCK) {
    const end = Math.min(bytes.length, at + ZERO_BLOCK);
    const zero = isZeroRange(bytes, at, end);
    if (zero && start >= 0) {
      yield* split(start, at, max);
      start = -1;
    } else if (!zero && start < 0) start = at;
  }
  if (start >= 0) yield* split(start, bytes.length, max);
}

function* split(from: number, to: number, max: number): Generator<[number, number]> {
  for (let at = from; at < to; at += max) yield [at, Math.min(to, at + max)];
}

/** The chunked source's virtual size and the disk's size, checked. @throws VALIDATION_FAILED. */
export function chunkedSizes(source: ChunkedSource, request: MaterializeRequest): { virtualSize: number; diskSize: number } {
  const virtualSize = source.virtualSizeBytes;
  if (!Number.isSafeInteger(virtualSize) || virtualSize <= 0) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'source.virtualSizeBytes must be a positive integer', {
      fields: [{ path: 'source.virtualSizeBytes', message: 'must be a positive integer' }],
    });
  }
  if (request.sizeBytes !== undefined && request.sizeBytes < virtualSize) {
    throw new InstanceImagesError(
      'VALIDATION_FAILED',
      `The disk size ${request.sizeBytes} is smaller than the image's virtual size ${virtualSize}`,
      { fields: [{ path: 'sizeBytes', message: `must be at least ${virtualSize}` }] },
    );
  }
  return { virtualSize, diskSize: Math.max(virtualSize, request.sizeBytes ?? 0) };
}

/** Waits for `promise`, or rejects with CANCELLED as soon as `signal` aborts. */
function orAbort<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new InstanceImagesError('CANCELLED', 'The deploy was cancelled'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** A running qemu-nbd: its socket, the end of its command, and how to stop it for good. */
interface Server {
  socket: string;
  /** Settles when the remote command ends (never rejects). */
  done: Promise<{ result: ExecResult | null; error: unknown }>;
  exited: boolean;
  /** Kills it if it still runs and removes its socket and pid file (once: later calls share the first). */
  stop(): Promise<void>;
}

/**
 * Creates `part` (made anew, never through a link) and starts qemu-nbd serving it, in one remote
 * command ({@link SERVE_SCRIPT}); a creation that fails ends the command before it serves.
 */
function startServer(ctx: MaterializeContext, part: string, format: DiskFormat, size: number, targetPath: string, clients: number): Server {
  const socket = captureScratch(ctx.scratchDir, targetPath).socket;
  const pidFile = socket.replace(/\.sock$/, '.pid');
  const abort = new AbortController();
  const server: Server = {
    socket,
    exited: false,
    done: ctx.cmd
      .runPinned(
        ['sh', '-c', SERVE_SCRIPT, 'sh', part, format, String(size), ...serveArgv(part, format, socket, pidFile, clients)],
        { signal: abort.signal },
        { output: part, writeBack: true },
      )
      .then(
        (result) => ({ result, error: undefined }),
        (error: unknown) => ({ result: null, error }),
      )
      .finally(() => (server.exited = true)),
    stop() {
      stopping ??= (async () => {
        if (!server.exited) abort.abort();
        await server.done;
        await ctx.cmd.run(['sh', '-c', STOP_SCRIPT, 'sh', pidFile, socket]);
      })();
      return stopping;
    },
  };
  let stopping: Promise<void> | null = null;
  return server;
}

/** The error of a server command that ended (before or instead of serving). */
function serverFailure(ended: { result: ExecResult | null; error: unknown }, what: string): InstanceImagesError {
  if (ended.result) {
    const error = commandError(['qemu-nbd'], ended.result, 'DEPLOY_FAILED');
    return new InstanceImagesError(error.code, `${what}: ${tail(ended.result.stderr) || `exit ${ended.result.exitCode}`}`, {
      details: { exitCode: ended.result.exitCode },
    });
  }
  if (isInstanceImagesError(ended.error)) return ended.error;
  return new InstanceImagesError('DEPLOY_FAILED', what, { cause: ended.error });
}

/** Opens one NBD connection to the server's socket and checks the export. */
async function openClient(
  ctx: MaterializeContext,
  server: Server,
  size: number,
  signal: AbortSignal | undefined,
  label: string,
): Promise<NbdClient> {
  const open = ctx.cmd.executor.openStreamLocal?.bind(ctx.cmd.executor);
  if (!open) throw new InstanceImagesError('INVALID_STATE', 'The executor cannot open unix socket channels');
  const stream = await open(server.socket, signal ? { signal } : {});
  const client = await connectNbd(stream, { label, maxInFlight: WINDOW_REQUESTS, ...(signal ? { signal } : {}) });
  if (client.info.size !== size || client.info.readOnly) {
    client.destroy();
    throw new InstanceImagesError(
      'DEPLOY_FAILED',
      `qemu-nbd exports ${client.info.size} bytes${client.info.readOnly ? ', read-only' : ''}; expected ${size} writable bytes`,
    );
  }
  return client;
}

/**
 * Opens the NBD connections once qemu-nbd listens (retrying the first while its socket is not
 * there yet), up to `count`. A further connection that cannot be opened is left out, and a server
 * that does not advertise multi-conn gets one connection only.
 */
async function connect(
  ctx: MaterializeContext,
  server: Server,
  size: number,
  count: number,
  signal: AbortSignal | undefined,
): Promise<NbdClient[]> {
  const deadline = Date.now() + SERVER_START_MS;
  let first: NbdClient;
  for (let attempt = 0; ; attempt++) {
    if (server.exited) throw serverFailure(await server.done, 'qemu-nbd could not serve the new disk');
    if (signal?.aborted) throw new InstanceImagesError('CANCELLED', 'The deploy was cancelled');
    try {
      first = await openClient(ctx, server, size, signal, 'the new disk (qemu-nbd)');
      break;
    } catch (error) {
      // COMMAND_FAILED: no socket yet (sshd refused the channel, or ENOENT/ECONNREFUSED locally).
      if (!isInstanceImagesError(error, 'COMMAND_FAILED') || Date.now() > deadline) throw error;
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(200, 10 * (attempt + 1))));
  }
  if (count <= 1 || !first.info.canMultiConn) return [first];
  const more = await Promise.allSettled(
    Array.from({ length: count - 1 }, (_, i) => openClient(ctx, server, size, signal, `the new disk (qemu-nbd, connection ${i + 2})`)),
  );
  return [first, ...more.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))];
}

/** Writes every non-zero range of the source with a bounded window; returns the data bytes written. */
async function writeRanges(
  clients: NbdClient[],
  iterator: AsyncIterator<ChunkedSourceRange>,
  first: Promise<IteratorResult<ChunkedSourceRange>>,
  virtualSize: number,
  signal: AbortSignal | undefined,
  progress: Progress,
): Promise<number> {
  const inFlight = new Set<Promise<void>>();
  // Requests in flight on each connection: a piece goes to the least busy one.
  const busy = clients.map(() => 0);
  const windowRequests = WINDOW_REQUESTS * clients.length;
  const maxPiece = Math.min(...clients.map((c) => c.maxWriteBytes));
  let bytesInFlight = 0;
  let failure: unknown = null;
  let written = 0;
  let position = 0;
  const settle = async () => {
    await Promise.race(inFlight);
    if (failure !== null) throw failure;
  };
  let pending: Promise<IteratorResult<ChunkedSourceRange>> | null = first;
  for (;;) {
    const next = await orAbort(pending ?? iterator.next(), signal);
    pending = null;
    if (next.done) break;
    const { offset, bytes } = next.value;
    const release = next.value.release?.bind(next.value);
    if (!Buffer.isBuffer(bytes) || !Number.isSafeInteger(offset) || offset < 0 || offset + bytes.length > virtualSize) {
      throw new InstanceImagesError(
        'VALIDATION_FAILED',
        `The chunked image has a range outside its virtual size ${virtualSize} (at ${String(offset)})`,
        {
          fields: [{ path: 'source.chunks', message: 'ranges must lie within the virtual size' }],
        },
      );
    }
    // The range's bytes go back to the source once every piece of it is written (never after a failure).
    let piecesLeft = 1;
    const pieceDone = () => {
      piecesLeft -= 1;
      if (piecesLeft === 0 && failure === null) release?.();
    };
    for (const [at, to] of dataPieces(bytes, maxPiece)) {
      piecesLeft += 1;
      const piece = bytes.subarray(at, to);
      while (inFlight.size >= windowRequests || (inFlight.size > 0 && bytesInFlight + piece.length > WINDOW_BYTES)) await settle();
      if (failure !== null) throw failure;
      const end = offset + at + piece.length;
      const index = busy.indexOf(Math.min(...busy));
      const client = clients[index] as NbdClient;
      busy[index] = (busy[index] ?? 0) + 1;
      bytesInFlight += piece.length;
      const write: Promise<void> = client.write(offset + at, piece, signal ? { signal } : {}).then(
        () => {
          written += piece.length;
          position = Math.max(position, end);
          progress('write', position, virtualSize);
          pieceDone();
        },
        (error: unknown) => {
          failure ??= error;
        },
      );
      const tracked = write.finally(() => {
        inFlight.delete(tracked);
        busy[index] = (busy[index] ?? 1) - 1;
        bytesInFlight -= piece.length;
      });
      inFlight.add(tracked);
    }
    pieceDone();
  }
  while (inFlight.size > 0) await settle();
  return written;
}

/** NBD errors as the deploy reports them (a full disk is STORAGE_FULL). */
function deployError(error: unknown): unknown {
  if (isInstanceImagesError(error, 'COMMAND_FAILED') && error.details?.nbdError === 'ENOSPC')
    return new InstanceImagesError('STORAGE_FULL', 'The hypervisor ran out of space while writing the new disk', { cause: error });
  return error;
}

/** What {@link writeChunkedDisk} writes, where, and whom it tells. */
export interface ChunkedDiskJob {
  ctx: MaterializeContext;
  request: MaterializeRequest;
  /** The image's virtual size and the new disk's size (bytes). */
  sizes: { virtualSize: number; diskSize: number };
  /** The new disk's format. */
  format: DiskFormat;
  /** The part file written (created here); the caller publishes or removes it. */
  part: string;
  progress: Progress;
}

/**
 * Writes the chunked image into `part` (created here, `format`, `diskSize` bytes) and checks it:
 * qemu-nbd ended cleanly, `qemu-img check` (qcow2) and the virtual size. The caller fsyncs and
 * publishes it, or removes it on failure.
 * @returns the data bytes written.
 * @throws STORAGE_FULL, DEPLOY_FAILED, VALIDATION_FAILED, INVALID_STATE, CANCELLED, or whatever the source throws.
 */
export async function writeChunkedDisk(job: ChunkedDiskJob, source: ChunkedSource): Promise<number> {
  const { cmd } = job.ctx;
  if (!cmd.executor.openStreamLocal)
    throw new InstanceImagesError(
      'INVALID_STATE',
      `The executor ${cmd.executor.label} cannot open unix socket channels, which chunked deploys need`,
    );
  // The source starts on its first range (a storage read) while the hypervisor is made ready.
  const iterator = source.chunks[Symbol.asyncIterator]();
  const first = iterator.next();
  first.catch(() => undefined); // awaited when the writes start; a failure before must not go unhandled
  try {
    return await writeThrough(job, iterator, first);
  } catch (error) {
    // Stop pulling; the source's own cleanup (a lease, a download) runs.
    void Promise.resolve(iterator.return?.()).catch(() => undefined);
    throw error;
  }
}

/** {@link writeChunkedDisk} once the source has started. */
async function writeThrough(
  job: ChunkedDiskJob,
  iterator: AsyncIterator<ChunkedSourceRange>,
  first: Promise<IteratorResult<ChunkedSourceRange>>,
): Promise<number> {
  const { ctx, request, sizes, format, part, progress } = job;
  const { cmd } = ctx;
  const signal = request.signal;
  const [free] = await Promise.all([cmd.freeBytes(part.slice(0, part.lastIndexOf('/')) || '/'), ctx.ensureScratchDir()]);
  if (free < ctx.spaceMarginBytes) {
    throw new InstanceImagesError(
      'STORAGE_FULL',
      `Not enough free space for the new disk: ${free} bytes free, at least ${ctx.spaceMarginBytes} needed`,
      {
        details: { freeBytes: free, neededBytes: ctx.spaceMarginBytes },
      },
    );
  }
  progress('write', 0, sizes.virtualSize);
  const connections = Math.max(1, ctx.nbdConnections ?? 1);
  const server = startServer(ctx, part, format, sizes.diskSize, request.targetPath, connections);
  let clients: NbdClient[] = [];
  try {
    clients = await connect(ctx, server, sizes.diskSize, connections, signal);
    const written = await writeRanges(clients, iterator, first, sizes.virtualSize, signal, progress);
    // Each connection flushes what it wrote (multi-conn would let one FLUSH cover all; this holds either way).
    await Promise.all(clients.map((c) => c.flush(signal ? { signal } : {})));
    await Promise.all(clients.map((c) => c.close()));
    clients = [];
    const timer = new Promise<'timeout'>((resolve) => setTimeout(resolve, SERVER_EXIT_MS, 'timeout').unref());
    const ended = await orAbort(Promise.race([server.done, timer]), signal);
    if (ended === 'timeout') throw new InstanceImagesError('DEPLOY_FAILED', 'qemu-nbd did not exit after the disk was written');
    if (ended.result?.exitCode !== 0) throw serverFailure(ended, 'qemu-nbd failed while serving the new disk');
    // Its socket and pid file go while the disk is checked.
    await Promise.all([checkDisk(ctx, part, format, sizes.diskSize, signal), server.stop()]);
    return written;
  } catch (error) {
    throw deployError(error);
  } finally {
    for (const c of clients) c.destroy();
    // A leftover socket or pid file (a dropped connection) is scratch that recovery removes.
    await server.stop().catch(() => undefined);
  }
}

/** The written disk: standalone, of the expected virtual size, and (qcow2) consistent. */
async function checkDisk(
  ctx: MaterializeContext,
  part: string,
  format: DiskFormat,
  size: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  // qcow2: info and check in one remote command.
  const facts =
    format === 'qcow2'
      ? await ctx.cmd.qcow2Facts(part, signal)
      : { info: await ctx.cmd.qemuImgInfo(part, { format, ...(signal ? { signal } : {}) }), checkExit: 0 };
  const { info, checkExit } = facts;
  if (info.backingFilename !== null || info.dataFile !== null)
    throw new InstanceImagesError('DEPLOY_FAILED', 'The new disk unexpectedly has a backing file');
  if (info.virtualSizeBytes !== size)
    throw new InstanceImagesError('DEPLOY_FAILED', `The new disk has ${info.virtualSizeBytes} bytes instead of ${size}`);
  if (checkExit !== 0)
    throw new InstanceImagesError('DEPLOY_FAILED', `qemu-img check found problems in the new disk (exit ${checkExit})`, {
      details: { exitCode: checkExit },
    });
}
