/**
 * `instance-images/http`: the customer and operator HTTP API of the SDK as one web-standard
 * handler, `(request: Request) => Promise<Response>`, for any framework that speaks `Request` and
 * `Response` (Hono, Next.js route handlers, Bun, Deno, Cloudflare-style hosts) and, through
 * {@link toNodeListener}, plain `node:http`. Task progress streams as Server-Sent Events and
 * downloads stream with Range support, both as web streams; errors are application/problem+json;
 * the OpenAPI 3.1 document is generated from the same route table. The Express router
 * (`instance-images/adapters/express`) runs this same handler.
 *
 * ```ts
 * import { Hono } from 'hono';
 * import { createImagesHandler } from 'instance-images/http';
 * const images = createImagesHandler({ service: sdk, resolveActor: (request) => actorFromSession(request), basePath: '/api/images' });
 * const app = new Hono();
 * app.all('/api/images/*', (c) => images(c.req.raw));
 * ```
 * @module
 */
export {
  createImagesHandler,
  type ImagesHandler,
  type ImagesHandlerOptions,
  type ImagesHttpOptions,
  type ResolveRequestActor,
} from './handler';
export { toNodeListener, toWebRequest, sendWebResponse, type ToWebRequestOptions } from './node';
export {
  createOpenApiDocument,
  openApiPath,
  type OpenApiDocument,
  type OpenApiOperation,
  type OpenApiOptions,
  type JsonSchema,
} from './openapi';
export {
  PROBLEM_STATUS,
  PROBLEM_CONTENT_TYPE,
  HTTP_ERROR_MESSAGES,
  HttpProblem,
  problemFromError,
  problemType,
  codedError,
  type CodedError,
  type ProblemBody,
  type ProblemCode,
  type ProblemMapping,
  type HttpErrorCode,
} from './problem';
export { IMAGES_ROUTES, CUSTOMER_ROUTES, ADMIN_ROUTES } from './routes';
export {
  pathParams,
  defineRoute,
  type RouteDefinition,
  type TypedRouteDefinition,
  type RouteContext,
  type RouteResult,
  type QueryOf,
  type BodyOf,
  type RouteRuntime,
  type RouteSuccess,
  type HttpMethod,
  type ImagesRouterService,
} from './route-types';
export { formatSseMessage, type TaskStreamEvent } from './sse';
