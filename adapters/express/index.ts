/**
 * `instance-images/adapters/express`: the customer and operator HTTP API (My Images, tasks with
 * Server-Sent Events, the OS picker, deploys, ISOs; image storages, OS images, media groups, ISO
 * uploads, settings, all tasks, the usage report) as an Express 5 router. It runs the
 * web-standard handler of `instance-images/http`: the same routes, problem+json errors and
 * OpenAPI 3.1 document (re-exported here for existing imports).
 *
 * ```ts
 * import express from 'express';
 * import { createImagesRouter } from 'instance-images/adapters/express';
 * const app = express();
 * app.use('/api/images', createImagesRouter({ service: images, resolveActor: (req) => actorFromSession(req) }));
 * ```
 * @module
 */
export { createImagesRouter, type ImagesRouterOptions, type ResolveActor } from './router';
export type { ImagesHttpOptions } from '../http/handler';
export {
  createOpenApiDocument,
  openApiPath,
  type OpenApiDocument,
  type OpenApiOperation,
  type OpenApiOptions,
  type JsonSchema,
} from '../http/openapi';
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
} from '../http/problem';
export { IMAGES_ROUTES, CUSTOMER_ROUTES, ADMIN_ROUTES } from '../http/routes';
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
} from '../http/route-types';
export { formatSseMessage, type TaskStreamEvent } from '../http/sse';
