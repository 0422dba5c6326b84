/**
 * The child module of the multi-process PostgreSQL conformance run: opens our PostgreSQL
 * repositories (or, with `planted`, the broken read-then-insert variant) on the shared schema
 * (its own pool of 4 connections) and serves them.
 */
import { createPostgresRepositories } from '../../../adapters/postgres';
import { serveRepositories } from '../../../src/testing';
import { openPlantedPostgresRepositories } from './planted-repositories';

serveRepositories((args) => {
  const { connectionString, schema, planted } = args as { connectionString: string; schema: string; planted?: boolean };
  const options = { connectionString, schema, maxConnections: 4, migrate: false };
  return planted ? openPlantedPostgresRepositories(options) : createPostgresRepositories(options);
});
