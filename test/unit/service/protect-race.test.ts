import { describe, expect, it } from 'vitest';
import type { Image, ImageRepository, Repositories } from '../../../src';
import { createMemoryRepositories } from '../../../src/memory';
import { alice, codeOf, setup, type Harness } from './setup';

/** Memory repositories whose image writes call `before` first (to run the other side of a race there). */
function interceptedRepositories(before: (write: { to: Image['status'] | null; patch: Partial<Image> }) => Promise<void>): Repositories {
  const repos = createMemoryRepositories();
  const images = repos.images;
  const intercepted: ImageRepository = Object.assign(Object.create(images) as ImageRepository, {
    transition: async (...args: Parameters<ImageRepository['transition']>) => {
      await before({ to: args[2], patch: args[3] });
      return images.transition(...args);
    },
    update: async (...args: Parameters<ImageRepository['update']>) => {
      await before({ to: null, patch: args[1] });
      return images.update(...args);
    },
  });
  return { ...repos, images: intercepted };
}

async function available(h: Harness): Promise<Image> {
  const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'raced' });
  await h.ii.idle();
  return h.ii.images.getImage(alice, image.id);
}

describe('protecting an image while it is being deleted', () => {
  it('a protection that lands between the delete’s read and its compare-and-set stops the delete', async () => {
    let race: (() => Promise<unknown>) | null = null;
    const h = await setup({
      repositories: interceptedRepositories(async ({ to }) => {
        const run = race;
        if (to === 'deleting' && run) {
          race = null;
          await run();
        }
      }),
    });
    const image = await available(h);
    race = () => h.ii.metadata.setProtected(alice, image.id, true);
    expect(await codeOf(h.ii.images.deleteImage(alice, image.id))).toBe('IMAGE_PROTECTED');
    const after = await h.ii.images.getImage(alice, image.id);
    expect([after.status, after.protected]).toEqual(['available', true]);
  });

  it('a delete that lands between the protection’s read and its write refuses the protection', async () => {
    let race: (() => Promise<unknown>) | null = null;
    const h = await setup({
      repositories: interceptedRepositories(async ({ patch }) => {
        const run = race;
        if (patch.protected === true && run) {
          race = null;
          await run();
        }
      }),
    });
    const image = await available(h);
    race = () => h.ii.images.deleteImage(alice, image.id);
    expect(await codeOf(h.ii.metadata.setProtected(alice, image.id, true))).toBe('INVALID_STATE');
    const after = await h.ii.repositories.images.get(image.id);
    expect(after?.status).toMatch(/^(deleting|deleted)$/);
    expect(after?.protected ?? false).toBe(false);
  });

  it('racing freely (20 rounds), exactly one wins and a protected image is never deleting', async () => {
    const h = await setup({ limit: 30 });
    for (let round = 0; round < 20; round++) {
      const image = await available(h);
      const [protect, remove] = await Promise.allSettled([
        h.ii.metadata.setProtected(alice, image.id, true),
        h.ii.images.deleteImage(alice, image.id),
      ]);
      const after = await h.ii.repositories.images.get(image.id);
      const deleting = after?.status === 'deleting' || after?.status === 'deleted';
      expect(deleting && after?.protected === true, `round ${round}: ${after?.status}, protected ${after?.protected}`).toBe(false);
      expect([protect.status, remove.status].filter((s) => s === 'fulfilled')).toHaveLength(1);
      await h.ii.idle();
    }
  });
});
