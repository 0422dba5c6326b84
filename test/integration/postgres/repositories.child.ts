/**
 * The child module of the multi-process PostgreSQL conformance run: opens our PostgreSQL
 * repositories on the shared schema (its own pool of 4 connections) and serves them.
 */
import { createPostgresRepositories } from '../../../adapters/postgres';
import { serveRepositories } from '../../../src/testing';

serveRepositories((args) => {
  const { connectionString, schema } = args as { connectionString: string; schema: string };
  return createPostgresRepositories({ connectionString, schema, maxConnections: 4, migrate: false });
});
