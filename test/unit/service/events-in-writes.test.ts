/**
 * Events are recorded in the transaction of the write they describe (issue 15, "Events survive
 * crashes"): recovery ends an interrupted task and moves its image to `error` in one write, so a
 * crash right after the task's end cannot leave the image in `creating`; so do a copy, a capture
 * (files or chunks), a custom import and a delete that fail (what they stored is removed after that
 * write, so a dead storage never holds the image in `creating`); the share, transfer,
 * account, copy and reconcile events reach the outbox through their write, not through a separate
 * `outbox.append` after it (which a crash, or a failing append, would lose). Repositories written
 * before those writes took events still get them, appended after the write.
 */
import { describe, expect, it } from 'vitest';
import type { Image, Task, TaskType } from '../../../src';
import { createMemoryRepositories } from '../../../src/memory';
import type { Repositories } from '../../../src/ports/repositories';
import type { OutboxEvent, OutboxRepository } from '../../../src/ports/repositories-outbox';
import { makeImage, makeTask } from '../../../src/testing';
import { serveBytes } from '../../support/image-server';
import { ROOT, setupChunked } from './chunked-setup';
import { admin, alice, setup, type Harness } from './setup';

/** Every event in the outbox, in recorded order (claimed and completed). */
async function recorded(outbox: OutboxRepository): Promise<OutboxEvent[]> {
  const all: OutboxEvent[] = [];
  for (;;) {
    const claimed = await outbox.claim({ owner: 'test', now: new Date('2100-01-01'), leaseMs: 1000, limit: 1000 });
    if (claimed.length === 0) return all.sort((a, b) => a.sequence - b.sequence);
    for (const event of claimed) await outbox.complete(event.id, 'test', new Date('2100-01-01'));
    all.push(...claimed);
  }
}

/** A capture a crashed process left: image creating, task running with a heartbeat long gone. */
async function crashedCapture(h: Harness): Promise<{ image: Image; taskId: string }> {
  const image = makeImage({ accountId: 'acct-alice', storageId: h.storageId, sourceInstanceId: 'web-1', updatedAt: h.clock.now });
  await h.ii.repositories.images.insert(image);
  const task = makeTask({ subjectId: image.id, status: 'running', accountId: 'acct-alice', heartbeatAt: h.clock.now, workerId: 'gone' });
  await h.ii.repositories.tasks.insert(task);
  h.clock.now = new Date(h.clock.now.getTime() + 120_000);
  return { image, taskId: task.id };
}

async function availableImage(h: Harness, name: string): Promise<Image> {
  const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name });
  await h.ii.idle();
  return h.ii.images.getImage(alice, image.id);
}

describe('recovery: an interrupted task ends and its image moves to error in one write', () => {
  it('a crash right after the task ended cannot leave its image in creating', async () => {
    const inner = createMemoryRepositories();
    // The process "dies" at the first write after the interrupted task ended: later writes fail.
    let ended = false;
    const tasks = Object.create(inner.tasks) as Repositories['tasks'];
    tasks.transition = async (id, from, to, patch, now, events) => {
      const task = await inner.tasks.transition(id, from, to, patch, now, events);
      if (task?.errorCode === 'INTERRUPTED') ended = true;
      return task;
    };
    const images = Object.create(inner.images) as Repositories['images'];
    images.transition = async (...args) => {
      if (ended) throw new Error('the process died');
      return inner.images.transition(...args);
    };
    const h = await setup({ repositories: { ...inner, tasks, images } });
    const { image, taskId } = await crashedCapture(h);
    await h.ii.recover().catch(() => undefined);
    const task = await inner.tasks.get(taskId);
    expect(task?.errorCode).toBe('INTERRUPTED');
    const after = await inner.images.get(image.id);
    expect(after?.status).toBe('error');
    expect(after?.statusReason?.code).toBe('INTERRUPTED');
    // Both sets of events were recorded by that one write (same stamp, consecutive).
    const events = (await recorded(inner.outbox!)).filter((e) => e.key === image.id);
    expect(events.map((e) => e.type)).toEqual(['task.finished', 'image.status-changed', 'image.failed']);
    expect(new Set(events.map((e) => e.createdAt.getTime())).size).toBe(1);
    expect(events.map((e) => e.sequence - events[0]!.sequence)).toEqual([0, 1, 2]);
    // The leftover was removed before.
    const report = h.events.filter((e) => e.type === 'image.failed');
    expect(report).toHaveLength(1);
  });

  it("repositories without transitionWithImage (a host's, older) still get both, one after the other", async () => {
    const inner = createMemoryRepositories();
    const tasks = Object.create(inner.tasks) as Repositories['tasks'];
    Object.defineProperty(tasks, 'transitionWithImage', { value: undefined });
    const h = await setup({ repositories: { ...inner, tasks } });
    const { image, taskId } = await crashedCapture(h);
    const report = await h.ii.recover();
    expect(report.interruptedTasks).toContain(taskId);
    expect(report.failedImages).toContain(image.id);
    expect((await inner.images.get(image.id))?.status).toBe('error');
    expect((await inner.tasks.get(taskId))?.status).toBe('failed');
  });
});

describe('a copy that fails ends its task and moves its image to error in one write', () => {
  it('its leftover is removed first, and a crash right after the task ended cannot leave the image in creating', async () => {
    const inner = createMemoryRepositories();
    let ended = false;
    const tasks = Object.create(inner.tasks) as Repositories['tasks'];
    tasks.transition = async (id, from, to, patch, now, events) => {
      const task = await inner.tasks.transition(id, from, to, patch, now, events);
      if (task?.type === 'copy' && task.status === 'failed') ended = true;
      return task;
    };
    const images = Object.create(inner.images) as Repositories['images'];
    images.transition = async (...args) => {
      if (ended) throw new Error('the process died');
      return inner.images.transition(...args);
    };
    const h = await setup({ repositories: { ...inner, tasks, images }, imageCopies: { allowCustomers: true } });
    const image = await availableImage(h, 'source');
    const other = await h.ii.storages.createStorage(admin, { name: 's3-b', driver: 'fake-s3', config: { root: 'other' } });
    await h.ii.storages.bindHypervisor(admin, other.id, 'hv-1');
    // The source file changed behind the record's back: the copy fails its checksum.
    const key = [...h.world.files.keys()].find((k) => k.endsWith(image.fileKey)) as string;
    h.world.files.set(key, { bytes: Buffer.from('tampered'), modifiedAt: new Date() });
    const { image: copy, task } = await h.ii.copies.copyImage(alice, image.id, { storageId: other.id });
    await h.ii.idle();
    expect((await inner.tasks.get(task.id))?.status).toBe('failed');
    const failed = await inner.images.get(copy.id);
    expect(failed?.status).toBe('error');
    expect(failed?.statusReason?.code).toMatch(/CHECKSUM_MISMATCH|VALIDATION_FAILED/);
    expect([...h.world.files.keys()].some((k) => k.startsWith('other:'))).toBe(false);
    const events = (await recorded(inner.outbox!)).filter((e) => e.key === copy.id).map((e) => e.type);
    expect(events.slice(-3)).toEqual(['task.finished', 'image.status-changed', 'image.failed']);
  });
});

/**
 * Memory repositories on which the process "dies" right after a task of `type` ended failed: every
 * image status write after that fails. `statusAt(imageId)` is the image's status at this moment
 * (read synchronously, so it can be taken where a leftover is removed).
 */
function diesAfterFailed(type: TaskType) {
  const inner = createMemoryRepositories();
  let ended = false;
  const failed = (task: Task | null | undefined) => task?.type === type && task.status === 'failed';
  const tasks = Object.create(inner.tasks) as Repositories['tasks'];
  tasks.transition = async (id, from, to, patch, now, events) => {
    const task = await inner.tasks.transition(id, from, to, patch, now, events);
    if (failed(task)) ended = true;
    return task;
  };
  tasks.transitionWithImage = async (task, image, now) => {
    const done = await inner.tasks.transitionWithImage!(task, image, now);
    if (failed(done?.task)) ended = true;
    return done;
  };
  const images = Object.create(inner.images) as Repositories['images'];
  images.transition = async (...args) => {
    if (ended) throw new Error('the process died');
    return inner.images.transition(...args);
  };
  // The memory repository reads its map before its first await: the promise holds the status of now.
  const statusAt = (imageId: string) => inner.images.get(imageId).then((image) => image?.status ?? null);
  return { inner, repositories: { ...inner, tasks, images }, statusAt };
}

/** The files of the harness's stream storage whose key contains `part`, with the image's status recorded at each removal. */
function watchRemovals(h: Harness, part: string, statusAt: () => Promise<string | null>): Promise<string | null>[] {
  const seen: Promise<string | null>[] = [];
  const remove = h.world.files.delete.bind(h.world.files);
  h.world.files.delete = (key: string) => {
    if (key.includes(part) && h.world.files.has(key)) seen.push(statusAt());
    return remove(key);
  };
  return seen;
}

/** The task and image events of `imageId` end with the three one write records, with the reason `code`. */
async function endsInOneWrite(inner: Repositories, imageId: string): Promise<void> {
  const events = (await recorded(inner.outbox!)).filter((e) => e.key === imageId);
  const last = events.slice(-3);
  expect(last.map((e) => e.type)).toEqual(['task.finished', 'image.status-changed', 'image.failed']);
  expect(new Set(last.map((e) => e.createdAt.getTime())).size).toBe(1);
  expect(last.map((e) => e.sequence - last[0]!.sequence)).toEqual([0, 1, 2]);
}

describe('a capture, import or delete that fails ends its task and moves its image to error in one write', () => {
  it('a capture: a crash right after the task ended cannot leave the image in creating; its file goes after the end', async () => {
    const { inner, repositories, statusAt } = diesAfterFailed('capture');
    const h = await setup({ repositories });
    h.world.corruptNextStream = true;
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'broken' });
    const removals = watchRemovals(h, image.fileKey, () => statusAt(image.id));
    await h.ii.idle();
    expect(await inner.tasks.get(task.id)).toMatchObject({ status: 'failed', errorCode: 'CHECKSUM_MISMATCH' });
    expect(await inner.images.get(image.id)).toMatchObject({ status: 'error', statusReason: { code: 'CHECKSUM_MISMATCH' } });
    await endsInOneWrite(inner, image.id);
    // The uploaded file was removed, once the image showed the failure (not before).
    expect(await Promise.all(removals)).toEqual(['error']);
    expect([...h.world.files.keys()].some((k) => k.includes(image.fileKey))).toBe(false);
  });

  it('a capture whose cleanup is slow: the ended task gets no heartbeat meanwhile (it is not taken for recovered)', async () => {
    const inner = createMemoryRepositories();
    let ended = false;
    const afterEnd: string[] = [];
    const tasks = Object.create(inner.tasks) as Repositories['tasks'];
    tasks.transition = async (id, from, to, patch, now, events) => {
      if (ended) afterEnd.push(`${from.join('|')} -> ${to}`);
      return inner.tasks.transition(id, from, to, patch, now, events);
    };
    tasks.transitionWithImage = async (task, image, now) => {
      const done = await inner.tasks.transitionWithImage!(task, image, now);
      ended ||= done?.task.status === 'failed';
      return done;
    };
    // The cleanup after the end reads the image once more: slowly, over several heartbeat intervals.
    const images = Object.create(inner.images) as Repositories['images'];
    images.get = async (id) => {
      if (ended) await new Promise((resolve) => setTimeout(resolve, 300));
      return inner.images.get(id);
    };
    const h = await setup({ repositories: { ...inner, tasks, images } });
    h.world.corruptNextStream = true;
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'slow cleanup' });
    await h.ii.idle();
    expect(await inner.tasks.get(task.id)).toMatchObject({ status: 'failed', errorCode: 'CHECKSUM_MISMATCH' });
    expect((await inner.images.get(image.id))?.status).toBe('error');
    expect(afterEnd).toEqual([]);
  });

  it('a chunked capture whose storage died at the commit: the image shows error with the task, its lease is dropped after', async () => {
    const { inner, repositories, statusAt } = diesAfterFailed('capture');
    const h = await setupChunked({ repositories });
    // The gateway dies when the manifest is written (every chunk is stored by then).
    const set = h.world.files.set.bind(h.world.files);
    h.world.files.set = (key, value) => {
      if (key.startsWith(`${ROOT}:images/`) && key.endsWith('.manifest.json')) throw new Error('the gateway died');
      return set(key, value);
    };
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'c-1', name: 'broken' });
    const removals = watchRemovals(h, `${ROOT}:chunk-leases/`, () => statusAt(image.id));
    await h.ii.idle();
    expect((await inner.tasks.get(task.id))?.status).toBe('failed');
    expect((await inner.images.get(image.id))?.status).toBe('error');
    await endsInOneWrite(inner, image.id);
    // The lease (its head and parts) was dropped once the image showed the failure (not before).
    const statuses = await Promise.all(removals);
    expect(statuses.length).toBeGreaterThan(0);
    expect(new Set(statuses)).toEqual(new Set(['error']));
    expect(h.leaseKeys()).toEqual([]);
    expect(h.has(image.fileKey)).toBe(false);
  });

  it('a custom URL import: its image ends in error with its hold released, in the write of the task end', async () => {
    const { inner, repositories, statusAt } = diesAfterFailed('import');
    const h = await setup({ repositories, imports: { allowNetworks: ['127.0.0.2/32'], idleTimeoutMs: 2000 } });
    await h.ii.settings.setLocationSettings(admin, 'loc-1', { imagesEnabled: true, urlImportEnabled: true });
    const server = await serveBytes(Buffer.alloc(256 * 1024, 7), { host: '127.0.0.2' });
    try {
      const { image, task } = await h.ii.imports.importImage(alice, {
        url: server.url,
        name: 'imported',
        locationId: 'loc-1',
        sha256: '0'.repeat(64),
      });
      const removals = watchRemovals(h, 'bucket:', () => statusAt(image.id));
      await h.ii.idle();
      expect(await inner.tasks.get(task.id)).toMatchObject({ status: 'failed', errorCode: 'CHECKSUM_MISMATCH' });
      const failed = await inner.images.get(image.id);
      expect(failed).toMatchObject({ status: 'error', statusReason: { code: 'CHECKSUM_MISMATCH' } });
      expect(failed?.reservedBytes ?? null).toBeNull();
      await endsInOneWrite(inner, image.id);
      // Nothing it stored is left, and nothing was removed while the image still showed creating.
      expect((await Promise.all(removals)).filter((status) => status !== 'error')).toEqual([]);
      expect([...h.world.files.keys()].filter((k) => k.startsWith('bucket:'))).toEqual([]);
    } finally {
      await server.close();
    }
  });

  it('a delete: a crash right after the task ended cannot leave the image in deleting', async () => {
    const { inner, repositories } = diesAfterFailed('delete');
    const h = await setup({ repositories });
    const image = await availableImage(h, 'kept');
    h.world.failDeletes = true;
    const { task } = await h.ii.images.deleteImage(alice, image.id);
    await h.ii.idle();
    expect(await inner.tasks.get(task!.id)).toMatchObject({ status: 'failed', errorCode: 'STORAGE_UNAVAILABLE' });
    expect(await inner.images.get(image.id)).toMatchObject({ status: 'error', statusReason: { code: 'DELETE_FAILED' } });
    await endsInOneWrite(inner, image.id);
  });
});

describe('share, transfer, account, copy and reconcile events are recorded in their write', () => {
  /** Memory repositories whose `outbox.append` fails: only events recorded with a write get in. */
  function appendFails(): Repositories {
    const inner = createMemoryRepositories();
    const outbox = Object.create(inner.outbox!) as OutboxRepository;
    outbox.append = () => Promise.reject(new Error('append is down'));
    return { ...inner, outbox };
  }

  it('every one of them reaches the outbox without a separate append', async () => {
    const repositories = appendFails();
    const h = await setup({ repositories });
    const image = await availableImage(h, 'shared');
    const share = await h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-bob' });
    await h.ii.sharing.revokeShare(alice, share.id);
    const given = await availableImage(h, 'given');
    const transfer = await h.ii.transfers.offerTransfer(alice, given.id, { accountId: 'acct-bob' });
    await h.ii.transfers.acceptTransfer({ kind: 'customer', accountId: 'acct-bob' }, transfer.id);
    // Before a second storage exists, so the capture lands on the first.
    const lost = await availableImage(h, 'lost');
    h.world.files.delete(`bucket:${lost.fileKey}`);
    const findings = await h.ii.storages.reconcile(admin, h.storageId, { markMissing: true, dryRun: false, hypervisorId: 'hv-1' });
    expect(findings.map((f) => [f.imageId, f.action])).toEqual([[lost.id, 'marked-error']]);
    const local = await h.ii.storages.createStorage(admin, { name: 'local', driver: 'fake-local', config: { root: 'copies' } });
    await h.ii.storages.bindHypervisor(admin, local.id, 'hv-1');
    await h.ii.copies.copyImage(admin, image.id, { storageId: local.id, hypervisorId: 'hv-1', name: 'copy' });
    await h.ii.idle();
    await h.ii.accounts.suspendAccount(admin, 'acct-carol');
    await h.ii.accounts.unsuspendAccount(admin, 'acct-carol');
    await h.ii.accounts.closeAccount(admin, 'acct-dave');

    const types = (await recorded(repositories.outbox!)).map((e) => e.type);
    for (const type of [
      'share.created',
      'share.status-changed',
      'transfer.created',
      'transfer.status-changed',
      'image.owner-changed',
      'image.copy-started',
      'reconcile.finding',
      'account.suspended',
      'account.unsuspended',
      'account.closed',
    ])
      expect(types, type).toContain(type);
    // Local listeners got each once, as before.
    expect(h.events.filter((e) => e.type === 'image.owner-changed')).toHaveLength(1);
    expect(h.events.filter((e) => e.type === 'share.created')).toHaveLength(1);
  });

  it("repositories that do not declare them (a host's, older) get them appended after the write", async () => {
    const inner = createMemoryRepositories();
    const outbox = Object.create(inner.outbox!) as OutboxRepository;
    Object.defineProperty(outbox, 'recordedWrites', { value: undefined });
    // An older share repository: it knows nothing of events.
    const imageShares = Object.create(inner.imageShares) as Repositories['imageShares'];
    imageShares.insert = (share) => inner.imageShares.insert(share);
    const h = await setup({ repositories: { ...inner, outbox, imageShares } });
    const image = await availableImage(h, 'shared');
    await h.ii.sharing.shareImage(alice, image.id, { accountId: 'acct-bob' });
    await h.ii.accounts.suspendAccount(admin, 'acct-carol');
    const types = (await recorded(inner.outbox!)).map((e) => e.type);
    expect(types.filter((t) => t === 'share.created')).toHaveLength(1);
    expect(types.filter((t) => t === 'account.suspended')).toHaveLength(1);
  });
});
