/**
 * The charge calculator: exact, per image, over usage intervals and a period.
 *
 * For every interval: clip it to the period, split it at UTC calendar-month boundaries, bill each
 * part's time under the policy's rounding, and price it at `size in GB × rate × billed hours /
 * hours per month`. Per image and calendar month, the monthly cap applies; per image and period,
 * the minimum charge; each image's line is then rounded once, half-up. The total is the sum of the
 * rounded lines. See docs/billing.md for the rules and a worked example.
 * @module
 */
import { validationFailed, type FieldIssue } from '../errors';
import { DecimalStringSchema } from '../model/common';
import type { UsageInterval } from '../model/usage-interval';
import { Rational } from './decimal';
import {
  BYTES_PER_GB,
  MS_PER_HOUR,
  billedUnits,
  hoursInUtcMonth,
  nextUtcMonthStart,
  resolveBillingPeriod,
  resolveBillingPolicy,
  type BillingPeriod,
  type BillingPolicy,
  type BillingPolicyInput,
} from './policy';

/**
 * The charge of one image at one size and rate during the period (a size correction or a price
 * change starts a new segment). Segment amounts are before the monthly cap and the minimum charge.
 */
export interface ChargeSegment {
  /** Image size in bytes. */
  sizeBytes: number;
  /** Image size in billed GB (per the policy's `gb`), exact decimal string. */
  sizeGb: string;
  /** Price per GB-month, canonical decimal string (e.g. `"0.05"`). */
  rate: string;
  /** Billed hours of this segment (see {@link ImageCharge.billedHours} for the format). */
  billedHours: string;
  /** Exact charge of this segment before the cap and minimum: a decimal or a fraction like `"51/730"`. */
  exactAmount: string;
}

/**
 * One image's charge for the period: one line per image. When the image's size or rate changed
 * during the period, `sizeBytes`, `sizeGb` and `rate` are those of its latest interval and
 * `segments` lists every (size, rate) it was billed at; `billedHours` and the amounts cover them all.
 */
export interface ImageCharge {
  /** The image. */
  imageId: string;
  /** The owning account (of the latest interval). */
  accountId: string;
  /** The location whose rate applies (of the latest interval). */
  locationId: string;
  /** Size in bytes (of the latest interval). */
  sizeBytes: number;
  /** Size in billed GB, exact decimal string (of the latest interval). */
  sizeGb: string;
  /** Price per GB-month, canonical decimal string (of the latest interval). */
  rate: string;
  /**
   * Billed hours in the period, summed over all parts: an integer for rounding `'up'` and
   * `'nearest'`; for `'exact'` the exact decimal when it terminates, otherwise rounded half-up to
   * 6 places (the amount always uses the exact value).
   */
  billedHours: string;
  /** The line amount: {@link ImageCharge.exactAmount} rounded half-up to the policy's `decimals`. */
  amount: string;
  /** The exact amount after the monthly cap and the minimum charge: a decimal, or a fraction like `"51/730"`. */
  exactAmount: string;
  /** Whether the monthly cap lowered the charge of at least one month. */
  monthlyCapApplied: boolean;
  /** Whether the minimum charge raised the line. */
  minimumChargeApplied: boolean;
  /** Every (size, rate) billed, in the order they started. */
  segments: ChargeSegment[];
}

/** The result of {@link calculateCharges}. */
export interface ChargeResult {
  /** The period billed. */
  period: BillingPeriod;
  /** The policy applied, with every default filled in. */
  policy: BillingPolicy;
  /** One line per image that existed for any time in the period, by account id then image id. */
  lines: ImageCharge[];
  /** Sum of the rounded line amounts, with the policy's `decimals` (an invoice adds up). */
  total: string;
  /** Sum of the exact line amounts: a decimal or a fraction. */
  exactTotal: string;
}

interface MonthSlot {
  start: number;
  end: number;
  hoursPerMonth: bigint;
}

interface SegmentInfo {
  sizeBytes: number;
  rate: string;
  firstFrom: number;
}

interface ImageAccumulator {
  imageId: string;
  accountId: string;
  locationId: string;
  latestFrom: number;
  latestId: string;
  latestSegment: string;
  segments: Map<string, SegmentInfo>;
  /** Month slot index → segment key → billed units (hours, or ms for `'exact'`). */
  months: Map<number, Map<string, number>>;
}

interface ParsedRate {
  canonical: string;
  value: Rational;
}

function isValidDate(value: unknown): value is Date {
  return value instanceof Date && !Number.isNaN(value.getTime());
}

function formatHours(hours: Rational): string {
  return hours.terminatingDecimals() === null ? hours.toDecimalString(6) : hours.toString();
}

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * A streaming calculator: feed it intervals in any order with {@link ChargeCalculator.add} (for
 * example page by page from a repository), then call {@link ChargeCalculator.finish}. It keeps
 * one small accumulator per image (billed time per month and per (size, rate)), never the
 * intervals themselves, so memory grows with the number of images, not of intervals.
 */
export class ChargeCalculator {
  /** The validated period. */
  readonly period: BillingPeriod;
  /** The validated policy with defaults. */
  readonly policy: BillingPolicy;
  private readonly slots: MonthSlot[] = [];
  private readonly images = new Map<string, ImageAccumulator>();
  private readonly rates = new Map<string, ParsedRate>();
  private readonly bytesPerGb: Rational;
  private readonly minimumCharge: Rational;

  /** @throws VALIDATION_FAILED when the period or the policy is not valid. */
  constructor(period: BillingPeriod, policy: BillingPolicyInput = {}) {
    this.period = resolveBillingPeriod(period);
    this.policy = resolveBillingPolicy(policy);
    this.bytesPerGb = Rational.of(BYTES_PER_GB[this.policy.gb]);
    this.minimumCharge = Rational.parse(this.policy.minimumCharge);
    const end = this.period.to.getTime();
    let start = this.period.from.getTime();
    while (start < end) {
      const date = new Date(start);
      const hours =
        this.policy.hoursPerMonth === 'calendar' ? hoursInUtcMonth(date.getUTCFullYear(), date.getUTCMonth()) : this.policy.hoursPerMonth;
      const boundary = Math.min(nextUtcMonthStart(start), end);
      this.slots.push({ start, end: boundary, hoursPerMonth: BigInt(hours) });
      start = boundary;
    }
  }

  /** How many images have an accumulator so far. */
  get imageCount(): number {
    return this.images.size;
  }

  /**
   * Adds one interval. Intervals outside the period, or of zero length inside it, add nothing.
   * Intervals of one image must not overlap (see `findUsageOverlaps`); the calculator does not
   * check that, since it never holds the intervals.
   * @throws VALIDATION_FAILED when the interval is malformed (bad size, rate or dates).
   */
  add(interval: UsageInterval): void {
    const rate = this.checkInterval(interval);
    const periodStart = this.period.from.getTime();
    const periodEnd = this.period.to.getTime();
    const from = Math.max(interval.from.getTime(), periodStart);
    const to = Math.min(interval.to === null ? periodEnd : interval.to.getTime(), periodEnd);
    if (to <= from) return;

    const segmentKey = `${interval.sizeBytes}|${rate.canonical}`;
    let image = this.images.get(interval.imageId);
    if (image === undefined) {
      image = {
        imageId: interval.imageId,
        accountId: interval.accountId,
        locationId: interval.locationId,
        latestFrom: interval.from.getTime(),
        latestId: interval.id,
        latestSegment: segmentKey,
        segments: new Map(),
        months: new Map(),
      };
      this.images.set(interval.imageId, image);
    } else if (
      interval.from.getTime() > image.latestFrom ||
      (interval.from.getTime() === image.latestFrom && interval.id > image.latestId)
    ) {
      image.accountId = interval.accountId;
      image.locationId = interval.locationId;
      image.latestFrom = interval.from.getTime();
      image.latestId = interval.id;
      image.latestSegment = segmentKey;
    }
    const segment = image.segments.get(segmentKey);
    if (segment === undefined) image.segments.set(segmentKey, { sizeBytes: interval.sizeBytes, rate: rate.canonical, firstFrom: from });
    else if (from < segment.firstFrom) segment.firstFrom = from;

    for (let index = this.slotIndexOf(from); index < this.slots.length; index += 1) {
      const slot = this.slots[index] as MonthSlot;
      if (slot.start >= to) break;
      const units = billedUnits(Math.min(to, slot.end) - Math.max(from, slot.start), this.policy.rounding);
      let month = image.months.get(index);
      if (month === undefined) {
        month = new Map();
        image.months.set(index, month);
      }
      month.set(segmentKey, (month.get(segmentKey) ?? 0) + units);
    }
  }

  /** The ids of the images seen so far (those with any time in the period). */
  imageIds(): string[] {
    return [...this.images.keys()];
  }

  /** The charges of every image seen, by account id then image id, and the totals. */
  finish(): ChargeResult {
    const lines = [...this.images.values()].map((image) => this.chargeOf(image));
    lines.sort((a, b) => compareStrings(a.accountId, b.accountId) || compareStrings(a.imageId, b.imageId));
    return { period: this.period, policy: this.policy, lines, ...sumLines(lines, this.policy.decimals) };
  }

  private chargeOf(image: ImageAccumulator): ImageCharge {
    const unitsPerHour = this.policy.rounding === 'exact' ? BigInt(MS_PER_HOUR) : 1n;
    const monthlyCosts = new Map<string, Rational>();
    const segmentUnits = new Map<string, bigint>();
    const segmentAmounts = new Map<string, Rational>();
    for (const [key, info] of image.segments) {
      monthlyCosts.set(key, this.monthlyCost(info.sizeBytes, (this.rates.get(info.rate) as ParsedRate).value));
      segmentUnits.set(key, 0n);
      segmentAmounts.set(key, Rational.ZERO);
    }

    let exact = Rational.ZERO;
    let monthlyCapApplied = false;
    for (const [index, month] of image.months) {
      const slot = this.slots[index] as MonthSlot;
      let monthAmount = Rational.ZERO;
      let cap = Rational.ZERO;
      for (const [key, units] of month) {
        const monthly = monthlyCosts.get(key) as Rational;
        const amount = monthly.times(Rational.of(BigInt(units), slot.hoursPerMonth * unitsPerHour));
        monthAmount = monthAmount.plus(amount);
        cap = cap.max(monthly);
        segmentUnits.set(key, (segmentUnits.get(key) ?? 0n) + BigInt(units));
        segmentAmounts.set(key, (segmentAmounts.get(key) ?? Rational.ZERO).plus(amount));
      }
      if (this.policy.monthlyCap && monthAmount.compare(cap) > 0) {
        monthAmount = cap;
        monthlyCapApplied = true;
      }
      exact = exact.plus(monthAmount);
    }

    // Every accumulated image had time in the period (zero-length parts are never added); the
    // minimum applies only to a line that costs something: a part with a size and a rate above 0
    // (a free image, at rate 0 or size 0, is never billed the minimum).
    const costsSomething = [...monthlyCosts.values()].some((monthly) => monthly.compare(Rational.ZERO) > 0);
    const minimumChargeApplied = costsSomething && exact.compare(this.minimumCharge) < 0;
    if (minimumChargeApplied) exact = this.minimumCharge;

    const segments = [...image.segments.entries()]
      .sort((a, b) => a[1].firstFrom - b[1].firstFrom || compareStrings(a[0], b[0]))
      .map(([key, info]): ChargeSegment => ({
        sizeBytes: info.sizeBytes,
        sizeGb: this.sizeInGb(info.sizeBytes),
        rate: info.rate,
        billedHours: formatHours(Rational.of(segmentUnits.get(key) ?? 0n, unitsPerHour)),
        exactAmount: (segmentAmounts.get(key) ?? Rational.ZERO).toString(),
      }));
    let totalUnits = 0n;
    for (const units of segmentUnits.values()) totalUnits += units;
    const latest = image.segments.get(image.latestSegment) as SegmentInfo;
    return {
      imageId: image.imageId,
      accountId: image.accountId,
      locationId: image.locationId,
      sizeBytes: latest.sizeBytes,
      sizeGb: this.sizeInGb(latest.sizeBytes),
      rate: latest.rate,
      billedHours: formatHours(Rational.of(totalUnits, unitsPerHour)),
      amount: exact.format(this.policy.decimals),
      exactAmount: exact.toString(),
      monthlyCapApplied,
      minimumChargeApplied,
      segments,
    };
  }

  private monthlyCost(sizeBytes: number, rate: Rational): Rational {
    return Rational.of(sizeBytes).times(rate).dividedBy(this.bytesPerGb);
  }

  private sizeInGb(sizeBytes: number): string {
    return Rational.of(sizeBytes).dividedBy(this.bytesPerGb).toString();
  }

  private slotIndexOf(ms: number): number {
    let low = 0;
    let high = this.slots.length - 1;
    while (low < high) {
      const mid = (low + high) >> 1;
      if ((this.slots[mid] as MonthSlot).end <= ms) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  private checkInterval(interval: UsageInterval): ParsedRate {
    const issues: FieldIssue[] = [];
    if (typeof interval.imageId !== 'string' || interval.imageId.length === 0)
      issues.push({ path: 'imageId', message: 'must be a non-empty string' });
    if (typeof interval.accountId !== 'string' || interval.accountId.length === 0)
      issues.push({ path: 'accountId', message: 'must be a non-empty string' });
    if (typeof interval.locationId !== 'string' || interval.locationId.length === 0)
      issues.push({ path: 'locationId', message: 'must be a non-empty string' });
    if (!Number.isSafeInteger(interval.sizeBytes) || interval.sizeBytes < 0)
      issues.push({ path: 'sizeBytes', message: 'must be a non-negative safe integer' });
    if (!isValidDate(interval.from)) issues.push({ path: 'from', message: 'must be a valid date' });
    if (interval.to !== null && !isValidDate(interval.to)) issues.push({ path: 'to', message: 'must be a valid date or null' });
    else if (interval.to !== null && isValidDate(interval.from) && interval.to.getTime() < interval.from.getTime())
      issues.push({ path: 'to', message: 'must not be before from' });
    const rate = this.parseRate(interval.rate);
    if (rate === null) issues.push({ path: 'rate', message: 'must be a non-negative decimal like "0.05"' });
    if (issues.length > 0 || rate === null) throw validationFailed(issues, `Usage interval ${JSON.stringify(String(interval.id))}`);
    return rate;
  }

  private parseRate(text: string): ParsedRate | null {
    const cached = this.rates.get(text);
    if (cached !== undefined) return cached;
    if (!DecimalStringSchema.safeParse(text).success) return null;
    const value = Rational.parse(text);
    const parsed = { canonical: value.toString(), value };
    this.rates.set(text, parsed);
    this.rates.set(parsed.canonical, parsed);
    return parsed;
  }
}

/** Sums rounded line amounts (the invoice total) and exact amounts. */
export function sumLines(
  lines: readonly Pick<ImageCharge, 'amount' | 'exactAmount'>[],
  decimals: number,
): { total: string; exactTotal: string } {
  let total = Rational.ZERO;
  let exactTotal = Rational.ZERO;
  for (const line of lines) {
    total = total.plus(Rational.parse(line.amount));
    exactTotal = exactTotal.plus(Rational.parse(line.exactAmount));
  }
  return { total: total.format(decimals), exactTotal: exactTotal.toString() };
}

/**
 * Calculates the charges of in-memory intervals for a period: one line per image, the total of
 * the rounded lines and the exact total. Pure and deterministic. For intervals read page by page
 * from a repository, use `ChargeCalculator` (as `buildUsageReport` does).
 * @throws VALIDATION_FAILED when the period, the policy or an interval is not valid.
 */
export function calculateCharges(intervals: Iterable<UsageInterval>, period: BillingPeriod, policy: BillingPolicyInput = {}): ChargeResult {
  const calculator = new ChargeCalculator(period, policy);
  for (const interval of intervals) calculator.add(interval);
  return calculator.finish();
}
