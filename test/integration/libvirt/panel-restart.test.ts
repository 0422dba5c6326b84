/**
 * A panel process killed (SIGKILL) mid-capture, on real libvirt (issue 13): started again, the SDK
 * itself recovers the capture, with no recover() call: the image ends in Error with INTERRUPTED and
 * the domain has no block job. The same worker recovers its own previous run at once; another
 * worker recovers it once the heartbeat lapsed (timeout + one reaper interval). Then the progress
 * of a real capture and a real deploy: steps in order, a percentage that never decreases, and a
 * completed task that shows its final bytes.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Image, InstanceImages, InstanceImagesEvents, Task } from '../../../src';
import { TASK_STEPS } from '../../../src/tasks/progress';
import { createTestGuest, virsh, type TestGuest } from '../../support/guests';
import { openPanel, panelAdmin, panelCustomer, type PanelPaths } from './panel-sdk';
import { freshScratchDir, leftovers, libvirtSkipReason, recordGuest } from './setup';

const skip = libvirtSkipReason();

/** Runs a panel process until its capture's backup job runs on the domain, then SIGKILLs it. */
async function killPanelMidCapture(paths: PanelPaths, workerId: string, configure: boolean): Promise<string> {
  const args = [
    '--import',
    'tsx',
    join(import.meta.dirname, 'panel-child.ts'),
    paths.database,
    paths.images,
    paths.scratch,
    paths.domainName,
    workerId,
    ...(configure ? ['--configure'] : []),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const imageId = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /job-started (\S+)/.exec(stdout);
      if (match) resolve(match[1]!);
    });
    child.on('exit', (code, signal) => reject(new Error(`the panel exited early (${code ?? signal}): ${stderr}`)));
  });
  // The customer's VM now has our backup job.
  expect(virsh('domjobinfo', '--domain', paths.domainName)).not.toMatch(/Job type:\s+None/);
  const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return imageId;
}

async function waitForImage(ii: InstanceImages, imageId: string, status: Image['status'], timeoutMs: number): Promise<Image> {
  return vi.waitFor(
    async () => {
      const image = await ii.images.getImage(panelAdmin, imageId);
      expect(image.status).toBe(status);
      return image;
    },
    { timeout: timeoutMs, interval: 200 },
  );
}

describe.skipIf(skip !== null)(
  `a panel killed mid-capture recovers by itself when started again${skip ? ` (skipped: ${skip})` : ''}`,
  () => {
    let guest: TestGuest;
    let base: string;
    let paths: PanelPaths;
    let panel: InstanceImages | null = null;

    beforeAll(() => {
      guest = createTestGuest();
      base = freshScratchDir('panel-restart');
      paths = { database: join(base, 'panel.db'), images: join(base, 'images'), scratch: join(base, 'scratch'), domainName: guest.name };
      freshScratchDir('panel-restart/images');
      freshScratchDir('panel-restart/scratch');
    });
    afterAll(async () => {
      await panel?.close();
      guest?.remove();
      rmSync(base, { recursive: true, force: true });
    });

    it('the same worker, started again, recovers its own interrupted capture at once (no recover() call)', async () => {
      const before = recordGuest(guest.name);
      const imageId = await killPanelMidCapture(paths, 'panel-1', true);
      // The heartbeat timeout is an hour: only knowing the task was its own can explain a recovery.
      panel = openPanel(paths, { workerId: 'panel-1', heartbeatTimeoutMs: 3_600_000 });
      const image = await waitForImage(panel, imageId, 'error', 60_000);
      expect(image.statusReason?.code).toBe('INTERRUPTED');
      const tasks = await panel.images.listTasks(panelAdmin, { subjectId: imageId });
      expect(tasks.items.map((t) => [t.status, t.errorCode])).toEqual([['failed', 'INTERRUPTED']]);
      // running, same QEMU process, same disk chain, no block job; no scratch files
      await vi.waitFor(() => before.expectUntouched() ?? expect(leftovers(paths.scratch)).toEqual([]), { timeout: 60_000, interval: 200 });
      expect(
        readdirSync(paths.images, { recursive: true }).filter((f) => String(f).endsWith('.qcow2') || String(f).endsWith('.part')),
      ).toEqual([]);
      await panel.close();
      panel = null;
    });

    it('another worker recovers a dead worker’s capture once its heartbeat lapsed (no recover() call)', async () => {
      const before = recordGuest(guest.name);
      const imageId = await killPanelMidCapture(paths, 'panel-2', false);
      panel = openPanel(paths, { workerId: 'panel-3', heartbeatTimeoutMs: 15_000, reaperIntervalMs: 500 });
      // Not before the heartbeat lapsed: the other worker may be alive.
      expect((await panel.images.getImage(panelAdmin, imageId)).status).toBe('creating');
      const image = await waitForImage(panel, imageId, 'error', 60_000);
      expect(image.statusReason?.code).toBe('INTERRUPTED');
      await vi.waitFor(() => before.expectUntouched() ?? expect(leftovers(paths.scratch)).toEqual([]), { timeout: 60_000, interval: 200 });
      await panel.close();
      panel = null;
    });

    it('a real capture and a real deploy report documented steps, a percentage that never decreases, and their final bytes', async () => {
      panel = openPanel(paths, { workerId: 'panel-1', progressIntervalMs: 0 });
      const seen = new Map<string, Task[]>();
      const record = ({ task }: { task: Task }) => seen.set(task.id, [...(seen.get(task.id) ?? []), task]);
      panel.events.on('task.progress', record);
      panel.events.on('task.finished', record);
      const { image, task } = await panel.images.createImage(panelCustomer, { instanceId: 'vm-1', name: 'progress' });
      const available = await waitForImage(panel, image.id, 'available', 240_000);
      const target = join(base, 'deployed.qcow2');
      const deployed = new Promise<InstanceImagesEvents['image.deployed']>((resolve) => panel?.events.on('image.deployed', resolve));
      const deploy = await panel.catalog.deployImage(panelAdmin, { imageId: image.id, instanceId: 'vm-1', targetPath: target });
      expect((await panel.images.waitForTask(panelAdmin, deploy.task.id)).status).toBe('completed');
      const { result } = await deployed;
      expect(existsSync(target)).toBe(true);
      await panel.idle();

      for (const [id, type, size] of [
        [task.id, 'capture', available.sizeBytes],
        [deploy.task.id, 'deploy', result.virtualSizeBytes],
      ] as const) {
        const events = seen.get(id) ?? [];
        const progress = events.map((t) => t.progress);
        console.info(`${type}: ${progress.map((p) => `${p.step} ${p.percent}% ${p.bytesDone}/${p.bytesTotal}`).join(' → ')}`);
        const steps = [...TASK_STEPS[type].map((s) => s.step), 'completed'];
        expect(
          progress.every((p) => steps.includes(p.step)),
          JSON.stringify(progress),
        ).toBe(true);
        // Steps only move forward, and the percentage never decreases.
        const order = progress.map((p) => steps.indexOf(p.step));
        expect(order).toEqual([...order].sort((a, b) => a - b));
        const percents = progress.map((p) => p.percent);
        expect(percents).toEqual([...percents].sort((a, b) => a - b));
        expect(percents.slice(0, -1).every((p) => p < 100)).toBe(true);
        expect(new Set(percents).size).toBeGreaterThan(2);
        expect(events.at(-1)).toMatchObject({
          status: 'completed',
          progress: { step: 'completed', percent: 100, bytesDone: size, bytesTotal: size },
        });
      }
    });
  },
);
