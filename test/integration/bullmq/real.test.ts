/**
 * Scale-out on real parts: this test process is the web process (role `web`, runs no job, and
 * its reaper waits an hour, so recoveries happen in a worker); two child processes are workers.
 * Real Redis, PostgreSQL, libvirt over sshd (two hypervisor records on this machine's libvirt,
 * two test guests each) and a local path storage. Limits are checked on the hypervisor side: a
 * sampler asks libvirt for each domain's job (`virsh domjobinfo`) and rebuilds each backup job's
 * interval from libvirt's own elapsed time.
 */
import { execFile, fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Actor, InstanceImages, InstanceImagesEvents, Task } from '../../../src';
import { createTestGuest, TEST_URI, virsh, type TestGuest } from '../../support/guests';
import { dropSchema, randomSchemaName, reachablePostgres } from '../../support/postgres';
import { reachableRedis } from '../../support/redis';
import { sshTarget } from '../exec/ssh-target';
import { freshScratchDir, leftovers, libvirtSkipReason } from '../libvirt/setup';
import { REAL_ACCOUNT, realClusterProcess, type RealClusterConfig } from './real-world';

const run = promisify(execFile);
const skip = libvirtSkipReason();
const redisUrl = await reachableRedis();
const databaseUrl = await reachablePostgres();
const ssh = await sshTarget();
const missing = skip ?? (!redisUrl ? 'Redis' : !databaseUrl ? 'PostgreSQL' : 'skip' in ssh ? ssh.skip : null);
const alice: Actor = { kind: 'customer', accountId: REAL_ACCOUNT };
const admin: Actor = { kind: 'admin', userId: 'op' };

/** One backup job as libvirt reported it: its domain, start (now − elapsed) and last time seen. */
interface JobInterval {
  domainName: string;
  start: number;
  lastSeen: number;
}

describe.skipIf(missing !== null)(
  `BullMQ on real parts: one web process, two worker processes${missing ? ` (skipped: ${missing})` : ''}`,
  () => {
    const base = freshScratchDir('bullmq-real');
    const images = join(base, 'images');
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
      minJobMs: 1_500,
    };
    const workers = new Map<string, ChildProcess>();
    const held = new Map<string, number>();
    let web: InstanceImages;
    const seen: { type: keyof InstanceImagesEvents; payload: unknown }[] = [];
    const jobs: JobInterval[] = [];
    const open = new Map<string, JobInterval>();
    let sampling = true;
    let sampler: Promise<void> = Promise.resolve();

    /** Samples every domain's libvirt job until stopped. */
    const sample = async () => {
      while (sampling) {
        for (const { domainName } of Object.values(config.instances)) {
          const { stdout } = await run('virsh', ['-c', TEST_URI, 'domjobinfo', '--domain', domainName]).catch(() => ({ stdout: '' }));
          const now = Date.now();
          const elapsed = /Time elapsed:\s+(\d+)\s*ms/.exec(stdout);
          if (!/Job type:\s+None/.test(stdout) && elapsed) {
            const start = now - Number(elapsed[1]);
            const current = open.get(domainName);
            // The same job while its start agrees (within the sampling error); else a new job.
            if (current && Math.abs(current.start - start) < 1_000) current.lastSeen = now;
            else {
              const job = { domainName, start, lastSeen: now };
              open.set(domainName, job);
              jobs.push(job);
            }
          } else open.delete(domainName);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    };
    const hypervisorOf = (domainName: string) => Object.values(config.instances).find((i) => i.domainName === domainName)!.hypervisorId;

    const startWorker = (id: string) =>
      new Promise<void>((resolve, reject) => {
        const child = fork(join(import.meta.dirname, 'real-worker.child.ts'), [JSON.stringify(config), id], {
          execArgv: ['--import', 'tsx'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        workers.set(id, child);
        child.on('message', (message: unknown) => {
          if (message === 'ready') resolve();
          else if (message && typeof message === 'object' && 'held' in message) {
            const { held: domainName, pid } = message as { held: string; pid: number };
            held.set(domainName, pid);
          }
        });
        child.once('exit', (code) => reject(new Error(`worker ${id} exited (${code}) before it was ready`)));
      });
    const until = async (taskId: string, statuses: Task['status'][]): Promise<Task> =>
      vi.waitFor(
        async () => {
          const task = await web.images.getTask(admin, taskId);
          expect(statuses).toContain(task.status);
          return task;
        },
        { timeout: 180_000, interval: 200 },
      );
    const jobOf = (domainName: string) => virsh('domjobinfo', '--domain', domainName);
    const imageFiles = () =>
      readdirSync(images, { recursive: true })
        .map(String)
        .filter((f) => /\.(qcow2|part)$/.test(f));

    beforeAll(async () => {
      for (const dir of [images, controlDir, ...Object.values(config.hypervisors)]) mkdirSync(dir, { recursive: true });
      for (const [instanceId, hypervisorId] of [
        ['a1', 'hv-a'],
        ['a2', 'hv-a'],
        ['b1', 'hv-b'],
        ['b2', 'hv-b'],
      ] as const) {
        const guest = createTestGuest({ cdrom: false, agentChannel: false });
        guests.set(instanceId, guest);
        config.instances[instanceId] = { hypervisorId, domainName: guest.name };
      }
      web = (await realClusterProcess(config, 'web', 'web-1')).ii;
      web.events.on('*', (type, payload) => seen.push({ type, payload }));
      await web.settings.setLocationSettings(admin, 'loc', { imagesEnabled: true, pricePerGbMonth: '0.05', defaultImageLimit: 50 });
      const storage = await web.storages.createStorage(admin, { name: 'local', driver: 'local', config: { path: images } });
      await web.storages.bindHypervisor(admin, storage.id, 'hv-a');
      await web.storages.bindHypervisor(admin, storage.id, 'hv-b');
      await Promise.all([startWorker('worker-a'), startWorker('worker-b')]);
      sampler = sample();
    }, 180_000);

    afterAll(async () => {
      sampling = false;
      await sampler;
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

    it('captures on two hypervisors never overlap on one (as libvirt saw them), run in the workers, progress reaches the web process', async () => {
      const created = [];
      for (const instanceId of ['a1', 'a2', 'b1', 'b2'])
        created.push(await web.images.createImage(alice, { instanceId, name: `capture ${instanceId}` }));
      for (const { task } of created) expect((await until(task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
      for (const { image } of created) expect((await web.images.getImage(alice, image.id)).status).toBe('available');

      // libvirt saw one backup job per capture, and never two at once on one hypervisor.
      const seenJobs = jobs.filter((job) => job.lastSeen > 0);
      expect(new Set(seenJobs.map((job) => job.domainName)).size).toBe(4);
      for (const a of seenJobs)
        for (const b of seenJobs)
          if (a !== b && hypervisorOf(a.domainName) === hypervisorOf(b.domainName))
            expect(a.lastSeen < b.start || b.lastSeen < a.start, JSON.stringify([a, b])).toBe(true);
      // The two hypervisors did work at the same time (the global limit is 4): the limit is per hypervisor.
      const onA = seenJobs.filter((job) => hypervisorOf(job.domainName) === 'hv-a');
      const onB = seenJobs.filter((job) => hypervisorOf(job.domainName) === 'hv-b');
      expect(onA.some((a) => onB.some((b) => a.start < b.lastSeen && b.start < a.lastSeen))).toBe(true);

      // The web process runs no job: the progress it saw came from the workers, typed.
      const ids = new Set(created.map((c) => c.task.id));
      const progress = seen
        .filter((e) => e.type === 'task.progress')
        .map((e) => (e.payload as InstanceImagesEvents['task.progress']).task)
        .filter((task) => ids.has(task.id));
      expect(new Set(progress.map((task) => task.id))).toEqual(ids);
      expect(progress.some((task) => task.status === 'running' && task.startedAt instanceof Date && task.progress.percent > 0)).toBe(true);
    });

    it('a cancel from the web process stops a capture running in a worker', async () => {
      const domainName = config.instances['a1']!.domainName;
      writeFileSync(join(controlDir, `hold-${domainName}`), '');
      const { image, task } = await web.images.createImage(alice, { instanceId: 'a1', name: 'cancelled' });
      await vi.waitFor(() => expect(held.get(domainName)).toBeDefined(), { timeout: 120_000, interval: 100 });
      expect(workers.size).toBe(2);
      expect(jobOf(domainName)).not.toMatch(/Job type:\s+None/);
      const filesBefore = imageFiles().length;
      expect((await web.images.cancelCapture(alice, image.id)).status).toBe('error');
      writeFileSync(join(controlDir, `release-${domainName}`), '');
      expect((await until(task.id, ['cancelled', 'failed', 'completed'])).status).toBe('cancelled');
      // On the hypervisor: no job; no scratch file; nothing written to the storage.
      await vi.waitFor(() => {
        expect(jobOf(domainName)).toMatch(/Job type:\s+None/);
        expect(leftovers(config.hypervisors['hv-a']!)).toEqual([]);
      });
      expect(imageFiles().length).toBe(filesBefore);
      rmSync(join(controlDir, `hold-${domainName}`));
      rmSync(join(controlDir, `release-${domainName}`));
    });

    it('a worker SIGKILLed mid-capture: another worker aborts the backup job and cleans up; the task fails INTERRUPTED, the image is Error', async () => {
      const domainName = config.instances['b1']!.domainName;
      writeFileSync(join(controlDir, `hold-${domainName}`), '');
      const { image, task } = await web.images.createImage(alice, { instanceId: 'b1', name: 'killed' });
      await vi.waitFor(() => expect(held.get(domainName)).toBeDefined(), { timeout: 120_000, interval: 100 });
      const victim = [...workers.values()].find((child) => child.pid === held.get(domainName))!;
      expect(victim).toBeDefined();
      expect(jobOf(domainName)).not.toMatch(/Job type:\s+None/);
      expect(leftovers(config.hypervisors['hv-b']!)).not.toEqual([]);
      const exited = new Promise((resolve) => victim.once('exit', resolve));
      victim.kill('SIGKILL');
      await exited;

      const ended = await until(task.id, ['failed', 'cancelled', 'completed']);
      expect(ended).toMatchObject({ status: 'failed', errorCode: 'INTERRUPTED' });
      // The same recovery pass then removes the leftover file and moves the image to Error.
      await vi.waitFor(
        async () => {
          const failed = await web.images.getImage(alice, image.id);
          expect(failed.status).toBe('error');
          expect(failed.statusReason?.code).toBe('INTERRUPTED');
        },
        { timeout: 60_000, interval: 200 },
      );
      // The hypervisor: the backup job is gone, the scratch directory empty; the storage: no part file.
      await vi.waitFor(
        () => {
          expect(jobOf(domainName)).toMatch(/Job type:\s+None/);
          expect(leftovers(config.hypervisors['hv-b']!)).toEqual([]);
        },
        { timeout: 60_000, interval: 200 },
      );
      expect(imageFiles().filter((f) => f.endsWith('.part'))).toEqual([]);
      // No usage interval open for the failed image.
      const pool = new pg.Pool({ connectionString: databaseUrl ?? '', max: 1 });
      try {
        const { rows } = await pool.query(
          `SELECT count(*)::int AS n FROM "${config.schema}".ii_usage_intervals WHERE image_id = $1 AND ends_at IS NULL`,
          [image.id],
        );
        expect(rows[0]).toEqual({ n: 0 });
      } finally {
        await pool.end();
      }
      // The surviving worker still captures on that hypervisor.
      rmSync(join(controlDir, `hold-${domainName}`));
      const next = await web.images.createImage(alice, { instanceId: 'b1', name: 'after the crash' });
      expect((await until(next.task.id, ['completed', 'failed', 'cancelled'])).status).toBe('completed');
    });
  },
);
