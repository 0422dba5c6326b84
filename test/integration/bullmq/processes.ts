/**
 * The worker processes of the BullMQ cluster tests: forking one (ready when it says so) and
 * tearing a cluster down (workers closed, the web process closed, the schema and files removed).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import type { InstanceImages } from '../../../src';
import { dropSchema } from '../../support/postgres';
import type { ClusterConfig } from './cluster-world';

/** Forks `worker.child.ts` as worker `id`; `keep` receives the child at once; resolves when it is ready. */
export function forkWorker(config: ClusterConfig, id: string, keep: (child: ChildProcess) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = fork(join(import.meta.dirname, 'worker.child.ts'), [JSON.stringify(config), id], {
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    keep(child);
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`worker ${id} exited (${code}) before it was ready`)));
  });
}

/** Closes the live workers and the web process, drops the test schema and removes `dir`. */
export async function closeCluster(
  workers: Iterable<ChildProcess>,
  web: InstanceImages | undefined,
  databaseUrl: string | null | undefined,
  schema: string,
  dir: string,
): Promise<void> {
  for (const child of workers) {
    if (child.exitCode === null && child.signalCode === null) {
      child.send('close');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  }
  await web?.close();
  const pool = new pg.Pool({ connectionString: databaseUrl ?? '', max: 1 });
  await dropSchema(pool, schema);
  await pool.end();
  rmSync(dir, { recursive: true, force: true });
}
