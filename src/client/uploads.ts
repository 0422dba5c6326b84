/**
 * A small tus 1.0 client for resumable uploads of image files (browsers and Node ≥ 20): it creates
 * the upload (`POST /uploads` with `Upload-Length` and `Upload-Metadata`), sends the file in pieces
 * (`PATCH` at `Upload-Offset`), and after a dropped connection, a 5xx or a wrong offset asks the
 * server where it stands (`HEAD`, `Upload-Offset`) and goes on from the last byte stored, so no
 * byte the server kept is sent twice. {@link ResumableUpload.pause} aborts the request under way;
 * {@link ResumableUpload.start} resumes the same upload.
 * @module
 */
import { ImagesApiError, type ApiProblem } from './client';

/** The tus protocol version spoken. */
const TUS_VERSION = '1.0.0';

/** Options of {@link createResumableUpload}. */
export interface ResumableUploadOptions {
  /** The upload collection, e.g. `https://panel.example/api/uploads`. */
  endpoint: string;
  /** The file (a `File` in a browser). */
  file: Blob;
  /**
   * What the upload becomes: `name`, `locationId`, `description`, `sha256` (the expected sha256
   * of the decompressed image), `filename` (see the API's "Resumable uploads").
   */
  metadata: Record<string, string>;
  /** Bytes per `PATCH`. @default 8 MiB */
  chunkBytes?: number;
  /** The fetch to use. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Headers of every request (the host's auth); a function is called per request. */
  headers?: Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>);
  /** An upload created before (its URL): the upload continues there instead of starting anew. */
  uploadUrl?: string;
  /** Pauses before each automatic resume; the upload fails once they are used up without progress. @default [500, 1000, 2000, 4000, 8000] */
  retryDelaysMs?: readonly number[];
  /** Bytes the server has stored, after each piece (and after a resume asked for the offset). */
  onProgress?: (storedBytes: number, totalBytes: number) => void;
  /** After a dropped piece: the offset the upload goes on from (what the server reported). */
  onResume?: (offsetBytes: number, cause: unknown) => void;
}

/** What a finished upload became (from the last answer's headers). */
export interface UploadOutcome {
  /** The upload's URL. */
  url: string;
  /** The image being made from it (`creating` until its import task finishes). */
  imageId: string | null;
  /** The import task that turns the bytes into the image. */
  taskId: string | null;
}

/** A resumable upload. */
export interface ResumableUpload {
  /** The upload's URL once created (keep it to resume in a later page: `uploadUrl`). */
  readonly url: string | null;
  /** Bytes the server has stored, as last reported. */
  readonly offset: number;
  /** Sends the file (or the rest of it); resolves when the server has every byte. */
  start(): Promise<UploadOutcome>;
  /** Aborts the request under way; `start()` resumes from what the server stored. */
  pause(): void;
}

/** The base64 of a UTF-8 string (tus metadata values), without Node's Buffer. */
function base64(text: string): string {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/** `Upload-Metadata`: `key base64value` pairs. */
export function uploadMetadataHeader(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([key, value]) => (value === '' ? key : `${key} ${base64(value)}`))
    .join(',');
}

/** A failure worth resuming after: the connection dropped, the server failed, or offsets disagree. */
class Retryable extends Error {
  override readonly name = 'Retryable';
}

async function problemOf(response: Response): Promise<ImagesApiError> {
  const type = response.headers.get('content-type') ?? '';
  if (/^application\/problem\+json/i.test(type)) return new ImagesApiError((await response.json()) as ApiProblem);
  return new ImagesApiError({
    type: 'about:blank',
    title: response.statusText || 'HTTP error',
    status: response.status,
    detail: `The server answered ${response.status} without a problem description`,
    code: response.status === 404 ? 'NOT_FOUND' : 'HTTP_ERROR',
  });
}

function offsetOf(response: Response): number {
  const value = Number(response.headers.get('Upload-Offset'));
  if (!Number.isSafeInteger(value) || value < 0) throw new Retryable('The server answered without a valid Upload-Offset');
  return value;
}

/** Creates a resumable upload of `options.file`; nothing is sent until `start()`. */
export function createResumableUpload(options: ResumableUploadOptions): ResumableUpload {
  const fetchImpl = options.fetch ?? globalThis.fetch.bind(globalThis);
  const chunkBytes = Math.max(1, options.chunkBytes ?? 8 * 1024 * 1024);
  const delays = options.retryDelaysMs ?? [500, 1000, 2000, 4000, 8000];
  const total = options.file.size;
  let url: string | null = options.uploadUrl ?? null;
  let offset = 0;
  let controller: AbortController | null = null;
  let outcome: UploadOutcome | null = null;

  const headers = async (extra: Record<string, string>): Promise<Headers> => {
    const own = typeof options.headers === 'function' ? await options.headers() : (options.headers ?? {});
    return new Headers({ ...own, 'Tus-Resumable': TUS_VERSION, ...extra });
  };

  /** One request; a dropped connection and a 5xx are retryable, an abort is not. */
  async function send(target: string, init: RequestInit, signal: AbortSignal): Promise<Response> {
    let response: Response;
    try {
      response = await fetchImpl(target, { ...init, signal });
    } catch (error) {
      if (signal.aborted) throw signal.reason ?? error;
      throw new Retryable('The connection dropped', { cause: error });
    }
    if (response.status >= 500 || response.status === 409) {
      // A wrong offset (409 CONFLICT) or a failing server: ask for the offset and go on. Full
      // storage (507) and the other conflicts (a cap reached) do not pass by retrying.
      const problem = await problemOf(response);
      const passing = response.status === 409 ? problem.code === 'CONFLICT' : response.status !== 507;
      throw passing ? new Retryable(problem.message, { cause: problem }) : problem;
    }
    if (!response.ok) throw await problemOf(response);
    return response;
  }

  async function create(signal: AbortSignal): Promise<string> {
    const response = await send(
      options.endpoint,
      {
        method: 'POST',
        headers: await headers({ 'Upload-Length': String(total), 'Upload-Metadata': uploadMetadataHeader(options.metadata) }),
      },
      signal,
    );
    const location = response.headers.get('Location');
    if (!location) throw new Error('The server created the upload without a Location');
    return new URL(location, options.endpoint).toString();
  }

  async function serverOffset(target: string, signal: AbortSignal): Promise<number> {
    const response = await send(target, { method: 'HEAD', headers: await headers({}) }, signal);
    return offsetOf(response);
  }

  async function piece(target: string, signal: AbortSignal): Promise<Response> {
    const end = Math.min(total, offset + chunkBytes);
    const response = await send(
      target,
      {
        method: 'PATCH',
        headers: await headers({ 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }),
        body: options.file.slice(offset, end),
      },
      signal,
    );
    const stored = offsetOf(response);
    if (stored < offset) throw new Retryable('The server went back to an earlier offset');
    offset = stored;
    options.onProgress?.(offset, total);
    return response;
  }

  async function run(signal: AbortSignal): Promise<UploadOutcome> {
    let needOffset = url !== null;
    let failures = 0;
    for (;;) {
      try {
        if (url === null) url = await create(signal);
        if (needOffset) {
          offset = await serverOffset(url, signal);
          options.onProgress?.(offset, total);
          needOffset = false;
        }
        // An empty file is complete once created; otherwise the last piece's answer tells where it went.
        let last: Response | null = null;
        while (offset < total || (total === 0 && last === null)) {
          const before = offset;
          last = await piece(url, signal);
          if (offset > before) failures = 0;
          if (total === 0) break;
        }
        if (last === null) last = await send(url, { method: 'HEAD', headers: await headers({}) }, signal);
        return { url, imageId: last.headers.get('Upload-Image-Id'), taskId: last.headers.get('Upload-Task-Id') };
      } catch (error) {
        if (!(error instanceof Retryable) || url === null || failures >= delays.length) throw unwrap(error);
        const delay = delays[failures++]!;
        await sleep(delay, signal);
        offset = await serverOffset(url, signal).catch((e: unknown) => {
          if (signal.aborted) throw signal.reason ?? e;
          return offset;
        });
        options.onResume?.(offset, error.cause ?? error);
        options.onProgress?.(offset, total);
      }
    }
  }

  return {
    get url() {
      return url;
    },
    get offset() {
      return offset;
    },
    async start() {
      if (outcome) return outcome;
      if (controller) throw new Error('The upload is already running');
      controller = new AbortController();
      try {
        outcome = await run(controller.signal);
        return outcome;
      } finally {
        controller = null;
      }
    },
    pause() {
      controller?.abort(new DOMException('The upload was paused', 'AbortError'));
    },
  };
}

/** What a caller sees of a failure: the problem, or the dropped connection. */
function unwrap(error: unknown): unknown {
  return error instanceof Retryable && error.cause instanceof Error ? error.cause : error;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', stop);
      resolve();
    }, ms);
    const stop = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener('abort', stop, { once: true });
  });
}
