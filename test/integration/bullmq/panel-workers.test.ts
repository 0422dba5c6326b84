/**
 * The example panel's `--workers N` mode on real parts: the panel (started here, as the browser
 * tests do) only enqueues, and two forked worker processes run the work over BullMQ on the real
 * Redis, sharing the panel's SQLite file; libvirt on this machine captures a running test guest.
 * The capture runs in a worker process, not in the panel's, and its progress reaches the panel's
 * Server-Sent Events stream (the queue's events bridge). And `npm run demo -- --workers 2`: the
 * tour's capture runs in a worker process.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_HYPERVISOR, DEMO_LOCATION, startPanel, type Panel } from '../../../examples/express-panel/panel';
import { createTestGuest, uniqueSuffix, type TestGuest } from '../../support/guests';
import { reachableRedis } from '../../support/redis';
import { libvirtSkipReason } from '../libvirt/setup';

const redisUrl = await reachableRedis();
const missing = libvirtSkipReason() ?? (redisUrl ? null : 'Redis is not reachable');
const ACCOUNT = 'acct-workers';
const headers = { 'x-account': ACCOUNT, 'content-type': 'application/json' };

interface TaskFrame {
  event: string;
  task: { id: string; status: string; workerId: string | null; progress: { percent: number } };
}

/** Reads a task's event stream until `task.finished`; returns every frame. */
async function followTask(panel: Panel, taskId: string): Promise<TaskFrame[]> {
  const res = await fetch(`${panel.url}/api/tasks/${encodeURIComponent(taskId)}/events`, { headers });
  expect(res.status).toBe(200);
  const frames: TaskFrame[] = [];
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let split: number;
    while ((split = buffer.indexOf('\n\n')) >= 0) {
      const message = buffer.slice(0, split);
      buffer = buffer.slice(split + 2);
      const event = /^event: (.*)$/m.exec(message)?.[1];
      const data = /^data: (.*)$/m.exec(message)?.[1];
      if (!event || !data) continue;
      frames.push({ event, task: JSON.parse(data) as TaskFrame['task'] });
      if (event === 'task.finished') return frames;
    }
  }
  throw new Error('the task event stream ended before task.finished');
}

describe.skipIf(missing !== null)(`the example panel with --workers 2${missing ? ` (skipped: ${missing})` : ''}`, () => {
  const dataDir = `/var/tmp/instance-images-test/panel-workers-${uniqueSuffix()}`;
  let guest: TestGuest;
  let panel: Panel;

  beforeAll(async () => {
    guest = createTestGuest({ diskMiB: 64, cdrom: false });
    panel = await startPanel({
      dataDir,
      workers: 2,
      redisUrl: redisUrl ?? '',
      instances: [
        {
          id: 'vm-web',
          name: 'web-1',
          accountId: ACCOUNT,
          locationId: DEMO_LOCATION,
          hypervisorId: DEMO_HYPERVISOR,
          domainName: guest.name,
        },
      ],
    });
  }, 120_000);

  afterAll(async () => {
    await panel?.close();
    guest?.remove();
    rmSync(dataDir, { recursive: true, force: true });
  }, 120_000);

  it('captures the guest in a worker process; its progress reaches the panel’s event stream', async () => {
    expect(panel.workerPids).toHaveLength(2);
    expect(panel.workerPids).not.toContain(process.pid);
    const res = await fetch(`${panel.url}/api/images`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ instanceId: 'vm-web', name: 'captured by a worker' }),
    });
    expect(res.status).toBe(202);
    const { image, task } = (await res.json()) as { image: { id: string }; task: { id: string } };

    const frames = await followTask(panel, task.id);
    const finished = frames.at(-1)!;
    expect(finished.task).toMatchObject({ status: 'completed', workerId: expect.stringMatching(/^panel-worker-[12]$/) });
    // Progress emitted in the worker, re-emitted in the panel process by the events bridge.
    const progress = frames.filter((f) => f.event === 'task.progress');
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.every((f) => f.task.workerId === finished.task.workerId)).toBe(true);
    // The shared repositories say the same: a worker ran it, not the panel process (`panel-web`).
    const stored = await panel.sdk.images.getTask({ kind: 'admin', userId: 'op' }, task.id);
    expect(stored.workerId).toBe(finished.task.workerId);
    expect(stored.workerId).not.toBe('panel-web');

    const listed = await fetch(`${panel.url}/api/images/${image.id}`, { headers });
    expect(((await listed.json()) as { status: string }).status).toBe('available');
  }, 240_000);

  it('npm run demo -- --workers 2 runs the tour with its work in worker processes', () => {
    const result = spawnSync('npm', ['run', 'demo', '--', '--once', '--no-install', '--workers', '2'], {
      encoding: 'utf8',
      timeout: 280_000,
      env: { ...process.env, REDIS_URL: redisUrl ?? '' },
    });
    const output = `${result.stdout}\n${result.stderr}`;
    expect(result.status, output).toBe(0);
    expect(output).toMatch(/2 worker processes run the work \(pids \d+, \d+\); this one only enqueues/);
    expect(output).toMatch(/100%/);
    expect(output).toMatch(/captured by panel-worker-[12]\b/);
    expect(output).toMatch(/production-web-server-v2 .* available/);
  }, 300_000);
});
