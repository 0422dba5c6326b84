/**
 * The chunk store hands each data chunk's bytes back to the source (`release`) as soon as it no
 * longer needs them, and never while a request may still hold them.
 */
import { describe, expect, it } from 'vitest';
import { createChunkStore } from '../../../src/chunks';
import type { CapturedChunk } from '../../../src/ports/hypervisor-driver';
import { block, createMemoryObjects, diskInfo, memoryDisk, sha256 } from '../../support/memory-storage';

const CHUNK = 64 * 1024;

/** Chunks of `ids` (0: zero bytes sent as data) whose releases are recorded with what was stored then. */
function releasingChunks(ids: number[], stored: () => Set<string>) {
  const released: Array<{ index: number; storedThen: boolean }> = [];
  async function* chunks(): AsyncGenerator<CapturedChunk> {
    for (let index = 0; index < ids.length; index++) {
      const bytes = block(ids[index]!, CHUNK);
      const digest = sha256(bytes);
      yield {
        kind: 'data',
        index,
        offset: index * CHUNK,
        length: CHUNK,
        bytes,
        sha256: digest,
        release: () => released.push({ index, storedThen: stored().has(digest) }),
      };
    }
  }
  return { chunks: chunks(), released };
}

describe('chunk store: releasing chunk bytes', () => {
  it('releases zero and repeated chunks at once, stored ones after their put, each once', async () => {
    const objects = createMemoryObjects();
    const store = createChunkStore(memoryDisk(objects), { sweepPollMs: 1, parallel: 2 });
    const storedDigests = () => new Set([...objects.objects.keys()].filter((k) => k.startsWith('chunks/')).map((k) => k.split('/').pop()!));
    const ids = [1, 0, 2, 1, 3, 0, 2];
    const { chunks, released } = releasingChunks(ids, storedDigests);
    const pending = await store.writeImage(
      chunks,
      { ...diskInfo(ids), chunkSizeBytes: CHUNK, virtualSizeBytes: ids.length * CHUNK },
      { leaseId: 'cap-r' },
    );
    await pending.commit('images/a/r.manifest.json');
    expect(released.map((r) => r.index).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // Zero chunks (1, 5) and the repeats of blocks 1 and 2 (3, 6) are released without a put;
    // the first of each block only once it is stored.
    for (const r of released) if ([0, 2, 4].includes(r.index)) expect(r.storedThen).toBe(true);
  });

  it('keeps the bytes of a chunk whose put failed', async () => {
    const objects = createMemoryObjects();
    const store = createChunkStore(memoryDisk(objects, { failPut: (key) => key.startsWith('chunks/') }), {
      sweepPollMs: 1,
      parallel: 1,
    });
    const ids = [1, 2];
    const { chunks, released } = releasingChunks(ids, () => new Set());
    await expect(
      store.writeImage(chunks, { ...diskInfo(ids), chunkSizeBytes: CHUNK, virtualSizeBytes: ids.length * CHUNK }, { leaseId: 'cap-f' }),
    ).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect(released).toEqual([]);
  });

  it('reads an image whose consumer releases every chunk at once: buffers are reused, bytes stay right', async () => {
    const objects = createMemoryObjects();
    const store = createChunkStore(memoryDisk(objects), { sweepPollMs: 1, parallel: 2 });
    const ids = [1, 2, 3, 4, 5, 6, 7, 8, 2, 9];
    const info = { ...diskInfo(ids), chunkSizeBytes: CHUNK, virtualSizeBytes: ids.length * CHUNK };
    const { chunks } = releasingChunks(ids, () => new Set());
    const pending = await store.writeImage(chunks, info, { leaseId: 'cap-w' });
    await pending.commit('images/a/w.manifest.json');
    const seen = new Set<ArrayBufferLike>();
    let index = 0;
    for await (const chunk of store.readImage(pending.manifest, { leaseId: 'read-w' })) {
      expect(chunk.offset).toBe(index * CHUNK);
      expect(sha256(chunk.bytes)).toBe(sha256(block(ids[index]!, CHUNK)));
      seen.add(chunk.bytes.buffer);
      chunk.release();
      index += 1;
    }
    expect(index).toBe(ids.length);
    // With 2 fetched ahead, a handful of buffers served all ten chunks.
    expect(seen.size).toBeLessThan(ids.length);
  });
});
