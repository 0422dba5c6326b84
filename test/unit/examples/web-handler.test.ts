/**
 * The web-handler examples: the images API mounted in a Hono app (called in process with
 * `app.request`, and served by @hono/node-server) and on a plain `node:http` server, beside the
 * host's own routes.
 */
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { describe, expect, it } from 'vitest';
import { createHonoApp } from '../../../examples/web-handler/hono';
import { createNodeServer } from '../../../examples/web-handler/node-http';
import { ALICE, readSse, useExpressHarness } from '../../support/express-harness';

const harness = useExpressHarness('node');
const alice = { 'x-account': 'acct-alice' };

describe('example: the images API mounted in Hono', () => {
  it('answers under /api/images beside the host routes, with Locations under the mount point', async () => {
    const t = await harness();
    const app = createHonoApp(t.ii);
    expect(await (await app.request('/')).text()).toBe('The host panel');
    const created = await app.request('/api/images/images', {
      method: 'POST',
      headers: { ...alice, 'content-type': 'application/json' },
      body: JSON.stringify({ instanceId: 'web-1', name: 'from hono' }),
    });
    expect(created.status).toBe(202);
    const { image, task } = (await created.json()) as { image: { id: string }; task: { id: string } };
    expect(created.headers.get('location')).toBe(`/api/images/images/${image.id}`);
    await t.ii.idle();
    const list = await app.request('/api/images/images', { headers: alice });
    expect(((await list.json()) as { items: { id: string }[] }).items.map((i) => i.id)).toEqual([image.id]);
    const events = await app.request(`/api/images/tasks/${task.id}/events?account=acct-alice`);
    expect((await readSse(events)).map((e) => e.event)).toEqual(['task', 'task.finished']);
    const unknown = await app.request('/api/images/nothing-here', { headers: alice });
    expect([unknown.status, unknown.headers.get('content-type')]).toEqual([404, 'application/problem+json; charset=utf-8']);
    const bad = await app.request('/api/images/images', { headers: { 'x-account': '../etc' } });
    expect([bad.status, ((await bad.json()) as { fields: { path: string }[] }).fields[0]?.path]).toEqual([400, 'x-account']);
    expect((await app.request('/api/images/images')).status).toBe(401);
    const doc = (await (await app.request('/api/images/openapi.json')).json()) as { servers: { url: string }[] };
    expect(doc.servers).toEqual([{ url: '/api/images' }]);
  });

  it('streams task events over @hono/node-server and stops them when the client goes away', async () => {
    const t = await harness();
    let release: () => void = () => undefined;
    t.world.captureGate = new Promise<void>((resolve) => (release = resolve));
    const created = await t.ii.images.createImage(ALICE, { instanceId: 'web-1', name: 'watched' });
    const server = serve({ fetch: createHonoApp(t.ii).fetch, port: 0, hostname: '127.0.0.1', overrideGlobalObjects: false });
    try {
      await new Promise<void>((resolve) => (server.listening ? resolve() : server.once('listening', () => resolve())));
      const { port } = server.address() as AddressInfo;
      const controller = new AbortController();
      const response = await fetch(`http://127.0.0.1:${port}/api/images/tasks/${created.task.id}/events`, {
        headers: alice,
        signal: controller.signal,
      });
      expect((await readSse(response, (events) => events.length >= 1))[0]?.event).toBe('task');
      expect(t.ii.events.all.get('task.progress')).toHaveLength(1);
      controller.abort();
      while ((t.ii.events.all.get('task.progress') ?? []).length > 0) await new Promise((resolve) => setTimeout(resolve, 5));
    } finally {
      release();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('example: the images API on node:http', () => {
  it('serves the API under /api/images and leaves other paths to the host', async () => {
    const t = await harness();
    const server = createNodeServer(t.ii);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      expect(await (await fetch(`${base}/`)).text()).toBe('The host panel');
      expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
      const created = await fetch(`${base}/api/images/images`, {
        method: 'POST',
        headers: { ...alice, 'content-type': 'application/json' },
        body: JSON.stringify({ instanceId: 'web-1', name: 'from node' }),
      });
      expect(created.status).toBe(202);
      expect(created.headers.get('location')).toMatch(/^\/api\/images\/images\//);
      const health = await fetch(`${base}/api/images/health`);
      expect([health.status, ((await health.json()) as { ok: boolean }).ok]).toEqual([200, true]);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
