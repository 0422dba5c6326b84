import { describe, expect, it } from 'vitest';
import { createMemoryRepositories } from '../../../src/memory';
import { runRepositoryCase } from '../../../src/testing';
import { imageCapBytes, type Image, type ImageLimit, type ImageStatus, type Repositories } from '../../../src';

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A limit check that reads, then writes, in two steps: the classic race. */
function withRacyLimit(repos: Repositories): Repositories {
  const images = repos.images;
  return {
    ...repos,
    images: {
      ...images,
      get: images.get.bind(images),
      list: images.list.bind(images),
      countActive: images.countActive.bind(images),
      insert: images.insert.bind(images),
      transition: images.transition.bind(images),
      update: images.update.bind(images),
      reserveBytes: images.reserveBytes.bind(images),
      async insertIfUnderLimit(image: Image, limit) {
        const count = await images.countActive(limit.accountId);
        await tick();
        if (count >= limit.max) return false;
        await images.insert(image);
        return true;
      },
    },
  };
}

/** A byte cap that sums, then inserts, in two steps (the count cap left to the real one). */
function withRacyByteLimit(repos: Repositories): Repositories {
  const images = repos.images;
  return {
    ...repos,
    images: {
      get: images.get.bind(images),
      list: images.list.bind(images),
      countActive: images.countActive.bind(images),
      insert: images.insert.bind(images),
      transition: images.transition.bind(images),
      update: images.update.bind(images),
      reserveBytes: images.reserveBytes.bind(images),
      async insertIfUnderLimit(image: Image, limit) {
        const mine = await images.list({ kind: 'custom', accountId: limit.accountId }, { limit: 500 });
        const used = mine.items.reduce((sum, each) => sum + imageCapBytes(each), 0);
        await tick();
        if (limit.maxBytes != null && used + imageCapBytes(image) > limit.maxBytes) return false;
        return images.insertIfUnderLimit(image, { accountId: limit.accountId, max: limit.max });
      },
    },
  };
}

/** A compare-and-set that reads, then writes, in two steps. */
function withRacyTransition(repos: Repositories): Repositories {
  const images = repos.images;
  return {
    ...repos,
    images: {
      get: images.get.bind(images),
      list: images.list.bind(images),
      countActive: images.countActive.bind(images),
      insert: images.insert.bind(images),
      insertIfUnderLimit: images.insertIfUnderLimit.bind(images),
      update: images.update.bind(images),
      reserveBytes: images.reserveBytes.bind(images),
      async transition(id: string, from: readonly ImageStatus[], to: ImageStatus, patch, now: Date) {
        const current = await images.get(id);
        await tick();
        if (!current || !from.includes(current.status)) return null;
        return images.transition(id, [current.status], to, patch, now).then(() => images.get(id));
      },
    },
  };
}

/** A transfer acceptance that sums the recipient's bytes, then accepts under the count cap only. */
function withRacyTransferBytes(repos: Repositories): Repositories {
  const { images, imageTransfers } = repos;
  return {
    ...repos,
    imageTransfers: Object.assign(Object.create(imageTransfers) as Repositories['imageTransfers'], {
      async accept(id: string, limit: ImageLimit | null, now: Date) {
        const transfer = await imageTransfers.get(id);
        const image = transfer && (await images.get(transfer.imageId));
        if (!transfer || !image) return null;
        const mine = await images.list({ kind: 'custom', accountId: transfer.toAccountId }, { limit: 500 });
        const used = mine.items.reduce((sum, each) => sum + imageCapBytes(each), imageCapBytes(image));
        await tick();
        if (limit?.maxBytes != null && used > limit.maxBytes) return null;
        return imageTransfers.accept(id, limit && { accountId: limit.accountId, max: limit.max }, now);
      },
    }),
  };
}

/** A byte hold that sums the account's other images, then writes (the cap left unchecked in the write). */
function withRacyReserve(repos: Repositories): Repositories {
  const images = repos.images;
  return {
    ...repos,
    images: Object.assign(Object.create(images) as Repositories['images'], {
      async reserveBytes(id: string, bytes: number, maxBytes: number | null, now: Date) {
        const image = await images.get(id);
        if (!image?.accountId) return null;
        const mine = await images.list({ kind: 'custom', accountId: image.accountId }, { limit: 500 });
        const used = mine.items.filter((each) => each.id !== id).reduce((sum, each) => sum + imageCapBytes(each), bytes);
        await tick();
        if (maxBytes !== null && used > maxBytes) return null;
        return images.reserveBytes(id, bytes, null, now);
      },
    }),
  };
}

describe('the conformance suite catches broken implementations', () => {
  it('a sum-then-write byte hold fails the racing hold case, and passes the sequential one', async () => {
    const name = 'images: 6 creating imports racing to hold 2 GiB each under a 7 GiB byte cap: exactly 3 hold';
    await expect(runRepositoryCase(name, withRacyReserve(createMemoryRepositories()))).rejects.toThrow();
    await runRepositoryCase(name, createMemoryRepositories());
    await runRepositoryCase(
      'images: reserveBytes holds bytes of a creating custom image within the byte cap; the file size replaces the hold',
      withRacyReserve(createMemoryRepositories()),
    );
  });

  it('a sum-then-accept transfer fails the racing byte-cap case, and passes the sequential one', async () => {
    const name = 'image transfers: 8 racing accepts of 1 GiB images to an account with 3 GiB of room move exactly 3';
    await expect(runRepositoryCase(name, withRacyTransferBytes(createMemoryRepositories()))).rejects.toThrow();
    await runRepositoryCase(name, createMemoryRepositories());
    await runRepositoryCase(
      "image transfers: accept holds the recipient's byte cap, counting the image's own bytes",
      withRacyTransferBytes(createMemoryRepositories()),
    );
  });

  it('a read-then-write limit check fails the 50-parallel cap case', async () => {
    await expect(
      runRepositoryCase(
        'images: 50 parallel insertIfUnderLimit calls against a cap of 5 leave exactly 5',
        withRacyLimit(createMemoryRepositories()),
      ),
    ).rejects.toThrow();
  });

  it('a sum-then-insert byte cap fails the parallel byte-cap case, and passes the sequential one', async () => {
    const name = 'images: 40 parallel insertIfUnderLimit calls of 1 GiB against a 5 GiB byte cap leave exactly 5';
    await expect(runRepositoryCase(name, withRacyByteLimit(createMemoryRepositories()))).rejects.toThrow();
    await runRepositoryCase(name, createMemoryRepositories());
    await runRepositoryCase(
      'images: insertIfUnderLimit with maxBytes counts file size, else virtual size, and refuses past the cap',
      withRacyByteLimit(createMemoryRepositories()),
    );
  });

  it('a read-then-write compare-and-set fails the racing transition case', async () => {
    await expect(
      runRepositoryCase('images: of two racing transitions exactly one wins (20 rounds)', withRacyTransition(createMemoryRepositories())),
    ).rejects.toThrow();
  });

  it('the correct memory implementation passes both', async () => {
    await runRepositoryCase('images: 50 parallel insertIfUnderLimit calls against a cap of 5 leave exactly 5', createMemoryRepositories());
    await runRepositoryCase('images: of two racing transitions exactly one wins (20 rounds)', createMemoryRepositories());
  });
});
