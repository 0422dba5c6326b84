/**
 * The child module of the multi-process conformance runs in processes.test.ts: opens one of our
 * adapters, the example host's, or a planted broken one on the shared file, and serves it.
 */
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { createHostRepositories } from '../../../examples/host-own-database/repositories';
import { openPanelDatabase } from '../../../examples/host-own-database/schema';
import { serveRepositories } from '../../../src/testing';
import { openPlantedRepositories, type PlantedVariant } from './planted-repositories';

serveRepositories((args) => {
  const { adapter, filename } = args as { adapter: 'sqlite' | 'host-example' | PlantedVariant; filename: string };
  if (adapter === 'sqlite') return createSqliteRepositories({ filename });
  if (adapter === 'host-example') {
    const db = openPanelDatabase(filename);
    return { ...createHostRepositories(db), close: async () => void db.close() };
  }
  return openPlantedRepositories(filename, adapter);
});
