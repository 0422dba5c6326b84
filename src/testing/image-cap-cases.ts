/**
 * Conformance cases of the byte cap (`limit.maxBytes`) of `images.insertIfUnderLimit` and
 * `imageTransfers.accept`, and the holds of `images.reserveBytes`: each image counts its file size
 * once known, else its virtual size, else what an import holds; the
 * check and the write are one atomic step, so racing callers never overshoot the cap. Also the
 * `unlessProtected` condition of `images.transition` (a delete never overtakes a protection).
 * @module
 */
import assert from 'node:assert/strict';
import type { RepositoryCase } from './repository-suite';
import { fixtureTime as t, makeImage } from './fixtures';
import { makeImageTransfer } from './image-move-cases';

const GIB = 2 ** 30;

/** The byte-cap (and protection) cases, run by `testRepositories` with the rest. */
export const imageCapCases: readonly RepositoryCase[] = [
  {
    name: 'images: transition with unlessProtected leaves a protected image unchanged; the same status may be kept',
    async run({ images }) {
      const image = makeImage({ status: 'available' });
      await images.insert(image);
      // A compare-and-set that keeps the status (how protection is set).
      const kept = await images.transition(image.id, ['available'], 'available', { protected: true }, t(1));
      assert.equal(kept?.status, 'available');
      assert.equal(kept?.protected, true);
      assert.equal(await images.transition(image.id, ['available'], 'deleting', {}, t(2), undefined, { unlessProtected: true }), null);
      assert.equal((await images.get(image.id))?.status, 'available');
      await images.transition(image.id, ['available'], 'available', { protected: false }, t(3));
      const deleting = await images.transition(image.id, ['available'], 'deleting', {}, t(4), undefined, { unlessProtected: true });
      assert.equal(deleting?.status, 'deleting');
      // Never protected (absent) counts as unprotected; without the option protection is not looked at.
      const plain = makeImage({ status: 'error' });
      await images.insert(plain);
      assert.equal(
        (await images.transition(plain.id, ['error'], 'deleting', {}, t(5), undefined, { unlessProtected: true }))?.status,
        'deleting',
      );
      const kept2 = makeImage({ status: 'error', protected: true });
      await images.insert(kept2);
      assert.equal((await images.transition(kept2.id, ['error'], 'available', {}, t(6)))?.status, 'available');
    },
  },
  {
    name: 'images: insertIfUnderLimit with maxBytes counts file size, else virtual size, and refuses past the cap',
    async run({ images }) {
      const limit = { accountId: 'bytes', max: 100, maxBytes: 10 * GIB };
      // Available with a known file size: counts 2 GiB (not its 50 GiB virtual size).
      await images.insert(makeImage({ accountId: 'bytes', status: 'available', sizeBytes: 2 * GIB, virtualSizeBytes: 50 * GIB }));
      // Creating: the file size is unknown; counts its virtual size, 3 GiB.
      await images.insert(makeImage({ accountId: 'bytes', virtualSizeBytes: 3 * GIB }));
      // Deleted images and other accounts' images do not count.
      await images.insert(makeImage({ accountId: 'bytes', status: 'deleted', sizeBytes: 40 * GIB }));
      await images.insert(makeImage({ accountId: 'other', sizeBytes: 40 * GIB }));
      // 2 + 3 + 5 = 10 GiB: exactly at the cap is allowed.
      assert.equal(await images.insertIfUnderLimit(makeImage({ accountId: 'bytes', virtualSizeBytes: 5 * GIB }), limit), true);
      const refused = makeImage({ accountId: 'bytes', virtualSizeBytes: 1 });
      assert.equal(await images.insertIfUnderLimit(refused, limit), false);
      assert.equal(await images.get(refused.id), null);
      // A null byte cap is no cap; the count cap still holds.
      assert.equal(await images.insertIfUnderLimit(makeImage({ accountId: 'bytes', sizeBytes: GIB }), { ...limit, maxBytes: null }), true);
      assert.equal(
        await images.insertIfUnderLimit(makeImage({ accountId: 'bytes' }), { accountId: 'bytes', max: 4, maxBytes: null }),
        false,
      );
    },
  },
  {
    name: 'images: 40 parallel insertIfUnderLimit calls of 1 GiB against a 5 GiB byte cap leave exactly 5',
    async run({ images }) {
      const results = await Promise.all(
        Array.from({ length: 40 }, () =>
          images.insertIfUnderLimit(makeImage({ accountId: 'race-bytes', virtualSizeBytes: GIB }), {
            accountId: 'race-bytes',
            max: Number.POSITIVE_INFINITY,
            maxBytes: 5 * GIB,
          }),
        ),
      );
      assert.equal(results.filter(Boolean).length, 5);
      assert.equal(await images.countActive('race-bytes'), 5);
    },
  },
  {
    name: 'images: reserveBytes holds bytes of a creating custom image within the byte cap; the file size replaces the hold',
    async run({ images }) {
      await images.insert(makeImage({ accountId: 'hold', status: 'available', sizeBytes: 4 * GIB }));
      const importing = makeImage({ accountId: 'hold' });
      await images.insert(importing);
      // Its own current hold does not count against the new one: 4 + 6 = 10 GiB is at the cap.
      assert.equal((await images.reserveBytes(importing.id, 5 * GIB, 10 * GIB, t(1)))?.reservedBytes, 5 * GIB);
      const held = await images.reserveBytes(importing.id, 6 * GIB, 10 * GIB, t(2));
      assert.equal(held?.reservedBytes, 6 * GIB);
      assert.deepEqual(held?.updatedAt, t(2));
      assert.equal(await images.reserveBytes(importing.id, 6 * GIB + 1, 10 * GIB, t(3)), null);
      assert.equal((await images.get(importing.id))?.reservedBytes, 6 * GIB);
      // The hold counts for the account's other images: nothing fits beside it.
      assert.equal(
        await images.insertIfUnderLimit(makeImage({ accountId: 'hold', virtualSizeBytes: 1 }), {
          accountId: 'hold',
          max: 100,
          maxBytes: 10 * GIB,
        }),
        false,
      );
      // Without a cap any hold is taken; only creating custom images hold bytes.
      assert.equal((await images.reserveBytes(importing.id, 50 * GIB, null, t(4)))?.reservedBytes, 50 * GIB);
      const ready = makeImage({ accountId: 'hold', status: 'available', sizeBytes: GIB });
      await images.insert(ready);
      assert.equal(await images.reserveBytes(ready.id, GIB, null, t(5)), null);
      assert.equal(await images.reserveBytes('missing', GIB, null, t(5)), null);
      // Once the file size is known it counts instead of the hold.
      await images.transition(importing.id, ['creating'], 'available', { sizeBytes: GIB }, t(6));
      assert.equal(
        await images.insertIfUnderLimit(makeImage({ accountId: 'hold', virtualSizeBytes: 4 * GIB }), {
          accountId: 'hold',
          max: 100,
          maxBytes: 10 * GIB,
        }),
        true,
      );
    },
  },
  {
    name: 'images: 6 creating imports racing to hold 2 GiB each under a 7 GiB byte cap: exactly 3 hold',
    async run({ images }) {
      const imports = Array.from({ length: 6 }, () => makeImage({ accountId: 'hold-race' }));
      for (const image of imports) await images.insert(image);
      const held = await Promise.all(imports.map((image) => images.reserveBytes(image.id, 2 * GIB, 7 * GIB, t(1))));
      assert.equal(held.filter((image) => image !== null).length, 3);
      const stored = await Promise.all(imports.map((image) => images.get(image.id)));
      assert.equal(
        stored.reduce((sum, image) => sum + (image?.reservedBytes ?? 0), 0),
        6 * GIB,
      );
    },
  },
  {
    name: "image transfers: accept holds the recipient's byte cap, counting the image's own bytes",
    async run({ images, imageTransfers }) {
      const limit = { accountId: 'acct-taker', max: 100, maxBytes: 10 * GIB };
      await images.insert(makeImage({ accountId: 'acct-taker', status: 'available', sizeBytes: 6 * GIB }));
      const big = makeImage({ accountId: 'acct-giver', status: 'available', sizeBytes: 5 * GIB, virtualSizeBytes: GIB });
      const fits = makeImage({ accountId: 'acct-giver', status: 'available', sizeBytes: 4 * GIB });
      await images.insert(big);
      await images.insert(fits);
      const tooBig = makeImageTransfer({ imageId: big.id });
      await imageTransfers.insert(tooBig);
      // 6 + 5 GiB > 10 GiB (the file size counts, not the 1 GiB virtual size): nothing changes.
      assert.equal(await imageTransfers.accept(tooBig.id, limit, t(20)), null);
      assert.equal((await images.get(big.id))?.accountId, 'acct-giver');
      assert.equal((await imageTransfers.get(tooBig.id))?.status, 'pending');
      // 6 + 4 GiB: exactly at the cap is allowed.
      const offer = makeImageTransfer({ imageId: fits.id });
      await imageTransfers.insert(offer);
      assert.equal((await imageTransfers.accept(offer.id, limit, t(21)))?.status, 'accepted');
      assert.equal((await images.get(fits.id))?.accountId, 'acct-taker');
      // A null byte cap is no cap; the count cap (infinite here) still applies.
      assert.equal(
        (await imageTransfers.accept(tooBig.id, { accountId: 'acct-taker', max: Number.POSITIVE_INFINITY, maxBytes: null }, t(22)))?.status,
        'accepted',
      );
    },
  },
  {
    name: 'image transfers: 8 racing accepts of 1 GiB images to an account with 3 GiB of room move exactly 3',
    async run({ images, imageTransfers }) {
      await images.insert(makeImage({ accountId: 'acct-bytes', status: 'available', sizeBytes: 2 * GIB }));
      const offers = [];
      for (let i = 0; i < 8; i++) {
        const image = makeImage({ accountId: 'acct-giver', status: 'available', sizeBytes: GIB });
        await images.insert(image);
        const offer = makeImageTransfer({ imageId: image.id, toAccountId: 'acct-bytes' });
        await imageTransfers.insert(offer);
        offers.push(offer);
      }
      const limit = { accountId: 'acct-bytes', max: Number.POSITIVE_INFINITY, maxBytes: 5 * GIB };
      const results = await Promise.all(offers.map((offer) => imageTransfers.accept(offer.id, limit, t(30))));
      assert.equal(results.filter((r) => r !== null).length, 3);
      assert.equal(await images.countActive('acct-bytes'), 4);
      assert.equal((await imageTransfers.list({ toAccountId: 'acct-bytes', statuses: ['accepted'] })).items.length, 3);
    },
  },
];
