/**
 * Billing: the exact per-GB-month calculator, the usage ledger rules and the usage report's
 * Images section. Pure functions over intervals: no ports, no I/O (the usage service in
 * `src/services/usage.ts` reads and writes the ledger).
 * @module
 */
export * from './decimal';
export * from './policy';
export * from './calculator';
export * from './ledger';
export * from './report';
