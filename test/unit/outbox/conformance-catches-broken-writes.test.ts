/**
 * The write-recording cases of the conformance suite catch broken implementations: a task's end and
 * its image's move made as two writes (a failing image event leaves the task ended), one that drops
 * the image's events, share and transfer writes that record their events before their
 * compare-and-set or after their write, a task insert that drops its events, and an account state
 * written before its events are built.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryRepositories } from '../../../src/memory';
import { runRepositoryCase } from '../../../src/testing';
import type { Repositories } from '../../../src';

const TOGETHER = 'outbox: a task ends and its image moves in one write, with the events of both';
const SHARES = 'outbox: share writes record their events with them, and only when they write';
const TRANSFERS = 'outbox: transfer writes record their events with them, and only when they write';
const TASKS = 'outbox: task inserts record their events with them; a duplicate id records none';
const ACCOUNTS = 'outbox: account state writes record their events with them';
const PRUNE = 'outbox: undelivered events are pruned after their retention, never while claimed';

/** Memory repositories with one repository's methods replaced (the rest inherited). */
function patched<K extends keyof Repositories>(
  key: K,
  replace: (repos: Repositories, inner: NonNullable<Repositories[K]>) => Partial<NonNullable<Repositories[K]>>,
): Repositories {
  const repos = createMemoryRepositories();
  const inner = repos[key] as NonNullable<Repositories[K]>;
  const wrapped = Object.assign(Object.create(inner) as object, replace(repos, inner));
  return { ...repos, [key]: wrapped };
}

describe('the write-recording cases catch broken implementations', () => {
  it("a task's end and its image's move as two writes, one after the other", async () => {
    const broken = patched('tasks', (repos, tasks) => ({
      async transitionWithImage(task, image, now) {
        const ended = await tasks.transition(task.id, task.from, task.to, task.patch, now, task.events);
        if (!ended) return null;
        const moved = await repos.images.transition(image.id, image.from, image.to, image.patch, now, image.events);
        return { task: ended, image: moved };
      },
    }));
    await expect(runRepositoryCase(TOGETHER, broken)).rejects.toThrow(/task ended without its image's move/);
  });

  it("a task's end that moves the image but drops its events", async () => {
    const broken = patched('tasks', (repos, tasks) => ({
      async transitionWithImage(task, image, now) {
        const ended = await tasks.transition(task.id, task.from, task.to, task.patch, now, task.events);
        if (!ended) return null;
        return { task: ended, image: await repos.images.transition(image.id, image.from, image.to, image.patch, now) };
      },
    }));
    await expect(runRepositoryCase(TOGETHER, broken)).rejects.toThrow();
  });

  it('a share transition that records its events before its compare-and-set', async () => {
    const broken = patched('imageShares', (repos, shares) => ({
      async transition(id, from, to, now, events) {
        const current = await shares.get(id);
        if (current && events) await repos.outbox!.append(events({ ...current, status: to }), now);
        return shares.transition(id, from, to, now);
      },
    }));
    await expect(runRepositoryCase(SHARES, broken)).rejects.toThrow();
  });

  it('share revocations whose events are appended after the write', async () => {
    const broken = patched('imageShares', (repos, shares) => ({
      async revokeAllOf(imageId, now, events) {
        const ended = await shares.revokeAllOf(imageId, now);
        if (events) await repos.outbox!.append(ended.flatMap(events), now);
        return ended;
      },
    }));
    await expect(runRepositoryCase(SHARES, broken)).rejects.toThrow(/revoked without their events/);
  });

  it('a transfer acceptance whose events are appended after the write', async () => {
    const broken = patched('imageTransfers', (repos, transfers) => ({
      async accept(id, limit, now, events) {
        const accepted = await transfers.accept(id, limit, now);
        const image = accepted && (await repos.images.get(accepted.imageId));
        if (accepted && image && events) await repos.outbox!.append(events({ transfer: accepted, image }), now);
        return accepted;
      },
    }));
    await expect(runRepositoryCase(TRANSFERS, broken)).rejects.toThrow(/accepted without its events/);
  });

  it('a transfer insert that drops its events', async () => {
    const broken = patched('imageTransfers', (_, transfers) => ({
      insert: (transfer) => transfers.insert(transfer),
    }));
    await expect(runRepositoryCase(TRANSFERS, broken)).rejects.toThrow();
  });

  it('a task insert that drops its events', async () => {
    const broken = patched('tasks', (_, tasks) => ({ insert: (task) => tasks.insert(task) }));
    await expect(runRepositoryCase(TASKS, broken)).rejects.toThrow();
  });

  it('an account state written before its events are built', async () => {
    const broken = patched('settings', (repos, settings) => ({
      async putAccountState(accountId, state, events, now) {
        await settings.putAccountState(accountId, state);
        if (events) await repos.outbox!.append(events(state), now ?? new Date());
      },
    }));
    await expect(runRepositoryCase(ACCOUNTS, broken)).rejects.toThrow(/written without its events/);
  });

  it('pruning that also takes events under a live claim', async () => {
    const repos = createMemoryRepositories();
    const outbox = repos.outbox!;
    const greedy = Object.create(outbox) as typeof outbox;
    greedy.pruneUndelivered = (before: Date) => outbox.pruneUndelivered!(before, new Date(8.64e15));
    await expect(runRepositoryCase(PRUNE, { ...repos, outbox: greedy })).rejects.toThrow(/live claim was pruned/);
  });

  it('the memory implementation declares every write and passes every case', async () => {
    expect([...(createMemoryRepositories().outbox?.recordedWrites ?? [])].sort()).toEqual([
      'accountStates',
      'imageShares',
      'imageTransfers',
      'taskInserts',
    ]);
    for (const name of [TOGETHER, SHARES, TRANSFERS, TASKS, ACCOUNTS, PRUNE])
      await expect(runRepositoryCase(name, createMemoryRepositories())).resolves.toBeUndefined();
  });
});
