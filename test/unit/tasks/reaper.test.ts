/**
 * The reaper's schedule (fake timers): a pass at once, then one per interval after the previous
 * ended; passes never overlap; a failing pass is logged and the next one runs; stop() ends it;
 * runNow() runs after a pass in progress and includes its results.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startReaper } from '../../../src/tasks/reaper';

describe('the reaper', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('runs at once, then every interval after the previous pass ended, never two at a time', async () => {
    let active = 0;
    let maxActive = 0;
    const started: number[] = [];
    const reaper = startReaper<number[]>({
      intervalMs: 1000,
      pass: async () => {
        started.push(Date.now());
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 3000)); // a pass slower than the interval
        active--;
        return [started.length];
      },
      merge: (a, b) => [...a, ...b],
      onError: () => undefined,
    });
    const t0 = Date.now();
    await vi.advanceTimersByTimeAsync(0);
    expect(started).toEqual([t0]);
    await vi.advanceTimersByTimeAsync(10_000);
    // pass at 0 (ends 3000), next at 4000 (ends 7000), next at 8000
    expect(started.map((t) => t - t0)).toEqual([0, 4000, 8000]);
    expect(maxActive).toBe(1);
    // runNow waits for the pass in progress and returns its results with its own.
    const now = reaper.runNow();
    await vi.advanceTimersByTimeAsync(7000);
    expect(await now).toEqual([3, 4]);
    expect(maxActive).toBe(1);
    const stopping = reaper.stop();
    await vi.advanceTimersByTimeAsync(3000);
    await stopping;
    const count = started.length;
    await vi.advanceTimersByTimeAsync(60_000);
    expect(started.length).toBe(count);
  });

  it('a failing pass (e.g. the repositories are down) is reported and the next pass still runs', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const reaper = startReaper<string>({
      intervalMs: 500,
      pass: async () => {
        calls++;
        if (calls <= 2) throw new Error('database is locked');
        return 'ok';
      },
      merge: (a, b) => `${a}+${b}`,
      onError: (error) => errors.push(error),
    });
    await vi.advanceTimersByTimeAsync(1200);
    expect(calls).toBe(3);
    expect(errors.map(String)).toEqual(['Error: database is locked', 'Error: database is locked']);
    await reaper.stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(3);
  });

  it('stop() waits for the pass in progress', async () => {
    let finished = false;
    const reaper = startReaper<null>({
      intervalMs: 100,
      pass: async () => {
        await new Promise((r) => setTimeout(r, 1000));
        finished = true;
        return null;
      },
      merge: () => null,
      onError: () => undefined,
    });
    await vi.advanceTimersByTimeAsync(10);
    let stopped = false;
    const stopping = reaper.stop().then(() => (stopped = true));
    await vi.advanceTimersByTimeAsync(500);
    expect(stopped).toBe(false);
    await vi.advanceTimersByTimeAsync(600);
    await stopping;
    expect(finished).toBe(true);
  });
});
