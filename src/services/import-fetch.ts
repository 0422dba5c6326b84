/**
 * A URL import into a path storage fetched by the hypervisor that writes it
 * (`imports.fetchOnHypervisor`): curl there downloads into a private work directory next to the
 * target (same filesystem, so a clean qcow2 is moved into place rather than copied), the image is
 * decompressed and hashed there, its format detected by our code from its first bytes, and the
 * driver stores it with the format passed explicitly (a clean, standalone qcow2 kept as fetched;
 * anything else converted). No byte crosses the panel. The work directory is removed, and curl
 * killed, whatever happens. Object storages keep the panel's own download.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { InstanceImagesError } from '../errors';
import type { DestinationRules } from '../import/address';
import { pinDestination } from '../import/download';
import { qemuFormatOf } from '../import/format';
import type { ResolvedImportOptions } from '../import/options';
import { CLEANUP_SCRIPT, fetchOnHypervisor, HASH_FUNCTION } from '../import/remote-fetch';
import { prepareRemoteImage, requireTools } from '../import/remote-image';
import type { Executor } from '../ports/executor';
import type { DriverCache } from './context';
import type { ByteHold } from './import-hold';
import { prepareMarkerKey } from '../storage/disk';
import type { ImportTarget, StoredImport } from './import-store';
import type { WorkProgress } from './task-runner';

/** The programs a fetch on the hypervisor needs there (besides a decompressor, checked when one is needed). */
export const FETCH_TOOLS: readonly string[] = ['curl', 'setsid', 'sha256sum', 'head', 'dd', 'stat', 'base64'];

/** What {@link fetchIntoPathStorage} needs besides the target. */
export interface HypervisorFetchRequest {
  url: URL;
  sha256: string | null;
  options: ResolvedImportOptions;
  rules: DestinationRules;
  hold: ByteHold | null;
  signal: AbortSignal;
  progress(p: WorkProgress): void;
  /** Told each storage key before anything is written under it (removed by the caller on a failure). */
  onKey(key: string): void;
}

/**
 * `$1` the path of an image's key base: kills what runs in its fetch work directories
 * (`<key base>.fetch-*`) and removes them, printing each one removed.
 */
const LEFTOVERS_SCRIPT = `cleanup() {
${CLEANUP_SCRIPT}
}
for d in "$1".fetch-*; do [ -d "$d" ] || continue; cleanup "$d"; printf '%s\\n' "$d"; done`;

/**
 * The work directories a fetch left next to the image whose key base is `keyBase` (a panel that
 * died mid-import: its `finally` never ran, curl may still be writing): what runs in them is
 * killed and they are removed, on the hypervisor that wrote them. Used by start-up recovery for
 * an interrupted import. @returns the directories removed.
 * @throws what the executor throws (HYPERVISOR_UNREACHABLE), COMMAND_FAILED.
 */
export async function removeFetchLeftovers(executor: Executor, keyBasePath: string): Promise<string[]> {
  const result = await executor.run(['sh', '-c', LEFTOVERS_SCRIPT, 'sh', keyBasePath]);
  if (result.exitCode !== 0)
    throw new InstanceImagesError('COMMAND_FAILED', `Removing a fetch's work directory failed: ${result.stderr.trim().slice(0, 200)}`);
  return result.stdout.split('\n').filter((line) => line !== '');
}

/** Removes the work directory on the hypervisor, killing what still runs in it; never throws. */
async function removeWorkDir(executor: Executor, dir: string): Promise<void> {
  await executor.run(['sh', '-c', CLEANUP_SCRIPT, 'sh', dir]).catch(() => undefined);
}

/**
 * Fetches the URL on the target's hypervisor and stores it into the target (a path storage).
 * @throws DESTINATION_REFUSED (before anything runs on the hypervisor), DOWNLOAD_FAILED,
 *   FEATURE_DISABLED (a program missing there), UNSUPPORTED_IMAGE, CHECKSUM_MISMATCH,
 *   IMAGE_LIMIT_REACHED, CANCELLED, and the driver's errors.
 */
export async function fetchIntoPathStorage(
  drivers: DriverCache,
  target: ImportTarget,
  request: HypervisorFetchRequest,
): Promise<StoredImport> {
  const { disk } = target;
  const { options, signal, progress } = request;
  if (!target.hypervisorId)
    throw new InstanceImagesError('NO_IMAGE_STORAGE', 'The image storage is not bound to any hypervisor that could write the image');
  const hypervisorId = target.hypervisorId;
  // The destination is checked before anything runs on the hypervisor (and again for each request).
  await pinDestination(request.url, request.rules, options.resolveHost);
  const hv = await drivers.hypervisorDriver(hypervisorId);
  const executor = await drivers.executor(hypervisorId);
  const key = `${target.keyBase}.qcow2`;
  request.onKey(prepareMarkerKey(key));
  request.onKey(key);
  // The key's directory, made with the storage's checks (no link below its root, a mounted share).
  await disk.prepareKey(key, { signal });
  const targetPath = disk.pathOf(key);
  const dir = `${disk.pathOf(target.keyBase)}.fetch-${randomUUID()}`;
  try {
    await requireTools(executor, FETCH_TOOLS, hypervisorId, signal, dir);
    progress({ step: 'downloading', bytesDone: 0, bytesTotal: null });
    const download = await fetchOnHypervisor(executor, dir, request.url, {
      rules: request.rules,
      maxRedirects: options.maxRedirects,
      maxBytes: options.maxDownloadBytes,
      maxResumes: options.maxResumes,
      idleTimeoutMs: options.idleTimeoutMs,
      ...(options.resolveHost ? { resolve: options.resolveHost } : {}),
      signal,
      onDownloaded: (bytes, total) => {
        request.hold?.announce(total);
        progress({ step: 'downloading', bytesDone: bytes, bytesTotal: total });
      },
    });
    const image = await prepareRemoteImage(executor, dir, download, {
      maxImageBytes: options.maxImageBytes,
      expectedSha256: request.sha256,
      hypervisorId,
      signal,
    });
    await request.hold?.admit(image.sizeBytes);
    const materialized = await hv.materialize({
      source: { kind: 'path', path: image.path, root: disk.storagePath(key).root },
      sourceFormat: qemuFormatOf(image.detected.format),
      targetPath,
      targetFormat: 'qcow2',
      reuseSource: true,
      signal,
      onProgress: (p) => progress(p),
    });
    progress({ step: 'verifying' });
    if (materialized.keptSource && image.sha256 !== null) return stored(key, image.sizeBytes, image.sha256, materialized.virtualSizeBytes);
    // A converted image, or one kept as fetched that the fetch did not hash.
    const script = `set -e\n${HASH_FUNCTION}\nstat -c %s -- "$1"; hash256 < "$1" | cut -c1-64`;
    const hashed = await executor.run(['sh', '-c', script, 'sh', targetPath], { signal });
    const [size, sha256] = hashed.stdout.trim().split('\n');
    if (hashed.exitCode !== 0 || !/^[0-9a-f]{64}$/.test(sha256 ?? ''))
      throw new InstanceImagesError('COMMAND_FAILED', `Hashing the stored image failed: ${hashed.stderr.trim().slice(0, 200)}`);
    return stored(key, Number(size), sha256 ?? '', materialized.virtualSizeBytes);
  } finally {
    await removeWorkDir(executor, dir);
  }
}

const stored = (key: string, sizeBytes: number, sha256: string, virtualSizeBytes: number): StoredImport => ({
  key,
  format: 'qcow2',
  sizeBytes,
  virtualSizeBytes,
  sha256,
});
