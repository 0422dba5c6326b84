/**
 * Sealing of a capture's output once the converter (or the backup job) has written it: the proof
 * that it is complete and the one read of it that a verified, durable capture needs.
 *
 * The proof comes from results the copy produces anyway, never from a second full read:
 * - the converter's exit status (`qemu-img convert` exits 0 only when every block was read and
 *   written) or the backup job's completion;
 * - `qemu-img info` of the output: its format and virtual size are the source's, no backing file;
 * - byte counts: a raw output is exactly the virtual size long; a stream carried exactly the
 *   file's size;
 * - for qcow2, `qemu-img check` (metadata only): a truncated file (clusters beyond its end) or a
 *   wiped or corrupt table (leaked or doubly referenced clusters) fails it;
 * - the sha256 of the output's bytes, computed by the one read: `openssl dgst` of the path output
 *   (from the page cache it was just written through) alongside its fsync, or, for a stream
 *   output, by `tee` into `openssl dgst` on the hypervisor as the bytes pass to the consumer (whose
 *   own hash of what it stored the service compares with it).
 * A stream output's info and check run beside that read, in the same remote command; the
 * consumer's stream ends only once they passed (a refused output fails the stream before its end,
 * so the consumer keeps nothing).
 * A data byte that changes inside an intact cluster after the converter wrote it is not detected
 * here; from the hash on, every later read (deploy, download) checks the bytes against it.
 * @module
 */
import { Transform } from 'node:stream';
import { InstanceImagesError } from '../../../src/errors';
import { stage, type OutputFacts, type Run, type Sealed } from './capture-run';
import { tail } from './commands';
import { parseQemuImgCheck, parseQemuImgInfo, type QemuImgCheck } from './parsers';

/** The `qemu-img check` of an output: its exit status (0 clean, 2 corruptions, 3 leaks) and JSON result, if printed. */
interface CheckResult {
  exitCode: number | null;
  result: QemuImgCheck | null;
}

/**
 * Judges an output from its size, `qemu-img info` and (qcow2, with verification on) `qemu-img
 * check`, without reading its data (see the module comment).
 * @throws CAPTURE_FAILED when the output is not the complete image of the disk.
 */
function judgeOutput(run: Run, facts: OutputFacts, check: CheckResult | null): OutputFacts {
  const qcow2 = run.format === 'qcow2';
  const fail = (what: string) => new InstanceImagesError('CAPTURE_FAILED', `The captured image is not complete: ${what}`);
  const expected = run.domain.primaryDisk.virtualSizeBytes;
  if (facts.info.format !== run.format) throw fail(`it is ${facts.info.format}, not ${run.format}`);
  if (facts.info.backingFilename !== null || facts.info.dataFile !== null) throw fail('it refers to another file');
  if (facts.info.virtualSizeBytes !== expected)
    throw fail(`its virtual size is ${facts.info.virtualSizeBytes} bytes, the disk's ${expected}`);
  if (!qcow2 && facts.sizeBytes !== expected) throw fail(`the raw file has ${facts.sizeBytes} of ${expected} bytes`);
  if (check !== null) {
    const { result, exitCode } = check;
    if (exitCode !== 0 || result === null || result.corruptions > 0 || result.leaks > 0 || result.checkErrors > 0) {
      const counts = result
        ? `${result.corruptions} corrupt and ${result.leaks} leaked clusters, ${result.checkErrors} check errors`
        : 'no result';
      throw fail(`qemu-img check exited ${exitCode ?? 'on a signal'} (${counts})`);
    }
  }
  return facts;
}

/**
 * Checks the finished path output without reading its data (see the module comment) while it is
 * fsynced, in one remote command ({@link PATH_CHECK_SCRIPT}).
 * @throws CAPTURE_FAILED when the output is not the complete image of the disk or its fsync failed.
 */
async function checkAndFsync(run: Run): Promise<OutputFacts> {
  const { cmd, verify } = run.ctx;
  // At a lower CPU priority than the hash beside it: the hash is the longest stage and ends the capture.
  const argv = [
    'nice',
    '-n',
    '10',
    'sh',
    '-c',
    PATH_CHECK_SCRIPT,
    'sh',
    run.outFile,
    run.format,
    verify && run.format === 'qcow2' ? '1' : '0',
  ];
  const result = await cmd.tryRun(argv, { signal: run.signal });
  const size = /^size (\d+)$/m.exec(result.stderr)?.[1];
  if (result.exitCode !== 0 || size === undefined) {
    throw new InstanceImagesError(
      'CAPTURE_FAILED',
      `Checking the captured image failed: ${tail(result.stderr) || `exit ${result.exitCode ?? 'on a signal'}`}`,
    );
  }
  return judgeLines(run, Number(size), result.stderr);
}

/**
 * Seals the output once it is written, while `release` (ending the backup job, committing the
 * overlay: the source is no longer needed) runs alongside:
 * - a path output is fsynced and hashed in parallel with its check;
 * - a stream output is checked, then streamed to its consumer through a hash.
 * Waits for everything it started before it throws; a failed `release` is reported first.
 */
export async function seal(run: Run, release?: () => Promise<void>): Promise<Sealed> {
  const { cmd } = run.ctx;
  const output = run.request.output;
  // The release starts first: whatever happens to the sealing, the source is let go.
  const releasing = release ? stage(run, 'release', release) : Promise.resolve();
  const sealing = (async (): Promise<Sealed> => {
    await run.ctx.hooks.afterOutputWritten?.({ path: run.outFile, method: run.method });
    run.progress('verify', 0, null);
    if (output.kind === 'path') {
      // The hash starts first: it is the longest, and each process start delays the next.
      const [sha256, facts] = await Promise.all([
        stage(run, 'hash', () => cmd.sha256(run.outFile, run.signal)),
        stage(run, 'check-fsync', () => checkAndFsync(run)),
      ]);
      return { facts, sha256 };
    }
    if (output.kind !== 'stream') throw new InstanceImagesError('CAPTURE_FAILED', 'A chunked capture is not sealed as a file');
    return stage(run, 'transfer', () => streamOut(run, output.consume));
  })();
  const [released, sealed] = await Promise.allSettled([releasing, sealing]);
  if (released.status === 'rejected') throw released.reason;
  if (sealed.status === 'rejected') throw sealed.reason;
  return sealed.value;
}

/**
 * Lines of a script printing `info STATUS JSON` (`qemu-img info` of file `$1` read as format `$2`)
 * and, when `$3` is 1, `check STATUS JSON` (`qemu-img check`, metadata only; its per-cluster
 * complaints are dropped): one line each, JSON on one line.
 */
const INFO_CHECK_LINES = [
  '  j=$(qemu-img info --output=json -f "$2" "$1" 2>/dev/null); e=$?',
  `  printf 'info %s %s\n' "$e" "$(printf %s "$j" | tr '\n' ' ')"`,
  '  if [ "$3" = 1 ]; then',
  '    j=$(qemu-img check --output=json -f qcow2 "$1" 2>/dev/null); e=$?',
  `    printf 'check %s %s\n' "$e" "$(printf %s "$j" | tr '\n' ' ')"`,
  '  fi',
];

/**
 * `sh -c` script sealing a stream output in one remote command: prints the size of file `$1` as
 * the first line of stdout, then the file's bytes, hashed as they pass (`tee` into `openssl dgst`:
 * one read of the file, hashed in its own process on the hypervisor). Beside that read, one
 * background job runs `qemu-img info` of it read as format `$2` and, when `$3` is 1, `qemu-img
 * check` (metadata only; its per-cluster complaints are dropped), each printing one line on stderr
 * (`info|check STATUS JSON`). The script waits for that job and prints `sha256 <hex>` on stderr last,
 * so stdout ends only once every result is printed. A failed read ends the script on a signal.
 */
const STREAM_SEAL_SCRIPT = [
  's=$(stat -c %s -- "$1") || exit 1',
  `printf '%s\n' "$s" || exit 1`,
  '{',
  ...INFO_CHECK_LINES,
  '} >&2 </dev/null &',
  'b=$!',
  'exec 4>&1',
  'h=$( { tee /dev/fd/5 <"$1" >&4 || kill $$; } 5>&1 | openssl dgst -sha256 -r 4>&-) || exit 1',
  'wait $b',
  `printf 'sha256 %s\n' "\${h%% *}" >&2`,
].join('\n');

/**
 * `sh -c` script checking a path output `$1` while it is fsynced, in one remote command: `sync` of
 * it in the background, then the same `info`/`check` lines as {@link STREAM_SEAL_SCRIPT} on stderr
 * (`$2` the format, `$3` 1 to check), then `size <bytes>`; exits 1 when the fsync failed.
 */
const PATH_CHECK_SCRIPT = [
  'sync -- "$1" & y=$!',
  '{',
  ...INFO_CHECK_LINES,
  '} >&2 </dev/null',
  's=$(stat -c %s -- "$1") || exit 1',
  `printf 'size %s\n' "$s" >&2`,
  'wait $y || { echo "fsync failed" >&2; exit 1; }',
].join('\n');

/** Longest first line {@link STREAM_SEAL_SCRIPT} prints: a size of at most 16 digits and its newline. */
const SIZE_LINE_MAX = 17;

/** The last `NAME rest` line of `text`, as `rest`. */
function lastLine(text: string, name: string): string | undefined {
  return [...text.matchAll(new RegExp(`^${name} (.*)$`, 'gm'))].at(-1)?.[1];
}

/** The `info` and `check` lines of {@link INFO_CHECK_LINES} in `text`, judged with the output's size. */
function judgeLines(run: Run, sizeBytes: number, text: string): OutputFacts {
  const fail = (what: string) => new InstanceImagesError('CAPTURE_FAILED', `The captured image is not complete: ${what}`);
  const status = (line: string | undefined): { exitCode: number; json: string } | null => {
    const match = /^(\d+) ?(.*)$/.exec(line ?? '');
    return match ? { exitCode: Number(match[1]), json: match[2]! } : null;
  };
  const info = status(lastLine(text, 'info'));
  if (info === null || info.exitCode !== 0) throw fail(`qemu-img info could not read it as ${run.format}`);
  const facts = { sizeBytes, info: parseQemuImgInfo(info.json) };
  let check: CheckResult | null = null;
  if (run.ctx.verify && run.format === 'qcow2') {
    const checked = status(lastLine(text, 'check'));
    let result: QemuImgCheck | null = null;
    try {
      result = checked ? parseQemuImgCheck(checked.json) : null;
    } catch {
      // no JSON: the image could not be opened; the exit status says so
    }
    check = { exitCode: checked?.exitCode ?? null, result };
  }
  return judgeOutput(run, facts, check);
}

/** The results {@link STREAM_SEAL_SCRIPT} printed on stderr, judged; returns the sha256 of the bytes read. */
function sealResults(run: Run, sizeBytes: number, stderr: string, exitCode: number | null): { facts: OutputFacts; sha256: string } {
  const sha256 = /^[0-9a-f]{64}$/.exec(lastLine(stderr, 'sha256') ?? '')?.[0];
  if (exitCode !== 0 || sha256 === undefined) {
    throw new InstanceImagesError(
      'CAPTURE_FAILED',
      `Reading the captured image failed: ${stderr.trim() || `exit ${exitCode ?? 'on a signal'}`}`,
    );
  }
  return { facts: judgeLines(run, sizeBytes, stderr), sha256 };
}

/**
 * Streams the finished scratch output to the consumer while it is checked, in one remote command
 * ({@link STREAM_SEAL_SCRIPT}); returns its facts and the sha256 of the bytes sent, computed on the
 * hypervisor as they were read (so that the consumer's own hash of what it stored is an
 * independent check of the whole way). The stream the consumer reads ends only once the output
 * passed its checks and every byte of the file was sent; otherwise it fails, so that the consumer
 * keeps nothing (an S3 storage aborts its multipart upload).
 */
export async function streamOut(run: Run, consume: (stream: Transform, size: number) => Promise<void>): Promise<Sealed> {
  const { verify } = run.ctx;
  const cat = await run.ctx.cmd.executor.stream(
    ['sh', '-c', STREAM_SEAL_SCRIPT, 'sh', run.outFile, run.format, verify && run.format === 'qcow2' ? '1' : '0'],
    { signal: run.signal },
  );
  const checking = stage(run, 'check', async () => {
    const result = await cat.done;
    return (sizeBytes: number) => sealResults(run, sizeBytes, result.stderr, result.exitCode);
  });
  // Never unhandled: awaited by the stream's end, or the failure surfaces through `cat.done` below.
  checking.catch(() => undefined);
  let header = Buffer.alloc(0);
  let sizeBytes = -1;
  let sent = 0;
  let sealed: Sealed | undefined;
  // The output's own failure, reported rather than whatever the consumer made of its failed stream.
  let refused: Error | undefined;
  let announce: (size: number) => void = () => undefined;
  let refuse: (error: Error) => void = () => undefined;
  const announced = new Promise<number>((resolve, reject) => {
    announce = resolve;
    refuse = reject;
  });
  announced.catch(() => undefined);
  const counting = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      if (sizeBytes < 0) {
        header = Buffer.concat([header, chunk]);
        const newline = header.indexOf(10);
        if (newline < 0 && header.length < SIZE_LINE_MAX) return callback();
        const size =
          newline > 0 && /^\d+$/.test(header.toString('latin1', 0, newline)) ? Number(header.toString('latin1', 0, newline)) : NaN;
        if (!Number.isSafeInteger(size))
          return callback(new InstanceImagesError('CAPTURE_FAILED', 'Reading the captured image failed: no size line'));
        sizeBytes = size;
        announce(size);
        chunk = header.subarray(newline + 1);
        header = Buffer.alloc(0);
      }
      sent += chunk.length;
      if (chunk.length > 0) run.progress('transfer', sent, sizeBytes);
      callback(null, chunk);
    },
    // The end is passed on only once the output is known complete and was sent whole.
    flush(callback) {
      checking.then(
        (judge) => {
          try {
            if (sizeBytes < 0) throw new InstanceImagesError('CAPTURE_FAILED', 'Reading the captured image failed: no size line');
            sealed = judge(sizeBytes);
            if (sent !== sizeBytes) throw new InstanceImagesError('CAPTURE_FAILED', `Streamed ${sent} bytes of a ${sizeBytes}-byte image`);
            callback();
          } catch (error) {
            refused = error as Error;
            callback(refused);
          }
        },
        (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
      );
    },
  });
  counting.once('error', (error) => refuse(error));
  cat.stdout.on('error', (error) => counting.destroy(error));
  cat.stdout.pipe(counting);
  // A script that ended without its size line (a missing file, a dropped connection) fails the stream too.
  const catDone = checking.then((judge) => {
    if (sizeBytes >= 0) return;
    judge(0);
    throw new InstanceImagesError('CAPTURE_FAILED', 'Reading the captured image failed: no size line');
  });
  catDone.catch((error: unknown) => {
    const failure = error instanceof Error ? error : new Error(String(error));
    refuse(failure);
    counting.destroy(failure);
  });
  try {
    const size = await Promise.race([announced, catDone.then(() => announced)]);
    await Promise.all([consume(counting, size), catDone]);
  } catch (error) {
    cat.kill();
    counting.destroy();
    throw refused ?? error;
  }
  if (refused !== undefined) throw refused;
  if (sealed === undefined)
    throw new InstanceImagesError('CAPTURE_FAILED', 'The consumer returned before the captured image was streamed whole');
  return sealed;
}
