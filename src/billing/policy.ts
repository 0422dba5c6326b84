/**
 * The billing policy (validated by zod, every option with its default), the billing period,
 * and the calendar helpers the calculator uses: UTC month boundaries and hours per month.
 * @module
 */
import { z } from 'zod';
import { DecimalStringSchema } from '../model/common';
import { parseOrThrow } from '../util/validate';
import { Rational } from './decimal';

/** Bytes in one billed "GB": `GiB` = 2^30 bytes, `GB` = 10^9 bytes. */
export const BYTES_PER_GB: Readonly<Record<'GiB' | 'GB', bigint>> = { GiB: 1_073_741_824n, GB: 1_000_000_000n };

/** Milliseconds in one hour. */
export const MS_PER_HOUR = 3_600_000;

/**
 * The billing policy. Every field is optional on input; the defaults are the product's
 * documented rules (see docs/billing.md).
 */
export const BillingPolicySchema = z.strictObject({
  /**
   * What one "GB" of image size is: `'GiB'` (2^30 bytes) or `'GB'` (10^9 bytes).
   * @defaultValue `'GiB'`
   */
  gb: z.enum(['GiB', 'GB']).default('GiB'),
  /**
   * Hours in a billing month: a positive integer (730, 720, 672, …) or `'calendar'` (the hours
   * of the UTC calendar month the time falls in: 672, 696, 720 or 744).
   * @defaultValue `730`
   */
  hoursPerMonth: z
    .union([
      z.number().int('must be an integer').min(1, 'must be at least 1').max(100_000, 'must be at most 100000'),
      z.literal('calendar'),
    ])
    .default(730),
  /**
   * How the time of each interval part is billed: `'up'` (every started hour counts as a whole
   * hour), `'nearest'` (half an hour or more counts as an hour), or `'exact'` (fractional hours,
   * to the millisecond).
   * @defaultValue `'up'`
   */
  rounding: z.enum(['up', 'nearest', 'exact']).default('up'),
  /**
   * Whether one image never costs more within one calendar month than its monthly cost
   * (size in GB × rate; the highest such cost when the size or rate changed that month).
   * @defaultValue `true`
   */
  monthlyCap: z.boolean().default(true),
  /**
   * The least an image is charged per period when it existed for any time in the period, as a
   * decimal string.
   * @defaultValue `"0"`
   */
  minimumCharge: DecimalStringSchema.default('0'),
  /**
   * Decimal places of each line's amount (rounded once, half-up, at the end).
   * @defaultValue `2`
   */
  decimals: z.number().int('must be an integer').min(0, 'must be at least 0').max(18, 'must be at most 18').default(2),
});

/** A complete billing policy (every default filled in). */
export type BillingPolicy = z.output<typeof BillingPolicySchema>;
/** A billing policy as given by a caller: every field optional. */
export type BillingPolicyInput = z.input<typeof BillingPolicySchema>;

/** The policy with every default: GiB, 730 hours, rounding up, monthly cap, no minimum, 2 decimals. */
export const DEFAULT_BILLING_POLICY: Readonly<BillingPolicy> = Object.freeze(BillingPolicySchema.parse({}));

/**
 * Validates a policy and fills in the defaults.
 * @throws VALIDATION_FAILED naming every offending field (unknown fields included).
 */
export function resolveBillingPolicy(input: BillingPolicyInput = {}): BillingPolicy {
  return parseOrThrow(BillingPolicySchema, input, 'The billing policy');
}

/** A billing period: from `from` (inclusive) to `to` (exclusive). */
export interface BillingPeriod {
  /** Start, inclusive. */
  from: Date;
  /** End, exclusive. */
  to: Date;
}

/** Schema of a {@link BillingPeriod}: two valid dates, `to` after `from`. */
export const BillingPeriodSchema = z
  .object({ from: z.date('must be a valid date'), to: z.date('must be a valid date') })
  .refine((p) => p.to.getTime() > p.from.getTime(), { message: 'must be after the start of the period', path: ['to'] });

/**
 * Validates a period.
 * @throws VALIDATION_FAILED when a date is invalid or the period is empty.
 */
export function resolveBillingPeriod(period: BillingPeriod): BillingPeriod {
  const parsed = parseOrThrow(BillingPeriodSchema, period, 'The billing period');
  return { from: new Date(parsed.from.getTime()), to: new Date(parsed.to.getTime()) };
}

/** Hours in a UTC calendar month (`monthIndex` 0–11): 672, 696, 720 or 744. */
export function hoursInUtcMonth(year: number, monthIndex: number): number {
  return new Date(Date.UTC(year, monthIndex + 1, 0)).getUTCDate() * 24;
}

/** The start (ms since the epoch) of the UTC calendar month after the one containing `ms`. */
export function nextUtcMonthStart(ms: number): number {
  const date = new Date(ms);
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 1);
}

/**
 * Splits [from, to) at UTC calendar-month boundaries. An empty or inverted range gives `[]`.
 * @example `splitAtMonthBoundaries(2026-01-31T12:00Z, 2026-02-01T06:00Z)` →
 * `[{31 Jan 12:00 → 1 Feb 00:00}, {1 Feb 00:00 → 1 Feb 06:00}]`
 */
export function splitAtMonthBoundaries(from: Date, to: Date): BillingPeriod[] {
  const parts: BillingPeriod[] = [];
  let start = from.getTime();
  const end = to.getTime();
  while (start < end) {
    const boundary = Math.min(nextUtcMonthStart(start), end);
    parts.push({ from: new Date(start), to: new Date(boundary) });
    start = boundary;
  }
  return parts;
}

/**
 * The billed time of `durationMs` under a rounding mode, in hours: whole hours for `'up'` and
 * `'nearest'`, the exact fraction for `'exact'`. Negative durations bill nothing.
 */
export function billedHours(durationMs: number, rounding: BillingPolicy['rounding']): Rational {
  return Rational.of(billedUnits(durationMs, rounding), rounding === 'exact' ? MS_PER_HOUR : 1);
}

/**
 * The billed time in integer units: hours for `'up'`/`'nearest'`, milliseconds for `'exact'`.
 * Integer arithmetic only, so it is exact for every safe-integer duration.
 */
export function billedUnits(durationMs: number, rounding: BillingPolicy['rounding']): number {
  if (durationMs <= 0) return 0;
  if (rounding === 'exact') return durationMs;
  const remainder = durationMs % MS_PER_HOUR;
  const whole = (durationMs - remainder) / MS_PER_HOUR;
  if (rounding === 'up') return remainder > 0 ? whole + 1 : whole;
  return remainder * 2 >= MS_PER_HOUR ? whole + 1 : whole;
}
