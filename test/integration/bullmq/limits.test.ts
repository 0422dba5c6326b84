/**
 * The limits hold for the whole deployment, not per process: three worker processes on one Redis
 * and one PostgreSQL, global concurrency 2 and per-hypervisor concurrency 1, 18 captures on three
 * hypervisors. Each capture records its start and end on the hypervisor side in one shared
 * append-only file (one total order of lines, written by the worker processes), and the number
 * running at once is counted from that record, not from the queue's own bookkeeping.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor, InstanceImages, Task } from '../../../src';
import { randomSchemaName, reachablePostgres } from '../../support/postgres';
import { reachableRedis } from '../../support/redis';
import { ACCOUNT, clusterProcess, type ClusterConfig, type HypervisorRecord } from './cluster-world';
import { closeCluster, forkWorker } from './processes';

const redisUrl = await reachableRedis();
const databaseUrl = await reachablePostgres();
const suite = redisUrl && databaseUrl ? describe : describe.skip;
const alice: Actor = { kind: 'customer', accountId: ACCOUNT };
const admin: Actor = { kind: 'admin', userId: 'op' };
const CAPTURES = 18;

suite('BullMQ task queue: limits across three worker processes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ii-bullmq-limits-'));
  const config: ClusterConfig = {
    redisUrl: redisUrl ?? '',
    prefix: `ii-limits-${process.pid}-${Date.now()}`,
    databaseUrl: databaseUrl ?? '',
    schema: randomSchemaName(),
    logFile: join(dir, 'hypervisor.log'),
    captureMs: 120,
    concurrency: 2,
    perHypervisorConcurrency: 1,
    hypervisors: 3,
    instances: CAPTURES,
  };
  writeFileSync(config.logFile, '');
  const workers: ChildProcess[] = [];
  let web: InstanceImages;

  const startWorker = (id: string) => forkWorker(config, id, (child) => workers.push(child));

  beforeAll(async () => {
    web = (await clusterProcess(config, 'web', 'web-1')).ii;
    await web.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 100 });
    const storage = await web.storages.createStorage(admin, { name: 's3', driver: 'fake-s3', config: { root: 'bucket' } });
    for (const hv of ['hv-1', 'hv-2', 'hv-3']) await web.storages.bindHypervisor(admin, storage.id, hv);
    await Promise.all([startWorker('worker-a'), startWorker('worker-b'), startWorker('worker-c')]);
  });

  afterAll(async () => {
    await closeCluster(workers, web, databaseUrl, config.schema, dir);
  });

  it('never more than 2 captures at once in the deployment, never 2 on one hypervisor', async () => {
    const tasks: Task[] = [];
    for (let i = 0; i < CAPTURES; i++) tasks.push((await web.images.createImage(alice, { instanceId: `i-${i}`, name: `image-${i}` })).task);
    for (const task of tasks) {
      await vi.waitFor(async () => expect((await web.images.getTask(admin, task.id)).status).toBe('completed'), {
        timeout: 90_000,
        interval: 200,
      });
    }

    const lines = readFileSync(config.logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as HypervisorRecord)
      .filter((line) => line.event === 'start' || line.event === 'end');
    expect(lines.filter((line) => line.event === 'start')).toHaveLength(CAPTURES);
    let running = 0;
    let most = 0;
    const perHypervisor = new Map<string, number>();
    const mostPer = new Map<string, number>();
    for (const line of lines) {
      const step = line.event === 'start' ? 1 : -1;
      running += step;
      most = Math.max(most, running);
      perHypervisor.set(line.hypervisorId, (perHypervisor.get(line.hypervisorId) ?? 0) + step);
      mostPer.set(line.hypervisorId, Math.max(mostPer.get(line.hypervisorId) ?? 0, perHypervisor.get(line.hypervisorId)!));
    }
    // The global limit is reached (three hypervisors could run three at once) and never exceeded.
    expect(most).toBe(2);
    expect(Object.fromEntries(mostPer)).toEqual({ 'hv-1': 1, 'hv-2': 1, 'hv-3': 1 });
    // The work ran in the worker processes, none of it in the web process. How it spreads over them
    // is BullMQ's business (no fairness is promised: one worker that polls first may take every
    // job, and did once in CI), so the limits above are what this test proves.
    const pids = new Set(lines.map((line) => line.pid));
    expect(pids.has(process.pid)).toBe(false);
    const workerPids = workers.map((worker) => worker.pid);
    for (const pid of pids) expect(workerPids).toContain(pid);
  });
});
