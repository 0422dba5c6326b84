/**
 * Capture into a file of a path storage (written by the hypervisor) or an object storage (streamed
 * by the panel), and the verification of what was stored.
 * @module
 */
import { InstanceImagesError } from '../errors';
import type { Image } from '../model/image';
import type { HypervisorDriver } from '../ports/hypervisor-driver';
import type { StorageDisk } from '../storage/disk';
import type { WorkProgress } from './task-runner';

/** Captures into a file of a path or object storage and verifies what was stored. */
export async function captureIntoFile(
  image: Image,
  domainName: string,
  disk: StorageDisk,
  hv: HypervisorDriver,
  compress: boolean,
  signal: AbortSignal,
  progress: (p: WorkProgress) => void,
): Promise<Pick<Image, 'sizeBytes' | 'virtualSizeBytes' | 'format' | 'sha256' | 'consistency'>> {
  const onProgress = (p: { step: string; bytesDone: number; bytesTotal: number | null }) => progress(p);
  let put: { size: number; sha256: string } | null = null;
  const result = disk.capabilities.pathAccess
    ? await hv.capture({ domainName, output: disk.storagePath(image.fileKey), format: image.format, compress, signal, onProgress })
    : await hv.capture({
        domainName,
        output: {
          kind: 'stream',
          consume: async (stream, sizeBytes) => {
            put = await disk.put(image.fileKey, stream, {
              size: sizeBytes,
              signal,
              onProgress: (p) => progress({ step: 'uploading', bytesDone: p.bytesDone, bytesTotal: p.bytesTotal }),
            });
          },
        },
        format: image.format,
        compress,
        signal,
        onProgress,
      });
  if (signal.aborted) throw new InstanceImagesError('CANCELLED', 'The capture was cancelled');
  progress({ step: 'verifying' });
  const stat = await disk.stat(image.fileKey);
  if (!stat || stat.size <= 0 || stat.size !== result.sizeBytes) {
    throw new InstanceImagesError(
      'CHECKSUM_MISMATCH',
      `The stored image has ${stat?.size ?? 'no'} bytes, the capture produced ${result.sizeBytes}`,
    );
  }
  const putResult = put as { size: number; sha256: string } | null;
  if (putResult && putResult.sha256 !== result.sha256)
    throw new InstanceImagesError('CHECKSUM_MISMATCH', 'The uploaded bytes do not match the captured disk');
  return {
    sizeBytes: stat.size,
    virtualSizeBytes: result.virtualSizeBytes,
    format: result.format,
    sha256: result.sha256,
    consistency: result.consistency,
  };
}
