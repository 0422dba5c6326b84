import type { UsageInterval } from '../../../src/model/usage-interval';

/** 1 GiB in bytes. */
export const GIB = 2 ** 30;

let counter = 0;

/** A usage interval with defaults: image i1 of account a1 in location l1, 73 GiB at "10" (hourly 1.00 at 730 h). */
export function interval(
  fields: Partial<Omit<UsageInterval, 'from' | 'to'>> & { from: Date | string; to?: Date | string | null },
): UsageInterval {
  counter += 1;
  const toDate = (value: Date | string): Date => (typeof value === 'string' ? new Date(value) : value);
  return {
    id: fields.id ?? `u${String(counter).padStart(6, '0')}`,
    imageId: fields.imageId ?? 'i1',
    accountId: fields.accountId ?? 'a1',
    locationId: fields.locationId ?? 'l1',
    sizeBytes: fields.sizeBytes ?? 73 * GIB,
    rate: fields.rate ?? '10',
    from: toDate(fields.from),
    to: fields.to === undefined || fields.to === null ? null : toDate(fields.to),
  };
}

/** A period from two ISO strings. */
export function period(from: string, to: string): { from: Date; to: Date } {
  return { from: new Date(from), to: new Date(to) };
}
