/**
 * Scale-out on real Redis and PostgreSQL: this test process is the web process (enqueue only);
 * two child processes are workers. The hypervisor side records (one shared append-only file)
 * when captures start and end, so limits are checked on what the hypervisors saw.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor, InstanceImages, InstanceImagesEvents, Task } from '../../../src';
import { randomSchemaName, reachablePostgres } from '../../support/postgres';
import { reachableRedis } from '../../support/redis';
import { ACCOUNT, clusterProcess, type ClusterConfig, type HypervisorRecord } from './cluster-world';
import { closeCluster, forkWorker } from './processes';

const redisUrl = await reachableRedis();
const databaseUrl = await reachablePostgres();
const suite = redisUrl && databaseUrl ? describe : describe.skip;
const alice: Actor = { kind: 'customer', accountId: ACCOUNT };
const admin: Actor = { kind: 'admin', userId: 'op' };

suite('BullMQ task queue: one web process, two worker processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ii-bullmq-'));
  const config: ClusterConfig = {
    redisUrl: redisUrl ?? '',
    prefix: `ii-test-${process.pid}-${Date.now()}`,
    databaseUrl: databaseUrl ?? '',
    schema: randomSchemaName(),
    logFile: join(dir, 'hypervisor.log'),
    captureMs: 150,
  };
  writeFileSync(config.logFile, '');
  const workers = new Map<string, ChildProcess>();
  let web: InstanceImages;
  const seen: { type: keyof InstanceImagesEvents; payload: unknown }[] = [];

  const startWorker = (id: string) => forkWorker(config, id, (child) => workers.set(id, child));
  const records = (): HypervisorRecord[] =>
    readFileSync(config.logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as HypervisorRecord);
  const taskOf = async (id: string): Promise<Task> => web.images.getTask(admin, id);
  const until = async (taskId: string, statuses: Task['status'][]): Promise<Task> => {
    let task: Task | null = null;
    await vi.waitFor(
      async () => {
        task = await taskOf(taskId);
        expect(statuses).toContain(task.status);
      },
      { timeout: 60_000, interval: 100 },
    );
    return task as unknown as Task;
  };

  beforeAll(async () => {
    web = (await clusterProcess(config, 'web', 'web-1')).ii;
    web.events.on('*', (type, payload) => seen.push({ type, payload }));
    await web.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 50 });
    const storage = await web.storages.createStorage(admin, { name: 's3', driver: 'fake-s3', config: { root: 'bucket' } });
    await web.storages.bindHypervisor(admin, storage.id, 'hv-1');
    await web.storages.bindHypervisor(admin, storage.id, 'hv-2');
    await Promise.all([startWorker('worker-a'), startWorker('worker-b')]);
  });

  afterAll(async () => {
    await closeCluster(workers.values(), web, databaseUrl, config.schema, dir);
  });

  it('captures never overlap on a hypervisor, across both workers; events reach the web process; handleOnce runs once', async () => {
    const created: Awaited<ReturnType<InstanceImages['images']['createImage']>>[] = [];
    for (let i = 0; i < 10; i++) created.push(await web.images.createImage(alice, { instanceId: `i-${i}`, name: `image-${i}` }));
    for (const { task } of created) expect((await until(task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
    for (const { image } of created) expect((await web.images.getImage(alice, image.id)).status).toBe('available');

    // The hypervisor side: per hypervisor, never two captures at once (in the file's total order).
    const lines = records();
    const open = new Map<string, number>();
    const most = new Map<string, number>();
    for (const line of lines.filter((l) => l.event === 'start' || l.event === 'end')) {
      const now = (open.get(line.hypervisorId) ?? 0) + (line.event === 'start' ? 1 : -1);
      open.set(line.hypervisorId, now);
      most.set(line.hypervisorId, Math.max(most.get(line.hypervisorId) ?? 0, now));
    }
    expect(Object.fromEntries(most)).toEqual({ 'hv-1': 1, 'hv-2': 1 });
    // The work ran in the workers, not here.
    expect(lines.filter((l) => l.event === 'start').every((l) => l.pid !== process.pid)).toBe(true);

    // Events emitted in the workers reached this process, typed (dates are Dates).
    await vi.waitFor(() => {
      const available = seen
        .filter((e) => e.type === 'image.available')
        .map((e) => (e.payload as InstanceImagesEvents['image.available']).image);
      expect(available.map((image) => image.id).sort()).toEqual(created.map((c) => c.image.id).sort());
      expect(available.every((image) => image.availableAt instanceof Date)).toBe(true);
    });
    const progress = seen.filter((e) => e.type === 'task.progress').map((e) => (e.payload as InstanceImagesEvents['task.progress']).task);
    expect(progress.some((task) => task.status === 'running' && task.startedAt instanceof Date)).toBe(true);

    // handleOnce: each image.available handled by exactly one of the three processes.
    await vi.waitFor(() => {
      const once = records()
        .filter((l) => l.event === 'once')
        .map((l) => l.domainName);
      expect(once.sort()).toEqual(created.map((c) => c.image.id).sort());
    });
  });

  it('a cancel from the web process stops the capture running in a worker', async () => {
    const { image, task } = await web.images.createImage(alice, { instanceId: 'slow-1', name: 'slow' });
    await until(task.id, ['running']);
    await vi.waitFor(() => expect(records().some((l) => l.event === 'start' && l.domainName === 'dom-slow-1')).toBe(true));
    const cancelled = await web.images.cancelCapture(alice, image.id);
    expect(cancelled.status).toBe('error');
    expect((await until(task.id, ['cancelled', 'failed', 'completed'])).status).toBe('cancelled');
    // The worker's capture saw the abort (the hypervisor side), in a worker process.
    const abort = records().find((l) => l.event === 'abort' && l.domainName === 'dom-slow-1');
    expect(abort?.pid).not.toBe(process.pid);
    expect(abort?.pid).toBeDefined();
  });

  it('Redis lost the data of a running capture: the next capture on its hypervisor starts there only once it ended', async () => {
    const redis = new Redis(redisUrl ?? '');
    try {
      const before = records().length;
      const since = () => records().slice(before);
      const slow = await web.images.createImage(alice, { instanceId: 'slow-1', name: 'runs through the data loss' });
      await vi.waitFor(() => expect(since().some((l) => l.event === 'start' && l.domainName === 'dom-slow-1')).toBe(true));

      // The deployment's keys vanish (as in a Redis restarted without persistence): BullMQ no
      // longer counts the running capture on hv-1.
      const keys = await redis.keys(`${config.prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      const next = await web.images.createImage(alice, { instanceId: 'i-0', name: 'after the data loss' });
      // The other worker takes its job, but the task waits, queued: the repositories show slow-1 running on hv-1.
      const active = async () => {
        for (const list of await redis.keys(`${config.prefix}:bull:*:active`))
          if ((await redis.lrange(list, 0, -1)).includes(`task-${next.task.id}`)) return true;
        return false;
      };
      await vi.waitFor(async () => expect(await active()).toBe(true), { timeout: 10_000, interval: 50 });
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      expect(since().filter((l) => l.domainName === 'dom-i-0')).toEqual([]);
      expect((await taskOf(next.task.id)).status).toBe('queued');

      await web.images.cancelCapture(alice, slow.image.id);
      expect((await until(slow.task.id, ['failed', 'completed', 'cancelled'])).status).toBe('cancelled');
      expect((await until(next.task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
      // On the hypervisor side, in the record's total order: slow-1 ended before i-0 started.
      const lines = since();
      const slowEnd = lines.findIndex((l) => l.event === 'end' && l.domainName === 'dom-slow-1');
      const nextStart = lines.findIndex((l) => l.event === 'start' && l.domainName === 'dom-i-0');
      expect(slowEnd).toBeGreaterThanOrEqual(0);
      expect(nextStart).toBeGreaterThan(slowEnd);
    } finally {
      redis.disconnect();
    }
  });

  it('a worker killed mid-capture: its task ends INTERRUPTED and the hypervisor is recovered by another process', async () => {
    const { image, task } = await web.images.createImage(alice, { instanceId: 'slow-2', name: 'killed' });
    await until(task.id, ['running']);
    let start: HypervisorRecord | undefined;
    await vi.waitFor(() => {
      start = records().find((l) => l.event === 'start' && l.domainName === 'dom-slow-2');
      expect(start).toBeDefined();
    });
    const victim = [...workers.values()].find((child) => child.pid === start!.pid)!;
    expect(victim).toBeDefined();
    const before = records().length;
    victim.kill('SIGKILL');
    await new Promise((resolve) => victim.once('exit', resolve));

    const ended = await until(task.id, ['failed', 'cancelled', 'completed']);
    expect(ended).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED' });
    // Recovery removes the leftovers, then fails the task and moves the image to error in one
    // transaction: the moment the task reads failed, the image reads error (no waiting).
    const failed = await web.images.getImage(alice, image.id);
    expect(failed.status).toBe('error');
    expect(failed.statusReason?.code).toBe('INTERRUPTED');
    await vi.waitFor(() => {
      const recovered = records()
        .slice(before)
        .filter((l) => l.event === 'recover' && l.hypervisorId === 'hv-1');
      expect(recovered.length).toBeGreaterThan(0);
      expect(recovered.every((l) => l.pid !== victim.pid)).toBe(true);
    });

    // The surviving worker still runs new work on that hypervisor.
    const next = await web.images.createImage(alice, { instanceId: 'i-0', name: 'after the crash' });
    expect((await until(next.task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
  });
});
