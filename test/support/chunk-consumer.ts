/**
 * A chunk consumer for driver tests: keeps a chunked capture's chunks in a Map (no store), and
 * rebuilds the disk's bytes from a capture and, for an incremental one, the capture it builds on.
 */
import { createHash } from 'node:crypto';
import type { CapturedChunk, ChunkCaptureOutput, ChunkSourceInfo } from '../../src/ports/hypervisor-driver';

/** What one capture handed to the consumer. */
export interface KeptCapture {
  info: ChunkSourceInfo | null;
  /** Every chunk by index: its bytes (data), null (zero) or 'unchanged'. */
  chunks: Map<number, Buffer | null | 'unchanged'>;
  counts: { data: number; zero: number; unchanged: number };
}

/** Options of {@link mapConsumer}. */
export interface MapConsumerOptions {
  chunkSizeBytes?: number;
  checkpoint?: ChunkCaptureOutput['checkpoint'];
  /** Called before each chunk is kept (after `index` chunks); may throw to reject the capture. */
  onChunk?: (index: number, chunk: CapturedChunk) => void | Promise<void>;
}

/** A chunked output whose consumer keeps the chunks in {@link KeptCapture}. */
export function mapConsumer(options: MapConsumerOptions = {}): { output: ChunkCaptureOutput; kept: KeptCapture } {
  const kept: KeptCapture = { info: null, chunks: new Map(), counts: { data: 0, zero: 0, unchanged: 0 } };
  const output: ChunkCaptureOutput = {
    kind: 'chunks',
    chunkSizeBytes: options.chunkSizeBytes ?? 4 * 1024 * 1024,
    ...(options.checkpoint ? { checkpoint: options.checkpoint } : {}),
    async consume(chunks, info) {
      kept.info = info;
      const digest = createHash('sha256');
      let stored = 0;
      let seen = 0;
      for await (const chunk of chunks) {
        await options.onChunk?.(seen++, chunk);
        kept.counts[chunk.kind]++;
        if (chunk.kind === 'data') {
          if (createHash('sha256').update(chunk.bytes).digest('hex') !== chunk.sha256)
            throw new Error(`chunk ${chunk.index}: wrong sha256`);
          kept.chunks.set(chunk.index, chunk.bytes);
          stored += chunk.bytes.length;
          digest.update(chunk.sha256);
        } else {
          kept.chunks.set(chunk.index, chunk.kind === 'zero' ? null : 'unchanged');
          digest.update(chunk.kind);
        }
      }
      return { sha256: digest.digest('hex'), sizeBytes: stored };
    },
  };
  return { output, kept };
}

/** The disk's bytes from a capture; `unchanged` chunks come from `base` (already resolved). */
export function reassemble(capture: KeptCapture, base?: Buffer): Buffer {
  const info = capture.info;
  if (!info) throw new Error('the consumer never ran');
  const disk = Buffer.alloc(info.virtualSizeBytes);
  const count = Math.ceil(info.virtualSizeBytes / info.chunkSizeBytes);
  for (let index = 0; index < count; index++) {
    const chunk = capture.chunks.get(index);
    const offset = index * info.chunkSizeBytes;
    if (chunk === undefined) throw new Error(`chunk ${index} is missing`);
    if (chunk === 'unchanged') {
      if (!base) throw new Error(`chunk ${index} is unchanged but there is no base`);
      base.copy(disk, offset, offset, Math.min(base.length, offset + info.chunkSizeBytes));
    } else if (chunk !== null) chunk.copy(disk, offset);
  }
  return disk;
}
