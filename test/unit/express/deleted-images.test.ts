/** GET /admin/images?includeDeleted=true: operators see deleted images (history); the customer route has no such parameter. */
import { afterEach, describe, expect, it } from 'vitest';
import { ADMIN, startExpressHarness, type ExpressHarness, describeEachServer } from '../../support/express-harness';

describeEachServer((server) => {
  let h: ExpressHarness | null = null;
  afterEach(async () => {
    await h?.close();
    h = null;
  });

  describe('HTTP API: deleted images for operators', () => {
    it('GET /admin/images?includeDeleted=true adds deleted images; without it, and for customers, they stay hidden', async () => {
      const t = (h = await startExpressHarness({ server }));
      const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'gone' } });
      await t.ii.idle();
      expect((await t.call('DELETE', `/images/${created.json.image.id}`)).status).toBe(202);
      await t.ii.idle();
      const hidden = await t.call('GET', '/admin/images', { actor: ADMIN });
      expect(hidden.status).toBe(200);
      expect(hidden.json.items).toEqual([]);
      const history = await t.call('GET', '/admin/images?includeDeleted=true', { actor: ADMIN });
      expect(history.status).toBe(200);
      expect(history.json.items.map((i: { id: string; status: string }) => [i.id, i.status])).toEqual([[created.json.image.id, 'deleted']]);
      // The customer route has no includeDeleted: it is ignored (or rejected as unknown), never honoured.
      const customer = await t.call('GET', '/images?includeDeleted=true');
      expect([200, 400]).toContain(customer.status);
      expect(customer.json.items ?? []).toEqual([]);
      const doc = await t.call('GET', '/openapi.json', { actor: null });
      const parameters = (path: string) => (doc.json.paths[path].get.parameters as { name: string }[]).map((p) => p.name);
      expect(parameters('/admin/images')).toContain('includeDeleted');
      expect(parameters('/images')).not.toContain('includeDeleted');
    });
  });
});
