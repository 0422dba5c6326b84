/**
 * Serving the images API from a plain `node:http` server, no framework: `toNodeListener` turns
 * the web-standard handler into a request listener (request bodies streamed from the socket,
 * responses written with backpressure, streams stopped when the client goes away). The host's
 * own routes come first; everything under `/api/images` goes to the handler.
 */
import { createServer, type Server } from 'node:http';
import { createImagesHandler, toNodeListener } from '../../adapters/http';
import type { InstanceImages } from '../../src';
import { actorFromRequest } from './session';

/** An HTTP server (not yet listening) with the images API at `/api/images`. */
export function createNodeServer(sdk: InstanceImages): Server {
  const images = toNodeListener(
    createImagesHandler({ service: sdk, resolveActor: actorFromRequest, basePath: '/api/images', hostQueryParameters: ['account'] }),
    (error) => console.error('[panel] writing a response failed', error),
  );
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] as string;
    if (path === '/api/images' || path.startsWith('/api/images/')) {
      images(req, res);
      return;
    }
    if (req.method === 'GET' && path === '/') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('The host panel');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found');
  });
}
