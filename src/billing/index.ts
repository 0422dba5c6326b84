/**
 * Billing: the exact per-GB-month calculator, the usage ledger rules and the usage report's
 * Images section. Pure: no I/O of its own (the report reads only through the repository ports).
 * @module
 */
export * from './decimal';
export * from './policy';
export * from './calculator';
export * from './ledger';
export * from './report';
