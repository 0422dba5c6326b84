import { describe, expect, it } from 'vitest';
import { applyPriceChange, applySizeCorrection, closeUsage, findUsageOverlaps, openUsage, type BillableImage } from '../../../src/billing';
import { createEmitter, type InstanceImagesEvents } from '../../../src/events';
import { createMemoryRepositories } from '../../../src/memory';
import { recordUsageChanges } from '../../../src/services/usage';
import { GIB, interval } from '../billing/helpers';

const HOUR = 3_600_000;

function ids(prefix = 'n'): () => string {
  let n = 0;
  return () => `${prefix}${(n += 1)}`;
}

const image: BillableImage = { id: 'img1', accountId: 'acc1', locationId: 'loc1', sizeBytes: 20 * GIB, status: 'available' };
const T0 = new Date('2026-11-03T10:15:00Z');
const T1 = new Date('2026-11-04T08:00:00Z');
const T2 = new Date('2026-11-05T12:30:00Z');

/** A ledger over the memory repository that records every usage event. */
function ledger() {
  const { usage } = createMemoryRepositories();
  const events = createEmitter();
  const seen: [keyof InstanceImagesEvents, string][] = [];
  events.on('usage.started', ({ interval: i }) => seen.push(['usage.started', i.id]));
  events.on('usage.stopped', ({ interval: i }) => seen.push(['usage.stopped', i.id]));
  return { usage, seen, ctx: { repos: { usage }, events } };
}

describe('recordUsageChanges over the memory repository', () => {
  it('runs the whole lifecycle: open, price change, size correction, delete', async () => {
    const { usage, seen, ctx } = ledger();
    const newId = ids('u');
    const openIntervals = async () => (await usage.list({ openOnly: true }, { limit: 1000 })).items;

    let applied = await recordUsageChanges(ctx, openUsage({ image, rate: '0.05', at: T0, openIntervals: await openIntervals() }, newId));
    expect(applied.opened).toHaveLength(1);
    applied = await recordUsageChanges(
      ctx,
      applyPriceChange({ locationId: 'loc1', rate: '0.06', at: T1, openIntervals: await openIntervals() }, newId),
    );
    expect(applied.closed.map((i) => i.id)).toEqual(['u1']);
    applied = await recordUsageChanges(
      ctx,
      applySizeCorrection(
        { imageId: 'img1', sizeBytes: 21 * GIB, at: new Date(T1.getTime() + HOUR), openIntervals: await openIntervals() },
        newId,
      ),
    );
    expect(applied.opened.map((i) => i.sizeBytes)).toEqual([21 * GIB]);
    applied = await recordUsageChanges(ctx, closeUsage({ imageId: 'img1', at: T2, openIntervals: await openIntervals() }));
    expect(applied.closed.map((i) => [i.id, i.to])).toEqual([['u3', T2]]);

    const all = (await usage.list({}, { limit: 1000 })).items;
    expect(all.map((i) => [i.id, i.rate, i.sizeBytes / GIB, i.from.toISOString(), i.to?.toISOString()])).toEqual([
      ['u1', '0.05', 20, T0.toISOString(), T1.toISOString()],
      ['u2', '0.06', 20, T1.toISOString(), new Date(T1.getTime() + HOUR).toISOString()],
      ['u3', '0.06', 21, new Date(T1.getTime() + HOUR).toISOString(), T2.toISOString()],
    ]);
    expect(findUsageOverlaps(all)).toEqual([]);
    // One event per interval written, in the order the ledger changed.
    expect(seen).toEqual([
      ['usage.started', 'u1'],
      ['usage.stopped', 'u1'],
      ['usage.started', 'u2'],
      ['usage.stopped', 'u2'],
      ['usage.started', 'u3'],
      ['usage.stopped', 'u3'],
    ]);
  });

  it('does not reopen an image whose interval was closed concurrently', async () => {
    const { usage, seen, ctx } = ledger();
    const open = interval({ id: 'u1', imageId: 'img1', locationId: 'loc1', rate: '0.05', from: T0, to: null });
    const kept = interval({ id: 'u2', imageId: 'img2', locationId: 'loc1', rate: '0.05', from: T0, to: null });
    await usage.insert(open);
    await usage.insert(kept);
    const changes = applyPriceChange({ locationId: 'loc1', rate: '0.06', at: T1, openIntervals: [open, kept] }, ids());
    // The image is deleted between reading the open intervals and applying the change.
    await usage.close('u1', new Date(T1.getTime() - 1000));
    const applied = await recordUsageChanges(ctx, changes);
    expect(applied.skippedImageIds).toEqual(['img1']);
    expect(applied.opened.map((i) => i.imageId)).toEqual(['img2']);
    expect((await usage.list({ imageId: 'img1', openOnly: true })).items).toEqual([]);
    // The lost close emits nothing; the other image's change does.
    expect(seen).toEqual([
      ['usage.stopped', 'u2'],
      ['usage.started', 'n2'],
    ]);
  });
});
