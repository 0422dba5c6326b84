/**
 * A small fetch-based client of the HTTP API (browsers, Node ≥ 20, edge runtimes): typed paths,
 * parameters, bodies and answers from the API's own OpenAPI document (openapi-fetch over the
 * types openapi-typescript generates), problem+json answers thrown as {@link ImagesApiError},
 * and task progress followed over Server-Sent Events.
 * @module
 */
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './openapi';
import { createResumableUpload, type ResumableUpload, type ResumableUploadOptions } from './uploads';

/** A task as the API answers it (dates as ISO strings). */
export type ApiTask = components['schemas']['Task'];
/** An image as the API answers it. */
export type ApiImage = components['schemas']['Image'];
/** A problem+json body. */
export type ApiProblem = components['schemas']['Problem'];

/** An error answer of the API (`application/problem+json`), with its stable code. */
export class ImagesApiError extends Error {
  override readonly name = 'ImagesApiError';
  /** The HTTP status. */
  readonly status: number;
  /** The stable code (`VALIDATION_FAILED`, `NOT_FOUND`, `IMAGE_LIMIT_REACHED`, ...; see docs/errors). */
  readonly code: string;
  /** The problem's short title. */
  readonly title: string;
  /** Offending fields, for `VALIDATION_FAILED`. */
  readonly fields: { path: string; message: string }[];
  /** Extra facts of the problem. */
  readonly details: Record<string, unknown>;

  constructor(problem: ApiProblem) {
    super(problem.detail);
    this.status = problem.status;
    this.code = problem.code;
    this.title = problem.title;
    this.fields = problem.fields ?? [];
    this.details = problem.details ?? {};
  }
}

/** Whether `value` is an {@link ImagesApiError} (also across bundles). */
export function isImagesApiError(value: unknown): value is ImagesApiError {
  return value instanceof ImagesApiError || (value instanceof Error && value.name === 'ImagesApiError' && 'code' in value);
}

/** Options of {@link createImagesClient}. */
export interface ImagesClientOptions {
  /** Where the host mounted the router, e.g. `https://panel.example/api`. */
  baseUrl: string;
  /** The fetch to use (e.g. one that adds the host's credentials). @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Headers sent with every request (e.g. the host's auth); a function is called per request. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
}

/** What {@link ImagesClient.followTask} reports and resolves with. */
export interface FollowTaskOptions {
  /** Stops following (the promise rejects with the signal's reason). */
  signal?: AbortSignal;
  /** Each state of the task as it arrives: the current one first, then progress. */
  onUpdate?: (task: ApiTask) => void;
}

/** The client. */
export interface ImagesClient {
  /**
   * The typed API: `api.GET('/images/{imageId}', { params: { path: { imageId } } })`,
   * `api.POST('/images', { body: { instanceId, name } })`. An error answer throws
   * {@link ImagesApiError}, so `data` is always set on what returns.
   */
  readonly api: Client<paths>;
  /** Follows a task over Server-Sent Events until it finishes; resolves with the finished task. */
  followTask(taskId: string, options?: FollowTaskOptions): Promise<ApiTask>;
  /**
   * A resumable (tus) upload of an image file to `/uploads` with the client's headers and fetch;
   * nothing is sent until its `start()`. See {@link createResumableUpload}.
   */
  upload(options: Omit<ResumableUploadOptions, 'endpoint' | 'fetch' | 'headers'>): ResumableUpload;
}

const PROBLEM = /^application\/problem\+json/i;

/** Throws the problem of an error answer; answers the host did not make into problems get a generic one. */
async function throwProblem(response: Response): Promise<never> {
  const type = response.headers.get('content-type') ?? '';
  if (PROBLEM.test(type)) throw new ImagesApiError((await response.json()) as ApiProblem);
  throw new ImagesApiError({
    type: 'about:blank',
    title: response.statusText || 'HTTP error',
    status: response.status,
    detail: `The server answered ${response.status} without a problem description`,
    code: response.status === 401 ? 'UNAUTHENTICATED' : response.status === 404 ? 'NOT_FOUND' : 'HTTP_ERROR',
  });
}

/** Creates a client of the API mounted at `options.baseUrl`. */
export function createImagesClient(options: ImagesClientOptions): ImagesClient {
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const headers = async (): Promise<Record<string, string>> =>
    typeof options.headers === 'function' ? await options.headers() : (options.headers ?? {});
  const api = createClient<paths>({ baseUrl, fetch: fetchImpl });
  const middleware: Middleware = {
    async onRequest({ request }) {
      for (const [name, value] of Object.entries(await headers())) request.headers.set(name, value);
      return request;
    },
    async onResponse({ response }) {
      if (!response.ok) await throwProblem(response);
      return response;
    },
  };
  api.use(middleware);

  async function followTask(taskId: string, follow: FollowTaskOptions = {}): Promise<ApiTask> {
    const response = await fetchImpl(`${baseUrl}/tasks/${encodeURIComponent(taskId)}/events`, {
      headers: { accept: 'text/event-stream', ...(await headers()) },
      ...(follow.signal ? { signal: follow.signal } : {}),
    });
    if (!response.ok) await throwProblem(response);
    if (!response.body) throw new Error('The task event stream has no body');
    let last: ApiTask | null = null;
    for await (const message of sseMessages(response.body)) {
      if (message.event !== 'task' && message.event !== 'task.progress' && message.event !== 'task.finished') continue;
      last = JSON.parse(message.data) as ApiTask;
      follow.onUpdate?.(last);
      if (message.event === 'task.finished') return last;
    }
    // The stream ended without task.finished (it was already finished when we connected, or the
    // server closed): the last state is final only if the task is.
    if (last && ['completed', 'failed', 'cancelled'].includes(last.status)) return last;
    throw new Error(`The event stream of task ${taskId} ended before the task finished`);
  }

  const upload = (upload: Omit<ResumableUploadOptions, 'endpoint' | 'fetch' | 'headers'>): ResumableUpload =>
    createResumableUpload({ ...upload, endpoint: `${baseUrl}/uploads`, fetch: fetchImpl, headers });

  return { api, followTask, upload };
}

/** The messages of a `text/event-stream` body (event name and data; comments skipped). */
export async function* sseMessages(body: ReadableStream<Uint8Array>): AsyncGenerator<{ event: string; data: string }> {
  const decoder = new TextDecoder();
  let buffer = '';
  const reader = body.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      const blocks = buffer.split(/\r?\n\r?\n/);
      buffer = done ? '' : (blocks.pop() ?? '');
      for (const block of blocks) {
        let event = 'message';
        const data: string[] = [];
        for (const line of block.split(/\r?\n/)) {
          if (line.startsWith(':') || line === '') continue;
          const colon = line.indexOf(':');
          const field = colon === -1 ? line : line.slice(0, colon);
          const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
          if (field === 'event') event = value;
          else if (field === 'data') data.push(value);
        }
        if (data.length > 0) yield { event, data: data.join('\n') };
      }
      if (done) return;
    }
  } finally {
    reader.releaseLock();
  }
}
