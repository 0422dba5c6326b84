/**
 * `createImagesHandler`: the customer and operator HTTP API of the SDK as one web-standard
 * function, `(request: Request) => Promise<Response>`, that any framework mounts (Hono, Next.js
 * route handlers, Bun, Deno, `node:http` through {@link toNodeListener}; Express through
 * `instance-images/adapters/express`, which runs this same handler). Each request goes: match the
 * route table (404/405 problems under the mount point) → resolve the actor (401) → admin guard on
 * `/admin` routes (403) → path ids, query and body validated with the core's zod schemas (400,
 * 413, 415) → the service → JSON, a stream, or `application/problem+json` for every error.
 * @module
 */
import { z } from 'zod';
import { InstanceImagesError } from '../../src/errors';
import { IdSchema } from '../../src/model/common';
import { ActorSchema, type Actor } from '../../src/services/actor';
import type { Logger } from '../../src/services/context';
import { parseOrThrow } from '../../src/util/validate';
import { readJsonBody, mediaType } from './body';
import { createOpenApiDocument, type OpenApiDocument } from './openapi';
import { codedError, HttpProblem } from './problem';
import { parseQuery } from './query';
import { emptyResponse, jsonResponse, problemResponse } from './responses';
import type { ImagesRouterService, RouteDefinition, RouteRuntime } from './route-types';
import { IMAGES_ROUTES } from './routes';
import { matchable, matchRoute, type MatchableRoute } from './routing';
import { createTusHandler, TUS_ROUTES } from '../tus/handler';

/** Decides who is calling from a web request (the host's session cookie, token…); `null` means unauthenticated (401). */
export type ResolveRequestActor = (request: Request) => Actor | null | Promise<Actor | null>;

/** Options shared by {@link createImagesHandler} and the Express router. */
export interface ImagesHttpOptions {
  /** The SDK (the object `createInstanceImages` returns). */
  service: ImagesRouterService;
  /** Largest ISO upload in bytes. @default 17179869184 (16 GiB) */
  maxIsoUploadBytes?: number;
  /** Largest JSON body in bytes. @default 65536 (64 KiB) */
  maxJsonBytes?: number;
  /** Interval of keep-alive comments on task event streams. @default 15000 */
  sseHeartbeatMs?: number;
  /** Where unexpected errors (500s and upstream failures) are logged with their cause. @default silent */
  logger?: Logger;
  /** Serve the OpenAPI document at `GET /openapi.json` (no actor needed). @default true */
  serveOpenApi?: boolean;
  /**
   * Serve `GET /health` for load balancers (no actor needed): 200 with the service's
   * `health()` report when every check passes, else 503. @default true
   */
  serveHealth?: boolean;
  /** `servers[0].url` of the served OpenAPI document. @default the mount path */
  openApiServerUrl?: string;
  /** The host's authentication as OpenAPI security schemes, for the served document. @default one HTTP bearer `hostAuth` */
  openApiSecuritySchemes?: Record<string, Record<string, unknown>>;
  /**
   * Query parameters that belong to the host, not to the API (e.g. a session token its
   * `resolveActor` reads on an EventSource request, which cannot send headers): they are skipped.
   * Any other query parameter a route does not define is refused with VALIDATION_FAILED naming
   * it. @default []
   */
  hostQueryParameters?: readonly string[];
}

/** Options of {@link createImagesHandler}. */
export interface ImagesHandlerOptions extends ImagesHttpOptions {
  /** Who the caller is. Return an admin actor only for operators: `/admin` routes refuse anyone else with 403. */
  resolveActor: ResolveRequestActor;
  /**
   * Where the API is mounted, as it appears in request URLs (`/api/images`): the handler answers
   * paths below it (anything else is a 404 problem) and builds `Location` headers and links with
   * it. @default '' (the root)
   */
  basePath?: string;
}

/** The web-standard images handler. */
export type ImagesHandler = (request: Request) => Promise<Response>;

const ServiceSchema = z.custom<ImagesRouterService>(
  (v) => typeof v === 'object' && v !== null && ['images', 'catalog', 'storages', 'settings', 'events'].every((k) => k in v),
  'must be the object createInstanceImages returns',
);

/** The zod shape of {@link ImagesHttpOptions} (each adapter adds its own `resolveActor`). */
export const HTTP_OPTIONS_SHAPE = {
  service: ServiceSchema,
  resolveActor: z.custom<(input: never) => unknown>((v) => typeof v === 'function', 'must be a function'),
  maxIsoUploadBytes: z
    .number()
    .int()
    .positive()
    .max(Number.MAX_SAFE_INTEGER)
    .default(16 * 1024 ** 3),
  maxJsonBytes: z
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(64 * 1024),
  sseHeartbeatMs: z.number().int().min(10).max(600_000).default(15_000),
  serveOpenApi: z.boolean().default(true),
  serveHealth: z.boolean().default(true),
  openApiServerUrl: z.string().min(1).optional(),
  openApiSecuritySchemes: z.record(z.string().min(1), z.record(z.string(), z.unknown())).optional(),
  hostQueryParameters: z.array(z.string().min(1).max(200)).max(100).default([]),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'must be a logger').optional(),
};

const HandlerOptionsSchema = z.strictObject({
  ...HTTP_OPTIONS_SHAPE,
  basePath: z
    .string()
    .max(1000)
    .regex(/^(\/[^/?#]+)*$/, 'must be empty or a path like /api/images (no trailing slash, query or fragment)')
    .default(''),
});

/** The query of a route that defines none: every parameter is unknown. */
const NO_QUERY = z.strictObject({});

const silentLogger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** One route the dispatcher serves: a route of the table, or the document or the health check. */
interface ServedRoute extends MatchableRoute {
  run(request: Request, params: Record<string, string>, baseUrl: string, caller: { actor?: Actor }): Promise<Response>;
}

/** Where a request is dispatched: the mount point, and whether unknown paths belong to someone else. */
export interface DispatchTarget {
  /** The mount point as seen in the request URL (`''` at the root). */
  basePath: string;
  /** Answer `null` when no route takes the request (Express mounted at the root leaves it to the host's routes). */
  fallthrough: boolean;
}

/** The framework-neutral core both public entry points run. */
export interface ImagesDispatcher {
  /** Answers `request`; `null` only with `fallthrough` for a path no route takes. */
  dispatch(request: Request, target: DispatchTarget): Promise<Response | null>;
  /** Every route served, as `METHOD /path`. */
  readonly routes: readonly string[];
}

async function resolveCaller(request: Request, resolveActor: ResolveRequestActor): Promise<Actor> {
  let actor: Actor | null;
  try {
    actor = await resolveActor(request);
  } catch (error) {
    if (codedError(error)) throw error;
    throw new Error('resolveActor failed', { cause: error });
  }
  if (actor === null || actor === undefined) throw new HttpProblem('UNAUTHENTICATED');
  const checked = ActorSchema.safeParse(actor);
  // A malformed actor is the host's bug, not the caller's: answer 500 and log it.
  if (!checked.success)
    throw new Error(
      `resolveActor returned a malformed actor: ${checked.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return checked.data;
}

/** The parsed query of a URL as an object without a prototype (a repeated key gives an array). */
function queryObject(url: URL): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = Object.create(null) as Record<string, string | string[]>;
  for (const [key, value] of url.searchParams) {
    const previous = out[key];
    out[key] = previous === undefined ? value : Array.isArray(previous) ? [...previous, value] : [previous, value];
  }
  return out;
}

/**
 * Builds the dispatcher behind {@link createImagesHandler} and the Express router.
 * @param options - the options as the host gave them (the service, its `resolveActor`, the logger).
 * @param parsed - the same options validated, with their defaults.
 * @internal
 */
export function createImagesDispatcher(
  options: ImagesHttpOptions & { resolveActor: ResolveRequestActor },
  parsed: z.output<z.ZodObject<typeof HTTP_OPTIONS_SHAPE>>,
): ImagesDispatcher {
  const logger = options.logger ?? silentLogger;
  const runtime: RouteRuntime = {
    service: options.service,
    maxIsoUploadBytes: parsed.maxIsoUploadBytes,
    sseHeartbeatMs: parsed.sseHeartbeatMs,
    logger,
  };
  const hostQuery = parsed.hostQueryParameters;
  const runRoute = async (
    route: RouteDefinition,
    request: Request,
    params: Record<string, string>,
    baseUrl: string,
    caller: { actor?: Actor },
  ): Promise<Response> => {
    // A public route's credential is in the request itself (a signed link): there is no actor.
    const actor = route.public ? (undefined as unknown as Actor) : await resolveCaller(request, options.resolveActor);
    caller.actor = actor;
    if (route.admin && actor.kind !== 'admin') throw new InstanceImagesError('FORBIDDEN', 'Only an administrator can do this');
    const ids: Record<string, string> = {};
    for (const [name, value] of Object.entries(params)) ids[name] = parseOrThrow(IdSchema, value, `The path parameter ${name}`);
    const query = parseQuery(route.query ?? NO_QUERY, queryObject(new URL(request.url)), hostQuery);
    if (route.rawBody && !route.rawBody.contentTypes.includes(mediaType(request.headers.get('content-type')) ?? '')) {
      throw new HttpProblem('UNSUPPORTED_MEDIA_TYPE', `Send the file as ${route.rawBody.contentTypes.join(' or ')}`);
    }
    const body = route.body ? parseOrThrow(route.body, await readJsonBody(request, parsed.maxJsonBytes), 'The request body') : undefined;
    const result = await route.handle({ actor, params: ids, query, body, request, baseUrl, runtime });
    if ('response' in result) return result.response;
    // Answers are per caller: never cache them in shared caches.
    const headers = new Headers({ 'Cache-Control': 'no-store' });
    if (result.location) headers.set('Location', result.location);
    if (result.body === undefined) return emptyResponse(result.status, headers);
    return jsonResponse(request, result.status, result.body, headers);
  };

  const served: ServedRoute[] = [];
  if (parsed.serveOpenApi) {
    let document: OpenApiDocument | null = null;
    served.push({
      ...matchable('GET', '/openapi.json'),
      run: async (request, _params, baseUrl) => {
        parseQuery(NO_QUERY, queryObject(new URL(request.url)), hostQuery);
        document ??= createOpenApiDocument({
          serverUrl: parsed.openApiServerUrl ?? (baseUrl || '/'),
          ...(parsed.openApiSecuritySchemes ? { securitySchemes: parsed.openApiSecuritySchemes } : {}),
        });
        return jsonResponse(request, 200, document);
      },
    });
  }
  const { health } = options.service;
  if (parsed.serveHealth && health) {
    served.push({
      ...matchable('GET', '/health'),
      run: async (request) => {
        parseQuery(NO_QUERY, queryObject(new URL(request.url)), hostQuery);
        const report = await health.call(options.service);
        return jsonResponse(request, report.ok ? 200 : 503, report, new Headers({ 'Cache-Control': 'no-store' }));
      },
    });
  }
  // Resumable uploads (tus): `/uploads` and `/uploads/:uploadId` go to the tus handler, which
  // resolves the caller itself and answers tus's way (GET also answers HEAD: the offset).
  const tus = createTusHandler({ service: options.service, resolveActor: options.resolveActor, logger });
  for (const { method, path } of TUS_ROUTES) {
    served.push({
      ...matchable(method, path),
      run: (request, _params, baseUrl) => tus(request, { basePath: uploadsBase(request, baseUrl) }),
    });
  }
  for (const route of IMAGES_ROUTES) {
    served.push({
      ...matchable(route.method, route.path),
      run: (request, params, baseUrl, caller) => runRoute(route, request, params, baseUrl, caller),
    });
  }

  const dispatch = async (request: Request, target: DispatchTarget): Promise<Response | null> => {
    const url = new URL(request.url);
    const caller: { actor?: Actor } = {};
    try {
      const below = url.pathname.toLowerCase().startsWith(target.basePath.toLowerCase());
      const path = below ? url.pathname.slice(target.basePath.length) || '/' : null;
      const found = path === null || !path.startsWith('/') ? { allowed: [] } : matchRoute(served, request.method, path);
      if (!('route' in found)) {
        if (target.fallthrough) return null;
        throw notRouted(request.method, url.pathname, found.allowed);
      }
      const response = await found.route.run(request, found.params, target.basePath, caller);
      if (request.method !== 'HEAD' || response.body === null) return response;
      // HEAD: the GET answer's status and headers, without its body (a stream is cancelled unread).
      await response.body.cancel();
      return new Response(null, { status: response.status, headers: response.headers });
    } catch (error) {
      const context = { method: request.method, path: `${url.pathname}${url.search}`, admin: caller.actor?.kind === 'admin' };
      return problemResponse(request, error, context, logger);
    }
  };
  return { dispatch, routes: served.map((route) => `${route.method} ${route.path}`) };
}

/**
 * The path of the upload collection as the request spells it (the mount point and `/uploads`
 * match case-insensitively; the tus handler compares the request path with it literally).
 */
function uploadsBase(request: Request, baseUrl: string): string {
  return new URL(request.url).pathname.slice(0, baseUrl.length + '/uploads'.length);
}

/** The 404 or 405 problem for a path no route takes with this method. */
function notRouted(method: string, pathname: string, allowed: string[]): HttpProblem {
  if (allowed.length === 0) return new HttpProblem('NOT_FOUND', `No route ${method} ${pathname}`);
  const allow = allowed.includes('GET') ? [...allowed, 'HEAD'] : allowed;
  return new HttpProblem('METHOD_NOT_ALLOWED', `${method} is not allowed here; use ${allowed.join(' or ')}`, {
    headers: { Allow: allow.join(', ') },
  });
}

/**
 * Creates the web-standard images handler: `(request: Request) => Promise<Response>`.
 *
 * ```ts
 * const images = createImagesHandler({ service: sdk, resolveActor: (request) => actorFromSession(request), basePath: '/api/images' });
 * // Hono: app.all('/api/images/*', (c) => images(c.req.raw));
 * // Next.js (app/api/images/[...path]/route.ts): export const GET = images, POST = images, …
 * // node:http: http.createServer(toNodeListener(images));
 * ```
 *
 * Task event streams and file downloads are web `ReadableStream`s pulled as the client reads;
 * when the client goes away (`request.signal` aborts, or the host cancels the body) the stream
 * stops and the storage read or event subscription behind it is released. Uploads read
 * `request.body` as the storage writes. Every error is an `application/problem+json` answer.
 * @throws InstanceImagesError VALIDATION_FAILED naming the bad option.
 */
export function createImagesHandler(options: ImagesHandlerOptions): ImagesHandler {
  const parsed = parseOrThrow(HandlerOptionsSchema, options, 'createImagesHandler options');
  const dispatcher = createImagesDispatcher(options, parsed);
  const target: DispatchTarget = { basePath: parsed.basePath, fallthrough: false };
  return async (request) => (await dispatcher.dispatch(request, target)) as Response;
}
