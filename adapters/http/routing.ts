/**
 * Matching a request path against the route table: `:name` is one path segment, literal segments
 * compare case-insensitively, a trailing slash is allowed, and path parameters are
 * percent-decoded (a segment that does not decode is the caller's error, 400).
 * @module
 */
import { HttpProblem } from './problem';
import { pathParams, type RouteDefinition } from './route-types';

/** A route of the handler: one of the table, or one of the handler's own (`/openapi.json`, `/health`). */
export interface MatchableRoute {
  /** Upper-case method. */
  method: string;
  /** Path template (`/images/:imageId`). */
  path: string;
  /** Matches the request path (below the mount point) and captures the parameters. */
  pattern: RegExp;
  /** Parameter names, in order. */
  params: string[];
}

/** A regular expression matching the request paths of a route path. */
export function pathPattern(path: string): RegExp {
  const source = path
    .split('/')
    .map((segment) => (segment.startsWith(':') ? '([^/]+)' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
    .join('/');
  return new RegExp(`^${source}/?$`, 'i');
}

/** The matchable form of a route. */
export function matchable(method: string, path: string): MatchableRoute {
  return { method: method.toUpperCase(), path, pattern: pathPattern(path), params: pathParams(path) };
}

/** The routes of the table as matchable routes. */
export function matchableRoutes(routes: readonly RouteDefinition[]): MatchableRoute[] {
  return routes.map((route) => matchable(route.method, route.path));
}

/** What matching found: a route and its decoded parameters, or the methods the path takes (none: 404). */
export type RouteMatch<R> = { route: R; params: Record<string, string> } | { allowed: string[] };

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    const message = 'a segment is not valid percent-encoded UTF-8';
    throw new HttpProblem('VALIDATION_FAILED', `The request path is not valid: ${message}`, { fields: [{ path: 'path', message }] });
  }
}

/**
 * Finds the route for `method` and `path` (below the mount point). `HEAD` is answered by the
 * `GET` route.
 * @throws HttpProblem VALIDATION_FAILED when a parameter does not percent-decode.
 */
export function matchRoute<R extends MatchableRoute>(routes: readonly R[], method: string, path: string): RouteMatch<R> {
  const wanted = method.toUpperCase() === 'HEAD' ? 'GET' : method.toUpperCase();
  const allowed = new Set<string>();
  for (const route of routes) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    if (route.method !== wanted) {
      allowed.add(route.method);
      continue;
    }
    const params: Record<string, string> = {};
    route.params.forEach((name, index) => (params[name] = decodeSegment(match[index + 1] as string)));
    return { route, params };
  }
  return { allowed: [...allowed] };
}
