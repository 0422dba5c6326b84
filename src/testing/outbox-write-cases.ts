/**
 * Conformance cases of the writes that record their events in the outbox with them, beyond the
 * image and task transitions and the usage writes (`outbox-cases.ts`): a task's end together with
 * its image's move (`tasks.transitionWithImage`), and the writes an outbox declares in
 * `recordedWrites` (shares, transfers, account states, task inserts). For each: a failed
 * compare-and-set or a conflict records no event, a successful write records exactly its events,
 * and a write whose events cannot be built does not happen. Repositories without
 * `transitionWithImage`, or not declaring a write, skip its case (the SDK then records those events
 * after the write, not with it).
 * @module
 */
import assert from 'node:assert/strict';
import { isInstanceImagesError } from '../errors';
import type { Image } from '../model/image';
import type { ImageTransfer } from '../model/image-move';
import type { AccountState } from '../model/settings';
import type { Task } from '../model/task';
import type { Repositories } from '../ports/repositories';
import type { OutboxDraft, OutboxEvent, OutboxRepository, OutboxWrite } from '../ports/repositories-outbox';
import type { RepositoryCase } from './repository-suite';
import { fixtureTime as t, makeImage, makeTask } from './fixtures';
import { makeImageShare, makeImageTransfer } from './image-move-cases';
import { takeAll } from './outbox-cases';

/** The outbox, when the repositories record `write` with it (else the case has nothing to check). */
function declaring(repos: Repositories, write: OutboxWrite): OutboxRepository | null {
  assert.ok(repos.outbox, 'the repositories have no outbox (repositories.outbox): events are lost when the process dies');
  return repos.outbox.recordedWrites?.includes(write) ? repos.outbox : null;
}

const conflict = (error: unknown) => isInstanceImagesError(error) && error.code === 'CONFLICT';
const planted = (): OutboxDraft[] => {
  throw new Error('planted: the events cannot be built');
};
/** Every recorded event, in the order it was recorded. */
const drain = async (outbox: OutboxRepository, now: Date) => (await takeAll(outbox, now)).sort((a, b) => a.sequence - b.sequence);
/** What the recorded events say: type, key, stamp. */
const summary = (events: readonly OutboxEvent[]) => events.map((e) => [e.type, e.key, e.createdAt.getTime()]);
const note =
  (type: string) =>
  <T extends { id: string; status?: string }>(record: T): OutboxDraft[] => [
    { type, key: record.id, data: { status: record.status ?? null } },
  ];

/** The write-recording cases of the repository conformance suite. */
export const outboxWriteCases: RepositoryCase[] = [
  {
    name: 'outbox: a task ends and its image moves in one write, with the events of both',
    async run(repos) {
      const { outbox } = repos;
      assert.ok(outbox, 'the repositories have no outbox (repositories.outbox)');
      const end = repos.tasks.transitionWithImage?.bind(repos.tasks);
      if (!end) return;
      const image = makeImage({ status: 'creating' });
      const task = makeTask({ status: 'running', subjectId: image.id });
      await repos.images.insert(image);
      await repos.tasks.insert(task);
      const taskStep = (from: Task['status'][]) => ({
        id: task.id,
        from,
        to: 'failed' as const,
        patch: { errorCode: 'INTERRUPTED', finishedAt: t(1) },
        events: (ended: Task) => [{ type: 'task.finished', key: ended.subjectId, data: { status: ended.status } }],
      });
      const imageStep = {
        id: image.id,
        from: ['creating' as const],
        to: 'error' as const,
        patch: { statusReason: { code: 'INTERRUPTED' as const, message: 'interrupted' } },
        events: (moved: Image) => [{ type: 'image.failed', key: moved.id, data: { status: moved.status } }],
      };
      // The task's compare-and-set fails: nothing changes, nothing is recorded.
      assert.equal(await end(taskStep(['queued']), imageStep, t(1)), null);
      assert.equal((await repos.images.get(image.id))?.status, 'creating', "the image moved although the task's compare-and-set failed");
      assert.deepEqual(await drain(outbox, t(2)), [], 'a failed compare-and-set recorded events');
      // Events that cannot be built: neither record changes.
      await assert.rejects(end(taskStep(['running']), { ...imageStep, events: planted }, t(1)), /planted/);
      assert.equal((await repos.tasks.get(task.id))?.status, 'running', "the task ended without its image's move");
      assert.equal((await repos.images.get(image.id))?.status, 'creating');
      assert.deepEqual(await drain(outbox, t(2)), []);
      // Both happen, with the events of both, in one write.
      const done = await end(taskStep(['running']), imageStep, t(1));
      assert.equal(done?.task.status, 'failed');
      assert.equal(done?.task.errorCode, 'INTERRUPTED');
      assert.equal(done?.image?.status, 'error');
      assert.equal(done?.image?.statusReason?.code, 'INTERRUPTED');
      assert.equal(done?.image?.updatedAt.getTime(), t(1).getTime());
      assert.equal((await repos.images.get(image.id))?.status, 'error');
      assert.deepEqual(summary(await drain(outbox, t(2))), [
        ['task.finished', image.id, t(1).getTime()],
        ['image.failed', image.id, t(1).getTime()],
      ]);
      // The image moved meanwhile: the task still ends, the image stays, only the task's events.
      const other = makeTask({ status: 'running', subjectId: image.id });
      await repos.tasks.insert(other);
      const alone = await end({ ...taskStep(['running']), id: other.id }, imageStep, t(3));
      assert.equal(alone?.task.status, 'failed');
      assert.equal(alone?.image, null);
      assert.deepEqual(summary(await drain(outbox, t(4))), [['task.finished', image.id, t(3).getTime()]]);
    },
  },
  {
    name: 'outbox: task inserts record their events with them; a duplicate id records none',
    async run(repos) {
      const outbox = declaring(repos, 'taskInserts');
      if (!outbox) return;
      const task = makeTask({ createdAt: t(1), updatedAt: t(1) });
      await repos.tasks.insert(task, note('image.copy-started'));
      await assert.rejects(repos.tasks.insert(task, note('image.copy-started')), conflict, 'a duplicate task is CONFLICT');
      const unbuilt = makeTask();
      await assert.rejects(repos.tasks.insert(unbuilt, planted), /planted/);
      assert.equal(await repos.tasks.get(unbuilt.id), null, 'the task was inserted without its events');
      assert.deepEqual(summary(await drain(outbox, t(2))), [['image.copy-started', task.id, t(1).getTime()]]);
    },
  },
  {
    name: 'outbox: share writes record their events with them, and only when they write',
    async run(repos) {
      const outbox = declaring(repos, 'imageShares');
      if (!outbox) return;
      const { imageShares } = repos;
      const share = makeImageShare({ imageId: 'img-s', createdAt: t(1), updatedAt: t(1) });
      await imageShares.insert(share, note('share.created'));
      await assert.rejects(imageShares.insert(share, note('share.created')), conflict);
      await assert.rejects(imageShares.insert({ ...makeImageShare(), imageId: 'img-s' }, note('share.created')), conflict);
      await assert.rejects(imageShares.insert(makeImageShare({ imageId: 'img-planted' }), planted), /planted/);
      assert.equal((await imageShares.list({ imageId: 'img-planted' })).items.length, 0, 'the share was inserted without its events');
      assert.equal(await imageShares.transition(share.id, ['accepted'], 'rejected', t(2), note('share.status-changed')), null);
      await assert.rejects(imageShares.transition(share.id, ['pending'], 'accepted', t(2), planted), /planted/);
      assert.equal((await imageShares.get(share.id))?.status, 'pending', 'the share changed without its events');
      assert.equal(
        (await imageShares.transition(share.id, ['pending'], 'accepted', t(3), note('share.status-changed')))?.status,
        'accepted',
      );
      const second = makeImageShare({ imageId: 'img-s', accountId: 'acct-second' });
      await imageShares.insert(second);
      await assert.rejects(imageShares.revokeAllOf('img-s', t(4), planted), /planted/);
      assert.equal((await imageShares.get(second.id))?.status, 'pending', 'shares were revoked without their events');
      const revoked = await imageShares.revokeAllOf('img-s', t(5), note('share.revoked'));
      assert.equal(revoked.length, 2);
      assert.deepEqual(await imageShares.revokeAllOf('img-s', t(6), note('share.revoked')), []);
      const recorded = await drain(outbox, t(10));
      assert.deepEqual(summary(recorded).slice(0, 2), [
        ['share.created', share.id, t(1).getTime()],
        ['share.status-changed', share.id, t(3).getTime()],
      ]);
      assert.deepEqual(recorded[1]?.data, { status: 'accepted' }, 'the events are built from the written record');
      assert.deepEqual(
        summary(recorded.slice(2)).sort(),
        [
          ['share.revoked', second.id, t(5).getTime()],
          ['share.revoked', share.id, t(5).getTime()],
        ].sort(),
      );
      assert.equal(recorded.length, 4);
    },
  },
  {
    name: 'outbox: transfer writes record their events with them, and only when they write',
    async run(repos) {
      const outbox = declaring(repos, 'imageTransfers');
      if (!outbox) return;
      const { imageTransfers } = repos;
      const image = makeImage({ status: 'available', accountId: 'acct-giver' });
      await repos.images.insert(image);
      const transfer = makeImageTransfer({ imageId: image.id, createdAt: t(1), updatedAt: t(1) });
      await imageTransfers.insert(transfer, note('transfer.created'));
      await assert.rejects(imageTransfers.insert({ ...makeImageTransfer(), imageId: image.id }, note('transfer.created')), conflict);
      const other = makeImageTransfer({ imageId: 'img-other' });
      await assert.rejects(imageTransfers.insert(other, planted), /planted/);
      assert.equal(await imageTransfers.get(other.id), null, 'the transfer was inserted without its events');
      assert.equal(await imageTransfers.transition(transfer.id, ['accepted'], 'cancelled', t(2), note('transfer.status-changed')), null);
      const accepted = (record: { transfer: ImageTransfer; image: Image }): OutboxDraft[] => [
        { type: 'transfer.accepted', key: record.transfer.id, data: { status: record.transfer.status } },
        { type: 'image.owner-changed', key: record.image.id, data: { accountId: record.image.accountId } },
      ];
      // Past its expiry, or with its image gone from the giver: no acceptance, no events.
      assert.equal(await imageTransfers.accept(transfer.id, null, t(48 * 60), accepted), null);
      await assert.rejects(imageTransfers.accept(transfer.id, null, t(3), planted), /planted/);
      assert.equal((await imageTransfers.get(transfer.id))?.status, 'pending', 'the transfer was accepted without its events');
      assert.equal((await repos.images.get(image.id))?.accountId, 'acct-giver', 'the image moved without its events');
      assert.equal((await imageTransfers.accept(transfer.id, null, t(4), accepted))?.status, 'accepted');
      assert.equal(await imageTransfers.accept(transfer.id, null, t(5), accepted), null);
      const cancelled = makeImageTransfer({ imageId: 'img-cancelled' });
      await imageTransfers.insert(cancelled);
      assert.equal(
        (await imageTransfers.transition(cancelled.id, ['pending'], 'cancelled', t(6), note('transfer.cancelled')))?.status,
        'cancelled',
      );
      const recorded = await drain(outbox, t(10));
      assert.deepEqual(summary(recorded), [
        ['transfer.created', transfer.id, t(1).getTime()],
        ['transfer.accepted', transfer.id, t(4).getTime()],
        ['image.owner-changed', image.id, t(4).getTime()],
        ['transfer.cancelled', cancelled.id, t(6).getTime()],
      ]);
      assert.deepEqual(
        recorded.slice(1, 3).map((e) => e.data),
        [{ status: 'accepted' }, { accountId: 'acct-taker' }],
        'the events are built from the accepted transfer and the moved image',
      );
    },
  },
  {
    name: 'outbox: account state writes record their events with them',
    async run(repos) {
      const outbox = declaring(repos, 'accountStates');
      if (!outbox) return;
      const { settings } = repos;
      const suspended: AccountState = { accountId: 'acct-s', status: 'suspended', since: t(1), updatedAt: t(1) };
      const event = (state: AccountState | null): OutboxDraft[] => [
        { type: state ? `account.${state.status}` : 'account.unsuspended', key: 'acct-s', data: { status: state?.status ?? null } },
      ];
      await assert.rejects(settings.putAccountState('acct-s', suspended, planted, t(1)), /planted/);
      assert.equal(await settings.getAccountState('acct-s'), null, 'the state was written without its events');
      await settings.putAccountState('acct-s', suspended, event, t(1));
      await assert.rejects(settings.putAccountState('acct-s', null, planted, t(2)), /planted/);
      assert.equal((await settings.getAccountState('acct-s'))?.status, 'suspended', 'the state was removed without its events');
      await settings.putAccountState('acct-s', null, event, t(3));
      assert.equal(await settings.getAccountState('acct-s'), null);
      assert.deepEqual(summary(await drain(outbox, t(10))), [
        ['account.suspended', 'acct-s', t(1).getTime()],
        ['account.unsuspended', 'acct-s', t(3).getTime()],
      ]);
    },
  },
  {
    name: 'outbox: undelivered events are pruned after their retention, never while claimed',
    async run(repos) {
      assert.ok(repos.outbox, 'the repositories have no outbox (repositories.outbox)');
      const { outbox } = repos;
      if (!outbox.pruneUndelivered) return;
      const [old, claimed, recent] = await outbox.append(
        [
          { type: 'test.note', key: 'a', data: 1 },
          { type: 'test.note', key: 'b', data: 2 },
          { type: 'test.note', key: 'c', data: 3 },
        ],
        t(0),
      );
      const [late] = await outbox.append([{ type: 'test.note', key: 'd', data: 4 }], t(20));
      assert.ok(old && claimed && recent && late);
      const held = await outbox.claim({ owner: 'w', now: t(1), leaseMs: 60 * 60_000, limit: 10 });
      // Keep only `claimed` under a live claim.
      for (const event of held) if (event.id !== claimed.id) await outbox.release(event.id, 'w', t(1), 'test');
      const pruned = await outbox.pruneUndelivered(t(10), t(5));
      assert.ok(await outbox.get(claimed.id), 'an event under a live claim was pruned');
      assert.ok(await outbox.get(late.id), 'an event younger than the retention was pruned');
      assert.equal(await outbox.get(old.id), null);
      assert.equal(await outbox.get(recent.id), null);
      assert.equal(pruned, 2);
    },
  },
];
