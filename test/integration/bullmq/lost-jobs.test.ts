/**
 * Jobs BullMQ lost while their tasks were queued, on real Redis and PostgreSQL: the web process
 * (this test) keeps its queued tasks alive by their heartbeat, so their jobs must be stored again
 * or the tasks would stay `queued` for as long as it runs. Two ways to lose a job: Redis loses its
 * data (FLUSHDB of the suite's own Redis database, as a restart without persistence does) while no
 * worker runs; a worker is SIGKILLed while the job it took waits for a global slot (BullMQ fails
 * the stalled job before its task started). Both end with each task run once, by a worker.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor, InstanceImages, Task } from '../../../src';
import { randomSchemaName, reachablePostgres } from '../../support/postgres';
import { reachableRedis } from '../../support/redis';
import { ACCOUNT, clusterProcess, type ClusterConfig, type HypervisorRecord } from './cluster-world';
import { closeCluster, forkWorker } from './processes';

const reachable = await reachableRedis();
const databaseUrl = await reachablePostgres();
const suite = reachable && databaseUrl ? describe : describe.skip;
const alice: Actor = { kind: 'customer', accountId: ACCOUNT };
const admin: Actor = { kind: 'admin', userId: 'op' };
/** The queue's `lostJobCheckIntervalMs` here: a lost job is stored again within a few of these. */
const CHECK_MS = 300;
/** The suite's own Redis database, flushed by the test (no other suite uses it). */
const redisUrl = (() => {
  const url = new URL(reachable ?? 'redis://127.0.0.1:6390');
  url.pathname = '/9';
  return url.toString();
})();

suite('BullMQ task queue: jobs lost while their tasks are queued are stored again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ii-lost-jobs-'));
  const config: ClusterConfig = {
    redisUrl,
    prefix: `ii-lost-${process.pid}-${Date.now()}`,
    databaseUrl: databaseUrl ?? '',
    schema: randomSchemaName(),
    logFile: join(dir, 'hypervisor.log'),
    captureMs: 300,
    // One capture at a time in the deployment: a job taken by a worker waits for the global slot.
    concurrency: 1,
    lostJobCheckIntervalMs: CHECK_MS,
  };
  writeFileSync(config.logFile, '');
  const workers = new Map<string, ChildProcess>();
  let web: InstanceImages;
  let redis: Redis;

  const startWorker = (id: string) => forkWorker(config, id, (child) => workers.set(id, child));
  const stopWorker = async (id: string) => {
    const child = workers.get(id);
    workers.delete(id);
    child?.send('close');
    if (child) await new Promise((resolve) => child.once('exit', resolve));
  };
  const starts = (domainName: string) =>
    readFileSync(config.logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as HypervisorRecord)
      .filter((line) => line.event === 'start' && line.domainName === domainName);
  const until = async (taskId: string, statuses: Task['status'][]): Promise<Task> =>
    vi.waitFor(
      async () => {
        const task = await web.images.getTask(admin, taskId);
        expect(statuses).toContain(task.status);
        return task;
      },
      { timeout: 60_000, interval: 100 },
    );
  /** The BullMQ job records (`<prefix>:bull:<queue>:task-<id>`) Redis holds for these tasks. */
  const storedJobs = async (taskIds: string[]): Promise<string[]> => {
    const keys = await redis.keys(`${config.prefix}:bull:*:task-*`);
    return taskIds.filter((id) => keys.some((key) => key.endsWith(`:task-${id}`)));
  };
  /** Whether a job of this task is active (taken by a worker) in BullMQ. */
  const active = async (taskId: string): Promise<boolean> => {
    for (const list of await redis.keys(`${config.prefix}:bull:*:active`))
      if ((await redis.lrange(list, 0, -1)).includes(`task-${taskId}`)) return true;
    return false;
  };

  beforeAll(async () => {
    redis = new Redis(redisUrl);
    web = (await clusterProcess(config, 'web', 'web-1')).ii;
    await web.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 50 });
    const storage = await web.storages.createStorage(admin, { name: 's3', driver: 'fake-s3', config: { root: 'bucket' } });
    await web.storages.bindHypervisor(admin, storage.id, 'hv-1');
    await web.storages.bindHypervisor(admin, storage.id, 'hv-2');
  });

  afterAll(async () => {
    await closeCluster(workers.values(), web, databaseUrl, config.schema, dir);
    await redis?.flushdb();
    redis?.disconnect();
  }, 120_000);

  it('Redis lost its data while no worker ran: the jobs are stored again, and a worker runs each task once', async () => {
    const created = await Promise.all(
      ['i-0', 'i-1', 'i-2'].map((instanceId) => web.images.createImage(alice, { instanceId, name: `before the flush ${instanceId}` })),
    );
    const taskIds = created.map(({ task }) => task.id);
    expect(await storedJobs(taskIds)).toEqual(taskIds);

    await redis.flushdb();
    expect(await storedJobs(taskIds)).toEqual([]);
    // Stored again by the web process that queued them, within a few check intervals.
    await vi.waitFor(async () => expect(await storedJobs(taskIds)).toEqual(taskIds), { timeout: 20 * CHECK_MS, interval: 50 });
    for (const id of taskIds) expect((await web.images.getTask(admin, id)).status).toBe('queued');

    await startWorker('worker-a');
    for (const { task, image } of created) {
      expect(await until(task.id, ['completed', 'failed', 'cancelled'])).toMatchObject({ status: 'completed', workerId: 'worker-a' });
      expect((await web.images.getImage(alice, image.id)).status).toBe('available');
    }
    for (const instanceId of ['i-0', 'i-1', 'i-2']) expect(starts(`dom-${instanceId}`)).toHaveLength(1);
    await stopWorker('worker-a');
  });

  it('a worker died while the job it took waited for a global slot: the job is stored again and runs once', async () => {
    await startWorker('worker-b');
    const slow = await web.images.createImage(alice, { instanceId: 'slow-1', name: 'holds the only slot' });
    await until(slow.task.id, ['running']);
    const waiting = await web.images.createImage(alice, { instanceId: 'i-3', name: 'waits for the slot' });
    // worker-b took it (BullMQ: active) and waits for the deployment's only slot; the task is queued.
    await vi.waitFor(async () => expect(await active(waiting.task.id)).toBe(true), { timeout: 10_000, interval: 50 });
    expect((await web.images.getTask(admin, waiting.task.id)).status).toBe('queued');

    const victim = workers.get('worker-b')!;
    workers.delete('worker-b');
    victim.kill('SIGKILL');
    await new Promise((resolve) => victim.once('exit', resolve));
    await startWorker('worker-c');

    // BullMQ fails both stalled jobs; the reaper fails the capture that was running; the task that
    // never started runs in worker-c, once.
    expect(await until(slow.task.id, ['failed', 'completed', 'cancelled'])).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED' });
    expect(await until(waiting.task.id, ['completed', 'failed', 'cancelled'])).toMatchObject({
      status: 'completed',
      workerId: 'worker-c',
    });
    expect((await web.images.getImage(alice, waiting.image.id)).status).toBe('available');
    expect(starts('dom-i-3')).toHaveLength(1);
  });
});
