/**
 * `instance-images/adapters/express`: an Express 5 router with the customer and operator HTTP API
 * (My Images, tasks with Server-Sent Events, the OS picker, deploys, ISOs; image storages, OS
 * images, media groups, ISO uploads, settings, all tasks, the usage report), errors as
 * application/problem+json, and the OpenAPI 3.1 document generated from the zod schemas.
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
