/**
 * Conformance cases of the image share and transfer repositories, including the atomic
 * operations: one open share per image and recipient, one pending transfer per image, and
 * `imageTransfers.accept` (ownership change with the recipient's cap, under racing callers).
 * @module
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { isInstanceImagesError } from '../errors';
import type { ImageShare, ImageTransfer } from '../model/image-move';
import type { RepositoryCase } from './repository-suite';
import { FIXTURE_TIME, fixtureTime as t, makeImage } from './fixtures';

/** A valid pending share, with overrides. */
export function makeImageShare(overrides: Partial<ImageShare> = {}): ImageShare {
  return {
    id: `shr_${randomUUID()}`,
    imageId: randomUUID(),
    ownerAccountId: 'acct-owner',
    accountId: 'acct-recipient',
    status: 'pending',
    createdAt: FIXTURE_TIME,
    updatedAt: FIXTURE_TIME,
    decidedAt: null,
    ...overrides,
  };
}

/** A valid pending transfer (expiring a day after {@link FIXTURE_TIME}), with overrides. */
export function makeImageTransfer(overrides: Partial<ImageTransfer> = {}): ImageTransfer {
  return {
    id: `xfr_${randomUUID()}`,
    imageId: randomUUID(),
    fromAccountId: 'acct-giver',
    toAccountId: 'acct-taker',
    status: 'pending',
    expiresAt: t(24 * 60),
    createdAt: FIXTURE_TIME,
    updatedAt: FIXTURE_TIME,
    decidedAt: null,
    ...overrides,
  };
}

const rejectsWithCode = (promise: Promise<unknown>, code: string) =>
  assert.rejects(promise, (error: unknown) => isInstanceImagesError(error) && error.code === code);

/** The share and transfer cases of the repository conformance suite. */
export const imageMoveCases: readonly RepositoryCase[] = [
  {
    name: 'image shares: insert, get (every field), filters, newest-first paging; duplicate id is CONFLICT',
    async run({ imageShares }) {
      const complete = makeImageShare({ status: 'accepted', decidedAt: t(2), updatedAt: t(2), createdAt: t(1) });
      await imageShares.insert(complete);
      assert.deepEqual(await imageShares.get(complete.id), complete);
      assert.equal(await imageShares.get('missing'), null);
      await rejectsWithCode(imageShares.insert({ ...complete, accountId: 'someone-else' }), 'CONFLICT');
      const many = Array.from({ length: 5 }, (_, i) =>
        makeImageShare({ imageId: 'img-a', accountId: `r-${i}`, createdAt: t(10 + (i % 3)) }),
      );
      for (const share of many) await imageShares.insert(share);
      const seen: ImageShare[] = [];
      let cursor: string | null = null;
      do {
        const page = await imageShares.list({ imageId: 'img-a' }, { cursor, limit: 2 });
        seen.push(...page.items);
        cursor = page.nextCursor;
      } while (cursor !== null);
      const key = (s: ImageShare) => [s.createdAt.getTime(), s.id] as const;
      const expected = [...many].sort((a, b) => key(b)[0] - key(a)[0] || (key(b)[1] < key(a)[1] ? -1 : key(b)[1] > key(a)[1] ? 1 : 0));
      assert.deepEqual(
        seen.map((s) => s.id),
        expected.map((s) => s.id),
      );
      assert.deepEqual(
        (await imageShares.list({ accountId: 'r-1' })).items.map((s) => s.id),
        [many[1]?.id],
      );
      assert.deepEqual(
        (await imageShares.list({ ownerAccountId: 'acct-owner', statuses: ['accepted'] })).items.map((s) => s.id),
        [complete.id],
      );
    },
  },
  {
    name: 'image shares: one open share per image and recipient, also under 10 racing inserts; an ended one allows a new one',
    async run({ imageShares }) {
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => imageShares.insert(makeImageShare({ imageId: 'img-r' }))));
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      for (const r of results) if (r.status === 'rejected') assert.ok(isInstanceImagesError(r.reason, 'CONFLICT'));
      const [open] = (await imageShares.list({ imageId: 'img-r' })).items;
      assert.ok(open);
      const rejected = await imageShares.transition(open.id, ['pending'], 'rejected', t(5));
      assert.equal(rejected?.status, 'rejected');
      assert.deepEqual(rejected?.decidedAt, t(5));
      await imageShares.insert(makeImageShare({ imageId: 'img-r' }));
    },
  },
  {
    name: 'image shares: transition is a compare-and-set (one of two racers wins); revokeAllOf ends only open shares',
    async run({ imageShares }) {
      const share = makeImageShare({ imageId: 'img-s' });
      await imageShares.insert(share);
      const [a, b] = await Promise.all([
        imageShares.transition(share.id, ['pending'], 'accepted', t(1)),
        imageShares.transition(share.id, ['pending'], 'rejected', t(1)),
      ]);
      assert.equal([a, b].filter((x) => x !== null).length, 1);
      assert.equal(await imageShares.transition('missing', ['pending'], 'accepted', t(1)), null);
      const other = makeImageShare({ imageId: 'img-s', accountId: 'acct-2' });
      const ended = makeImageShare({ imageId: 'img-s', accountId: 'acct-3', status: 'rejected', decidedAt: t(0) });
      const elsewhere = makeImageShare({ imageId: 'img-other' });
      for (const s of [other, ended, elsewhere]) await imageShares.insert(s);
      const revoked = await imageShares.revokeAllOf('img-s', t(9));
      const expected = [other.id, ...(a !== null ? [share.id] : [])].sort();
      assert.deepEqual(revoked.map((s) => s.id).sort(), expected);
      assert.ok(revoked.every((s) => s.status === 'revoked' && s.decidedAt?.getTime() === t(9).getTime()));
      assert.equal((await imageShares.get(ended.id))?.status, 'rejected');
      assert.equal((await imageShares.get(elsewhere.id))?.status, 'pending');
    },
  },
  {
    name: 'image transfers: insert, get (every field), filters; one pending transfer per image (10 racing inserts)',
    async run({ imageTransfers }) {
      const complete = makeImageTransfer({ status: 'cancelled', decidedAt: t(3), updatedAt: t(3) });
      await imageTransfers.insert(complete);
      assert.deepEqual(await imageTransfers.get(complete.id), complete);
      await rejectsWithCode(imageTransfers.insert({ ...complete, toAccountId: 'x' }), 'CONFLICT');
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, () => imageTransfers.insert(makeImageTransfer({ imageId: complete.imageId }))),
      );
      assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
      assert.equal((await imageTransfers.list({ imageId: complete.imageId, statuses: ['pending'] })).items.length, 1);
      assert.equal((await imageTransfers.list({ toAccountId: 'acct-taker' })).items.length, 2);
      assert.equal((await imageTransfers.list({ fromAccountId: 'nobody' })).items.length, 0);
    },
  },
  {
    name: 'image transfers: accept moves the image and accepts together, only when every condition holds',
    async run({ images, imageTransfers }) {
      const image = makeImage({ accountId: 'acct-giver', status: 'available' });
      await images.insert(image);
      const expired = makeImageTransfer({ imageId: image.id, expiresAt: t(10) });
      await imageTransfers.insert(expired);
      assert.equal(await imageTransfers.accept(expired.id, null, t(10)), null);
      assert.equal((await images.get(image.id))?.accountId, 'acct-giver');
      await imageTransfers.transition(expired.id, ['pending'], 'expired', t(10));

      const offer = makeImageTransfer({ imageId: image.id });
      await imageTransfers.insert(offer);
      // the recipient has no room
      await images.insert(makeImage({ accountId: 'acct-taker', status: 'available' }));
      assert.equal(await imageTransfers.accept(offer.id, { accountId: 'acct-taker', max: 1 }, t(20)), null);
      assert.equal((await images.get(image.id))?.accountId, 'acct-giver');
      assert.equal((await imageTransfers.get(offer.id))?.status, 'pending');

      const accepted = await imageTransfers.accept(offer.id, { accountId: 'acct-taker', max: 2 }, t(21));
      assert.equal(accepted?.status, 'accepted');
      assert.deepEqual(accepted?.decidedAt, t(21));
      const moved = await images.get(image.id);
      assert.equal(moved?.accountId, 'acct-taker');
      assert.deepEqual(moved?.updatedAt, t(21));
      assert.equal(moved?.status, 'available');
      assert.equal(moved?.sourceInstanceId, null);
      assert.equal(moved?.sourceInstanceName, null);
      assert.equal(await imageTransfers.accept(offer.id, null, t(22)), null);
      assert.equal(await imageTransfers.accept('missing', null, t(22)), null);

      // an image that is not available (or no longer the giver's) is never moved
      const busy = makeImage({ accountId: 'acct-giver', status: 'deleting' });
      await images.insert(busy);
      const late = makeImageTransfer({ imageId: busy.id });
      await imageTransfers.insert(late);
      assert.equal(await imageTransfers.accept(late.id, null, t(23)), null);
      assert.equal((await images.get(busy.id))?.accountId, 'acct-giver');
    },
  },
  {
    name: 'image transfers: 8 racing accepts to one account with room for 3 move exactly 3 images',
    async run({ images, imageTransfers }) {
      const offers: ImageTransfer[] = [];
      for (let i = 0; i < 8; i++) {
        const image = makeImage({ accountId: 'acct-giver', status: 'available' });
        await images.insert(image);
        const offer = makeImageTransfer({ imageId: image.id, toAccountId: 'acct-race' });
        await imageTransfers.insert(offer);
        offers.push(offer);
      }
      const results = await Promise.all(offers.map((o) => imageTransfers.accept(o.id, { accountId: 'acct-race', max: 3 }, t(30))));
      assert.equal(results.filter((r) => r !== null).length, 3);
      assert.equal(await images.countActive('acct-race'), 3);
      assert.equal((await imageTransfers.list({ toAccountId: 'acct-race', statuses: ['accepted'] })).items.length, 3);
    },
  },
  {
    name: 'image transfers: accept racing a cancel never leaves a moved image under a transfer that is not accepted (20 rounds)',
    async run({ images, imageTransfers }) {
      for (let round = 0; round < 20; round++) {
        const image = makeImage({ accountId: 'acct-giver', status: 'available' });
        await images.insert(image);
        const offer = makeImageTransfer({ imageId: image.id });
        await imageTransfers.insert(offer);
        await Promise.all([
          imageTransfers.accept(offer.id, null, t(40)),
          imageTransfers.transition(offer.id, ['pending'], 'cancelled', t(40)),
        ]);
        const status = (await imageTransfers.get(offer.id))?.status;
        const owner = (await images.get(image.id))?.accountId;
        assert.ok(
          (status === 'accepted' && owner === 'acct-taker') || (status === 'cancelled' && owner === 'acct-giver'),
          `round ${round}: transfer ${status}, image owned by ${owner}`,
        );
      }
    },
  },
];
