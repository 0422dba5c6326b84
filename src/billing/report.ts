/**
 * The usage report's Images section, as a pure function of the charges and the image names: lines
 * ordered by account, name and id, with per-account subtotals. The usage service
 * (`src/services/usage.ts`, `buildUsageReport`) reads the ledger into a `ChargeCalculator`
 * and the names, then calls `assembleUsageReport`.
 * @module
 */
import { sumLines, type ChargeResult, type ImageCharge } from './calculator';
import type { BillingPeriod, BillingPolicy } from './policy';

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

function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** What `assembleUsageReport` needs besides the charges. */
export interface UsageReportHeader {
  /** The account, or `null` for an operator-wide report. */
  accountId: string | null;
  /** ISO 4217 code of the rates and amounts. */
  currency: string;
}

/**
 * Builds the report from the calculator's charges and the image names (an image without a name,
 * whose record no longer exists, gets `imageName: null`). Pure: no I/O.
 *
 * Lines: one per image. When an image's size or rate changed in the period, its line shows the
 * latest size and rate, its billed hours and amount cover every part, and `segments` breaks it
 * down per (size, rate). The section total is the sum of the rounded lines.
 */
export function assembleUsageReport(charges: ChargeResult, names: ReadonlyMap<string, string>, header: UsageReportHeader): UsageReport {
  const lines: UsageReportLine[] = charges.lines.map((line) => ({ ...line, imageName: names.get(line.imageId) ?? null }));
  lines.sort(
    (a, b) =>
      compareStrings(a.accountId, b.accountId) ||
      compareStrings(a.imageName ?? '', b.imageName ?? '') ||
      compareStrings(a.imageId, b.imageId),
  );

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
    accountId: header.accountId,
    period: charges.period,
    currency: header.currency,
    policy: charges.policy,
    images: { lines, total: charges.total, exactTotal: charges.exactTotal, accounts },
  };
}
