/**
 * Outbox pruning has its own entry point (issue 15): the SDK's reaper prunes the outbox while the
 * process runs, whether or not it delivers events, and `pruneOutbox()` prunes at once. Delivered
 * events go after `outbox.retentionMs`, undelivered ones after `outbox.undeliveredRetentionMs`
 * (never under a live claim), so a host that records events but delivers none has a bounded table.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createInstanceImages, pruneOutbox, type InstanceImages } from '../../../src';
import { createMemoryRepositories } from '../../../src/memory';
import type { OutboxRepository } from '../../../src/ports/repositories-outbox';
import { codeOf } from '../../support/errors';
import { FakeWorld } from '../../support/fakes';

const DAY = 86_400_000;
const START = new Date('2026-11-03T00:00:00.000Z');

function sdk(options: Parameters<typeof createInstanceImages>[0]['outbox'], reaperIntervalMs = 3_600_000) {
  const clock = { now: START };
  const repositories = createMemoryRepositories();
  const world = new FakeWorld();
  const ii = createInstanceImages({
    hostDirectory: world.hostDirectory(),
    repositories,
    clock: () => new Date(clock.now.getTime()),
    tasks: { reaperIntervalMs },
    ...(options ? { outbox: options } : {}),
  });
  return { ii, clock, outbox: repositories.outbox as OutboxRepository };
}

/** Records events at `at`; the first `delivered` of them are delivered at once. */
async function record(outbox: OutboxRepository, at: Date, count: number, delivered = 0) {
  const events = await outbox.append(
    Array.from({ length: count }, (_, n) => ({ type: 'test.note', key: `k-${at.getTime()}-${n}`, data: n })),
    at,
  );
  const chosen = new Set(events.slice(0, delivered).map((e) => e.id));
  for (const event of await outbox.claim({ owner: 'host', now: at, leaseMs: 1000, limit: 1000 })) {
    if (chosen.has(event.id)) await outbox.complete(event.id, 'host', at);
    else await outbox.release(event.id, 'host', at, 'not delivered in this test');
  }
  return events;
}

const closeAll: InstanceImages[] = [];
afterEach(async () => {
  for (const ii of closeAll.splice(0)) await ii.close();
});

describe('outbox pruning without a delivery loop', () => {
  it('pruneOutbox() deletes delivered events after their retention and undelivered ones after theirs', async () => {
    const { ii, clock, outbox } = sdk({ retentionMs: DAY, undeliveredRetentionMs: 10 * DAY });
    closeAll.push(ii);
    const old = await record(outbox, START, 3, 1);
    clock.now = new Date(START.getTime() + 2 * DAY);
    const fresh = await record(outbox, clock.now, 2, 1);
    expect(await ii.pruneOutbox()).toEqual({ delivered: 1, undelivered: 0 });
    expect(await outbox.get(old[0]!.id)).toBeNull();
    expect(await outbox.get(old[1]!.id)).not.toBeNull();
    clock.now = new Date(START.getTime() + 11 * DAY);
    // The other old events were never delivered: gone after 10 days; the fresh undelivered one stays.
    expect(await ii.pruneOutbox()).toEqual({ delivered: 1, undelivered: 2 });
    expect(await outbox.get(fresh[1]!.id)).not.toBeNull();
  });

  it('the reaper prunes by itself while the process runs', async () => {
    const { ii, clock, outbox } = sdk({ retentionMs: DAY, undeliveredRetentionMs: 3 * DAY, pruneIntervalMs: 1000 }, 100);
    closeAll.push(ii);
    const events = await record(outbox, START, 4, 2);
    clock.now = new Date(START.getTime() + 4 * DAY);
    await vi.waitFor(async () => expect(await Promise.all(events.map((e) => outbox.get(e.id)))).toEqual([null, null, null, null]), {
      timeout: 5000,
    });
  });

  it('undeliveredRetentionMs: null keeps undelivered events until they are delivered', async () => {
    const { ii, clock, outbox } = sdk({ undeliveredRetentionMs: null });
    closeAll.push(ii);
    const [event] = await record(outbox, START, 1);
    clock.now = new Date(START.getTime() + 400 * DAY);
    expect(await ii.pruneOutbox()).toEqual({ delivered: 0, undelivered: 0 });
    expect(await outbox.get(event!.id)).not.toBeNull();
  });

  it("repositories without pruneUndelivered (a host's, older) still get delivered events pruned", async () => {
    const repositories = createMemoryRepositories();
    const outbox = Object.create(repositories.outbox!) as OutboxRepository;
    Object.defineProperty(outbox, 'pruneUndelivered', { value: undefined });
    await record(repositories.outbox!, START, 2, 1);
    expect(await pruneOutbox(outbox, new Date(START.getTime() + 100 * DAY))).toEqual({ delivered: 1, undelivered: 0 });
  });

  it('a bad retention is VALIDATION_FAILED naming the option', async () => {
    expect(await codeOf(Promise.resolve().then(() => sdk({ retentionMs: -1 })))).toBe('VALIDATION_FAILED');
    expect(await codeOf(pruneOutbox(createMemoryRepositories().outbox!, START, { undeliveredRetentionMs: 0 }))).toBe('VALIDATION_FAILED');
  });
});
