/**
 * Benchmark of the BullMQ task queue (issue 15), on the real Redis and PostgreSQL of
 * scripts/start-services.sh:
 *
 * 1. Queue overhead: enqueue-to-start latency (p50/p99) of 1,000 no-op jobs on 4 hypervisors,
 *    BullMQ (`both` role, one process) vs the in-process queue.
 * 2. Throughput of 8 captures on 2 hypervisors (per-hypervisor concurrency 1) with 1 vs 2 worker
 *    processes: the cluster test's worker processes (test/integration/bullmq/cluster-world.ts,
 *    fake hypervisors whose capture takes CAPTURE_MS) and this process as the web process.
 * 3. Crash recovery: from a worker's SIGKILL mid-capture to its task failing INTERRUPTED and its
 *    hypervisor's recovery by the other worker, against the queue's lock (stalled-job) interval
 *    (`lockDurationMs`, 2 s here) and the SDK's heartbeat timeout (`tasks.heartbeatTimeoutMs`, 3 s).
 *
 * Each figure is the median of RUNS (≥ 3) runs, BullMQ and in-process (or 1 and 2 workers)
 * alternating, with the spread (min–max). Run: `npm run bench -- queue` (RUNS=5 for more).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { createBullmqTaskQueue } from '../../adapters/bullmq';
import { createEmitter } from '../../src/events';
import { createTaskQueue, silentLogger, type Actor, type InstanceImages, type Task, type TaskQueue } from '../../src';
import { dropSchema, randomSchemaName, reachablePostgres } from '../../test/support/postgres';
import { reachableRedis } from '../../test/support/redis';
import { ACCOUNT, clusterProcess, type ClusterConfig, type HypervisorRecord } from '../../test/integration/bullmq/cluster-world';

const RUNS = Math.max(3, Number(process.env['RUNS'] ?? 3));
const JOBS = 1_000;
const CAPTURES = 8;
const CAPTURE_MS = 1_000;
const ROOT = join(import.meta.dirname, '../..');
const alice: Actor = { kind: 'customer', accountId: ACCOUNT };
const admin: Actor = { kind: 'admin', userId: 'bench' };

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))]!;
const spread = (values: number[], digits = 1) =>
  `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;

/** Latencies (ms) from enqueue to the runner's start, of JOBS no-op jobs. */
async function latencies(queue: TaskQueue): Promise<number[]> {
  const started = new Map<string, number>();
  const enqueued = new Map<string, number>();
  let done!: () => void;
  const all = new Promise<void>((resolve) => (done = resolve));
  queue.bind({
    events: createEmitter(),
    logger: silentLogger,
    run: async (job) => {
      started.set(job.taskId, performance.now());
      if (started.size === JOBS) done();
    },
  });
  for (let i = 0; i < JOBS; i++) {
    const taskId = `t-${i}`;
    enqueued.set(taskId, performance.now());
    await queue.enqueue({ taskId, type: 'chunk-verify', hypervisorId: `hv-${i % 4}` });
  }
  await all;
  await queue.close();
  return [...started].map(([id, at]) => at - enqueued.get(id)!);
}

async function overhead(redisUrl: string): Promise<void> {
  const runs: Record<'bullmq' | 'in-process', { p50: number[]; p99: number[] }> = {
    bullmq: { p50: [], p99: [] },
    'in-process': { p50: [], p99: [] },
  };
  for (let run = 0; run < RUNS; run++) {
    for (const kind of ['bullmq', 'in-process'] as const) {
      const queue =
        kind === 'bullmq'
          ? createBullmqTaskQueue({
              connection: redisUrl,
              prefix: `ii-bench-${process.pid}-${run}`,
              concurrency: 4,
              discoveryIntervalMs: 200,
            })
          : createTaskQueue({ concurrency: 4 });
      const values = await latencies(queue);
      runs[kind].p50.push(percentile(values, 0.5));
      runs[kind].p99.push(percentile(values, 0.99));
    }
  }
  for (const [kind, { p50, p99 }] of Object.entries(runs))
    console.log(`enqueue→start ${kind.padEnd(10)} p50 ${spread(p50, 2)} ms   p99 ${spread(p99, 2)} ms`);
}

/** One cluster deployment: this process as web, N worker processes. */
async function cluster(redisUrl: string, databaseUrl: string, workers: number, tag: string) {
  const dir = mkdtempSync(join(tmpdir(), 'ii-bench-queue-'));
  const config: ClusterConfig = {
    redisUrl,
    prefix: `ii-bench-${process.pid}-${tag}`,
    databaseUrl,
    schema: randomSchemaName(),
    logFile: join(dir, 'hypervisor.log'),
    captureMs: CAPTURE_MS,
    instances: CAPTURES,
  };
  writeFileSync(config.logFile, '');
  const { ii } = await clusterProcess(config, 'web', `web-${tag}`);
  await ii.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 50 });
  const storage = await ii.storages.createStorage(admin, { name: 's3', driver: 'fake-s3', config: { root: 'bucket' } });
  await ii.storages.bindHypervisor(admin, storage.id, 'hv-1');
  await ii.storages.bindHypervisor(admin, storage.id, 'hv-2');
  const children: ChildProcess[] = [];
  await Promise.all(
    Array.from(
      { length: workers },
      (_, i) =>
        new Promise<void>((resolve, reject) => {
          const child = fork(join(ROOT, 'test/integration/bullmq/worker.child.ts'), [JSON.stringify(config), `worker-${tag}-${i}`], {
            execArgv: ['--import', 'tsx'],
            stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
          });
          children.push(child);
          child.once('message', () => resolve());
          child.once('exit', (code) => reject(new Error(`a worker exited (${code})`)));
        }),
    ),
  );
  const records = () =>
    readFileSync(config.logFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as HypervisorRecord);
  const close = async () => {
    for (const child of children)
      if (child.exitCode === null && child.signalCode === null) {
        child.send('close');
        await new Promise((resolve) => child.once('exit', resolve));
      }
    await ii.close();
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
    await dropSchema(pool, config.schema);
    await pool.end();
    rmSync(dir, { recursive: true, force: true });
  };
  return { ii, children, records, close };
}

async function waitTask(ii: InstanceImages, id: string, statuses: Task['status'][]): Promise<Task> {
  for (;;) {
    const task = await ii.images.getTask(admin, id);
    if (statuses.includes(task.status)) return task;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function throughput(redisUrl: string, databaseUrl: string): Promise<void> {
  const seconds: Record<1 | 2, number[]> = { 1: [], 2: [] };
  for (let run = 0; run < RUNS; run++) {
    for (const workers of [1, 2] as const) {
      const deployment = await cluster(redisUrl, databaseUrl, workers, `tp-${run}-${workers}`);
      const start = performance.now();
      const created = [];
      for (let i = 0; i < CAPTURES; i++)
        created.push(await deployment.ii.images.createImage(alice, { instanceId: `i-${i}`, name: `bench ${i}` }));
      for (const { task } of created) await waitTask(deployment.ii, task.id, ['completed', 'failed', 'cancelled']);
      seconds[workers].push((performance.now() - start) / 1000);
      await deployment.close();
    }
  }
  const ratios = seconds[1].map((s, i) => s / seconds[2][i]!);
  console.log(`8 captures of ${CAPTURE_MS} ms on 2 hypervisors: 1 worker ${spread(seconds[1], 2)} s, 2 workers ${spread(seconds[2], 2)} s`);
  console.log(`throughput ratio 2 workers / 1 worker: ${spread(ratios, 2)} (per-hypervisor concurrency 1 bounds it at 2 running captures)`);
}

async function crash(redisUrl: string, databaseUrl: string): Promise<void> {
  const failed: number[] = [];
  const recovered: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const deployment = await cluster(redisUrl, databaseUrl, 2, `crash-${run}`);
    const { image, task } = await deployment.ii.images.createImage(alice, { instanceId: 'slow-1', name: 'killed' });
    let start: HypervisorRecord | undefined;
    while (!(start = deployment.records().find((l) => l.event === 'start' && l.domainName === 'dom-slow-1')))
      await new Promise((resolve) => setTimeout(resolve, 25));
    const victim = deployment.children.find((child) => child.pid === start!.pid)!;
    const before = deployment.records().length;
    const killedAt = performance.now();
    victim.kill('SIGKILL');
    await waitTask(deployment.ii, task.id, ['failed', 'completed', 'cancelled']);
    failed.push((performance.now() - killedAt) / 1000);
    while (
      !deployment
        .records()
        .slice(before)
        .some((l) => l.event === 'recover' && l.pid !== victim.pid)
    )
      await new Promise((resolve) => setTimeout(resolve, 25));
    recovered.push((performance.now() - killedAt) / 1000);
    if ((await deployment.ii.images.getImage(alice, image.id)).status !== 'error')
      throw new Error('the killed capture’s image is not in Error');
    await deployment.close();
  }
  console.log(`SIGKILL → task failed INTERRUPTED ${spread(failed, 2)} s; → hypervisor recovered ${spread(recovered, 2)} s`);
  console.log('  (queue lockDurationMs = stalled interval 2 s, SDK heartbeatTimeoutMs 3 s, reaper every 0.5 s; goal: < lock + 10 s)');
  if (median(recovered) > 2 + 10) process.exitCode = 1;
}

const redisUrl = await reachableRedis();
const databaseUrl = await reachablePostgres();
if (!redisUrl || !databaseUrl) {
  console.log('queue bench skipped: Redis or PostgreSQL is not running (scripts/start-services.sh)');
} else {
  console.log(`queue bench: ${RUNS} alternating runs each, median (min–max); a shared 2-core machine, other work running`);
  await overhead(redisUrl);
  await throughput(redisUrl, databaseUrl);
  await crash(redisUrl, databaseUrl);
}
