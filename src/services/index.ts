export * from './actor';
export * from './images';
export * from './catalog';
export * from './storages';
export * from './settings';
export { buildUsageReport, UsageReportQuerySchema, type UsageReportQuery, type UsageReportOptions, type UsageReportSources } from './usage';
export type { RecoveryReport } from './recovery';
export type { Logger, ServiceSettings } from './context';
export type { WorkProgress } from './task-runner';
