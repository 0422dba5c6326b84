/**
 * Test helpers for hosts and adapters: the conformance suites and record fixtures.
 * Import from `instance-images/testing`.
 * @module
 */
export {
  testRepositories,
  repositoryCases,
  runRepositoryCase,
  type TestApi,
  type RepositorySuiteOptions,
  type RepositoryCase,
} from './repository-suite';
export {
  testRepositoriesAcrossProcesses,
  runRepositoriesAcrossProcesses,
  serveRepositories,
  type ProcessSuiteOptions,
  type ProcessRunResult,
  type SharedDatabase,
  type JsonValue,
} from './repository-processes';
export {
  makeImage,
  makeStorage,
  makeMediaGroup,
  makeIso,
  makeTask,
  makeUsageInterval,
  makeCompleteImage,
  makeCompleteStorage,
  makeCompleteMediaGroup,
  makeCompleteIso,
  makeCompleteTask,
  makeCompleteUsageInterval,
  makeCompleteLocationSettings,
  completeImagePatch,
  completeTaskPatch,
  fixtureTime,
  FIXTURE_TIME,
} from './fixtures';
export { makeImageShare, makeImageTransfer, imageMoveCases } from './image-move-cases';
export { outboxCases } from './outbox-cases';
export { outboxWriteCases } from './outbox-write-cases';
export {
  testStorageDriver,
  type StorageSuiteOptions,
  type StorageSuiteFeature,
  type SuiteFramework,
  type SuiteAssertion,
} from './storage-driver-suite';
