/**
 * Billing: the exact per-GB-month calculator, the usage ledger rules and the usage report's
 * Images section. Pure functions over intervals: no ports, no I/O (the usage service in
 * `src/services/usage.ts` reads and writes the ledger).
 * @module
 */
export { powerOfTen, Rational } from './decimal';
export {
  resolveBillingPolicy,
  resolveBillingPeriod,
  hoursInUtcMonth,
  nextUtcMonthStart,
  splitAtMonthBoundaries,
  billedHours,
  billedUnits,
  BYTES_PER_GB,
  MS_PER_HOUR,
  BillingPolicySchema,
  DEFAULT_BILLING_POLICY,
  BillingPeriodSchema,
  type BillingPolicy,
  type BillingPolicyInput,
  type BillingPeriod,
} from './policy';
export { sumLines, calculateCharges, ChargeCalculator, type ChargeSegment, type ImageCharge, type ChargeResult } from './calculator';
export {
  openUsage,
  closeUsage,
  applyPriceChange,
  applySizeCorrection,
  findUsageOverlaps,
  assertNoUsageOverlap,
  type UsageClose,
  type UsageChanges,
  type UsageIdGenerator,
  type BillableImage,
  type OpenUsageInput,
  type CloseUsageInput,
  type PriceChangeInput,
  type SizeCorrectionInput,
  type UsageOverlap,
} from './ledger';
export {
  assembleUsageReport,
  type UsageReportLine,
  type UsageReportAccountTotal,
  type UsageReportImagesSection,
  type UsageReport,
  type UsageReportHeader,
} from './report';
