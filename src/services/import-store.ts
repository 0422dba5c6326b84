/**
 * Where an import's bytes go: into a path storage through the hypervisor (received, checked and
 * converted by qemu-img with the detected format passed explicitly, then hashed as stored), or
 * streamed into an object storage as they are (qcow2 and raw only). Nothing is left on failure.
 * @module
 */
import { createHash, randomUUID } from 'node:crypto';
import { InstanceImagesError, isInstanceImagesError } from '../errors';
import { qemuFormatOf } from '../import/format';
import type { ImportSource } from '../import/source';
import type { DiskFormat } from '../model/common';
import { DEFAULT_SCRATCH_DIR } from '../ports/host-directory';
import type { StorageDisk } from '../storage';
import { prepareMarkerKey } from '../storage/disk';
import type { DriverCache } from './context';
import type { WorkProgress } from './task-runner';

/** Where an import is stored. */
export interface ImportTarget {
  disk: StorageDisk;
  /** The hypervisor that writes into a path storage (null for object storages). */
  hypervisorId: string | null;
  /** The file key without its extension (the format's extension is added). */
  keyBase: string;
  /**
   * Object storages: a hypervisor bound to the storage that converts VMDK, VHDX and VHD images
   * to qcow2 in its scratch directory (null: those formats are refused).
   */
  converterId?: string | null;
}

/** What an import stored. */
export interface StoredImport {
  key: string;
  format: DiskFormat;
  sizeBytes: number;
  virtualSizeBytes: number;
  /** sha256 of the stored file. */
  sha256: string;
}

async function hashStored(disk: StorageDisk, key: string, signal: AbortSignal): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of (await disk.get(key, { signal })) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Remembers the source stream's own error, which explains a consumer's failure better than the consumer does. */
function watchSource(source: ImportSource): () => InstanceImagesError | null {
  let failure: InstanceImagesError | null = null;
  source.stream.once('error', (error) => {
    if (isInstanceImagesError(error)) failure = error;
  });
  return () => failure;
}

/**
 * Stores the source into the target. `onKey` is told each key before anything is written under
 * it, so that the caller removes it on a later failure.
 * @throws UNSUPPORTED_IMAGE (a format the storage cannot take), the source's errors, storage and hypervisor errors.
 */
export async function storeImport(
  drivers: DriverCache,
  target: ImportTarget,
  source: ImportSource,
  options: { signal: AbortSignal; progress(p: WorkProgress): void; onKey(key: string): void },
): Promise<StoredImport> {
  const sourceFailure = watchSource(source);
  const rethrow = (error: unknown): never => {
    throw sourceFailure() ?? error;
  };
  const { disk } = target;
  if (disk.capabilities.pathAccess) {
    if (!target.hypervisorId)
      throw new InstanceImagesError('NO_IMAGE_STORAGE', 'The image storage is not bound to any hypervisor that could write the image');
    const hv = await drivers.hypervisorDriver(target.hypervisorId);
    const key = `${target.keyBase}.qcow2`;
    options.onKey(prepareMarkerKey(key));
    options.onKey(key);
    // The key's directory, made with the storage's checks (no link below its root, a mounted share).
    await disk.prepareKey(key, { signal: options.signal });
    const materialized = await hv
      .materialize({
        source: { kind: 'stream', stream: source.stream },
        sourceFormat: qemuFormatOf(source.detected.format),
        targetPath: disk.pathOf(key),
        targetFormat: 'qcow2',
        // A clean, standalone qcow2 is stored as received: no conversion, and no second read to hash it.
        reuseSource: true,
        signal: options.signal,
        onProgress: (p) => options.progress(p),
      })
      .catch(rethrow);
    if (!source.result()) rethrow(new InstanceImagesError('DOWNLOAD_FAILED', 'The download ended before the image was complete'));
    options.progress({ step: 'verifying' });
    // Kept as received: the file is the source's bytes, which the source hashed as they went by.
    const done = source.result();
    const kept = materialized.keptSource && done ? await disk.stat(key) : null;
    const stored =
      kept && done && kept.size === done.sizeBytes ? { size: kept.size, sha256: done.sha256 } : await hashStored(disk, key, options.signal);
    return { key, format: 'qcow2', sizeBytes: stored.size, virtualSizeBytes: materialized.virtualSizeBytes, sha256: stored.sha256 };
  }
  const format = qemuFormatOf(source.detected.format);
  if (format !== 'qcow2' && format !== 'raw' && target.converterId)
    return convertIntoObjectStorage(drivers, { ...target, converterId: target.converterId }, source, options, rethrow, sourceFailure);
  if (format !== 'qcow2' && format !== 'raw')
    throw new InstanceImagesError(
      'UNSUPPORTED_IMAGE',
      `A ${format} image cannot be imported into this storage (an object storage keeps qcow2 or raw only); convert it to qcow2 first`,
      { details: { reason: 'format-needs-conversion', format } },
    );
  const key = `${target.keyBase}.${format}`;
  options.onKey(key);
  // The source hashes the bytes as they go by: the storage wrapper takes its digest instead of a second pass.
  const put = await disk
    .put(key, source.stream, { signal: options.signal, bodySha256: () => source.result()?.sha256 ?? null })
    .catch(rethrow);
  const done = source.result();
  if (!done || done.sha256 !== put.sha256)
    throw sourceFailure() ?? new InstanceImagesError('CHECKSUM_MISMATCH', 'The stored bytes do not match the downloaded image');
  return {
    key,
    format,
    sizeBytes: put.size,
    virtualSizeBytes: source.detected.virtualSizeBytes ?? put.size,
    sha256: put.sha256,
  };
}

/**
 * VMDK, VHDX and VHD into an object storage: qemu-img on a hypervisor bound to the storage
 * converts the stream (format passed explicitly) into a qcow2 in its scratch directory, which is
 * then streamed into the storage and removed whatever happens.
 */
async function convertIntoObjectStorage(
  drivers: DriverCache,
  target: ImportTarget & { converterId: string },
  source: ImportSource,
  options: { signal: AbortSignal; progress(p: WorkProgress): void; onKey(key: string): void },
  rethrow: (error: unknown) => never,
  sourceFailure: () => InstanceImagesError | null,
): Promise<StoredImport> {
  const hv = await drivers.hypervisorDriver(target.converterId);
  const hypervisor = await drivers.hypervisor(target.converterId);
  const scratch = `${hypervisor.scratchDir ?? DEFAULT_SCRATCH_DIR}/ii-import-${randomUUID()}.qcow2`;
  const key = `${target.keyBase}.qcow2`;
  try {
    const materialized = await hv
      .materialize({
        source: { kind: 'stream', stream: source.stream },
        sourceFormat: qemuFormatOf(source.detected.format),
        targetPath: scratch,
        targetFormat: 'qcow2',
        signal: options.signal,
        onProgress: (p) => options.progress(p),
      })
      .catch(rethrow);
    if (!source.result()) rethrow(new InstanceImagesError('DOWNLOAD_FAILED', 'The download ended before the image was complete'));
    options.progress({ step: 'verifying' });
    const executor = await drivers.executor(target.converterId);
    const read = await executor.stream(['cat', '--', scratch], { signal: options.signal });
    options.onKey(key);
    const put = await target.disk.put(key, read.stdout, { signal: options.signal });
    const done = await read.done;
    if (done.exitCode !== 0) throw sourceFailure() ?? new InstanceImagesError('COMMAND_FAILED', 'Reading the converted image back failed');
    return { key, format: 'qcow2', sizeBytes: put.size, virtualSizeBytes: materialized.virtualSizeBytes, sha256: put.sha256 };
  } finally {
    await hv.removeFile(scratch).catch(() => undefined);
  }
}
