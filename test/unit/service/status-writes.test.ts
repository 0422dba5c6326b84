/**
 * Every image status a service writes follows the lifecycle table of the image's kind and comes
 * through the one transition function. The services run their flows on repositories that record
 * each status write; a write outside the table, outside `tryTransitionImage`, through
 * `images.update`, or a table row no flow walks, fails the test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { IMAGE_LIFECYCLE, INITIAL_IMAGE_STATUS, IMAGE_STATUSES, TASK_STATUSES, TASK_TRANSITIONS } from '../../../src/lifecycle';
import { createMemoryRepositories } from '../../../src/memory';
import type { Image, ImageKind, ImageStatus } from '../../../src/model/image';
import type { TaskStatus } from '../../../src/model/task';
import type { Repositories } from '../../../src/ports/repositories';
import { makeImage, makeTask } from '../../../src/testing';
import { admin, alice, setup, type Harness } from './setup';

type StatusWrite = { op: 'insert' | 'transition'; kind: ImageKind; from: ImageStatus | null; to: ImageStatus };

/** Repositories whose image status writes are recorded (and checked) on the way through. */
function recording(inner: Repositories) {
  const writes: StatusWrite[] = [];
  const violations: string[] = [];
  const images: Repositories['images'] = Object.create(inner.images) as Repositories['images'];
  const insert = (image: Image) => {
    writes.push({ op: 'insert', kind: image.kind, from: null, to: image.status });
    if (image.status !== INITIAL_IMAGE_STATUS[image.kind]) violations.push(`a ${image.kind} image inserted as ${image.status}`);
  };
  images.insert = async (image) => {
    insert(image);
    return inner.images.insert(image);
  };
  images.insertIfUnderLimit = async (image, limit) => {
    insert(image);
    return inner.images.insertIfUnderLimit(image, limit);
  };
  images.update = async (id, patch, now) => {
    if ('status' in patch) violations.push(`images.update wrote a status (${String((patch as { status: unknown }).status)})`);
    return inner.images.update(id, patch, now);
  };
  images.transition = async (id, from, to, patch, now, events, options) => {
    const current = await inner.images.get(id);
    const kind = current?.kind ?? 'custom';
    const stack = new Error('status write').stack ?? '';
    // A compare-and-set that keeps the status (protection) changes no status: only its caller is checked.
    const keeps = from.length === 1 && from[0] === to;
    if (keeps && !stack.includes('changeImageAtStatus')) violations.push(`images.transition(${to} -> ${to}) outside changeImageAtStatus`);
    if (!keeps && !stack.includes('tryTransitionImage'))
      violations.push(`images.transition(${from.join('|')} -> ${to}) outside tryTransitionImage`);
    if (from.length !== 1) violations.push(`images.transition from ${from.join('|')}: not a compare-and-set of the previous status`);
    for (const status of keeps ? [] : from) {
      if (!IMAGE_LIFECYCLE[kind][status].includes(to)) violations.push(`${kind} ${status} -> ${to} is not in the lifecycle table`);
    }
    const updated = await inner.images.transition(id, from, to, patch, now, events, options);
    if (updated && !keeps) writes.push({ op: 'transition', kind, from: from[0] ?? null, to });
    return updated;
  };
  const taskWrites = new Set<string>();
  const tasks: Repositories['tasks'] = Object.create(inner.tasks) as Repositories['tasks'];
  tasks.insert = async (task, events) => {
    if (task.status !== 'queued') violations.push(`a task inserted as ${task.status}`);
    return inner.tasks.insert(task, events);
  };
  tasks.update = async (id, patch, now) => {
    if ('status' in patch) violations.push(`tasks.update wrote a status (${String((patch as { status: unknown }).status)})`);
    return inner.tasks.update(id, patch, now);
  };
  tasks.transition = async (id, from, to, patch, now, events) => {
    const stack = new Error('status write').stack ?? '';
    if (!stack.includes('transitionTask')) violations.push(`tasks.transition(${from.join('|')} -> ${to}) outside transitionTask`);
    for (const status of from) {
      if (!TASK_TRANSITIONS[status].includes(to)) violations.push(`task ${status} -> ${to} is not in the task table`);
    }
    const before = await inner.tasks.get(id);
    const updated = await inner.tasks.transition(id, from, to, patch, now, events);
    if (updated && before) taskWrites.add(`${before.status} -> ${to}`);
    return updated;
  };
  // A task's end with its image's move (one write) obeys both tables, and only endTaskWithImage makes it.
  tasks.transitionWithImage = async (task, image, now) => {
    const stack = new Error('status write').stack ?? '';
    if (!stack.includes('endTaskWithImage')) violations.push(`tasks.transitionWithImage(${task.to}, ${image.to}) outside endTaskWithImage`);
    for (const status of task.from) {
      if (!TASK_TRANSITIONS[status].includes(task.to)) violations.push(`task ${status} -> ${task.to} is not in the task table`);
    }
    const current = await inner.images.get(image.id);
    const kind = current?.kind ?? 'custom';
    if (image.from.length !== 1) violations.push(`image move from ${image.from.join('|')}: not a compare-and-set of the previous status`);
    for (const status of image.from) {
      if (!IMAGE_LIFECYCLE[kind][status].includes(image.to))
        violations.push(`${kind} ${status} -> ${image.to} is not in the lifecycle table`);
    }
    const before = await inner.tasks.get(task.id);
    const done = await inner.tasks.transitionWithImage!(task, image, now);
    if (done && before) taskWrites.add(`${before.status} -> ${task.to}`);
    if (done?.image) writes.push({ op: 'transition', kind, from: image.from[0] ?? null, to: image.to });
    return done;
  };
  return { repos: { ...inner, images, tasks } as Repositories, writes, taskWrites, violations };
}

async function withTemplates(h: Harness) {
  const templates = await h.ii.storages.createStorage(admin, {
    name: 'templates',
    driver: 'fake-s3',
    purpose: 'templates',
    config: { root: 'tpl' },
  });
  h.world.files.set('tpl:os/debian-12.qcow2', { bytes: Buffer.from('debian 12 qcow2 bytes'), modifiedAt: new Date() });
  return templates;
}

/** An image and its task as a crashed process left them: the task running with an old heartbeat. */
async function crashed(inner: Repositories, image: Image, type: 'capture' | 'delete') {
  await inner.images.insert(image);
  await inner.tasks.insert(
    makeTask({ type, subjectId: image.id, status: 'running', heartbeatAt: new Date('2026-11-01T00:00:00Z'), accountId: image.accountId }),
  );
}

describe('every image status change goes through the lifecycle table and the transition function', () => {
  it('walks every service path that changes a status', async () => {
    const inner = createMemoryRepositories();
    const { repos, writes, taskWrites, violations } = recording(inner);
    const h = await setup({ repositories: repos });

    // Custom: capture (creating -> available), failed capture and retry, cancel.
    const ok = (await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'ok' })).image;
    await h.ii.idle();
    h.world.failNextCapture = 'CAPTURE_FAILED';
    const failed = (await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'failed' })).image;
    await h.ii.idle();
    await h.ii.images.retryImage(alice, failed.id);
    await h.ii.idle();
    let open!: () => void;
    h.world.captureGate = new Promise<void>((resolve) => (open = resolve));
    const cancelled = (await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'cancelled' })).image;
    // A second capture on the same hypervisor waits (its queued heartbeat beats), then is cancelled before it runs.
    const waiting = (await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'waiting' })).image;
    await vi.waitFor(() => expect(taskWrites.has('queued -> queued')).toBe(true), { timeout: 15_000 });
    await h.ii.images.cancelCapture(alice, waiting.id);
    await h.ii.images.cancelCapture(alice, cancelled.id);
    open();
    h.world.captureGate = null;
    await h.ii.idle();

    // Custom: delete; a failed delete and its retry; a size refresh (no status).
    await h.ii.settings.refreshImageSize(admin, ok.id);
    h.world.failDeletes = true;
    await h.ii.images.deleteImage(alice, ok.id);
    await h.ii.idle();
    h.world.failDeletes = false;
    await h.ii.images.deleteImage(alice, ok.id);
    await h.ii.idle();

    // Custom: reconcile finds a missing file (available -> deleting -> error).
    const lost = (await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'lost' })).image;
    await h.ii.idle();
    h.world.files.delete(`bucket:${(await h.ii.images.getImage(alice, lost.id)).fileKey}`);
    await h.ii.storages.reconcile(admin, h.storageId, { markMissing: true, dryRun: false });

    // Stock: register, delete directly (the file is the operator's), and through the delete task.
    const templates = await withTemplates(h);
    const os = { name: 'Debian 12', osType: 'linux' as const, storageId: templates.id, fileKey: 'os/debian-12.qcow2' };
    await h.ii.catalog.deleteOsImage(admin, (await h.ii.catalog.createOsImage(admin, os)).id);
    await h.ii.images.deleteImage(admin, (await h.ii.catalog.createOsImage(admin, os)).id);
    await h.ii.idle();

    // Recovery of interrupted captures and deletes (custom and stock), then deleting the stock ones in error.
    const stockA = makeImage({
      kind: 'stock',
      accountId: null,
      locationId: null,
      storageId: templates.id,
      hypervisorId: null,
      status: 'deleting',
    });
    const stockB = makeImage({
      kind: 'stock',
      accountId: null,
      locationId: null,
      storageId: templates.id,
      hypervisorId: null,
      status: 'deleting',
    });
    await crashed(inner, makeImage({ accountId: 'acct-alice', storageId: h.storageId, hypervisorId: null, status: 'creating' }), 'capture');
    await crashed(inner, makeImage({ accountId: 'acct-alice', storageId: h.storageId, hypervisorId: null, status: 'deleting' }), 'delete');
    await crashed(inner, stockA, 'delete');
    const neverRan = makeImage({ accountId: 'acct-alice', storageId: h.storageId, hypervisorId: null, status: 'creating' });
    await inner.images.insert(neverRan);
    await inner.tasks.insert(
      makeTask({
        type: 'capture',
        subjectId: neverRan.id,
        status: 'queued',
        heartbeatAt: new Date('2026-11-01T00:00:00Z'),
        accountId: 'acct-alice',
      }),
    );
    await crashed(inner, stockB, 'delete');
    await h.ii.recover();
    await h.ii.catalog.deleteOsImage(admin, stockA.id);
    await h.ii.images.deleteImage(admin, stockB.id);
    await h.ii.idle();

    expect(violations).toEqual([]);
    // Every row of both tables is walked, so the tables hold no transition the services never make.
    const walked = new Set(writes.filter((w) => w.op === 'transition').map((w) => `${w.kind} ${w.from} -> ${w.to}`));
    const table = (['custom', 'stock'] as const).flatMap((kind) =>
      IMAGE_STATUSES.flatMap((from) => IMAGE_LIFECYCLE[kind][from].map((to) => `${kind} ${from} -> ${to}`)),
    );
    expect([...walked].sort()).toEqual(table.sort());
    expect(new Set(writes.filter((w) => w.op === 'insert').map((w) => `${w.kind} ${w.to}`))).toEqual(
      new Set(['custom creating', 'stock available']),
    );
    // The task table too: every row is walked by these flows.
    const taskTable = TASK_STATUSES.flatMap((from: TaskStatus) => TASK_TRANSITIONS[from].map((to) => `${from} -> ${to}`));
    expect([...taskWrites].sort()).toEqual(taskTable.sort());
  });

  it('no service writes an image status but the transition function (static check)', () => {
    const dir = join(__dirname, '../../../src/services');
    for (const file of readdirSync(dir)) {
      const source = readFileSync(join(dir, file), 'utf8');
      if (file !== 'image-state.ts') expect(source, file).not.toMatch(/images\.transition\(/);
      if (file !== 'task-state.ts') expect(source, file).not.toMatch(/tasks\s*\.transition(WithImage)?\(/);
      expect(source, file).not.toMatch(/images\.update\([^)]*status:/);
    }
  });
});
