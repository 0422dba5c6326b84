/**
 * The usage ledger rules: pure functions that say which intervals to close and which to open
 * when an image becomes available, is deleted, when a location's price changes, or when an
 * image's size is corrected. The usage service (`src/services/usage.ts`, `recordUsageChanges`)
 * applies the changes and emits the events.
 *
 * Rules (see docs/billing.md):
 * - billing starts when an image becomes `available` (one open interval per image);
 * - billing stops at the delete request, not at the file removal;
 * - a price change applies from the moment it is made: every open interval of the location is
 *   closed there and continued at the new rate;
 * - a size correction splits the image's open interval at the correction time;
 * - intervals of one image never overlap.
 * @module
 */
import { InstanceImagesError, validationFailed } from '../errors';
import { BytesSchema, DecimalStringSchema, IdSchema } from '../model/common';
import type { Image } from '../model/image';
import type { UsageInterval } from '../model/usage-interval';
import { Rational } from './decimal';

/** Closes one open interval at `to` (via `UsageRepository.close`). */
export interface UsageClose {
  /** The open interval. */
  id: string;
  /** Its image (so changes can be applied image by image). */
  imageId: string;
  /** When billing of that interval stops. */
  to: Date;
}

/** What a ledger rule asks the service to do: close these intervals, then insert these. */
export interface UsageChanges {
  /** Open intervals to close. */
  close: UsageClose[];
  /** New intervals to insert (each with an id from the caller's generator). */
  open: UsageInterval[];
}

/** Makes ids for new usage intervals (e.g. `() => crypto.randomUUID()`). */
export type UsageIdGenerator = () => string;

/** The image fields {@link openUsage} needs. */
export type BillableImage = Pick<Image, 'id' | 'accountId' | 'locationId' | 'sizeBytes' | 'status'>;

/** Input of {@link openUsage}. */
export interface OpenUsageInput {
  /** The image that just became `available`. */
  image: BillableImage;
  /** The location's price per GB-month now, as a decimal string. */
  rate: string;
  /** When the image became available (billing starts here). */
  at: Date;
  /** The image's intervals that are still open (normally none). */
  openIntervals: readonly UsageInterval[];
}

/** Input of {@link closeUsage}. */
export interface CloseUsageInput {
  /** The image being deleted. */
  imageId: string;
  /** When the delete was requested (billing stops here). */
  at: Date;
  /** The image's open intervals. */
  openIntervals: readonly UsageInterval[];
}

/** Input of {@link applyPriceChange}. */
export interface PriceChangeInput {
  /** The location whose price changed. */
  locationId: string;
  /** The new price per GB-month, as a decimal string. */
  rate: string;
  /** When the change was made (the new price applies from here). */
  at: Date;
  /** Open intervals (of this location; others are ignored). May be one page at a time. */
  openIntervals: readonly UsageInterval[];
}

/** Input of {@link applySizeCorrection}. */
export interface SizeCorrectionInput {
  /** The image whose size was corrected. */
  imageId: string;
  /** The corrected size in bytes. */
  sizeBytes: number;
  /** When the correction was made (the new size is billed from here). */
  at: Date;
  /** The image's open intervals. */
  openIntervals: readonly UsageInterval[];
}

/** Two intervals of one image that overlap in time. */
export interface UsageOverlap {
  /** The image. */
  imageId: string;
  /** The interval that starts first. */
  firstId: string;
  /** The interval that starts inside the first. */
  secondId: string;
}

function checkDate(value: Date, path: string): void {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) throw validationFailed([{ path, message: 'must be a valid date' }]);
}

function checkRate(rate: string): string {
  if (!DecimalStringSchema.safeParse(rate).success)
    throw validationFailed([{ path: 'rate', message: 'must be a non-negative decimal like "0.05"' }]);
  return Rational.parse(rate).toString();
}

function newIdFrom(newId: UsageIdGenerator): string {
  const id = newId();
  if (!IdSchema.safeParse(id).success)
    throw new InstanceImagesError('VALIDATION_FAILED', 'The usage id generator returned an invalid id', {
      fields: [{ path: 'id', message: 'must be a valid id' }],
    });
  return id;
}

function openOf(intervals: readonly UsageInterval[], keep: (interval: UsageInterval) => boolean): UsageInterval[] {
  return intervals.filter((interval) => interval.to === null && keep(interval));
}

/**
 * Splits each interval at `max(at, interval.from)`: closes it there and opens its continuation
 * with `patch`. An interval that started at or after `at` is closed with zero length (no charge)
 * and reopened from its own start, so the new terms cover all of it and nothing overlaps.
 */
function split(
  intervals: readonly UsageInterval[],
  at: Date,
  patch: Partial<Pick<UsageInterval, 'rate' | 'sizeBytes'>>,
  newId: UsageIdGenerator,
): UsageChanges {
  const changes: UsageChanges = { close: [], open: [] };
  for (const interval of intervals) {
    const splitAt = new Date(Math.max(at.getTime(), interval.from.getTime()));
    changes.close.push({ id: interval.id, imageId: interval.imageId, to: splitAt });
    changes.open.push({ ...interval, ...patch, id: newIdFrom(newId), from: splitAt, to: null });
  }
  return changes;
}

/**
 * Billing starts: opens an interval for an image that just became `available`, at the location's
 * current rate. Idempotent: when the image already has an open interval, nothing changes.
 * Call it once per transition to `available` (the status compare-and-set makes that unique).
 * @throws INVALID_STATE when the image is not available, is a stock image (no account), has no
 *   location, or has no size; VALIDATION_FAILED for a bad rate or date.
 */
export function openUsage(input: OpenUsageInput, newId: UsageIdGenerator): UsageChanges {
  const { image } = input;
  checkDate(input.at, 'at');
  const rate = checkRate(input.rate);
  if (image.status !== 'available')
    throw new InstanceImagesError(
      'INVALID_STATE',
      `Billing starts only for an available image; image ${JSON.stringify(image.id)} is ${image.status}`,
      { details: { imageId: image.id, status: image.status } },
    );
  if (image.accountId === null)
    throw new InstanceImagesError('INVALID_STATE', `Image ${JSON.stringify(image.id)} has no account (stock images are not billed)`, {
      details: { imageId: image.id },
    });
  if (image.locationId === null)
    throw new InstanceImagesError('INVALID_STATE', `Image ${JSON.stringify(image.id)} has no location, so no rate applies`, {
      details: { imageId: image.id },
    });
  if (image.sizeBytes === null || image.sizeBytes <= 0)
    throw new InstanceImagesError('INVALID_STATE', `Image ${JSON.stringify(image.id)} has no size; billing needs the stored size`, {
      details: { imageId: image.id },
    });
  if (openOf(input.openIntervals, (i) => i.imageId === image.id).length > 0) return { close: [], open: [] };
  return {
    close: [],
    open: [
      {
        id: newIdFrom(newId),
        imageId: image.id,
        accountId: image.accountId,
        locationId: image.locationId,
        sizeBytes: image.sizeBytes,
        rate,
        from: new Date(input.at.getTime()),
        to: null,
      },
    ],
  };
}

/**
 * Billing stops: closes the image's open intervals at the delete request. Idempotent (no open
 * interval: no change). An interval that started after `at` (clock skew) is closed at its start,
 * with zero length.
 * @throws VALIDATION_FAILED for a bad date.
 */
export function closeUsage(input: CloseUsageInput): UsageChanges {
  checkDate(input.at, 'at');
  return {
    close: openOf(input.openIntervals, (i) => i.imageId === input.imageId).map((interval) => ({
      id: interval.id,
      imageId: interval.imageId,
      to: new Date(Math.max(input.at.getTime(), interval.from.getTime())),
    })),
    open: [],
  };
}

/**
 * A location's price changed: every open interval of that location whose rate differs is split
 * at `at` (closed there, continued at the new rate). Intervals of other locations, closed ones
 * and ones already at the new rate are left alone. Works page by page over the open intervals.
 * @throws VALIDATION_FAILED for a bad rate or date.
 */
export function applyPriceChange(input: PriceChangeInput, newId: UsageIdGenerator): UsageChanges {
  checkDate(input.at, 'at');
  const rate = checkRate(input.rate);
  const affected = openOf(
    input.openIntervals,
    (i) => i.locationId === input.locationId && Rational.parse(i.rate).compare(Rational.parse(rate)) !== 0,
  );
  return split(affected, input.at, { rate }, newId);
}

/**
 * An image's size was corrected: its open interval is split at `at` and continued with the new
 * size. No change when the size is the same or the image has no open interval.
 * @throws VALIDATION_FAILED for a bad size or date.
 */
export function applySizeCorrection(input: SizeCorrectionInput, newId: UsageIdGenerator): UsageChanges {
  checkDate(input.at, 'at');
  if (!BytesSchema.safeParse(input.sizeBytes).success || input.sizeBytes === 0)
    throw validationFailed([{ path: 'sizeBytes', message: 'must be a positive safe integer' }]);
  const affected = openOf(input.openIntervals, (i) => i.imageId === input.imageId && i.sizeBytes !== input.sizeBytes);
  return split(affected, input.at, { sizeBytes: input.sizeBytes }, newId);
}

/**
 * Finds intervals of the same image that overlap in time (half-open ranges; open intervals run
 * forever; zero-length intervals overlap nothing). Returns `[]` for a consistent ledger.
 */
export function findUsageOverlaps(intervals: Iterable<UsageInterval>): UsageOverlap[] {
  const byImage = new Map<string, UsageInterval[]>();
  for (const interval of intervals) {
    const list = byImage.get(interval.imageId);
    if (list === undefined) byImage.set(interval.imageId, [interval]);
    else list.push(interval);
  }
  const overlaps: UsageOverlap[] = [];
  for (const [imageId, list] of byImage) {
    const endOf = (i: UsageInterval): number => (i.to === null ? Number.POSITIVE_INFINITY : i.to.getTime());
    const nonEmpty = list.filter((i) => endOf(i) > i.from.getTime());
    nonEmpty.sort((a, b) => a.from.getTime() - b.from.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    let reach: UsageInterval | null = null;
    for (const interval of nonEmpty) {
      if (reach !== null && interval.from.getTime() < endOf(reach)) overlaps.push({ imageId, firstId: reach.id, secondId: interval.id });
      if (reach === null || endOf(interval) > endOf(reach)) reach = interval;
    }
  }
  return overlaps;
}

/**
 * Throws when intervals of one image overlap.
 * @throws INVALID_STATE listing the overlapping pairs in `details.overlaps`.
 */
export function assertNoUsageOverlap(intervals: Iterable<UsageInterval>): void {
  const overlaps = findUsageOverlaps(intervals);
  if (overlaps.length === 0) return;
  const first = overlaps[0] as UsageOverlap;
  throw new InstanceImagesError(
    'INVALID_STATE',
    `Usage intervals ${JSON.stringify(first.firstId)} and ${JSON.stringify(first.secondId)} of image ${JSON.stringify(first.imageId)} overlap (${overlaps.length} overlap(s) in all)`,
    { details: { overlaps } },
  );
}
