/** isZeroRange: every slice of the range is compared, whatever its length and alignment. */
import { describe, expect, it } from 'vitest';
import { isZeroRange, ZERO_BLOCK_BYTES } from '../../../src/util/zero';

describe('isZeroRange', () => {
  it('finds a single non-zero byte anywhere in the range, and ignores bytes outside it', () => {
    const length = 3 * ZERO_BLOCK_BYTES + 1000;
    expect(isZeroRange(Buffer.alloc(length))).toBe(true);
    expect(isZeroRange(Buffer.alloc(0))).toBe(true);
    for (const at of [0, ZERO_BLOCK_BYTES - 1, ZERO_BLOCK_BYTES, 2 * ZERO_BLOCK_BYTES + 5, length - 1]) {
      const bytes = Buffer.alloc(length);
      bytes[at] = 1;
      expect(isZeroRange(bytes)).toBe(false);
      expect(isZeroRange(bytes, 0, at)).toBe(true);
      expect(isZeroRange(bytes, at + 1)).toBe(true);
      expect(isZeroRange(bytes, at, at + 1)).toBe(false);
    }
  });
});
