export {
  createMemoryRepositories,
  MemoryImageRepository,
  MemoryStorageRepository,
  MemoryMediaGroupRepository,
  MemoryIsoRepository,
  MemoryTaskRepository,
  MemoryUsageRepository,
  MemorySettingsRepository,
} from './repositories';
export { MemoryOutboxRepository } from './outbox';
