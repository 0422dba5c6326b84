/**
 * What becomes of a download fetched on the hypervisor ({@link fetchOnHypervisor}) before it is
 * stored: decompressed there (gz, xz, zst, bz2, by the tool the first bytes call for, when it is
 * installed: otherwise refused with FEATURE_DISABLED naming the tool), limited and hashed; its
 * format detected by our own code from its first bytes (read through the executor), which refuses
 * a qcow2 naming a backing or external data file as for any import; the expected checksum checked.
 * @module
 */
import { InstanceImagesError } from '../errors';
import type { Executor } from '../ports/executor';
import { detectCompression, type Compression } from './decompress';
import { DOWNLOAD_FILE, HASH_FUNCTION, PRESYNC_FUNCTION, type RemoteDownload } from './remote-fetch';
import { detectDiskFormat, DETECT_HEAD_BYTES, MAX_HEAD_BYTES, type DetectedFormat } from './format';

/** The file of the work directory holding the (decompressed) image. */
export const IMAGE_FILE = 'image';

/** The program (and its argument) that decompresses each compression on the hypervisor. */
const DECOMPRESSORS: Record<Exclude<Compression, 'none'>, string> = { gzip: 'gzip', zstd: 'zstd', xz: 'xz', bzip2: 'bzip2' };

/**
 * `$1` the work directory, `$2` the decompressor, `$3` the image byte limit. Makes `image` from
 * `download`, decompressed through `dd` (which takes at most one byte past the limit, counted in
 * bytes, in 64 KiB blocks filled whole), then hashes it where it lies (as the fetch does: faster
 * than `head -c | tee | hash`, which move 8 KiB at a time); prints `size N`, `sha HEX` and `rc N`
 * (the decompressor's exit code).
 */
const PREPARE_SCRIPT = `set -u
${HASH_FUNCTION}
${PRESYNC_FUNCTION}
d=$1; in="$d/${DOWNLOAD_FILE}"; out="$d/${IMAGE_FILE}"
echo $$ > "$d/pid"
{ { "$2" -dc -- "$in"; echo $? > "$d/tool.rc"; } | dd bs=64K iflag=fullblock,count_bytes count=$(( $3 + 1 )) of="$out" status=none; } </dev/null 2>"$d/stderr"
presync "$out"
hash256 < "$out" > "$d/image.sha256"
[ -z "$s" ] || wait "$s"
rc=$(cat -- "$d/tool.rc" 2>/dev/null || echo 255)
rm -f -- "$in"
echo "size $(stat -c %s -- "$out")"
echo "sha $(cut -c1-64 < "$d/image.sha256")"
echo "rc $rc"
rm -f -- "$d/pid"`;

/**
 * `$1` a directory to make (mode 700) or empty, then the programs needed: lists those that are not
 * installed (one a line); makes the directory when none is missing.
 */
const MISSING_TOOLS_SCRIPT = `d=$1; shift; m=0
for t; do command -v "$t" >/dev/null 2>&1 || { printf '%s\\n' "$t"; m=1; }; done
[ "$m" = 1 ] || [ -z "$d" ] || mkdir -m 700 -- "$d"`;

/**
 * Refuses (FEATURE_DISABLED, naming the first missing program) when the hypervisor lacks one of
 * `tools`; then makes `makeDirectory` (mode 700) when given (COMMAND_FAILED when it cannot).
 */
export async function requireTools(
  executor: Executor,
  tools: readonly string[],
  hypervisorId: string,
  signal: AbortSignal,
  makeDirectory = '',
): Promise<void> {
  const result = await executor.run(['sh', '-c', MISSING_TOOLS_SCRIPT, 'sh', makeDirectory, ...tools], { signal });
  const missing = result.stdout.split('\n').filter((line) => line !== '');
  if (missing.length === 0 && result.exitCode !== 0)
    throw new InstanceImagesError(
      'COMMAND_FAILED',
      `The work directory of the import could not be made: ${result.stderr.trim().slice(0, 200)}`,
    );
  if (missing.length > 0)
    throw new InstanceImagesError(
      'FEATURE_DISABLED',
      `Fetching imports on hypervisor ${hypervisorId} needs ${missing[0] ?? tools.join(', ')}, which is not installed there: install it, or turn imports.fetchOnHypervisor off`,
      { details: { tool: missing[0] ?? null, missing, hypervisorId, option: 'imports.fetchOnHypervisor' } },
    );
}

/** Reads the first `bytes` of a file on the hypervisor. */
async function readHead(executor: Executor, path: string, bytes: number, signal: AbortSignal): Promise<Buffer> {
  const started = await executor.stream(['head', '-c', String(bytes), '--', path], { signal });
  const chunks: Buffer[] = [];
  for await (const chunk of started.stdout as AsyncIterable<Buffer>) chunks.push(chunk);
  const done = await started.done;
  if (done.exitCode !== 0)
    throw new InstanceImagesError('COMMAND_FAILED', `Reading the fetched image failed: ${done.stderr.trim().slice(0, 200)}`);
  return Buffer.concat(chunks);
}

/** The image fetched on the hypervisor, ready to be stored. */
export interface RemoteImage {
  /** Its path on the hypervisor (in the work directory). */
  path: string;
  compression: Compression;
  detected: DetectedFormat;
  sizeBytes: number;
  /**
   * Its sha256, or null when nothing needed it yet: an uncompressed download the fetch did not
   * hash (a resume answered 416), without an expected checksum (the caller hashes the stored file).
   */
  sha256: string | null;
}

/**
 * Decompresses the download in `dir` (when it is compressed), detects the format, checks the
 * size limit and the expected checksum. An uncompressed download is the image itself (no command
 * runs for it when the fetch hashed it, or when no checksum is expected: its first bytes came
 * with the download); it is hashed here only to check an expected checksum the fetch could not.
 * @throws FEATURE_DISABLED (the decompressor is not installed), UNSUPPORTED_IMAGE (a format we
 *   refuse, corrupt compressed data), DOWNLOAD_FAILED (too large), CHECKSUM_MISMATCH, CANCELLED.
 */
export async function prepareRemoteImage(
  executor: Executor,
  dir: string,
  download: RemoteDownload,
  options: { maxImageBytes: number; expectedSha256: string | null; hypervisorId: string; signal: AbortSignal },
): Promise<RemoteImage> {
  const { signal } = options;
  const downloadPath = `${dir}/${DOWNLOAD_FILE}`;
  // One read serves both: the compression, and (uncompressed) the format's first look.
  const first = download.head ?? (await readHead(executor, downloadPath, DETECT_HEAD_BYTES, signal));
  const compression = detectCompression(first);
  const tooLarge = () =>
    new InstanceImagesError('DOWNLOAD_FAILED', `The decompressed image is larger than the limit of ${options.maxImageBytes} bytes`, {
      details: { reason: 'too-large', limitBytes: options.maxImageBytes },
    });
  let path = downloadPath;
  let size = download.bytes;
  let sha256 = download.sha256;
  if (compression !== 'none') {
    const tool = DECOMPRESSORS[compression];
    await requireTools(executor, [tool], options.hypervisorId, signal);
    const result = await executor.run(['setsid', '-w', 'sh', '-c', PREPARE_SCRIPT, 'sh', dir, tool, String(options.maxImageBytes)], {
      signal,
    });
    const field = (name: string) => new RegExp(`^${name} (\\S+)$`, 'm').exec(result.stdout)?.[1];
    size = Number(field('size'));
    sha256 = field('sha') ?? '';
    if (result.exitCode !== 0 || !Number.isSafeInteger(size) || !/^[0-9a-f]{64}$/.test(sha256))
      throw new InstanceImagesError('COMMAND_FAILED', `Preparing the fetched image failed: ${result.stderr.trim().slice(0, 300)}`);
    if (size > options.maxImageBytes) throw tooLarge();
    if (field('rc') !== '0')
      throw new InstanceImagesError('UNSUPPORTED_IMAGE', `The ${compression} data of the image is corrupt or truncated`, {
        details: { reason: 'corrupt-compression', compression },
      });
    path = `${dir}/${IMAGE_FILE}`;
  } else if (size > options.maxImageBytes) throw tooLarge();
  let want = DETECT_HEAD_BYTES;
  let detected: DetectedFormat | null = null;
  while (detected === null) {
    const head = compression === 'none' && want === DETECT_HEAD_BYTES ? first : await readHead(executor, path, want, signal);
    const complete = head.length < want;
    const found = detectDiskFormat(head, complete);
    if ('format' in found) detected = found;
    else if (complete || found.needBytes > MAX_HEAD_BYTES || found.needBytes <= head.length)
      throw new InstanceImagesError('UNSUPPORTED_IMAGE', 'The image format could not be recognized');
    else want = found.needBytes;
  }
  // An uncompressed download the fetch did not hash: hashed from the file only to check the expected checksum.
  if (sha256 === null && options.expectedSha256) sha256 = await hashFile(executor, path, signal);
  if (options.expectedSha256 && sha256 !== options.expectedSha256)
    throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The downloaded image does not match the expected sha256', {
      details: { expected: options.expectedSha256, actual: sha256 },
    });
  return { path, compression, detected, sizeBytes: size, sha256 };
}

/** The sha256 of a file on the hypervisor. @throws COMMAND_FAILED, CANCELLED. */
export async function hashFile(executor: Executor, path: string, signal: AbortSignal): Promise<string> {
  const hashed = await executor.run(['sh', '-c', `set -e\n${HASH_FUNCTION}\nhash256 < "$1" | cut -c1-64`, 'sh', path], { signal });
  const sha256 = hashed.stdout.trim();
  if (hashed.exitCode !== 0 || !/^[0-9a-f]{64}$/.test(sha256))
    throw new InstanceImagesError('COMMAND_FAILED', `Hashing the fetched image failed: ${hashed.stderr.trim().slice(0, 200)}`);
  return sha256;
}
