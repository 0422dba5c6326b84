import { describe, expect, it } from 'vitest';
import { admin, alice, codeOf, setup } from './setup';

describe('deleted images: history for operators only', () => {
  it('an admin lists deleted images with includeDeleted; customers never see them', async () => {
    const h = await setup({ limit: null });
    const kept = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'kept' });
    const gone = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'gone' });
    await h.ii.idle();
    await h.ii.images.deleteImage(alice, gone.image.id);
    await h.ii.idle();
    const names = (page: { items: { name: string; status: string }[] }) => page.items.map((i) => `${i.name}:${i.status}`).sort();
    expect(names(await h.ii.images.listImages(admin))).toEqual(['kept:available']);
    expect(names(await h.ii.images.listImages(admin, { includeDeleted: true }))).toEqual(['gone:deleted', 'kept:available']);
    expect(names(await h.ii.images.listImages(admin, { includeDeleted: true, accountId: 'acct-alice' }))).toEqual([
      'gone:deleted',
      'kept:available',
    ]);
    expect(names(await h.ii.images.listImages(admin, { includeDeleted: true, status: 'available' }))).toEqual(['kept:available']);
    expect(names(await h.ii.images.listImages(alice))).toEqual(['kept:available']);
    expect(await codeOf(h.ii.images.listImages(alice, { includeDeleted: true }))).toBe('FORBIDDEN');
    expect(kept.image.status).toBe('creating');
  });
});
