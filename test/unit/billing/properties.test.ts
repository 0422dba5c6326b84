import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BYTES_PER_GB, calculateCharges, Rational, type BillingPolicyInput } from '../../../src/billing';
import type { UsageInterval } from '../../../src/model/usage-interval';

const HOUR = 3_600_000;
const BASE = Date.UTC(2028, 0, 1);

const policyArb: fc.Arbitrary<BillingPolicyInput> = fc.record({
  gb: fc.constantFrom('GiB' as const, 'GB' as const),
  hoursPerMonth: fc.constantFrom(730, 720, 672, 744, 'calendar' as const),
  rounding: fc.constantFrom('up' as const, 'nearest' as const, 'exact' as const),
  monthlyCap: fc.boolean(),
  minimumCharge: fc.constantFrom('0', '0.5', '3'),
  decimals: fc.integer({ min: 0, max: 4 }),
});
const sizeArb = fc.bigInt({ min: 0n, max: 2n ** 52n }).map(Number);
const rateArb = fc.oneof(
  fc.constantFrom('0', '0.0125', '0.05', '1', '12.5'),
  fc.tuple(fc.nat(1000), fc.nat(9999)).map(([whole, fraction]) => `${whole}.${String(fraction).padStart(4, '0')}`),
);
/** A time within about ±150 days of 1 Jan 2028 (a leap year), to the millisecond. */
const timeArb = fc.integer({ min: -150 * 24 * HOUR, max: 150 * 24 * HOUR }).map((offset) => BASE + offset);
/** A period of one to four months starting on a month boundary near 2028. */
const periodArb = fc
  .tuple(fc.integer({ min: -4, max: 3 }), fc.integer({ min: 1, max: 4 }))
  .map(([start, months]) => ({ from: new Date(Date.UTC(2028, start, 1)), to: new Date(Date.UTC(2028, start + months, 1)) }));

function make(fields: { imageId?: string; sizeBytes: number; rate: string; from: number; to: number | null; id?: string }): UsageInterval {
  return {
    id: fields.id ?? `u-${fields.imageId ?? 'i1'}-${fields.from}`,
    imageId: fields.imageId ?? 'i1',
    accountId: 'a1',
    locationId: 'l1',
    sizeBytes: fields.sizeBytes,
    rate: fields.rate,
    from: new Date(fields.from),
    to: fields.to === null ? null : new Date(fields.to),
  };
}

/** Non-overlapping intervals of one image: consecutive cut points, each gap billed or not, last maybe open. */
const imageIntervalsArb = fc
  .tuple(
    fc.uniqueArray(timeArb, { minLength: 2, maxLength: 8 }),
    fc.array(fc.tuple(sizeArb, rateArb, fc.boolean()), { minLength: 7, maxLength: 7 }),
    fc.boolean(),
  )
  .map(([cuts, terms, lastOpen]) => {
    const sorted = [...cuts].sort((a, b) => a - b);
    const intervals: UsageInterval[] = [];
    for (let i = 0; i + 1 < sorted.length; i += 1) {
      const [sizeBytes, rate, billed] = terms[i] ?? [1, '1', true];
      if (!billed) continue;
      const isLast = i + 2 === sorted.length;
      intervals.push(
        make({ sizeBytes, rate, from: sorted[i] as number, to: isLast && lastOpen ? null : (sorted[i + 1] as number), id: `u${i}` }),
      );
    }
    return intervals;
  });

function exactOf(intervals: UsageInterval[], period: { from: Date; to: Date }, policy: BillingPolicyInput): Rational {
  const line = calculateCharges(intervals, period, policy).lines[0];
  return line === undefined ? Rational.ZERO : Rational.parse(line.exactAmount);
}

describe('billing properties', () => {
  it('amounts and totals are never negative', () => {
    fc.assert(
      fc.property(fc.array(imageIntervalsArb, { minLength: 1, maxLength: 4 }), periodArb, policyArb, (images, period, policy) => {
        const intervals = images.flatMap((list, index) => list.map((i) => ({ ...i, imageId: `i${index}`, id: `${i.id}-${index}` })));
        const result = calculateCharges(intervals, period, policy);
        for (const line of result.lines) {
          expect(Rational.parse(line.amount).isNegative()).toBe(false);
          expect(Rational.parse(line.exactAmount).isNegative()).toBe(false);
          for (const segment of line.segments) expect(Rational.parse(segment.exactAmount).isNegative()).toBe(false);
        }
        expect(Rational.parse(result.total).isNegative()).toBe(false);
        expect(Rational.parse(result.exactTotal).isNegative()).toBe(false);
      }),
    );
  });

  it('is monotone in size', () => {
    fc.assert(
      fc.property(sizeArb, sizeArb, rateArb, timeArb, timeArb, periodArb, policyArb, (s1, s2, rate, t1, t2, period, policy) => {
        const [small, large] = s1 <= s2 ? [s1, s2] : [s2, s1];
        const [from, to] = t1 <= t2 ? [t1, t2] : [t2, t1];
        const a = calculateCharges([make({ sizeBytes: small, rate, from, to })], period, policy).lines[0];
        const b = calculateCharges([make({ sizeBytes: large, rate, from, to })], period, policy).lines[0];
        expect(Rational.parse(a?.exactAmount ?? '0').compare(Rational.parse(b?.exactAmount ?? '0'))).toBeLessThanOrEqual(0);
        expect(Rational.parse(a?.amount ?? '0').compare(Rational.parse(b?.amount ?? '0'))).toBeLessThanOrEqual(0);
      }),
    );
  });

  it('is monotone in duration (later end, earlier start, or open)', () => {
    fc.assert(
      fc.property(
        sizeArb,
        rateArb,
        fc.uniqueArray(timeArb, { minLength: 4, maxLength: 4 }),
        periodArb,
        policyArb,
        (sizeBytes, rate, times, period, policy) => {
          const [t0, t1, t2, t3] = [...times].sort((a, b) => a - b) as [number, number, number, number];
          const inner = exactOf([make({ sizeBytes, rate, from: t1, to: t2 })], period, policy);
          const longer = exactOf([make({ sizeBytes, rate, from: t0, to: t3 })], period, policy);
          const open = exactOf([make({ sizeBytes, rate, from: t0, to: null })], period, policy);
          expect(inner.compare(longer)).toBeLessThanOrEqual(0);
          expect(longer.compare(open)).toBeLessThanOrEqual(0);
        },
      ),
    );
  });

  it("with rounding 'exact', splitting an interval anywhere leaves the amounts unchanged", () => {
    fc.assert(
      fc.property(
        sizeArb,
        rateArb,
        fc.uniqueArray(timeArb, { minLength: 3, maxLength: 3 }),
        fc.boolean(),
        periodArb,
        policyArb,
        (sizeBytes, rate, times, open, period, policy) => {
          const [from, cut, to] = [...times].sort((a, b) => a - b) as [number, number, number];
          const exactPolicy = { ...policy, rounding: 'exact' as const };
          const whole = calculateCharges([make({ sizeBytes, rate, from, to: open ? null : to })], period, exactPolicy);
          const split = calculateCharges(
            [make({ sizeBytes, rate, from, to: cut, id: 'a' }), make({ sizeBytes, rate, from: cut, to: open ? null : to, id: 'b' })],
            period,
            exactPolicy,
          );
          expect(split.exactTotal).toBe(whole.exactTotal);
          expect(split.total).toBe(whole.total);
          expect(split.lines.map((l) => [l.amount, l.exactAmount, l.billedHours])).toEqual(
            whole.lines.map((l) => [l.amount, l.exactAmount, l.billedHours]),
          );
        },
      ),
    );
  });

  it('the monthly cap always holds: within a calendar month an image never costs more than its (highest) monthly cost', () => {
    fc.assert(
      fc.property(imageIntervalsArb, periodArb, policyArb, (intervals, period, policy) => {
        const capped = { ...policy, monthlyCap: true, minimumCharge: '0' };
        const gb = BYTES_PER_GB[capped.gb ?? 'GiB'];
        let total = Rational.ZERO;
        for (let start = period.from.getTime(); start < period.to.getTime();) {
          const date = new Date(start);
          const end = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
          const month = { from: new Date(start), to: new Date(end) };
          const inMonth = intervals.filter((i) => i.from.getTime() < end && (i.to === null || i.to.getTime() > start));
          const highest = inMonth.reduce(
            (max, i) => max.max(Rational.of(i.sizeBytes).times(Rational.parse(i.rate)).dividedBy(Rational.of(gb))),
            Rational.ZERO,
          );
          const charge = exactOf(intervals, month, capped);
          expect(charge.compare(highest)).toBeLessThanOrEqual(0);
          total = total.plus(charge);
          start = end;
        }
        // Each month is billed on its own: the whole period is the sum of its months.
        expect(exactOf(intervals, period, capped).equals(total)).toBe(true);
      }),
    );
  });
});
