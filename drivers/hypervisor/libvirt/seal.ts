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
 * A data byte that changes inside an intact cluster after the converter wrote it is not detected
 * here; from the hash on, every later read (deploy, download) checks the bytes against it.
 * @module
 */
import { Transform } from 'node:stream';
import { InstanceImagesError } from '../../../src/errors';
import { stage, type OutputFacts, type Run, type Sealed } from './capture-run';

/**
 * Checks the finished output without reading its data (see the module comment).
 * @throws CAPTURE_FAILED when the output is not the complete image of the disk.
 */
export async function checkOutput(run: Run): Promise<OutputFacts> {
  const { cmd, verify } = run.ctx;
  const qcow2 = run.format === 'qcow2';
  const [facts, check] = await Promise.all([
    cmd.fileSizeAndInfo(run.outFile, run.format),
    verify && qcow2 ? cmd.qemuImgCheck(run.outFile) : Promise.resolve(null),
  ]);
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
      const [facts, sha256] = await Promise.all([
        stage(run, 'check', () => checkOutput(run)),
        stage(run, 'hash', () => cmd.sha256(run.outFile, run.signal)),
        stage(run, 'fsync', () => cmd.fsync(run.outFile)),
      ]);
      return { facts, sha256 };
    }
    if (output.kind !== 'stream') throw new InstanceImagesError('CAPTURE_FAILED', 'A chunked capture is not sealed as a file');
    const facts = await stage(run, 'check', () => checkOutput(run));
    return { facts, sha256: await stage(run, 'transfer', () => streamOut(run, facts.sizeBytes, output.consume)) };
  })();
  const [released, sealed] = await Promise.allSettled([releasing, sealing]);
  if (released.status === 'rejected') throw released.reason;
  if (sealed.status === 'rejected') throw sealed.reason;
  return sealed.value;
}

/**
 * `sh -c` script: writes file `$1` to stdout and hashes the same bytes as they pass (`tee` into
 * `openssl dgst`: one read of the file, hashed in its own process on the hypervisor), then prints
 * `sha256 <hex>` on stderr. A failed read ends the script on a signal.
 */
const HASHING_CAT_SCRIPT = [
  'exec 4>&1',
  'h=$( { tee /dev/fd/5 <"$1" >&4 || kill $$; } 5>&1 | openssl dgst -sha256 -r 4>&-) || exit 1',
  `printf 'sha256 %s\\n' "\${h%% *}" >&2`,
].join('\n');

/**
 * Streams the finished scratch output to the consumer; returns the sha256 of the bytes sent,
 * computed on the hypervisor as they were read (so that the consumer's own hash of what it stored
 * is an independent check of the whole way).
 */
export async function streamOut(run: Run, sizeBytes: number, consume: (stream: Transform, size: number) => Promise<void>): Promise<string> {
  let sent = 0;
  const counting = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      sent += chunk.length;
      run.progress('transfer', sent, sizeBytes);
      callback(null, chunk);
    },
  });
  const cat = await run.ctx.cmd.executor.stream(['sh', '-c', HASHING_CAT_SCRIPT, 'sh', run.outFile], { signal: run.signal });
  cat.stdout.on('error', (error) => counting.destroy(error));
  cat.stdout.pipe(counting);
  const catDone = cat.done.then((result) => {
    const digest = [...result.stderr.matchAll(/^sha256 ([0-9a-f]{64})$/gm)].at(-1)?.[1];
    if (result.exitCode !== 0 || digest === undefined) {
      const error = new InstanceImagesError(
        'CAPTURE_FAILED',
        `Reading the captured image failed: ${result.stderr.trim() || `exit ${result.exitCode ?? 'on a signal'}`}`,
      );
      counting.destroy(error);
      throw error;
    }
    return digest;
  });
  catDone.catch((error: unknown) => counting.destroy(error instanceof Error ? error : new Error(String(error))));
  let sha256: string;
  try {
    [, sha256] = await Promise.all([consume(counting, sizeBytes), catDone]);
  } catch (error) {
    cat.kill();
    throw error;
  }
  if (sent !== sizeBytes) throw new InstanceImagesError('CAPTURE_FAILED', `Streamed ${sent} bytes of a ${sizeBytes}-byte image`);
  return sha256;
}
