/**
 * The shape of one HTTP route: its method and path, who may call it, the zod schemas of its
 * query, body and answer (the handler validates with them, the OpenAPI document is generated from
 * them), and its handler. Handlers see web-standard `Request`s only, so every framework adapter
 * runs the same table.
 * @module
 */
import type { z } from 'zod';
import type { InstanceImages } from '../../src/create-instance-images';
import type { Logger } from '../../src/services/context';
import type { Actor } from '../../src/services/actor';

/** The parts of the SDK the handler calls. */
export type ImagesRouterService = Pick<
  InstanceImages,
  | 'images'
  | 'catalog'
  | 'storages'
  | 'settings'
  | 'accounts'
  | 'sharing'
  | 'transfers'
  | 'copies'
  | 'events'
  | 'recover'
  | 'imports'
  | 'exports'
  | 'uploads'
  | 'metadata'
> &
  Partial<Pick<InstanceImages, 'health'>>;

/** HTTP methods used by the route table. */
export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** Options the handlers need at run time. */
export interface RouteRuntime {
  /** The SDK. */
  service: ImagesRouterService;
  /** Largest ISO upload, in bytes. */
  maxIsoUploadBytes: number;
  /** Interval of SSE keep-alive comments. */
  sseHeartbeatMs: number;
  /** Where the handler logs unexpected errors. */
  logger: Logger;
}

/** What a handler receives. */
export interface RouteContext<Q, B> {
  /** The caller, as resolved by the host. */
  actor: Actor;
  /** Path parameters (validated ids). */
  params: Record<string, string>;
  /** The validated query. */
  query: Q;
  /** The validated JSON body. */
  body: B;
  /** The web-standard request (for streamed bodies and headers); its `signal` aborts when the client goes away. */
  request: Request;
  /** Where the API is mounted, as seen in request URLs (`/api/images`; empty at the root): the prefix of `Location` headers and links. */
  baseUrl: string;
  /** The runtime options. */
  runtime: RouteRuntime;
}

/**
 * A handler's answer: a status and a JSON body (none for 204) with an optional `Location`, or a
 * web `Response` it built itself (a stream or a file).
 */
export type RouteResult = { status: number; body?: unknown; location?: string } | { response: Response };

/** The documented success answer of a route. */
export interface RouteSuccess {
  /** HTTP status. */
  status: number;
  /** What it means. */
  description: string;
  /** The JSON body's schema (a named component); omitted for 204. */
  schema?: z.ZodType;
  /** A non-JSON answer (Server-Sent Events, or a file). */
  contentType?: 'text/event-stream' | 'application/octet-stream';
  /** The answer carries a `Location` header: what it points at (documented in OpenAPI). */
  location?: string;
}

/** A route of the route table, with handler types erased (see {@link defineRoute}). */
export interface RouteDefinition {
  /** HTTP method. */
  method: HttpMethod;
  /** Path template relative to where the API is mounted (`/images/:imageId`; `:name` is one segment). */
  path: string;
  /** Stable operation id (OpenAPI). */
  operationId: string;
  /** One-line summary. */
  summary: string;
  /** OpenAPI tag. */
  tag: string;
  /** Only admins may call it (customers get 403 before anything else is looked at). */
  admin: boolean;
  /**
   * No actor is resolved: the request carries its own credential (a signed download link, checked
   * by the service). The handler must not read `actor`.
   */
  public?: boolean;
  /** The query schema; values are coerced from text first. */
  query?: z.ZodObject;
  /** The JSON body schema (content type must be JSON). */
  body?: z.ZodType;
  /** A raw streamed body instead of JSON, with the accepted content types. */
  rawBody?: { contentTypes: string[] };
  /** The success answer. */
  success: RouteSuccess;
  /** Extra error statuses this route can answer besides the generic ones. */
  errors?: number[];
  /** The handler. */
  handle(ctx: RouteContext<unknown, unknown>): Promise<RouteResult>;
}

/** The parsed query of a route with query schema `Q`. */
export type QueryOf<Q> = Q extends z.ZodObject ? z.output<Q> : Record<string, never>;
/** The parsed body of a route with body schema `B`. */
export type BodyOf<B> = B extends z.ZodType ? z.output<B> : undefined;

/** A route definition with typed query and body. */
export interface TypedRouteDefinition<Q extends z.ZodObject | undefined, B extends z.ZodType | undefined> extends Omit<
  RouteDefinition,
  'query' | 'body' | 'handle'
> {
  /** The query schema. */
  query?: Q;
  /** The JSON body schema. */
  body?: B;
  /** The handler, with the parsed query and body typed. */
  handle(ctx: RouteContext<QueryOf<Q>, BodyOf<B>>): Promise<RouteResult>;
}

/** Defines a route with its handler typed from its schemas. */
export function defineRoute<Q extends z.ZodObject | undefined = undefined, B extends z.ZodType | undefined = undefined>(
  definition: TypedRouteDefinition<Q, B>,
): RouteDefinition {
  return definition as unknown as RouteDefinition;
}

/** The names of the path parameters of a route path (`:name` segments). */
export function pathParams(path: string): string[] {
  return [...path.matchAll(/:([A-Za-z][A-Za-z0-9]*)/g)].map((m) => m[1] as string);
}
