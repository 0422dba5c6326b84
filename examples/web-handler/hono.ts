/**
 * Mounting the images API in a Hono app: the web-standard handler answers everything under
 * `/api/images`, the host's own routes live beside it. Run it on Node with @hono/node-server
 * (`serve({ fetch: app.fetch, port })`), or export `app` on Bun, Deno or a worker runtime.
 */
import { Hono } from 'hono';
import { createImagesHandler } from '../../adapters/http';
import type { InstanceImages } from '../../src';
import { actorFromRequest } from './session';

/** The host's Hono app with the images API at `/api/images`. */
export function createHonoApp(sdk: InstanceImages): Hono {
  const images = createImagesHandler({
    service: sdk,
    resolveActor: actorFromRequest,
    // Where the API is mounted, as seen in request URLs: Location headers and links use it.
    basePath: '/api/images',
    // `account` belongs to the demo session (EventSource requests cannot send headers).
    hostQueryParameters: ['account'],
  });
  const app = new Hono();
  app.get('/', (c) => c.text('The host panel'));
  // The handler reads the raw Request (its body as a stream, its signal) and returns the Response as is.
  app.all('/api/images/*', (c) => images(c.req.raw));
  return app;
}
