import { describe, expect, it } from 'vitest';
import {
  applyPriceChange,
  applySizeCorrection,
  assertNoUsageOverlap,
  closeUsage,
  findUsageOverlaps,
  openUsage,
  type BillableImage,
  type UsageChanges,
} from '../../../src/billing';
import type { UsageInterval } from '../../../src/model/usage-interval';
import { GIB, interval } from './helpers';

function ids(prefix = 'n'): () => string {
  let n = 0;
  return () => `${prefix}${(n += 1)}`;
}

const image: BillableImage = { id: 'img1', accountId: 'acc1', locationId: 'loc1', sizeBytes: 20 * GIB, status: 'available' };
const T0 = new Date('2026-11-03T10:15:00Z');
const T1 = new Date('2026-11-04T08:00:00Z');
const T2 = new Date('2026-11-05T12:30:00Z');

function apply(ledger: UsageInterval[], changes: UsageChanges): UsageInterval[] {
  const closed = new Map(changes.close.map((c) => [c.id, c.to]));
  return [...ledger.map((i) => (closed.has(i.id) ? { ...i, to: closed.get(i.id) ?? null } : i)), ...changes.open];
}

describe('openUsage', () => {
  it('opens one interval at the current rate when the image becomes available', () => {
    const changes = openUsage({ image, rate: '0.050', at: T0, openIntervals: [] }, ids());
    expect(changes).toEqual({
      close: [],
      open: [{ id: 'n1', imageId: 'img1', accountId: 'acc1', locationId: 'loc1', sizeBytes: 20 * GIB, rate: '0.05', from: T0, to: null }],
    });
  });

  it('is idempotent when the image already has an open interval', () => {
    const existing = interval({ imageId: 'img1', from: T0, to: null });
    expect(openUsage({ image, rate: '0.05', at: T1, openIntervals: [existing] }, ids())).toEqual({ close: [], open: [] });
  });

  it.each<[Partial<BillableImage>, string]>([
    [{ status: 'creating' }, 'INVALID_STATE'],
    [{ accountId: null }, 'INVALID_STATE'],
    [{ locationId: null }, 'INVALID_STATE'],
    [{ sizeBytes: null }, 'INVALID_STATE'],
    [{ sizeBytes: 0 }, 'INVALID_STATE'],
  ])('refuses %j with %s', (patch, code) => {
    expect(() => openUsage({ image: { ...image, ...patch }, rate: '0.05', at: T0, openIntervals: [] }, ids())).toThrow(
      expect.objectContaining({ code }),
    );
  });

  it('rejects a bad rate, date or generated id', () => {
    expect(() => openUsage({ image, rate: '-1', at: T0, openIntervals: [] }, ids())).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => openUsage({ image, rate: '1', at: new Date('x'), openIntervals: [] }, ids())).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => openUsage({ image, rate: '1', at: T0, openIntervals: [] }, () => '')).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('closeUsage', () => {
  it('closes the open interval at the delete request', () => {
    const open = interval({ id: 'u1', imageId: 'img1', from: T0, to: null });
    const other = interval({ id: 'u2', imageId: 'img2', from: T0, to: null });
    const closed = interval({ id: 'u0', imageId: 'img1', from: new Date('2026-10-01T00:00:00Z'), to: T0 });
    expect(closeUsage({ imageId: 'img1', at: T2, openIntervals: [open, other, closed] })).toEqual({
      close: [{ id: 'u1', imageId: 'img1', to: T2 }],
      open: [],
    });
    expect(closeUsage({ imageId: 'img1', at: T2, openIntervals: [] })).toEqual({ close: [], open: [] });
  });

  it('never closes before the start (clock skew gives a zero-length interval)', () => {
    const open = interval({ id: 'u1', imageId: 'img1', from: T2, to: null });
    expect(closeUsage({ imageId: 'img1', at: T1, openIntervals: [open] }).close).toEqual([{ id: 'u1', imageId: 'img1', to: T2 }]);
  });
});

describe('applyPriceChange', () => {
  it('splits every open interval of the location at the change time', () => {
    const a = interval({ id: 'a', imageId: 'img1', locationId: 'loc1', rate: '0.05', from: T0, to: null });
    const b = interval({ id: 'b', imageId: 'img2', locationId: 'loc1', rate: '0.05', from: T0, to: null });
    const otherLocation = interval({ id: 'c', imageId: 'img3', locationId: 'loc2', rate: '0.05', from: T0, to: null });
    const alreadyNewRate = interval({ id: 'd', imageId: 'img4', locationId: 'loc1', rate: '0.060', from: T0, to: null });
    const closed = interval({ id: 'e', imageId: 'img5', locationId: 'loc1', rate: '0.05', from: T0, to: T1 });
    const ledger = [a, b, otherLocation, alreadyNewRate, closed];
    const changes = applyPriceChange({ locationId: 'loc1', rate: '0.06', at: T1, openIntervals: ledger }, ids());
    expect(changes.close).toEqual([
      { id: 'a', imageId: 'img1', to: T1 },
      { id: 'b', imageId: 'img2', to: T1 },
    ]);
    expect(changes.open).toEqual([
      { ...a, id: 'n1', rate: '0.06', from: T1, to: null },
      { ...b, id: 'n2', rate: '0.06', from: T1, to: null },
    ]);
    expect(findUsageOverlaps(apply(ledger, changes))).toEqual([]);
  });

  it('re-rates an interval that began at or after the change from its own start', () => {
    const late = interval({ id: 'late', imageId: 'img1', locationId: 'loc1', rate: '0.05', from: T2, to: null });
    const changes = applyPriceChange({ locationId: 'loc1', rate: '0.06', at: T1, openIntervals: [late] }, ids());
    expect(changes.close).toEqual([{ id: 'late', imageId: 'img1', to: T2 }]);
    expect(changes.open[0]).toMatchObject({ from: T2, rate: '0.06' });
    expect(findUsageOverlaps(apply([late], changes))).toEqual([]);
  });
});

describe('applySizeCorrection', () => {
  it('splits the open interval at the correction time with the new size', () => {
    const open = interval({ id: 'u1', imageId: 'img1', sizeBytes: 20 * GIB, from: T0, to: null });
    const changes = applySizeCorrection({ imageId: 'img1', sizeBytes: 25 * GIB, at: T1, openIntervals: [open] }, ids());
    expect(changes).toEqual({
      close: [{ id: 'u1', imageId: 'img1', to: T1 }],
      open: [{ ...open, id: 'n1', sizeBytes: 25 * GIB, from: T1, to: null }],
    });
    expect(applySizeCorrection({ imageId: 'img1', sizeBytes: 20 * GIB, at: T1, openIntervals: [open] }, ids())).toEqual({
      close: [],
      open: [],
    });
    expect(() => applySizeCorrection({ imageId: 'img1', sizeBytes: 0, at: T1, openIntervals: [open] }, ids())).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
  });
});

describe('findUsageOverlaps', () => {
  it('finds overlapping intervals of one image and ignores touching, zero-length and other images', () => {
    const touching = [interval({ id: 'a', imageId: 'x', from: T0, to: T1 }), interval({ id: 'b', imageId: 'x', from: T1, to: null })];
    expect(findUsageOverlaps(touching)).toEqual([]);
    const zero = interval({ id: 'z', imageId: 'x', from: new Date(T0.getTime() + 1000), to: new Date(T0.getTime() + 1000) });
    expect(findUsageOverlaps([...touching, zero])).toEqual([]);
    const otherImage = interval({ id: 'o', imageId: 'y', from: T0, to: null });
    expect(findUsageOverlaps([...touching, otherImage])).toEqual([]);
    const overlapping = interval({ id: 'c', imageId: 'x', from: T2, to: new Date(T2.getTime() + 1000) });
    expect(findUsageOverlaps([...touching, overlapping])).toEqual([{ imageId: 'x', firstId: 'b', secondId: 'c' }]);
    const inside = [
      interval({ id: 'long', imageId: 'x', from: T0, to: T2 }),
      interval({ id: 'mid', imageId: 'x', from: T1, to: T1 }),
      interval({ id: 'short', imageId: 'x', from: T1, to: new Date(T1.getTime() + 1) }),
    ];
    expect(findUsageOverlaps(inside)).toEqual([{ imageId: 'x', firstId: 'long', secondId: 'short' }]);
    expect(() => assertNoUsageOverlap(inside)).toThrow(expect.objectContaining({ code: 'INVALID_STATE' }));
    expect(() => assertNoUsageOverlap(touching)).not.toThrow();
  });
});
