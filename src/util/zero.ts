/**
 * All-zero checks of chunk bytes, against one shared 64 KiB block of zeroes compared a slice at a
 * time: a chunk-sized zero buffer per capture or deploy cost 4 MiB of fresh pages (~1,000 page
 * faults) each time.
 * @module
 */

/** The slice compared at once: the default qcow2 cluster, also the deploy's zero-detection granularity. */
export const ZERO_BLOCK_BYTES = 64 * 1024;

const ZEROES = Buffer.alloc(ZERO_BLOCK_BYTES);

/** Whether every byte of `bytes[from, to)` is zero. */
export function isZeroRange(bytes: Buffer, from = 0, to = bytes.length): boolean {
  for (let at = from; at < to; at += ZERO_BLOCK_BYTES) {
    const end = Math.min(to, at + ZERO_BLOCK_BYTES);
    if (!bytes.subarray(at, end).equals(ZEROES.subarray(0, end - at))) return false;
  }
  return true;
}
