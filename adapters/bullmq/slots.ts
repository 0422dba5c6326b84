/**
 * The cluster-wide concurrency limit: a semaphore in Redis (a sorted set of holders, scored by
 * the time their claim expires, on Redis's own clock). A holder renews its claim while it runs
 * and releases it at the end; the claim of a process that died expires after `ttlMs`.
 * @module
 */
import type { Redis } from 'ioredis';

// KEYS[1] the set; ARGV: holder, limit, ttl (ms). Expired claims are dropped first; a holder
// already in the set renews; otherwise a free slot is taken. Returns 1 when the holder has a slot.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) * 2)
  return 1
end
return 0
`;

/** A counting semaphore shared by every process that uses the same Redis key. */
export class RedisSemaphore {
  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly limit: number,
    private readonly ttlMs: number,
    private readonly pollMs = 200,
  ) {}

  /** Takes (or renews) a slot for `holder`. @returns whether it has one. */
  async tryAcquire(holder: string): Promise<boolean> {
    return (await this.redis.eval(ACQUIRE, 1, this.key, holder, this.limit, this.ttlMs)) === 1;
  }

  /** Waits for a slot. @returns false when `signal` aborted first. */
  async acquire(holder: string, signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.tryAcquire(holder)) return true;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.pollMs);
        function done() {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
    return false;
  }

  /** Keeps `holder`'s slot alive until the returned function is called, which releases it. */
  hold(holder: string, onError: (error: unknown) => void): () => Promise<void> {
    const timer = setInterval(() => void this.tryAcquire(holder).catch(onError), Math.max(100, Math.floor(this.ttlMs / 3)));
    timer.unref?.();
    return async () => {
      clearInterval(timer);
      await this.redis.zrem(this.key, holder).catch(onError);
    };
  }
}
