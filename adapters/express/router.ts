/**
 * `createImagesRouter`: an Express 5 router with the customer and operator HTTP API of the SDK.
 * Each request goes: resolve the actor (401) → admin guard on `/admin` routes (403) → path ids,
 * query and body validated with the core's zod schemas (400, 413, 415) → the service → JSON, or
 * `application/problem+json` for every error.
 * @module
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { z } from 'zod';
import { InstanceImagesError } from '../../src/errors';
import { IdSchema } from '../../src/model/common';
import { ActorSchema, type Actor } from '../../src/services/actor';
import type { Logger } from '../../src/services/context';
import { parseOrThrow } from '../../src/util/validate';
import { createOpenApiDocument, type OpenApiDocument } from './openapi';
import { codedError, HttpProblem, PROBLEM_CONTENT_TYPE, problemFromError } from './problem';
import { parseQuery } from './query';
import { pathParams, type ImagesRouterService, type RouteDefinition, type RouteRuntime } from './route-types';
import { IMAGES_ROUTES } from './routes';
import { createTusHandler, TUS_ROUTES } from '../tus/handler';
import { sendWebResponse, toWebRequest } from '../tus/node';

/** Decides who is calling, from the host's own session or auth; `null` means unauthenticated (401). */
export type ResolveActor = (req: Request) => Actor | null | Promise<Actor | null>;

/** Options of {@link createImagesRouter}. */
export interface ImagesRouterOptions {
  /** The SDK (the object `createInstanceImages` returns). */
  service: ImagesRouterService;
  /** Who the caller is. Return an admin actor only for operators: `/admin` routes refuse anyone else with 403. */
  resolveActor: ResolveActor;
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
  /** `servers[0].url` of the served OpenAPI document. @default the router's mount path */
  openApiServerUrl?: string;
  /** The host's authentication as OpenAPI security schemes, for the served document. @default one HTTP bearer `hostAuth` */
  openApiSecuritySchemes?: Record<string, Record<string, unknown>>;
  /**
   * Query parameters that belong to the host, not to the API (e.g. a session token its
   * `resolveActor` reads on an EventSource request, which cannot send headers): the router skips
   * them. Any other query parameter a route does not define is refused with VALIDATION_FAILED
   * naming it. @default []
   */
  hostQueryParameters?: readonly string[];
}

const OptionsSchema = z.strictObject({
  service: z.custom<ImagesRouterService>(
    (v) => typeof v === 'object' && v !== null && ['images', 'catalog', 'storages', 'settings', 'events'].every((k) => k in v),
    'must be the object createInstanceImages returns',
  ),
  resolveActor: z.custom<ResolveActor>((v) => typeof v === 'function', 'must be a function'),
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
});

/** The query of a route that defines none: every parameter is unknown. */
const NO_QUERY = z.strictObject({});

const ACTOR_KEY = 'instanceImagesActor';

const silentLogger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function sendProblem(req: Request, res: Response, error: unknown, logger: Logger): void {
  const actor = res.locals[ACTOR_KEY] as Actor | undefined;
  const problem = problemFromError(error, actor?.kind === 'admin' ? 'admin' : 'customer');
  if (problem.status >= 500)
    logger.error('instance-images HTTP request failed', {
      method: req.method,
      path: req.originalUrl,
      code: problem.code,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      cause: error instanceof Error && error.cause !== undefined ? String(error.cause) : undefined,
    });
  if (res.headersSent) {
    // A streamed answer already started: all that is left is to end it.
    res.end();
    return;
  }
  // An unread body (refused for its size or type) is not drained: the connection closes instead.
  if (!req.complete) res.setHeader('Connection', 'close');
  res.setHeader('Cache-Control', 'no-store');
  res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
}

/**
 * Maps errors Express raises before a handler runs to problems: a path segment whose
 * percent-escapes do not decode (`%zz`, `%FF`, a lone `%`, overlong UTF-8) is the caller's error.
 */
function routingProblem(error: unknown): HttpProblem | null {
  if (!(error instanceof URIError) || (error as URIError & { status?: unknown }).status !== 400) return null;
  const message = 'a segment is not valid percent-encoded UTF-8';
  return new HttpProblem('VALIDATION_FAILED', `The request path is not valid: ${message}`, { fields: [{ path: 'path', message }] });
}

/** A regular expression matching the request paths of an Express route path (`:name` is one segment). */
function pathPattern(path: string): RegExp {
  const source = path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}/?$`);
}

/** The declared body length, when it is over `limit` (a problem to answer before reading anything). */
function declaredTooLarge(req: Request, limit: number): HttpProblem | null {
  const length = req.headers['content-length'];
  if (length === undefined || !/^\d+$/.test(length) || Number(length) <= limit) return null;
  return new HttpProblem('PAYLOAD_TOO_LARGE', 'The JSON body is too large', { details: { limitBytes: limit } });
}

/** Maps body-parser's errors to problems (its own messages never reach the client). */
function bodyParserProblem(error: unknown): HttpProblem | null {
  // A zlib error: the body is not what its Content-Encoding says (e.g. gzip on plain JSON).
  if (
    error instanceof Error &&
    typeof (error as Error & { code?: unknown }).code === 'string' &&
    (error as Error & { code: string }).code.startsWith('Z_')
  ) {
    return new HttpProblem('MALFORMED_JSON', 'The request body could not be decompressed: it does not match its Content-Encoding');
  }
  if (!error || typeof error !== 'object' || !('type' in error) || !('status' in error)) return null;
  const { type, status } = error as { type: unknown; status: unknown };
  if (typeof type !== 'string' || typeof status !== 'number') return null;
  if (status === 413)
    return new HttpProblem('PAYLOAD_TOO_LARGE', 'The JSON body is too large', {
      details: { limitBytes: (error as { limit?: number }).limit ?? null },
    });
  if (status === 415) return new HttpProblem('UNSUPPORTED_MEDIA_TYPE', "The body's charset or encoding is not supported; send UTF-8 JSON");
  if (type === 'entity.parse.failed')
    return new HttpProblem('MALFORMED_JSON', 'The request body is not valid JSON (an object is expected)');
  if (status >= 400 && status < 500) return new HttpProblem('MALFORMED_JSON', 'The request body could not be read');
  return null;
}

function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

async function resolveCaller(req: Request, resolveActor: ResolveActor): Promise<Actor> {
  let actor: Actor | null;
  try {
    actor = await resolveActor(req);
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

/**
 * Creates the images router. Mount it where the host wants the API (`app.use('/api', router)`).
 * The router answers only its own routes; anything else falls through to the host.
 * @throws InstanceImagesError VALIDATION_FAILED naming the bad option.
 */
export function createImagesRouter(options: ImagesRouterOptions): Router {
  const parsed = parseOrThrow(OptionsSchema, options, 'createImagesRouter options');
  const logger = options.logger ?? silentLogger;
  const runtime: RouteRuntime = {
    service: options.service,
    maxIsoUploadBytes: parsed.maxIsoUploadBytes,
    sseHeartbeatMs: parsed.sseHeartbeatMs,
    logger,
  };
  const jsonParser = express.json({ limit: parsed.maxJsonBytes, strict: true, type: () => true });
  const router = express.Router();

  const readJson = (req: Request, res: Response): Promise<unknown> => {
    if (!hasBody(req)) return Promise.resolve({});
    if (!req.is(['application/json', 'application/*+json'])) {
      return Promise.reject(new HttpProblem('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json'));
    }
    // body-parser answers an oversized declared length only after the body has arrived (or never,
    // when the client waits for an answer first): refuse it from the header, and close.
    const tooLarge = declaredTooLarge(req, parsed.maxJsonBytes);
    if (tooLarge) return Promise.reject(tooLarge);
    return new Promise((resolve, reject) => {
      jsonParser(req, res, (error?: unknown) => {
        if (error) reject(bodyParserProblem(error) ?? error);
        else resolve(req.body as unknown);
      });
    });
  };

  const handle = async (route: RouteDefinition, req: Request, res: Response): Promise<void> => {
    // A public route's credential is in the request itself (a signed link): there is no actor.
    const actor = route.public ? (undefined as unknown as Actor) : await resolveCaller(req, options.resolveActor);
    res.locals[ACTOR_KEY] = actor;
    if (route.admin && actor.kind !== 'admin') throw new InstanceImagesError('FORBIDDEN', 'Only an administrator can do this');
    const params: Record<string, string> = {};
    for (const name of pathParams(route.path)) params[name] = parseOrThrow(IdSchema, req.params[name], `The path parameter ${name}`);
    const query = parseQuery(route.query ?? NO_QUERY, req.query, parsed.hostQueryParameters);
    if (route.rawBody && !req.is(route.rawBody.contentTypes)) {
      throw new HttpProblem('UNSUPPORTED_MEDIA_TYPE', `Send the file as ${route.rawBody.contentTypes.join(' or ')}`);
    }
    const body = route.body ? parseOrThrow(route.body, await readJson(req, res), 'The request body') : undefined;
    const result = await route.handle({ actor, params, query, body, req, res, runtime });
    if (result === 'handled') return;
    if (result.location) res.setHeader('Location', result.location);
    // Answers are per caller: never cache them in shared caches.
    res.setHeader('Cache-Control', 'no-store');
    if (result.body === undefined) res.status(result.status).end();
    else res.status(result.status).json(result.body);
  };

  if (parsed.serveOpenApi) {
    let document: OpenApiDocument | null = null;
    router.get('/openapi.json', (req, res) => {
      parseQuery(NO_QUERY, req.query, parsed.hostQueryParameters);
      document ??= createOpenApiDocument({
        serverUrl: parsed.openApiServerUrl ?? (req.baseUrl || '/'),
        ...(parsed.openApiSecuritySchemes ? { securitySchemes: parsed.openApiSecuritySchemes } : {}),
      });
      res.json(document);
    });
  }
  const { health } = parsed.service;
  if (parsed.serveHealth && health) {
    router.get('/health', (req, res, next) => {
      parseQuery(NO_QUERY, req.query, parsed.hostQueryParameters);
      health.call(parsed.service).then((report) => {
        res.setHeader('Cache-Control', 'no-store');
        res.status(report.ok ? 200 : 503).json(report);
      }, next);
    });
  }
  // Resumable uploads (tus): a web-standard handler, given the Express request's actor.
  const requests = new WeakMap<globalThis.Request, Request>();
  const tus = createTusHandler({
    service: parsed.service,
    resolveActor: (request) => options.resolveActor(requests.get(request) as Request),
    logger,
  });
  const serveTus = (req: Request, res: Response, next: NextFunction) => {
    const request = toWebRequest(req, req.originalUrl);
    requests.set(request, req);
    tus(request, { basePath: `${req.baseUrl}/uploads` }).then((response) => {
      // A piece refused before it was read is not drained: the connection closes instead.
      if (!req.complete) res.setHeader('Connection', 'close');
      return sendWebResponse(res, response);
    }, next);
  };
  // GET also answers HEAD (tus: the offset); the paths and methods are TUS_ROUTES.
  for (const { method, path } of TUS_ROUTES) router[method](path, serveTus);
  for (const route of IMAGES_ROUTES) {
    router[route.method](route.path, (req: Request, res: Response, next: NextFunction) => {
      handle(route, req, res).catch(next);
    });
  }
  // Unknown paths and methods under the router's prefix get problem+json too. Mounted at the root,
  // the router leaves them to the host's own routes instead.
  const patterns = IMAGES_ROUTES.map((route) => ({ method: route.method.toUpperCase(), pattern: pathPattern(route.path) }));
  if (parsed.serveOpenApi) patterns.push({ method: 'GET', pattern: pathPattern('/openapi.json') });
  if (parsed.serveHealth && health) patterns.push({ method: 'GET', pattern: pathPattern('/health') });
  router.use((req: Request, res: Response, next: NextFunction) => {
    if (req.baseUrl === '') return next();
    const allowed = [...new Set(patterns.filter((p) => p.pattern.test(req.path)).map((p) => p.method))];
    if (allowed.length === 0) return next(new HttpProblem('NOT_FOUND', `No route ${req.method} ${req.baseUrl}${req.path}`));
    res.setHeader('Allow', allowed.includes('GET') ? [...allowed, 'HEAD'].join(', ') : allowed.join(', '));
    next(new HttpProblem('METHOD_NOT_ALLOWED', `${req.method} is not allowed here; use ${allowed.join(' or ')}`));
  });
  router.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    void next;
    sendProblem(req, res, routingProblem(error) ?? error, logger);
  });
  return router;
}
