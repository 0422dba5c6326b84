/**
 * Conformance cases of the byte cap of `images.insertIfUnderLimit` (`limit.maxBytes`): each
 * image counts its file size once known, else its virtual size; the check and the insert are one
 * atomic step, so racing callers never overshoot the cap.
 * @module
 */
import assert from 'node:assert/strict';
import type { RepositoryCase } from './repository-suite';
import { makeImage } from './fixtures';

const GIB = 2 ** 30;

/** The byte-cap cases, run by `testRepositories` with the rest. */
export const imageCapCases: readonly RepositoryCase[] = [
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
];
