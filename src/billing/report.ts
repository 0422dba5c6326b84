/**
 * The usage report's Images section, for one account or operator-wide. It streams the usage
 * ledger page by page into a {@link ChargeCalculator} (one accumulator per image, never all the
 * intervals), then looks up each image's name once.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError } from '../errors';
import { IdSchema } from '../model/common';
// eslint-disable-next-line layers/imports -- the known breach (issue #12): billing becomes pure and a usage service owns the I/O; remove this line with that change
import type { ImageRepository, UsageFilter, UsageRepository } from '../ports/repositories';
import { parseOrThrow } from '../util/validate';
import { ChargeCalculator, sumLines, type ImageCharge } from './calculator';
import type { BillingPeriod, BillingPolicy, BillingPolicyInput } from './policy';

/** The repositories the report reads: usage intervals (paged) and images (for names). */
export interface UsageReportSources {
  /** The usage ledger; only `list` is used. */
  usage: Pick<UsageRepository, 'list'>;
  /** Images; only `get` is used, once per image in the report. */
  images: Pick<ImageRepository, 'get'>;
}

/** Options of {@link buildUsageReport}. */
export interface UsageReportOptions {
  /** The account; omit for an operator-wide report across all accounts. */
  accountId?: string;
  /** The period, [from, to). */
  period: BillingPeriod;
  /** The billing policy; defaults as in `DEFAULT_BILLING_POLICY`. */
  policy?: BillingPolicyInput;
  /** ISO 4217 code of the rates and amounts, e.g. `"USD"`. */
  currency: string;
  /** Intervals per repository page, 1–1000; default 500. */
  pageSize?: number;
  /** Concurrent image-name lookups, 1–64; default 8. */
  nameLookupConcurrency?: number;
}

/** One line of the Images section: an image's charge plus its name. */
export interface UsageReportLine extends ImageCharge {
  /** The image's name, or `null` when the image record no longer exists. */
  imageName: string | null;
}

/** The per-account subtotal of an operator-wide report (one entry for an account report). */
export interface UsageReportAccountTotal {
  /** The account. */
  accountId: string;
  /** Number of lines (images) of the account. */
  lineCount: number;
  /** Sum of the account's rounded line amounts. */
  total: string;
}

/** The Images section of the usage report. */
export interface UsageReportImagesSection {
  /**
   * One line per image that existed for any time in the period (images deleted during the period
   * included, with the hours they actually existed), ordered by account id, image name, image id.
   */
  lines: UsageReportLine[];
  /** Sum of the rounded line amounts. */
  total: string;
  /** Sum of the exact line amounts (a decimal or a fraction). */
  exactTotal: string;
  /** Subtotals per account, ordered by account id. */
  accounts: UsageReportAccountTotal[];
}

/** A usage report: the Images section for an account (or every account) and a period. */
export interface UsageReport {
  /** The account, or `null` for an operator-wide report. */
  accountId: string | null;
  /** The period, [from, to). */
  period: BillingPeriod;
  /** Currency of rates and amounts. */
  currency: string;
  /** The policy applied, with every default. */
  policy: BillingPolicy;
  /** The Images section. */
  images: UsageReportImagesSection;
}

const ReportOptionsSchema = z.object({
  accountId: IdSchema.optional(),
  currency: z.string().regex(/^[A-Z]{3}$/, 'must be a 3-letter currency code like "USD"'),
  pageSize: z.number().int().min(1).max(1000).default(500),
  nameLookupConcurrency: z.number().int().min(1).max(64).default(8),
});

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Builds the usage report's Images section. Reads `usage.list({ accountId?, overlapping: period })`
 * page by page and aggregates per image while streaming, so memory grows with the number of
 * images, not of intervals; then reads each image's name once with `images.get`.
 *
 * Lines: one per image. When an image's size or rate changed in the period, its line shows the
 * latest size and rate, its billed hours and amount cover every part, and `segments` breaks it
 * down per (size, rate). The section total is the sum of the rounded lines.
 * @throws VALIDATION_FAILED when an option, the period, the policy or an interval is not valid;
 *   INVALID_STATE when the repository's paging does not advance; whatever the repositories throw.
 */
export async function buildUsageReport(sources: UsageReportSources, options: UsageReportOptions): Promise<UsageReport> {
  const parsed = parseOrThrow(ReportOptionsSchema, { accountId: options.accountId, currency: options.currency, pageSize: options.pageSize, nameLookupConcurrency: options.nameLookupConcurrency }, 'The usage report options');
  const calculator = new ChargeCalculator(options.period, options.policy);
  const { period } = calculator;
  const filter: UsageFilter = { overlapping: { from: period.from, to: period.to } };
  if (parsed.accountId !== undefined) filter.accountId = parsed.accountId;

  let cursor: string | null = null;
  do {
    const page = await sources.usage.list(filter, { cursor, limit: parsed.pageSize });
    for (const interval of page.items) {
      // The repository filters already; this guards an adapter that ignores `accountId`.
      if (parsed.accountId !== undefined && interval.accountId !== parsed.accountId) continue;
      calculator.add(interval);
    }
    if (page.nextCursor !== null && page.nextCursor === cursor) {
      throw new InstanceImagesError('INVALID_STATE', 'The usage repository returned the same page cursor twice; its paging does not advance', { details: { cursor } });
    }
    cursor = page.nextCursor;
  } while (cursor !== null);

  const charges = calculator.finish();
  const names = await lookUpNames(sources.images, charges.lines.map((line) => line.imageId), parsed.nameLookupConcurrency);
  const lines: UsageReportLine[] = charges.lines.map((line) => ({ ...line, imageName: names.get(line.imageId) ?? null }));
  lines.sort((a, b) => compareStrings(a.accountId, b.accountId) || compareStrings(a.imageName ?? '', b.imageName ?? '') || compareStrings(a.imageId, b.imageId));

  const byAccount = new Map<string, UsageReportLine[]>();
  for (const line of lines) {
    const list = byAccount.get(line.accountId);
    if (list === undefined) byAccount.set(line.accountId, [line]);
    else list.push(line);
  }
  const accounts = [...byAccount.entries()].map(([accountId, accountLines]) => ({
    accountId,
    lineCount: accountLines.length,
    total: sumLines(accountLines, charges.policy.decimals).total,
  }));

  return {
    accountId: parsed.accountId ?? null,
    period,
    currency: parsed.currency,
    policy: charges.policy,
    images: { lines, total: charges.total, exactTotal: charges.exactTotal, accounts },
  };
}

async function lookUpNames(images: Pick<ImageRepository, 'get'>, imageIds: readonly string[], concurrency: number): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < imageIds.length) {
      const imageId = imageIds[next] as string;
      next += 1;
      const image = await images.get(imageId);
      if (image !== null) names.set(imageId, image.name);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, imageIds.length) }, worker));
  return names;
}
