/**
 * Conformance cases of the event outbox: events recorded with the writes that cause them (a
 * failed compare-and-set records none), claims that two claimers never share, a lapsed claim taken
 * over, per-key order, release with a retry time, and pruning.
 * @module
 */
import assert from 'node:assert/strict';
import { isInstanceImagesError } from '../errors';
import type { Image } from '../model/image';
import type { Repositories } from '../ports/repositories';
import type { OutboxDraft, OutboxEvent, OutboxRepository } from '../ports/repositories-outbox';
import type { RepositoryCase } from './repository-suite';
import { fixtureTime as t, makeImage, makeTask, makeUsageInterval } from './fixtures';

/** The repositories' outbox; fails the case when there is none. */
function outboxOf(repos: Repositories): OutboxRepository {
  assert.ok(repos.outbox, 'the repositories have no outbox (repositories.outbox): events are lost when the process dies');
  return repos.outbox;
}

/** Every claimable event (claimed and completed right away), in claim order. */
export async function takeAll(outbox: OutboxRepository, now: Date): Promise<OutboxEvent[]> {
  const taken: OutboxEvent[] = [];
  for (let guard = 0; guard < 100; guard++) {
    const claimed = await outbox.claim({ owner: 'conformance', now, leaseMs: 60_000, limit: 100 });
    if (claimed.length === 0) return taken;
    for (const event of claimed) assert.equal(await outbox.complete(event.id, 'conformance', now), true);
    taken.push(...claimed);
  }
  throw new Error('the outbox kept returning events');
}

const note = (key: string, n: number): OutboxDraft => ({ type: 'test.note', key, data: { n } });

/** The outbox cases of the repository conformance suite. */
export const outboxCases: RepositoryCase[] = [
  {
    name: 'outbox: an image transition records its events with it; a failed compare-and-set records none',
    async run(repos) {
      const outbox = outboxOf(repos);
      const image = makeImage({ status: 'creating' });
      await repos.images.insert(image);
      const events = (updated: Image): OutboxDraft[] => [
        { type: 'image.status-changed', key: updated.id, data: { image: updated, from: 'creating', to: updated.status } },
        { type: 'image.available', key: updated.id, data: { image: updated } },
      ];
      const lost = await repos.images.transition(image.id, ['error'], 'available', {}, t(1), events);
      assert.equal(lost, null);
      assert.deepEqual(await takeAll(outbox, t(2)), [], 'a failed compare-and-set recorded events');
      const missing = await repos.images.transition('no-such-image', ['creating'], 'available', {}, t(1), events);
      assert.equal(missing, null);
      assert.deepEqual(await takeAll(outbox, t(2)), [], 'a transition of a missing image recorded events');
      const won = await repos.images.transition(image.id, ['creating'], 'available', { sizeBytes: 42 }, t(1), events);
      assert.equal(won?.status, 'available');
      const recorded = await takeAll(outbox, t(2));
      assert.deepEqual(
        recorded.map((e) => e.type),
        ['image.status-changed', 'image.available'],
      );
      const [changed] = recorded;
      assert.ok(changed);
      assert.equal(changed.key, image.id);
      assert.match(changed.id, /^[0-9a-f-]{36}$/i, 'event ids are UUIDs');
      assert.ok(recorded[1] && recorded[1].sequence > changed.sequence, 'sequences increase');
      assert.equal(changed.createdAt.getTime(), t(1).getTime(), "events are stamped with the write's now");
      // The payload is built from the updated record and stored as JSON.
      const data = changed.data as { image: { status: string; sizeBytes: number; updatedAt: string }; to: string };
      assert.equal(data.image.status, 'available');
      assert.equal(data.image.sizeBytes, 42);
      assert.equal(data.image.updatedAt, t(1).toISOString());
    },
  },
  {
    name: 'outbox: when its events cannot be recorded, the transition does not happen either',
    async run(repos) {
      const outbox = outboxOf(repos);
      const image = makeImage({ status: 'creating' });
      await repos.images.insert(image);
      const broken = (): OutboxDraft[] => {
        throw new Error('planted: the events cannot be built');
      };
      await assert.rejects(repos.images.transition(image.id, ['creating'], 'available', {}, t(1), broken), /planted/);
      assert.equal((await repos.images.get(image.id))?.status, 'creating', 'the status changed without its events');
      assert.deepEqual(await takeAll(outbox, t(2)), []);
    },
  },
  {
    name: 'outbox: task transitions and usage writes record their events with them, and only when they write',
    async run(repos) {
      const outbox = outboxOf(repos);
      const task = makeTask({ status: 'running' });
      await repos.tasks.insert(task);
      const finished = (tk: { id: string; subjectId: string; status: string }) => [
        { type: 'task.finished', key: tk.subjectId, data: { status: tk.status } },
      ];
      assert.equal(await repos.tasks.transition(task.id, ['queued'], 'failed', {}, t(1), finished), null);
      assert.equal((await repos.tasks.transition(task.id, ['running'], 'completed', {}, t(1), finished))?.status, 'completed');
      const interval = makeUsageInterval({ from: t(3) });
      const started = (i: { id: string; imageId: string }) => [{ type: 'usage.started', key: i.imageId, data: { id: i.id } }];
      const stopped = (i: { id: string; imageId: string }) => [{ type: 'usage.stopped', key: i.imageId, data: { id: i.id } }];
      await repos.usage.insert(interval, started);
      await assert.rejects(
        repos.usage.insert(interval, started),
        (error: unknown) => isInstanceImagesError(error) && error.code === 'CONFLICT',
        'a duplicate usage interval is CONFLICT',
      );
      assert.ok(await repos.usage.close(interval.id, t(5), stopped));
      assert.equal(await repos.usage.close(interval.id, t(6), stopped), null);
      const recorded = await takeAll(outbox, t(10));
      assert.deepEqual(
        recorded.map((e) => [e.type, e.key, e.createdAt.getTime()]),
        [
          ['task.finished', task.subjectId, t(1).getTime()],
          ['usage.started', interval.imageId, t(3).getTime()],
          ['usage.stopped', interval.imageId, t(5).getTime()],
        ],
      );
      assert.deepEqual(recorded[0]?.data, { status: 'completed' });
    },
  },
  {
    name: 'outbox: concurrent claimers never get the same event, and together get every one',
    async run(repos) {
      const outbox = outboxOf(repos);
      const appended = await outbox.append(
        Array.from({ length: 60 }, (_, n) => note(`key-${n}`, n)),
        t(0),
      );
      assert.equal(appended.length, 60);
      assert.equal(new Set(appended.map((e) => e.id)).size, 60, 'every event has its own id');
      const claimers = Array.from({ length: 6 }, (_, n) => `claimer-${n}`);
      const got = new Map<string, string>();
      const rounds = await Promise.all(
        claimers.map(async (owner) => {
          const mine: OutboxEvent[] = [];
          for (let round = 0; round < 20; round++) {
            const claimed = await outbox.claim({ owner, now: t(1), leaseMs: 60_000, limit: 4 });
            if (claimed.length === 0) break;
            mine.push(...claimed);
          }
          return { owner, mine };
        }),
      );
      for (const { owner, mine } of rounds) {
        for (const event of mine) {
          assert.equal(got.get(event.id), undefined, `event ${event.id} was claimed by ${got.get(event.id)} and ${owner}`);
          got.set(event.id, owner);
          assert.equal(event.claimedBy, owner);
          assert.equal(event.attempts, 1);
        }
      }
      assert.equal(got.size, 60, 'every event was claimed once');
      for (const { owner, mine } of rounds) {
        for (const event of mine) {
          assert.equal(await outbox.complete(event.id, 'someone-else', t(2)), false, 'only the holder completes');
          assert.equal(await outbox.complete(event.id, owner, t(2)), true);
        }
      }
      assert.deepEqual(await outbox.claim({ owner: 'late', now: t(3), leaseMs: 60_000, limit: 100 }), []);
    },
  },
  {
    name: 'outbox: a lapsed claim is taken over and the event delivered again',
    async run(repos) {
      const outbox = outboxOf(repos);
      const [event] = await outbox.append([note('k', 1)], t(0));
      assert.ok(event);
      const [first] = await outbox.claim({ owner: 'crashed', now: t(1), leaseMs: 60_000, limit: 10 });
      assert.equal(first?.id, event.id);
      assert.equal(first?.leaseUntil?.getTime(), t(2).getTime());
      assert.deepEqual(await outbox.claim({ owner: 'other', now: new Date(t(2).getTime() - 1), leaseMs: 60_000, limit: 10 }), []);
      const [again] = await outbox.claim({ owner: 'other', now: t(2), leaseMs: 60_000, limit: 10 });
      assert.equal(again?.id, event.id, 'the lapsed claim was taken over');
      assert.equal(again?.attempts, 2);
      assert.equal(await outbox.complete(event.id, 'crashed', t(2)), false, 'the former holder no longer completes it');
      assert.equal(await outbox.complete(event.id, 'other', t(3)), true);
      const done = await outbox.get(event.id);
      assert.equal(done?.deliveredAt?.getTime(), t(3).getTime());
      assert.equal(done?.claimedBy, null);
      assert.deepEqual(await outbox.claim({ owner: 'other', now: t(100), leaseMs: 60_000, limit: 10 }), []);
    },
  },
  {
    name: 'outbox: events of one key are claimed in order, one at a time; a released event waits for its retry time',
    async run(repos) {
      const outbox = outboxOf(repos);
      const [a1, b1, a2] = await outbox.append([note('image-a', 1), note('image-b', 1), note('image-a', 2)], t(0));
      assert.ok(a1 && b1 && a2);
      const heads = await outbox.claim({ owner: 'w', now: t(1), leaseMs: 60_000, limit: 10 });
      assert.deepEqual(
        heads.map((e) => e.id),
        [a1.id, b1.id],
        'only the first undelivered event of each key is claimable',
      );
      assert.deepEqual(await outbox.claim({ owner: 'w2', now: t(1), leaseMs: 60_000, limit: 10 }), []);
      assert.equal(await outbox.complete(a1.id, 'w', t(1)), true);
      assert.equal(await outbox.release(b1.id, 'w', t(5), 'HTTP 503'), true);
      const next = await outbox.claim({ owner: 'w', now: t(1), leaseMs: 60_000, limit: 10 });
      assert.deepEqual(
        next.map((e) => e.id),
        [a2.id],
      );
      assert.equal(await outbox.complete(a2.id, 'w', t(1)), true);
      assert.deepEqual(await outbox.claim({ owner: 'w', now: t(4), leaseMs: 60_000, limit: 10 }), [], 'not before its retry time');
      const retried = await outbox.claim({ owner: 'w', now: t(5), leaseMs: 60_000, limit: 10 });
      assert.deepEqual(
        retried.map((e) => [e.id, e.attempts, e.lastError]),
        [[b1.id, 2, 'HTTP 503']],
      );
    },
  },
  {
    name: 'outbox: prune deletes only events delivered before the cutoff',
    async run(repos) {
      const outbox = outboxOf(repos);
      const [old, recent, open] = await outbox.append([note('a', 1), note('b', 1), note('c', 1)], t(0));
      assert.ok(old && recent && open);
      await outbox.claim({ owner: 'w', now: t(0), leaseMs: 60_000, limit: 10 });
      await outbox.complete(old.id, 'w', t(1));
      await outbox.complete(recent.id, 'w', t(10), 'given up: HTTP 400');
      assert.equal(await outbox.prune(t(5)), 1);
      assert.equal(await outbox.get(old.id), null);
      assert.equal((await outbox.get(recent.id))?.lastError, 'given up: HTTP 400');
      assert.equal((await outbox.get(open.id))?.deliveredAt, null, 'an undelivered event is never pruned');
    },
  },
];
