/** The pieces a chunked deploy writes: non-zero 64 KiB blocks, merged, split at the write limit. */
import { describe, expect, it } from 'vitest';
import { dataPieces } from '../../../drivers/hypervisor/libvirt/materialize-chunks';

const KiB = 1024;

/** A buffer of `blocks` 64 KiB blocks, non-zero where `pattern` has an 'x'. */
function blocks(pattern: string, tail = 0): Buffer {
  const bytes = Buffer.alloc(pattern.length * 64 * KiB + tail);
  [...pattern].forEach((c, i) => {
    if (c === 'x') bytes[i * 64 * KiB + 100] = 1;
  });
  return bytes;
}

describe('chunked deploy: data pieces', () => {
  it('skips zero blocks, merges neighbouring data blocks and splits at the limit', () => {
    expect([...dataPieces(blocks('....'), 1 << 20)]).toEqual([]);
    expect([...dataPieces(blocks('x..x'), 1 << 20)]).toEqual([
      [0, 64 * KiB],
      [192 * KiB, 256 * KiB],
    ]);
    expect([...dataPieces(blocks('.xxx.'), 1 << 20)]).toEqual([[64 * KiB, 256 * KiB]]);
    expect([...dataPieces(blocks('xxxx'), 96 * KiB)]).toEqual([
      [0, 96 * KiB],
      [96 * KiB, 192 * KiB],
      [192 * KiB, 256 * KiB],
    ]);
  });

  it('keeps a short last block (a chunk at the end of the disk)', () => {
    const bytes = blocks('.', 4 * KiB);
    bytes[64 * KiB + 1] = 9;
    expect([...dataPieces(bytes, 1 << 20)]).toEqual([[64 * KiB, 68 * KiB]]);
    expect([...dataPieces(Buffer.alloc(512, 1), 1 << 20)]).toEqual([[0, 512]]);
  });
});
