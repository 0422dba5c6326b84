/**
 * Building the handler's answers as web `Response`s: JSON with a weak `ETag` (and `304 Not
 * Modified` for a matching `If-None-Match` on GET and HEAD), and errors as
 * `application/problem+json`. The headers are the ones Express 5 sends for the same answers, so
 * every adapter answers alike.
 * @module
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../../src/services/context';
import { HttpProblem, PROBLEM_CONTENT_TYPE, problemFromError } from './problem';

/** A weak entity tag of a body: its length and the start of its SHA-1 (the format Express uses). */
export function weakEtag(bytes: Uint8Array): string {
  const hash = createHash('sha1').update(bytes).digest('base64').substring(0, 27);
  return `W/"${bytes.length.toString(16)}-${hash}"`;
}

/** Whether the client's cached copy (If-None-Match) is still the answer. */
function isFresh(request: Request, status: number, etag: string): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false;
  if (status < 200 || status >= 300) return false;
  const noneMatch = request.headers.get('if-none-match');
  // Without Last-Modified, an If-Modified-Since can never prove freshness.
  if (noneMatch === null || noneMatch.trim() === '*' || request.headers.get('if-modified-since') !== null) return false;
  if (/(?:^|,)\s*no-cache\s*(?:,|$)/.test(request.headers.get('cache-control') ?? '')) return false;
  const bare = etag.replace(/^W\//, '');
  return noneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === bare);
}

/** A text answer with its length and weak ETag (304 when the client's copy is fresh; no body for HEAD). */
export function textResponse(request: Request, status: number, text: string, headers: Headers): Response {
  const bytes = new TextEncoder().encode(text);
  const etag = weakEtag(bytes);
  if (!headers.has('ETag')) headers.set('ETag', etag);
  if (isFresh(request, status, headers.get('ETag') as string)) {
    headers.delete('Content-Type');
    return new Response(null, { status: 304, headers });
  }
  headers.set('Content-Length', String(bytes.length));
  return new Response(request.method === 'HEAD' ? null : bytes, { status, headers });
}

/** A JSON answer (`application/json; charset=utf-8`). */
export function jsonResponse(request: Request, status: number, body: unknown, headers: Headers = new Headers()): Response {
  headers.set('Content-Type', 'application/json; charset=utf-8');
  return textResponse(request, status, JSON.stringify(body), headers);
}

/** An empty answer (204), without a body or content headers. */
export function emptyResponse(status: number, headers: Headers): Response {
  return new Response(null, { status, headers });
}

/** What a failed request is logged with (never the request body). */
export interface FailureContext {
  /** The method. */
  method: string;
  /** The path and query, as the client sent them. */
  path: string;
  /** Whether the caller is an admin (admins see every error's own message). */
  admin: boolean;
}

/**
 * The problem answer for any thrown value. 5xx answers are logged with the error and its cause;
 * the client sees only what `problemFromError` allows.
 */
export function problemResponse(request: Request, error: unknown, context: FailureContext, logger: Logger): Response {
  const problem = problemFromError(error, context.admin ? 'admin' : 'customer');
  if (problem.status >= 500)
    logger.error('instance-images HTTP request failed', {
      method: context.method,
      path: context.path,
      code: problem.code,
      error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      cause: error instanceof Error && error.cause !== undefined ? String(error.cause) : undefined,
    });
  const headers = new Headers(error instanceof HttpProblem ? error.headers : {});
  headers.set('Cache-Control', 'no-store');
  headers.set('Content-Type', `${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
  return textResponse(request, problem.status, JSON.stringify(problem), headers);
}
