import { describe, expect, it } from 'vitest';
import {
  calculateCharges,
  ChargeCalculator,
  DEFAULT_BILLING_POLICY,
  Rational,
  resolveBillingPolicy,
  splitAtMonthBoundaries,
  hoursInUtcMonth,
  billedHours,
  type BillingPolicyInput,
} from '../../../src/billing';
import { GIB, interval, period } from './helpers';

const NOVEMBER_2026 = period('2026-11-01T00:00:00Z', '2026-12-01T00:00:00Z');

describe('the worked example (docs/billing.md)', () => {
  const example = interval({ sizeBytes: 20 * GIB, rate: '0.05', from: '2026-11-03T10:15:00Z', to: '2026-11-05T12:30:00Z' });

  it('bills 50.25 hours as 51 hours: 51/730 = 0.069863… → 0.07', () => {
    const result = calculateCharges([example], NOVEMBER_2026);
    expect(result.lines).toHaveLength(1);
    const [line] = result.lines;
    expect(line).toMatchObject({
      imageId: 'i1',
      sizeBytes: 20 * GIB,
      sizeGb: '20',
      rate: '0.05',
      billedHours: '51',
      amount: '0.07',
      exactAmount: '51/730',
      monthlyCapApplied: false,
      minimumChargeApplied: false,
    });
    expect(Rational.parse(line?.exactAmount ?? '').format(6)).toBe('0.069863');
    expect(result.total).toBe('0.07');
    expect(result.exactTotal).toBe('51/730');
    expect(result.policy).toEqual(DEFAULT_BILLING_POLICY);
  });

  it.each<[BillingPolicyInput, string, string, string]>([
    [{ rounding: 'up' }, '51', '51/730', '0.07'],
    [{ rounding: 'nearest' }, '50', '5/73', '0.07'],
    [{ rounding: 'exact' }, '50.25', '201/2920', '0.07'],
    [{ hoursPerMonth: 'calendar' }, '51', '17/240', '0.07'],
    [{ hoursPerMonth: 720 }, '51', '17/240', '0.07'],
    [{ hoursPerMonth: 672 }, '51', '17/224', '0.08'],
    [{ decimals: 0 }, '51', '51/730', '0'],
    [{ decimals: 4 }, '51', '51/730', '0.0699'],
    [{ gb: 'GB' }, '51', '53477376/712890625', '0.08'],
    [{ minimumCharge: '0.5' }, '51', '0.5', '0.50'],
    [{ minimumCharge: '0.05' }, '51', '51/730', '0.07'],
  ])('policy %j: %s hours, exact %s, amount %s', (policy, hours, exact, amount) => {
    const [line] = calculateCharges([example], NOVEMBER_2026, policy).lines;
    expect(line?.billedHours).toBe(hours);
    expect(Rational.parse(line?.exactAmount ?? '').equals(Rational.parse(exact))).toBe(true);
    expect(line?.amount).toBe(amount);
  });
});

describe('calculateCharges', () => {
  it('rounds each started hour up and "nearest" at half an hour', () => {
    const ninetyMinutes = interval({ from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:30:00Z' });
    const justUnder = interval({ imageId: 'i2', from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:29:59.999Z' });
    const oneMs = interval({ imageId: 'i3', from: '2026-11-02T00:00:00Z', to: '2026-11-02T00:00:00.001Z' });
    const up = calculateCharges([ninetyMinutes, justUnder, oneMs], NOVEMBER_2026, { rounding: 'up' });
    expect(up.lines.map((l) => [l.imageId, l.billedHours, l.amount])).toEqual([
      ['i1', '2', '2.00'],
      ['i2', '2', '2.00'],
      ['i3', '1', '1.00'],
    ]);
    const nearest = calculateCharges([ninetyMinutes, justUnder, oneMs], NOVEMBER_2026, { rounding: 'nearest' });
    expect(nearest.lines.map((l) => [l.imageId, l.billedHours, l.amount])).toEqual([
      ['i1', '2', '2.00'],
      ['i2', '1', '1.00'],
      ['i3', '0', '0.00'],
    ]);
    const exact = calculateCharges([ninetyMinutes, justUnder, oneMs], NOVEMBER_2026, { rounding: 'exact' });
    expect(exact.lines.map((l) => [l.imageId, l.billedHours, l.exactAmount])).toEqual([
      ['i1', '1.5', '1.5'],
      ['i2', '1.5', '5399999/3600000'],
      ['i3', '0', '1/3600000'],
    ]);
  });

  it('splits an interval spanning two months and rounds each month part on its own', () => {
    const report = period('2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z');
    const acrossMidnight = interval({ from: '2026-01-31T23:30:00Z', to: '2026-02-01T00:30:00Z' });
    expect(calculateCharges([acrossMidnight], report).lines[0]).toMatchObject({ billedHours: '2', amount: '2.00' });
    expect(calculateCharges([acrossMidnight], report, { rounding: 'exact' }).lines[0]).toMatchObject({ billedHours: '1', amount: '1.00' });
    const threeDays = interval({ from: '2026-01-30T12:00:00Z', to: '2026-02-02T12:00:00Z' });
    expect(calculateCharges([threeDays], report).lines[0]).toMatchObject({ billedHours: '72', amount: '72.00' });
    // With calendar months each part is priced by its own month's hours: 36/744 + 36/672 of 730.
    const calendar = calculateCharges([threeDays], report, { hoursPerMonth: 'calendar' }).lines[0];
    expect(Rational.parse(calendar?.exactAmount ?? '').equals(Rational.of(730 * 36, 744).plus(Rational.of(730 * 36, 672)))).toBe(true);
  });

  it('bills only the part of an interval inside the period', () => {
    const before = interval({ from: '2026-10-31T22:00:00Z', to: '2026-11-01T02:00:00Z' });
    const after = interval({ imageId: 'i2', from: '2026-11-30T23:00:00Z', to: '2026-12-01T05:00:00Z' });
    const outside = interval({ imageId: 'i3', from: '2026-10-01T00:00:00Z', to: '2026-11-01T00:00:00Z' });
    const result = calculateCharges([before, after, outside], NOVEMBER_2026);
    expect(result.lines.map((l) => [l.imageId, l.billedHours])).toEqual([
      ['i1', '2'],
      ['i2', '1'],
    ]);
  });

  it('bills an interval still open at the period end up to the end', () => {
    const march = period('2026-03-01T00:00:00Z', '2026-04-01T00:00:00Z');
    const open = interval({ from: '2026-03-31T00:00:00Z', to: null });
    const openSinceLastYear = interval({ imageId: 'i2', from: '2025-06-15T08:00:00Z', to: null });
    const result = calculateCharges([open, openSinceLastYear], march, { monthlyCap: false });
    expect(result.lines.map((l) => [l.imageId, l.billedHours, l.amount])).toEqual([
      ['i1', '24', '24.00'],
      ['i2', '744', '744.00'],
    ]);
  });

  it('charges nothing for zero-length intervals, even with a minimum charge', () => {
    const zero = interval({ from: '2026-11-10T00:00:00Z', to: '2026-11-10T00:00:00Z' });
    for (const policy of [{}, { minimumCharge: '5' }, { rounding: 'exact' as const }]) {
      const result = calculateCharges([zero], NOVEMBER_2026, policy);
      expect(result.lines).toEqual([]);
      expect(result.total).toBe('0.00');
      expect(result.exactTotal).toBe('0');
    }
  });

  it('applies the minimum charge only to a line that costs something: rate 0 or size 0 is billed 0', () => {
    const free = interval({ imageId: 'free', rate: '0', from: '2026-11-02T00:00:00Z', to: '2026-11-04T00:00:00Z' });
    const empty = interval({ imageId: 'empty', sizeBytes: 0, rate: '0.05', from: '2026-11-02T00:00:00Z', to: null });
    const paid = interval({ imageId: 'paid', sizeBytes: 20 * GIB, rate: '0.05', from: '2026-11-03T10:15:00Z', to: '2026-11-05T12:30:00Z' });
    const result = calculateCharges([free, empty, paid], NOVEMBER_2026, { minimumCharge: '0.50' });
    expect(result.lines.map((l) => [l.imageId, l.billedHours, l.amount, l.exactAmount, l.minimumChargeApplied])).toEqual([
      ['empty', '696', '0.00', '0', false],
      ['free', '48', '0.00', '0', false],
      ['paid', '51', '0.50', '0.5', true],
    ]);
    expect(result.total).toBe('0.50');
    expect(result.exactTotal).toBe('0.5');
  });

  it('caps a 744-hour month at the monthly cost when hoursPerMonth is 730', () => {
    const twoMonths = period('2026-01-01T00:00:00Z', '2026-03-01T00:00:00Z');
    const whole = interval({ from: '2025-12-01T00:00:00Z', to: null });
    const capped = calculateCharges([whole], twoMonths);
    // January: 744 h × 1.00 capped to 730.00; February: 672 h → 672.00.
    expect(capped.lines[0]).toMatchObject({ billedHours: '1416', amount: '1402.00', exactAmount: '1402', monthlyCapApplied: true });
    const uncapped = calculateCharges([whole], twoMonths, { monthlyCap: false });
    expect(uncapped.lines[0]).toMatchObject({ amount: '1416.00', monthlyCapApplied: false });
    const calendar = calculateCharges([whole], twoMonths, { hoursPerMonth: 'calendar' });
    expect(calendar.lines[0]).toMatchObject({ amount: '1460.00', monthlyCapApplied: false });
  });

  it('caps a month whose rounded-up parts exceed its hours', () => {
    // 1,488 half-hour intervals in a 744-hour month each round up to one hour: 1488 h > 744 h.
    const intervals = Array.from({ length: 1488 }, (_, i) => {
      const from = Date.UTC(2026, 0, 1) + i * 1_800_000;
      return interval({ from: new Date(from), to: new Date(from + 1_800_000) });
    });
    const result = calculateCharges(intervals, period('2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z'), { hoursPerMonth: 'calendar' });
    expect(result.lines[0]).toMatchObject({ billedHours: '1488', amount: '730.00', monthlyCapApplied: true });
  });

  it('caps a month with a size change at the highest monthly cost of that month', () => {
    const january = period('2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z');
    const small = interval({ sizeBytes: 73 * GIB, from: '2026-01-01T00:00:00Z', to: '2026-01-20T00:00:00Z' });
    const large = interval({ sizeBytes: 146 * GIB, from: '2026-01-20T00:00:00Z', to: null });
    const result = calculateCharges([small, large], january, { monthlyCap: true });
    // 456 h × 1.00 + 288 h × 2.00 = 1032.00 ≤ 1460.00 (the larger monthly cost): not capped.
    expect(result.lines[0]).toMatchObject({
      amount: '1032.00',
      monthlyCapApplied: false,
      sizeBytes: 146 * GIB,
      sizeGb: '146',
      billedHours: '744',
    });
    expect(result.lines[0]?.segments).toEqual([
      { sizeBytes: 73 * GIB, sizeGb: '73', rate: '10', billedHours: '456', exactAmount: '456' },
      { sizeBytes: 146 * GIB, sizeGb: '146', rate: '10', billedHours: '288', exactAmount: '576' },
    ]);
    const late = interval({ sizeBytes: 146 * GIB, from: '2026-01-01T00:00:00Z', to: '2026-01-31T00:00:00Z' });
    const tail = interval({ sizeBytes: 73 * GIB, from: '2026-01-31T00:00:00Z', to: null });
    // 720 h × 2.00 + 24 h × 1.00 = 1464.00 > 1460.00: capped at the larger monthly cost.
    expect(calculateCharges([late, tail], january).lines[0]).toMatchObject({ amount: '1460.00', monthlyCapApplied: true, sizeGb: '73' });
  });

  it('handles leap years: February 2028 has 696 hours, February 2027 has 672', () => {
    expect(hoursInUtcMonth(2028, 1)).toBe(696);
    expect(hoursInUtcMonth(2027, 1)).toBe(672);
    expect(hoursInUtcMonth(2100, 1)).toBe(672);
    expect(hoursInUtcMonth(2000, 1)).toBe(696);
    const feb2028 = period('2028-02-01T00:00:00Z', '2028-03-01T00:00:00Z');
    const all = interval({ from: '2028-01-15T00:00:00Z', to: null });
    expect(calculateCharges([all], feb2028).lines[0]).toMatchObject({ billedHours: '696', amount: '696.00' });
    expect(calculateCharges([all], feb2028, { hoursPerMonth: 'calendar' }).lines[0]).toMatchObject({
      billedHours: '696',
      amount: '730.00',
    });
    const leapDay = interval({ imageId: 'i2', from: '2028-02-29T00:00:00Z', to: '2028-03-01T00:00:00Z' });
    expect(calculateCharges([leapDay], feb2028).lines[0]).toMatchObject({ billedHours: '24', amount: '24.00' });
  });

  it('applies the minimum charge per image per period', () => {
    const oneHour = interval({ from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:00:00Z' });
    const tenHours = interval({ imageId: 'i2', from: '2026-11-02T00:00:00Z', to: '2026-11-02T10:00:00Z' });
    const twentyMinutes = interval({ imageId: 'i3', from: '2026-11-02T00:00:00Z', to: '2026-11-02T00:20:00Z' });
    const result = calculateCharges([oneHour, tenHours, twentyMinutes], NOVEMBER_2026, { minimumCharge: '5', rounding: 'nearest' });
    expect(result.lines.map((l) => [l.imageId, l.amount, l.minimumChargeApplied])).toEqual([
      ['i1', '5.00', true],
      ['i2', '10.00', false],
      ['i3', '5.00', true],
    ]);
    expect(result.total).toBe('20.00');
  });

  it('distinguishes GB (10^9 bytes) from GiB (2^30 bytes)', () => {
    const hour = { from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:00:00Z' };
    const decimalSized = interval({ sizeBytes: 73 * 10 ** 9, ...hour });
    const gb = calculateCharges([decimalSized], NOVEMBER_2026, { gb: 'GB' }).lines[0];
    expect(gb).toMatchObject({ sizeGb: '73', amount: '1.00', exactAmount: '1' });
    const gib = calculateCharges([decimalSized], NOVEMBER_2026, { gb: 'GiB' }).lines[0];
    expect(gib).toMatchObject({ sizeGb: '67.986547946929931640625', amount: '0.93', exactAmount: '0.931322574615478515625' });
  });

  it('is exact for petabyte sizes and a "0.0125" rate', () => {
    const hour = { from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:00:00Z' };
    const pebibyte = interval({ sizeBytes: 2 ** 50, rate: '0.0125', ...hour });
    // 1 PiB = 1,048,576 GiB × 0.0125 = 13,107.2 a month; one hour = 13107.2 / 730.
    expect(calculateCharges([pebibyte], NOVEMBER_2026).lines[0]).toMatchObject({
      sizeGb: '1048576',
      exactAmount: '32768/1825',
      amount: '17.96',
    });
    const fivePetabytes = interval({ sizeBytes: 5 * 10 ** 15, rate: '0.0125', from: '2025-01-01T00:00:00Z', to: null });
    const january = period('2026-01-01T00:00:00Z', '2026-02-01T00:00:00Z');
    // 5,000,000 GB × 0.0125 = 62,500 a month; 744 h would be 63,698.63…, capped.
    expect(calculateCharges([fivePetabytes], january, { gb: 'GB' }).lines[0]).toMatchObject({
      sizeGb: '5000000',
      amount: '62500.00',
      monthlyCapApplied: true,
    });
    expect(calculateCharges([fivePetabytes], january, { gb: 'GB', monthlyCap: false }).lines[0]).toMatchObject({
      exactAmount: '4650000/73',
      amount: '63698.63',
    });
  });

  it('rounds each line once, half-up, and totals the rounded lines', () => {
    // 1 GB at 3.65 per GB-month is 0.005 an hour: each one-hour line rounds up to 0.01.
    const lines = ['i1', 'i2', 'i3'].map((imageId) =>
      interval({ imageId, sizeBytes: 10 ** 9, rate: '3.65', from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:00:00Z' }),
    );
    const result = calculateCharges(lines, NOVEMBER_2026, { gb: 'GB' });
    expect(result.lines.map((l) => l.amount)).toEqual(['0.01', '0.01', '0.01']);
    expect(result.total).toBe('0.03');
    expect(result.exactTotal).toBe('0.015');
  });

  it('gives one line per image with segments when size or rate change, latest terms on the line', () => {
    const first = interval({ rate: '10', from: '2026-11-02T00:00:00Z', to: '2026-11-02T10:00:00Z' });
    const repriced = interval({ rate: '20.000', from: '2026-11-02T10:00:00Z', to: '2026-11-02T15:00:00Z' });
    const other = interval({ imageId: 'i0', accountId: 'a0', from: '2026-11-03T00:00:00Z', to: '2026-11-03T01:00:00Z' });
    const result = calculateCharges([repriced, other, first], NOVEMBER_2026);
    expect(result.lines.map((l) => l.imageId)).toEqual(['i0', 'i1']);
    expect(result.lines[1]).toMatchObject({ rate: '20', billedHours: '15', amount: '20.00' });
    expect(result.lines[1]?.segments.map((s) => [s.rate, s.billedHours, s.exactAmount])).toEqual([
      ['10', '10', '10'],
      ['20', '5', '10'],
    ]);
  });

  it('rejects a bad policy, period or interval with VALIDATION_FAILED naming the field', () => {
    const ok = interval({ from: '2026-11-02T00:00:00Z', to: '2026-11-02T01:00:00Z' });
    const bad: [unknown, string][] = [
      [{ rouding: 'up' }, 'rouding'],
      [{ rounding: 'down' }, 'rounding'],
      [{ hoursPerMonth: 0 }, 'hoursPerMonth'],
      [{ hoursPerMonth: 730.5 }, 'hoursPerMonth'],
      [{ minimumCharge: '-1' }, 'minimumCharge'],
      [{ decimals: 40 }, 'decimals'],
      [{ gb: 'MB' }, 'gb'],
    ];
    for (const [policy, path] of bad) {
      try {
        calculateCharges([ok], NOVEMBER_2026, policy as BillingPolicyInput);
        expect.unreachable();
      } catch (error) {
        expect(error).toMatchObject({ code: 'VALIDATION_FAILED' });
        expect((error as { fields: { path: string }[] }).fields.map((f) => f.path)).toContain(path);
      }
    }
    expect(() => calculateCharges([ok], period('2026-11-02T00:00:00Z', '2026-11-02T00:00:00Z'))).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', fields: [expect.objectContaining({ path: 'to' })] }),
    );
    expect(() => calculateCharges([ok], { from: new Date('nope'), to: new Date() })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED' }),
    );
    expect(() => calculateCharges([{ ...ok, rate: '1e3' }], NOVEMBER_2026)).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', fields: [expect.objectContaining({ path: 'rate' })] }),
    );
    expect(() => calculateCharges([{ ...ok, sizeBytes: -1 }], NOVEMBER_2026)).toThrow(
      expect.objectContaining({ fields: [expect.objectContaining({ path: 'sizeBytes' })] }),
    );
    expect(() => calculateCharges([{ ...ok, to: new Date('2026-11-01T00:00:00Z') }], NOVEMBER_2026)).toThrow(
      expect.objectContaining({ fields: [expect.objectContaining({ path: 'to' })] }),
    );
  });

  it('resolves the documented defaults', () => {
    expect(resolveBillingPolicy()).toEqual({
      gb: 'GiB',
      hoursPerMonth: 730,
      rounding: 'up',
      monthlyCap: true,
      minimumCharge: '0',
      decimals: 2,
    });
  });

  it('streams: the calculator gives the same result fed in any order, one interval at a time', () => {
    const intervals = [
      interval({ from: '2026-11-02T00:00:00Z', to: '2026-11-02T10:30:00Z' }),
      interval({ from: '2026-11-02T10:30:00Z', to: null, rate: '11' }),
      interval({ imageId: 'i2', from: '2026-10-02T00:00:00Z', to: '2026-11-09T00:00:00Z' }),
    ];
    const forward = calculateCharges(intervals, NOVEMBER_2026);
    const calculator = new ChargeCalculator(NOVEMBER_2026);
    for (const item of [...intervals].reverse()) calculator.add(item);
    expect(calculator.imageCount).toBe(2);
    expect(calculator.finish()).toEqual(forward);
  });
});

describe('calendar helpers', () => {
  it('splits at UTC month boundaries', () => {
    expect(
      splitAtMonthBoundaries(new Date('2026-01-31T12:00:00Z'), new Date('2026-03-01T06:00:00Z')).map((p) => [
        p.from.toISOString(),
        p.to.toISOString(),
      ]),
    ).toEqual([
      ['2026-01-31T12:00:00.000Z', '2026-02-01T00:00:00.000Z'],
      ['2026-02-01T00:00:00.000Z', '2026-03-01T00:00:00.000Z'],
      ['2026-03-01T00:00:00.000Z', '2026-03-01T06:00:00.000Z'],
    ]);
    expect(splitAtMonthBoundaries(new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'))).toEqual([]);
  });

  it('bills hours by rounding mode', () => {
    expect(billedHours(50.25 * 3_600_000, 'up').toString()).toBe('51');
    expect(billedHours(50.25 * 3_600_000, 'nearest').toString()).toBe('50');
    expect(billedHours(50.5 * 3_600_000, 'nearest').toString()).toBe('51');
    expect(billedHours(50.25 * 3_600_000, 'exact').toString()).toBe('50.25');
    expect(billedHours(0, 'up').toString()).toBe('0');
    expect(billedHours(-5, 'up').toString()).toBe('0');
  });
});
