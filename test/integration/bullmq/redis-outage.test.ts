/**
 * Redis stopped and started again mid-run (the BullMQ task queue's engine): a web process (this
 * test) and two worker processes on real Redis and PostgreSQL, with the cluster test's recording
 * fake hypervisors. While Redis is down a create fails with a typed error and leaves nothing, the
 * capture already running finishes; once Redis is back (its dataset saved on shutdown), the job
 * queued before the outage runs. Stops the shared test Redis: run it only under the integration
 * lock, with `flock -o` (the restart starts a daemon).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InstanceImagesError, type Actor, type InstanceImages, type Task } from '../../../src';
import { randomSchemaName, reachablePostgres } from '../../support/postgres';
import { reachableRedis } from '../../support/redis';
import { ACCOUNT, clusterProcess, type ClusterConfig } from './cluster-world';
import { closeCluster, forkWorker } from './processes';
import { redisControl } from './redis-control';

const redisUrl = await reachableRedis();
const databaseUrl = await reachablePostgres();
const suite = redisUrl && databaseUrl ? describe : describe.skip;
const alice: Actor = { kind: 'customer', accountId: ACCOUNT };
const admin: Actor = { kind: 'admin', userId: 'op' };
const redis = redisControl(redisUrl ?? 'redis://127.0.0.1:6390');

suite('BullMQ task queue: Redis stopped and started again mid-run', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ii-redis-outage-'));
  const config: ClusterConfig = {
    redisUrl: redisUrl ?? '',
    prefix: `ii-outage-${process.pid}-${Date.now()}`,
    databaseUrl: databaseUrl ?? '',
    schema: randomSchemaName(),
    logFile: join(dir, 'hypervisor.log'),
    captureMs: 6_000,
    enqueueTimeoutMs: 2_000,
  };
  writeFileSync(config.logFile, '');
  const workers: ChildProcess[] = [];
  let web: InstanceImages;

  const startWorker = (id: string) => forkWorker(config, id, (child) => workers.push(child));
  const until = async (taskId: string, statuses: Task['status'][]): Promise<Task> =>
    vi.waitFor(
      async () => {
        const task = await web.images.getTask(admin, taskId);
        expect(statuses).toContain(task.status);
        return task;
      },
      { timeout: 60_000, interval: 100 },
    );
  const restartRedis = () => redis.restart({ keepDataset: true });

  beforeAll(async () => {
    web = (await clusterProcess(config, 'web', 'web-1')).ii;
    await web.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 50 });
    const storage = await web.storages.createStorage(admin, { name: 's3', driver: 'fake-s3', config: { root: 'bucket' } });
    await web.storages.bindHypervisor(admin, storage.id, 'hv-1');
    await web.storages.bindHypervisor(admin, storage.id, 'hv-2');
    await Promise.all([startWorker('worker-a'), startWorker('worker-b')]);
  });

  afterAll(async () => {
    // Redis is never left down for the suites after this one.
    restartRedis();
    await closeCluster(workers, web, databaseUrl, config.schema, dir);
  }, 120_000);

  it('creates fail typed and leave nothing while Redis is down; running work finishes; queued work runs when it is back', async () => {
    const running = await web.images.createImage(alice, { instanceId: 'i-0', name: 'running' });
    await until(running.task.id, ['running']);
    // Queued behind it on the same hypervisor (per-hypervisor concurrency 1).
    const queued = await web.images.createImage(alice, { instanceId: 'i-2', name: 'queued' });
    const before = (await web.images.listImages(alice, {})).items.length;

    // Stopped with its dataset saved (the persistence docs/operations.md asks for).
    await redis.shutdownSaving();
    try {
      const refused = await web.images.createImage(alice, { instanceId: 'i-1', name: 'during the outage' }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(InstanceImagesError);
      expect((refused as InstanceImagesError).code).toBe('INTERRUPTED');
      // Nothing left: no new image listed, no usage, no slot of the image cap held.
      const after = await web.images.listImages(alice, {});
      expect(after.items.length).toBe(before);
      expect(after.items.some((image) => image.name === 'during the outage')).toBe(false);
      const pool = new pg.Pool({ connectionString: databaseUrl ?? '', max: 1 });
      try {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM "${config.schema}".ii_usage_intervals WHERE image_id <> ALL($1::text[])`,
          [[running.image.id, queued.image.id]],
        );
        expect(rows[0]).toEqual({ n: 0 });
      } finally {
        await pool.end();
      }
      // The capture already running in a worker finishes without Redis.
      expect((await until(running.task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
      expect((await web.images.getTask(admin, queued.task.id)).status).toBe('queued');
    } finally {
      restartRedis();
    }
    // Back: the job queued before the outage runs.
    expect((await until(queued.task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
    expect((await web.images.getImage(alice, queued.image.id)).status).toBe('available');
    // And new work is accepted again.
    const later = await web.images.createImage(alice, { instanceId: 'i-1', name: 'after the outage' });
    expect((await until(later.task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
  }, 180_000);
});
