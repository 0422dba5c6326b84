/**
 * `createImagesRouter`: the images API as an Express 5 router. It is a thin adapter over the
 * web-standard handler of `instance-images/http` (one route table, one set of problem answers):
 * each Express request becomes a web `Request` (its body streamed from the socket, its signal
 * aborted when the client goes away), and the handler's `Response` is written back with
 * backpressure. Only `resolveActor` sees the Express request itself.
 * @module
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import type { Actor } from '../../src/services/actor';
import { parseOrThrow } from '../../src/util/validate';
import { createImagesDispatcher, HTTP_OPTIONS_SHAPE, type ImagesHttpOptions } from '../http/handler';
import { sendWebResponse, toWebRequest } from '../http/node';

/** Decides who is calling, from the host's own session or auth; `null` means unauthenticated (401). */
export type ResolveActor = (req: Request) => Actor | null | Promise<Actor | null>;

/** Options of {@link createImagesRouter}. */
export interface ImagesRouterOptions extends ImagesHttpOptions {
  /** Who the caller is. Return an admin actor only for operators: `/admin` routes refuse anyone else with 403. */
  resolveActor: ResolveActor;
}

const OptionsSchema = z.strictObject(HTTP_OPTIONS_SHAPE);

/**
 * The body a host's own body parser (e.g. `express.json()` before the router) already read from
 * the socket: its text again (JSON for a parsed object), or `undefined` when the socket still has it.
 */
function consumedBody(req: Request): string | Uint8Array | undefined {
  if (!req.readableEnded) return undefined;
  const body: unknown = req.body;
  if (typeof body === 'string' || body instanceof Uint8Array) return body;
  return body !== undefined && body !== null && typeof body === 'object' ? JSON.stringify(body) : undefined;
}

/**
 * Creates the images router. Mount it where the host wants the API (`app.use('/api', router)`):
 * unknown paths and methods below the mount point get 404/405 problems; mounted at the root, the
 * router answers only its own routes and leaves anything else to the host.
 * @throws InstanceImagesError VALIDATION_FAILED naming the bad option.
 */
export function createImagesRouter(options: ImagesRouterOptions): Router {
  const parsed = parseOrThrow(OptionsSchema, options, 'createImagesRouter options');
  const requests = new WeakMap<globalThis.Request, Request>();
  const dispatcher = createImagesDispatcher(
    { ...options, resolveActor: (request) => options.resolveActor(requests.get(request) as Request) },
    parsed,
  );
  const router = express.Router();
  router.use((req: Request, res: Response, next: NextFunction) => {
    const body = consumedBody(req);
    const request = toWebRequest(req, res, { url: req.originalUrl, ...(body !== undefined ? { body } : {}) });
    requests.set(request, req);
    dispatcher
      .dispatch(request, { basePath: req.baseUrl, fallthrough: req.baseUrl === '' })
      .then((response) => (response ? sendWebResponse(response, req, res) : next()))
      .catch(next);
  });
  return router;
}
