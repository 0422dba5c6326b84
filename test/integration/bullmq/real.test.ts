/**
 * Scale-out on real parts: this test process is the web process (role `web`, runs no job, and
 * its reaper waits an hour, so recoveries happen in a worker); two child processes are workers.
 * Real Redis, PostgreSQL, libvirt over sshd (two hypervisor records on this machine's libvirt,
 * two TCG test guests each, without an OS: a live capture needs a running QEMU, not a booted
 * guest) and radosgw (S3). In one run of 20 captures a worker is SIGKILLed mid-upload and Redis
 * is killed and started again (empty, as the test instance keeps no dataset). Limits are checked
 * on the hypervisor side (see hypervisor-record.ts), never from the queue's bookkeeping.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor, Image, InstanceImages, InstanceImagesEvents, Task } from '../../../src';
import { createTestGuest, virsh, type TestGuest } from '../../support/guests';
import { dropSchema, randomSchemaName, reachablePostgres } from '../../support/postgres';
import { reachableRedis } from '../../support/redis';
import { sshTarget } from '../exec/ssh-target';
import { freshScratchDir, leftovers, libvirtSkipReason } from '../libvirt/setup';
import { allObjectKeys, driverOptions, loadS3TestEnv, openMultipartUploads, useTestBucket } from '../storage-s3/s3-env';
import { HypervisorRecorder, hypervisorsWorkedAtOnce, overlapsOnOneHypervisor } from './hypervisor-record';
import { REAL_ACCOUNT, realClusterProcess, type RealClusterConfig } from './real-world';
import { redisControl } from './redis-control';

const skip = libvirtSkipReason();
const redisUrl = await reachableRedis();
const databaseUrl = await reachablePostgres();
const ssh = await sshTarget();
const s3 = await loadS3TestEnv();
const missing =
  skip ?? (!redisUrl ? 'Redis' : !databaseUrl ? 'PostgreSQL' : 'skip' in ssh ? ssh.skip : s3.env === null ? s3.missing : null);
const alice: Actor = { kind: 'customer', accountId: REAL_ACCOUNT };
const admin: Actor = { kind: 'admin', userId: 'op' };
/** The storage's key prefix in the bucket. */
const PREFIX = 'real';
const MiB = 1024 * 1024;

describe.skipIf(missing !== null)(
  `BullMQ on real parts: one web process, two worker processes${missing ? ` (skipped: ${missing})` : ''}`,
  () => {
    const bucket = useTestBucket(s3.env!, 'bullmq-real');
    const redis = redisControl(redisUrl ?? 'redis://127.0.0.1:6390');
    const base = freshScratchDir('bullmq-real');
    const controlDir = join(base, 'control');
    const guests = new Map<string, TestGuest>();
    const config: RealClusterConfig = {
      redisUrl: redisUrl ?? '',
      prefix: `ii-real-${process.pid}-${Date.now()}`,
      databaseUrl: databaseUrl ?? '',
      schema: randomSchemaName(),
      hypervisors: { 'hv-a': join(base, 'scratch-a'), 'hv-b': join(base, 'scratch-b') },
      instances: {},
      controlDir,
      minJobMs: 1_000,
      lostJobCheckIntervalMs: 1_000,
    };
    const workers = new Map<string, ChildProcess>();
    /** Domain (hold at job start) or storage key (hold mid-upload) → pid of the worker holding it. */
    const held = new Map<string, number>();
    let web: InstanceImages;
    const seen: { type: keyof InstanceImagesEvents; payload: unknown }[] = [];
    const recorder = new HypervisorRecorder(
      () => new Map(Object.values(config.instances).map((i) => [i.domainName, i.hypervisorId])),
      config.hypervisors,
    );

    const startWorker = (id: string) =>
      new Promise<void>((resolve, reject) => {
        const child = fork(join(import.meta.dirname, 'real-worker.child.ts'), [JSON.stringify(config), id], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        workers.set(id, child);
        child.on('message', (message: unknown) => {
          if (message === 'ready') resolve();
          else if (message && typeof message === 'object' && 'pid' in message) {
            const { held: domainName, heldUpload: key, pid } = message as { held?: string; heldUpload?: string; pid: number };
            held.set(domainName ?? key ?? '', pid);
          }
        });
        child.once('exit', (code) => reject(new Error(`worker ${id} exited (${code}) before it was ready`)));
      });
    const until = async (taskId: string, statuses: Task['status'][], timeout = 180_000): Promise<Task> =>
      vi.waitFor(
        async () => {
          const task = await web.images.getTask(admin, taskId);
          expect(statuses).toContain(task.status);
          return task;
        },
        { timeout, interval: 200 },
      );
    const openUsage = async (imageId: string) => {
      const pool = new pg.Pool({ connectionString: databaseUrl ?? '', max: 1 });
      try {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM "${config.schema}".ii_usage_intervals WHERE image_id = $1 AND ends_at IS NULL`,
          [imageId],
        );
        return (rows[0] as { n: number }).n;
      } finally {
        await pool.end();
      }
    };
    const uploadsOf = async (image: Image) =>
      (await openMultipartUploads(bucket.admin, bucket.bucket)).filter((u) => u.key === `${PREFIX}/${image.fileKey}`);
    const domainOf = (instanceId: string) => config.instances[instanceId]!.domainName;
    const noJobOn = (domainName: string) => expect(virsh('domjobinfo', '--domain', domainName)).toMatch(/Job type:\s+None/);

    beforeAll(async () => {
      for (const dir of [controlDir, ...Object.values(config.hypervisors)]) mkdirSync(dir, { recursive: true });
      for (const [instanceId, hypervisorId] of [
        ['a1', 'hv-a'],
        ['a2', 'hv-a'],
        ['b1', 'hv-b'],
        ['b2', 'hv-b'],
      ] as const) {
        // Tiny disks (1 MiB of data), but b1's holds 10 MiB of random bytes: its upload is a
        // multipart one (5 MiB parts), the one the crash test kills a worker in the middle of.
        const big = instanceId === 'b1';
        const guest = createTestGuest({
          cdrom: false,
          agentChannel: false,
          start: !big,
          ...(big ? { writes: [] } : { writes: ['write -P 0xab 0 1M'] }),
        });
        guests.set(instanceId, guest);
        if (big) {
          const random = join(guest.dir, 'random.raw');
          execFileSync('dd', ['if=/dev/urandom', `of=${random}`, 'bs=1M', 'count=10', 'status=none']);
          execFileSync('qemu-img', ['convert', '-n', '-f', 'raw', '-O', 'qcow2', random, guest.primaryPath]);
          rmSync(random);
          virsh('start', '--domain', guest.name);
        }
        config.instances[instanceId] = { hypervisorId, domainName: guest.name };
      }
      web = (await realClusterProcess(config, 'web', 'web-1')).ii;
      web.events.on('*', (type, payload) => seen.push({ type, payload }));
      await web.settings.setLocationSettings(admin, 'loc', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 50 });
      const storage = await web.storages.createStorage(admin, {
        name: 'radosgw',
        driver: 's3',
        config: { ...driverOptions(s3.env!, bucket.bucket, { prefix: PREFIX, partSizeBytes: 5 * MiB }) },
      });
      await web.storages.bindHypervisor(admin, storage.id, 'hv-a');
      await web.storages.bindHypervisor(admin, storage.id, 'hv-b');
      await Promise.all([startWorker('worker-a'), startWorker('worker-b')]);
      recorder.start();
    }, 180_000);

    afterAll(async () => {
      // Redis is never left down for the suites after this one.
      redis.restart();
      await recorder.stop();
      writeFileSync(join(controlDir, 'release-upload'), '');
      for (const guest of guests.values()) writeFileSync(join(controlDir, `release-${guest.name}`), '');
      for (const child of workers.values()) {
        if (child.exitCode === null && child.signalCode === null) {
          child.send('close');
          await new Promise((resolve) => child.once('exit', resolve));
        }
      }
      await web?.close();
      if (databaseUrl) {
        const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
        await dropSchema(pool, config.schema);
        await pool.end();
      }
      for (const guest of guests.values()) guest.remove();
      rmSync(base, { recursive: true, force: true });
    }, 120_000);

    it('20 captures into radosgw never overlap on a hypervisor, through a worker SIGKILLed mid-upload and Redis killed and restarted', async () => {
      // 1. Twenty captures, five per instance, queued at once; b1's first upload will wait mid-way.
      writeFileSync(join(controlDir, 'hold-upload'), '');
      const created: { instanceId: string; image: Image; task: Task }[] = [];
      for (let round = 0; round < 5; round++)
        for (const instanceId of ['a1', 'b1', 'a2', 'b2'])
          created.push({ instanceId, ...(await web.images.createImage(alice, { instanceId, name: `capture ${instanceId} #${round}` })) });

      // 2. A worker SIGKILLed while it uploads: a part stored, the multipart upload open, the capture's files on hv-b.
      const killed = created[1]!;
      expect(killed.instanceId).toBe('b1');
      await vi.waitFor(() => expect(held.get(killed.image.fileKey)).toBeDefined(), { timeout: 120_000, interval: 100 });
      const victim = [...workers.entries()].find(([, child]) => child.pid === held.get(killed.image.fileKey));
      expect(victim).toBeDefined();
      expect(await uploadsOf(killed.image)).toHaveLength(1);
      const killedRuns = recorder.openRunsOn('hv-b');
      expect(killedRuns).toHaveLength(1);
      expect(leftovers(config.hypervisors['hv-b']!)).not.toEqual([]);
      const [victimId, victimChild] = victim!;
      const killedJob = recorder.openJob(domainOf('b1'));
      const exited = new Promise((resolve) => victimChild.once('exit', resolve));
      victimChild.kill('SIGKILL');
      await exited;
      rmSync(join(controlDir, 'hold-upload'));
      // A new worker takes the dead one's place: the run goes on with two.
      workers.delete(victimId);
      await startWorker('worker-c');

      // Another worker recovers what the dead one ran (b1's capture, and hv-a's if it ran one): each
      // task fails INTERRUPTED, its image is Error INTERRUPTED, no multipart upload and no usage is
      // left; on hv-b no backup job and none of the capture's files.
      const victimsTasks = async () =>
        (await Promise.all(created.map(async (c) => ({ ...c, task: await web.images.getTask(admin, c.task.id) })))).filter(
          (c) => c.task.workerId === victimId,
        );
      // The heartbeat lapses after 30 s; recovery follows within a reaper pass on a quiet machine (about
      // 3 s after the lapse), but one loaded CI run took 66 s from the kill: the patience is generous.
      await vi.waitFor(async () => expect((await victimsTasks()).filter((c) => c.task.status === 'running')).toEqual([]), {
        timeout: 150_000,
        interval: 200,
      });
      const interrupted = (await victimsTasks()).filter((c) => c.task.status !== 'completed');
      expect(interrupted.map((c) => c.task.id)).toContain(killed.task.id);
      for (const { task } of interrupted) expect(task).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED' });
      await vi.waitFor(
        async () => {
          for (const { image } of interrupted) {
            const failed = await web.images.getImage(alice, image.id);
            expect(failed.status).toBe('error');
            expect(failed.statusReason?.code).toBe('INTERRUPTED');
            expect(await uploadsOf(image)).toEqual([]);
          }
          expect(recorder.openRunsOn('hv-b').filter((r) => killedRuns.includes(r))).toEqual([]);
          expect(killedJob === undefined || recorder.openJob(domainOf('b1')) !== killedJob).toBe(true);
        },
        { timeout: 60_000, interval: 200 },
      );
      // Retryable: each retry is queued behind the others and counts as one of the twenty.
      for (const { image } of interrupted) {
        expect(await openUsage(image.id)).toBe(0);
        const retried = await web.images.retryImage(alice, image.id);
        const at = created.findIndex((c) => c.image.id === image.id);
        created[at] = { instanceId: created[at]!.instanceId, ...retried };
      }

      // 3. Redis killed mid-run (the test instance keeps no dataset) while captures run in the workers.
      const runningNow = async () =>
        (await Promise.all(created.map(async (c) => web.images.getTask(admin, c.task.id)))).filter((t) => t.status === 'running');
      await vi.waitFor(async () => expect((await runningNow()).length).toBeGreaterThan(0), { timeout: 60_000, interval: 100 });
      const running = await runningNow();
      await redis.kill();
      // Tasks running while Redis is down publish their progress into the void (pub/sub is at most
      // once): one that had just started may have published none before the kill.
      const ranInOutage = new Set([...running, ...(await runningNow())].map((t) => t.id));
      try {
        // The captures that were running finish without Redis.
        for (const task of running) expect((await until(task.id, ['completed', 'failed', 'cancelled'], 60_000)).status).toBe('completed');
        expect(redis.up()).toBe(false);
      } finally {
        redis.restart();
      }

      // 4. Back (empty): the queued work continues, and all twenty end Available.
      for (const { task } of created) expect((await until(task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
      for (const { image } of created) expect((await web.images.getImage(alice, image.id)).status).toBe('available');
      expect(new Set((await allObjectKeys(bucket.admin, bucket.bucket)).filter((k) => k.startsWith(`${PREFIX}/`))).size).toBe(20);
      expect(await openMultipartUploads(bucket.admin, bucket.bucket)).toEqual([]);
      for (const instanceId of ['a1', 'a2', 'b1', 'b2']) noJobOn(domainOf(instanceId));
      for (const dir of Object.values(config.hypervisors)) expect(leftovers(dir)).toEqual([]);

      // On each hypervisor, as libvirt and the scratch directories saw it: one capture at a time
      // and the two hypervisors worked at once. A killed run lasts until the recovery removed its
      // backup job and scratch files: the next capture there started only after that.
      const { jobs, runs } = recorder;
      expect(runs.length).toBeGreaterThanOrEqual(21);
      expect(new Set(jobs.map((j) => j.what)).size).toBe(4);
      expect(overlapsOnOneHypervisor(jobs)).toEqual([]);
      expect(overlapsOnOneHypervisor(runs)).toEqual([]);
      expect(hypervisorsWorkedAtOnce(runs, 'hv-a', 'hv-b')).toBe(true);

      // The web process runs no job: the progress it saw came from the workers, typed. Every task
      // that did not run through the outage reached it.
      const ids = new Set(created.map((c) => c.task.id));
      const progress = seen
        .filter((e) => e.type === 'task.progress')
        .map((e) => (e.payload as InstanceImagesEvents['task.progress']).task)
        .filter((task) => ids.has(task.id));
      const reached = new Set(progress.map((task) => task.id));
      expect([...ids].filter((id) => !ranInOutage.has(id) && !reached.has(id))).toEqual([]);
      expect(ranInOutage.size).toBeLessThan(ids.size);
      expect(progress.some((task) => task.status === 'running' && task.startedAt instanceof Date && task.progress.percent > 0)).toBe(true);
    }, 420_000);

    it('a cancel from the web process stops a capture running in a worker', async () => {
      const domainName = domainOf('a1');
      writeFileSync(join(controlDir, `hold-${domainName}`), '');
      const { image, task } = await web.images.createImage(alice, { instanceId: 'a1', name: 'cancelled' });
      await vi.waitFor(() => expect(held.get(domainName)).toBeDefined(), { timeout: 120_000, interval: 100 });
      expect(workers.size).toBe(2);
      expect(virsh('domjobinfo', '--domain', domainName)).not.toMatch(/Job type:\s+None/);
      const objectsBefore = await allObjectKeys(bucket.admin, bucket.bucket);
      expect((await web.images.cancelCapture(alice, image.id)).status).toBe('error');
      writeFileSync(join(controlDir, `release-${domainName}`), '');
      expect((await until(task.id, ['cancelled', 'failed', 'completed'])).status).toBe('cancelled');
      // On the hypervisor: no job; no scratch file; nothing written to the storage.
      await vi.waitFor(
        () => {
          noJobOn(domainName);
          expect(leftovers(config.hypervisors['hv-a']!)).toEqual([]);
        },
        { timeout: 30_000, interval: 100 },
      );
      expect(await allObjectKeys(bucket.admin, bucket.bucket)).toEqual(objectsBefore);
      expect(await openMultipartUploads(bucket.admin, bucket.bucket)).toEqual([]);
      rmSync(join(controlDir, `hold-${domainName}`));
      rmSync(join(controlDir, `release-${domainName}`));
    });
  },
);
