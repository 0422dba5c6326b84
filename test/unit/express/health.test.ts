import { describe, expect, it } from 'vitest';
import { startExpressHarness, describeEachServer } from '../../support/express-harness';

describeEachServer((server) => {
  describe('HTTP API: GET /health', () => {
    it('answers 200 without an actor while the repositories answer and the queue runs, 503 once closed', async () => {
      const t = await startExpressHarness({ server });
      try {
        const up = await t.call('GET', '/health', { actor: null });
        expect(up.status).toBe(200);
        expect(up.json).toEqual({
          ok: true,
          checks: { repositories: { ok: true, message: 'ok' }, queue: { ok: true, message: 'ok' } },
        });
        expect(up.headers.get('cache-control')).toBe('no-store');
        await t.ii.close();
        const down = await t.call('GET', '/health', { actor: null });
        expect(down.status).toBe(503);
        expect(down.json.ok).toBe(false);
        expect(down.json.checks.queue).toEqual({ ok: false, message: 'the SDK was closed' });
      } finally {
        await t.close();
      }
    });

    it('reports repositories that fail or hang, without their error text', async () => {
      const t = await startExpressHarness({ server });
      try {
        const tasks = t.ii.repositories.tasks;
        const original = tasks.get.bind(tasks);
        tasks.get = () => Promise.reject(new Error('password=hunter2 connection refused'));
        const failing = await t.ii.health();
        expect(failing.checks.repositories).toEqual({ ok: false, message: 'the repositories failed: unexpected error' });
        expect(JSON.stringify(failing)).not.toContain('hunter2');
        tasks.get = () => new Promise(() => undefined);
        const hanging = await t.ii.health({ timeoutMs: 20 });
        expect(hanging).toMatchObject({
          ok: false,
          checks: { repositories: { ok: false, message: 'the repositories did not answer within 20 ms' } },
        });
        tasks.get = original;
        expect((await t.ii.health()).ok).toBe(true);
      } finally {
        await t.close();
      }
    });
  });
});
