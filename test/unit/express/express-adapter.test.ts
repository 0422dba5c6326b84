/**
 * What only the Express adapter does: it runs after a host's own body parser (the body is already
 * consumed), mounted at the root it leaves unknown paths to the host's routes, and its
 * `resolveActor` receives the Express request.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { createImagesRouter } from '../../../adapters/express';
import { useExpressHarness } from '../../support/express-harness';

const harness = useExpressHarness('express');
let server: Server | null = null;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

async function listen(app: express.Express): Promise<string> {
  server = createServer(app);
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('the Express adapter', () => {
  it("works behind the host's own express.json(), and mounted at the root leaves other paths to the host", async () => {
    const t = await harness();
    const app = express();
    app.use(express.json());
    app.use(
      createImagesRouter({ service: t.ii, resolveActor: (req) => ({ kind: 'customer', accountId: req.get('x-account') ?? 'none' }) }),
    );
    app.get('/host-page', (_req, res) => {
      res.send('the host');
    });
    const base = await listen(app);
    const created = await fetch(`${base}/images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-account': 'acct-alice' },
      body: JSON.stringify({ instanceId: 'web-1', name: 'parsed by the host' }),
    });
    expect(created.status).toBe(202);
    expect(((await created.json()) as { image: { name: string; accountId: string } }).image).toMatchObject({
      name: 'parsed by the host',
      accountId: 'acct-alice',
    });
    expect(created.headers.get('location')).toMatch(/^\/images\//);
    const unknownField = await fetch(`${base}/images`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-account': 'acct-alice' },
      body: JSON.stringify({ instanceId: 'web-1', name: 'x', sneaky: 1 }),
    });
    expect(unknownField.status).toBe(400);
    expect(await (await fetch(`${base}/host-page`)).text()).toBe('the host');
    // At the root, a path the API does not take is the host's: Express's own 404, not a problem.
    const elsewhere = await fetch(`${base}/nothing`);
    expect([elsewhere.status, elsewhere.headers.get('content-type')]).toEqual([404, 'text/html; charset=utf-8']);
  });
});
