/**
 * Capture into a chunked storage: the hypervisor reads the disk as chunks (incrementally to the
 * checkpoint of the newest stored image of the same instance, when it can), the chunk store keeps
 * the new ones, and the manifest is committed only once the capture resolved and the image is
 * still being created.
 * @module
 */
import { standaloneSize, type ChunkManifest, type ChunkScope, type ChunkStore, type PendingImage, type PreparedImage } from '../chunks';
import { InstanceImagesError } from '../errors';
import type { Consistency } from '../model/image';
import type { Image } from '../model/image';
import type { ImageStorage } from '../model/image-storage';
import { DEFAULT_CHUNK_SIZE_BYTES } from '../model/image-storage';
import type { HostInstance } from '../ports/host-directory';
import type { CaptureResult, HypervisorDriver } from '../ports/hypervisor-driver';
import type { StorageDisk } from '../storage/disk';
import { chunkScopeOf, chunkStoreOf } from './chunked-storage';
import type { ServiceContext } from './context';
import type { WorkProgress } from './task-runner';

/** What a chunked capture stored, for the image record. */
export interface ChunkedCaptureOutcome {
  format: 'raw';
  /** The standalone stored size (the billable size). */
  sizeBytes: number;
  virtualSizeBytes: number;
  /** The manifest's image digest. */
  sha256: string;
  consistency: Consistency;
}

/** How many of an instance's newest images are looked at for a base checkpoint. */
const BASE_CANDIDATES = 10;

/** The checkpoint a capture attempt leaves on the disk: named after the image and the attempt's task. */
export function checkpointName(imageId: string, taskId: string): string {
  return `ii-${imageId}-${taskId.slice(0, 8)}`.replace(/[^A-Za-z0-9_-]/g, '_');
}

/**
 * The base of an incremental capture: the manifest (and its key) of the newest available image of
 * the same source instance on the same storage that records a checkpoint, when it was captured from
 * the same domain on the same hypervisor with the same chunk size and scope; else null (a full read,
 * still deduplicated). A full read of the same disk also uses it: its chunks are known stored.
 */
export async function findBaseManifest(
  ctx: ServiceContext,
  store: ChunkStore,
  image: Image,
  instance: HostInstance,
  chunkSizeBytes: number,
  scope: ChunkScope,
): Promise<{ manifest: ChunkManifest; key: string } | null> {
  const page = await ctx.repos.images.list(
    { storageId: image.storageId, sourceInstanceId: instance.id, statuses: ['available'] },
    { limit: BASE_CANDIDATES },
    { by: 'createdAt', direction: 'desc' },
  );
  for (const candidate of page.items) {
    if (candidate.id === image.id || candidate.accountId !== image.accountId) continue;
    const manifest = await store.readManifest(candidate.fileKey).catch((error: unknown) => {
      ctx.logger.warn('a base manifest could not be read', { imageId: candidate.id, error: String(error) });
      return null;
    });
    if (!manifest?.source?.checkpoint) continue;
    // Unchanged chunks are taken from the base as they are: they must lie in the scope this capture writes to.
    const usable =
      manifest.source.hypervisorId === instance.hypervisorId &&
      manifest.source.domainName === instance.domainName &&
      manifest.chunkSizeBytes === chunkSizeBytes &&
      JSON.stringify(manifest.scope) === JSON.stringify(scope);
    return usable ? { manifest, key: candidate.fileKey } : null;
  }
  return null;
}

/**
 * Waits for a capture's job on the hypervisor to end ({@link CaptureResult.ended}). A failure is
 * logged, not thrown (the image is whole), and the driver's recovery of the domain ends what the
 * capture left.
 */
async function jobEnded(
  ctx: ServiceContext,
  hv: HypervisorDriver,
  imageId: string,
  domainName: string,
  ended: Promise<void>,
): Promise<void> {
  try {
    await ended;
  } catch (error) {
    ctx.logger.warn('ending the capture job on the hypervisor failed; recovering the domain', { imageId, error: String(error) });
    await hv
      .recover(domainName)
      .catch((e: unknown) => ctx.logger.warn('recovering the domain after a capture failed', { imageId, error: String(e) }));
  }
}

/**
 * Captures an instance's disk into a chunked storage and commits the manifest at `image.fileKey`.
 * `stillCreating` is called after the capture resolved and before the commit; it throws when the
 * image was cancelled meanwhile. On any failure the pending chunks are abandoned (the lease is
 * dropped, here or where `deferCleanup` runs it; GC may collect them) and the checkpoint this
 * attempt left is deleted, best effort.
 */
export async function captureIntoChunks(
  ctx: ServiceContext,
  input: {
    image: Image;
    instance: HostInstance;
    storage: ImageStorage;
    disk: StorageDisk;
    hv: HypervisorDriver;
    /** The lease id: the capture task's id, so recovery can release it. */
    leaseId: string;
    signal: AbortSignal;
    progress: (p: WorkProgress) => void;
    stillCreating: () => Promise<void>;
    /**
     * Takes work on the chunk lease to run after the image's status was written: the dropping of a
     * failed attempt's lease (on a storage that no longer answers it must not hold the end back),
     * or the wait for a committed one's deletion (the image is available once its manifest is
     * stored). Without it, both run here.
     */
    deferCleanup?: (cleanup: () => Promise<void>) => void;
  },
): Promise<ChunkedCaptureOutcome> {
  const { image, instance, hv, signal, progress } = input;
  const store = chunkStoreOf(ctx, input.storage, input.disk, image.accountId);
  const chunkSizeBytes = input.storage.chunks?.chunkSizeBytes ?? DEFAULT_CHUNK_SIZE_BYTES;
  const base = await findBaseManifest(ctx, store, image, instance, chunkSizeBytes, chunkScopeOf(input.storage, image.accountId));
  const create = checkpointName(image.id, input.leaseId);
  let pending: PendingImage | null = null;
  let prepared: PreparedImage | null = null;
  let result: CaptureResult | null = null;
  try {
    // The lease is written and the base proven while the hypervisor starts the job.
    const writer = store.prepareImage({
      leaseId: input.leaseId,
      base: base?.manifest ?? null,
      baseKey: base?.key ?? null,
      source: { hypervisorId: instance.hypervisorId, domainName: instance.domainName, checkpoint: create },
      signal,
      onProgress: (p) => progress({ step: 'capturing', bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
    });
    prepared = writer;
    result = await hv.capture({
      domainName: instance.domainName,
      format: 'raw',
      signal,
      output: {
        kind: 'chunks',
        chunkSizeBytes,
        checkpoint: { create, since: base?.manifest.source?.checkpoint ?? null },
        // With deferred work, the job on the hypervisor ends while the manifest is stored.
        endLater: input.deferCleanup !== undefined,
        consume: async (chunks, info) => {
          pending = await writer.write(chunks, info);
          return { sha256: pending.manifest.imageSha256, sizeBytes: standaloneSize(pending.manifest) };
        },
      },
    });
    const stored = pending as PendingImage | null;
    if (!stored) throw new InstanceImagesError('CAPTURE_FAILED', 'The capture ended without handing over the disk');
    if (signal.aborted) throw new InstanceImagesError('CANCELLED', 'The capture was cancelled');
    if (result.sha256 !== stored.manifest.imageSha256)
      throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The stored chunks do not match the captured disk');
    // The manifest names the checkpoint the disk really has (none when the driver could not create one).
    if (stored.manifest.source) stored.manifest.source.checkpoint = result.checkpoint ?? null;
    progress({ step: 'verifying' });
    await input.stillCreating();
    // With a task that runs deferred work after its last write, the image becomes available as soon
    // as its manifest is stored; the lease is deleted meanwhile and awaited there.
    await stored.commit(image.fileKey, { releaseLater: input.deferCleanup !== undefined });
    input.deferCleanup?.(() => stored.settled());
    const ended = result.ended;
    if (ended) input.deferCleanup?.(() => jobEnded(ctx, hv, image.id, instance.domainName, ended));
    ctx.logger.info('chunked capture stored', {
      imageId: image.id,
      incrementalSince: result.incrementalSince ?? null,
      uploadedBytes: stored.uploadedBytes,
      uploadedChunks: stored.uploadedChunks,
      reusedChunks: stored.reusedChunks,
    });
    return {
      format: 'raw',
      sizeBytes: standaloneSize(stored.manifest),
      virtualSizeBytes: stored.manifest.virtualSizeBytes,
      sha256: stored.manifest.imageSha256,
      consistency: result.consistency,
    };
  } catch (error) {
    const stored = pending as PendingImage | null;
    const preparation = prepared as PreparedImage | null;
    // A write that failed before handing over its pending image may still hold its lease.
    const dropLease = () =>
      (stored ? stored.abandon() : preparation ? preparation.abandon() : store.releaseLease(input.leaseId)).catch((e: unknown) =>
        ctx.logger.warn('a chunk lease could not be dropped', { imageId: image.id, error: String(e) }),
      );
    if (input.deferCleanup) input.deferCleanup(dropLease);
    else await dropLease();
    // A checkpoint is deleted once the job made with it is over.
    const ended = (result as CaptureResult | null)?.ended;
    if (ended) await jobEnded(ctx, hv, image.id, instance.domainName, ended);
    if (result?.checkpoint && hv.deleteCheckpoints) {
      await hv
        .deleteCheckpoints(instance.domainName, [result.checkpoint])
        .catch((e: unknown) => ctx.logger.warn('the checkpoint of a failed capture was left', { imageId: image.id, error: String(e) }));
    }
    throw error;
  }
}
