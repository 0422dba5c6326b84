/**
 * The buffer pools of chunked captures and deploys: bounded, and the process-wide ones dropping
 * what they keep once idle, so nothing stays held after the work stops.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BufferPool, SHARED_POOL_IDLE_MS, sharedBufferPool } from '../../../src/util/buffer-pool';

afterEach(() => {
  vi.useRealTimers();
});

describe('BufferPool', () => {
  it('hands back kept buffers of its size, at most `max`, and allocates when empty', () => {
    const pool = new BufferPool(16, 2);
    const [a, b, c] = [pool.take(16, false), pool.take(16, false), pool.take(16, false)];
    for (const buffer of [a, b, c]) pool.give(buffer);
    expect(pool.kept).toBe(2);
    pool.give(Buffer.alloc(8)); // another size is never kept
    expect(pool.kept).toBe(2);
    expect([a, b]).toContain(pool.take(16, false));
    const zeroed = pool.take(16, true);
    expect(zeroed.equals(Buffer.alloc(16))).toBe(true);
    expect(pool.take(8, false)).toHaveLength(8);
  });

  it('with idleMs, drops what it keeps once nothing came back for that long', () => {
    vi.useFakeTimers();
    const pool = new BufferPool(16, 4, 1000);
    pool.give(pool.take(16, false));
    vi.advanceTimersByTime(900);
    pool.give(Buffer.alloc(16)); // a buffer coming back starts the wait again
    vi.advanceTimersByTime(900);
    expect(pool.kept).toBe(2);
    vi.advanceTimersByTime(200);
    expect(pool.kept).toBe(0);
  });

  it('sharedBufferPool: one pool per size for the process, keeping the largest max asked, empty once idle', () => {
    vi.useFakeTimers();
    const size = 4096 + Math.floor(Math.random() * 1000); // a size no other test shares
    const first = sharedBufferPool(size, 2);
    expect(sharedBufferPool(size, 6)).toBe(first);
    expect(first.max).toBe(6);
    expect(sharedBufferPool(size, 3).max).toBe(6);
    const taken = Array.from({ length: 8 }, () => first.take(size, false));
    for (const buffer of taken) first.give(buffer);
    expect(first.kept).toBe(6);
    expect(first.take(size, false)).toBe(taken[5]); // the next capture reuses the memory
    vi.advanceTimersByTime(SHARED_POOL_IDLE_MS);
    expect(first.kept).toBe(0);
  });
});
