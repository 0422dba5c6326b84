/**
 * The tus 1.0.0 protocol (core, creation, creation-defer-length, termination, checksum,
 * expiration) over the SDK's resumable uploads, as one framework-agnostic function: a web
 * `Request` in, a web `Response` out. Any framework mounts it at a collection path (the
 * dispatcher of adapters/http does at `/uploads`, so Express, node:http and Hono serve it alike;
 * see docs/images-that-move.md, "Resumable uploads"):
 *
 * - `OPTIONS <base>`: the server's tus capabilities (no actor needed).
 * - `POST <base>`: a new upload (`Upload-Length` or `Upload-Defer-Length: 1`, `Upload-Metadata`
 *   naming the image) → 201 with `Location: <base>/<id>`.
 * - `HEAD <base>/<id>`: its offset; `PATCH <base>/<id>`: a piece at `Upload-Offset`
 *   (`application/offset+octet-stream`); `DELETE <base>/<id>`: terminate.
 * - `GET <base>/<id>`: the upload as JSON (not tus: where a complete upload went).
 *
 * Every request but OPTIONS resolves the caller through the host's `resolveActor`; an upload is
 * visible only to who created it (404 otherwise). Errors are `application/problem+json` with the
 * SDK's codes; the statuses are tus's (409 wrong offset, 412 wrong protocol version, 413 too
 * large, 415 wrong content type, 460 piece checksum mismatch).
 * @module
 */
import { InstanceImagesError } from '../../src/errors';
import { ActorSchema, type Actor } from '../../src/services/actor';
import type { Logger } from '../../src/services/context';
import type { CreateUploadInput, ImageUploadService, UploadInfo } from '../../src/services/image-upload';
import type { PieceChecksum } from '../../src/import/staging';
import { HttpProblem, PROBLEM_CONTENT_TYPE, problemFromError } from '../http/problem';

/** The protocol version served. */
export const TUS_VERSION = '1.0.0';
/** The extensions served. */
export const TUS_EXTENSIONS = ['creation', 'creation-defer-length', 'termination', 'checksum', 'expiration'] as const;
/** The piece checksum algorithms accepted in `Upload-Checksum`. */
export const TUS_CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'md5'] as const;
/** The content type of a piece. */
export const OFFSET_CONTENT_TYPE = 'application/offset+octet-stream';

/** Metadata keys that name what the upload becomes (`Upload-Metadata`, values base64). */
export const UPLOAD_METADATA_KEYS = [
  'kind',
  'name',
  'description',
  'locationId',
  'accountId',
  'sha256',
  'osType',
  'cloudInit',
  'mediaGroupId',
  'storageId',
  'hypervisorId',
] as const;
/** Keys tus clients add on their own (Uppy, tus-js-client with a File): kept, not interpreted. */
const CLIENT_METADATA_KEYS = new Set(['filename', 'filetype', 'type', 'relativePath']);

/** The routes a framework registers for the handler, below the API's mount point (HEAD is served with GET). */
export const TUS_ROUTES = [
  { method: 'options', path: '/uploads' },
  { method: 'post', path: '/uploads' },
  { method: 'get', path: '/uploads/:uploadId' },
  { method: 'patch', path: '/uploads/:uploadId' },
  { method: 'delete', path: '/uploads/:uploadId' },
] as const;

/** Options of {@link createTusHandler}. */
export interface TusHandlerOptions {
  /** The SDK (its `uploads`). */
  service: { uploads: ImageUploadService };
  /** The host's authentication: who sent this request (`null`: 401). */
  resolveActor: (request: Request) => Actor | null | Promise<Actor | null>;
  /** Where unexpected errors are logged. @default silent */
  logger?: Logger;
}

/** Per request: the path of the upload collection on this server (e.g. `/api/images/uploads`). */
export interface TusRequestContext {
  basePath: string;
}

/** A tus handler: `Request` → `Response`. */
export type TusHandler = (request: Request, context: TusRequestContext) => Promise<Response>;

function tusHeaders(extra: Record<string, string> = {}): Headers {
  const headers = new Headers({ 'Tus-Resumable': TUS_VERSION, 'Cache-Control': 'no-store', ...extra });
  return headers;
}

/** `Upload-Metadata` → key/value pairs (values base64-decoded as UTF-8). */
export function parseUploadMetadata(header: string | null): Record<string, string> {
  const result: Record<string, string> = {};
  if (header === null || header.trim() === '') return result;
  for (const pair of header.split(',')) {
    const [key = '', value, ...rest] = pair.trim().split(' ');
    const bad = (message: string) =>
      new InstanceImagesError('VALIDATION_FAILED', `Upload-Metadata is not valid: ${message}`, {
        fields: [{ path: 'Upload-Metadata', message }],
      });
    if (key === '' || rest.length > 0 || !/^[\x21-\x7e]+$/.test(key)) throw bad('each pair is "key base64value"');
    if (key in result) throw bad(`key ${key} is given twice`);
    if (value !== undefined && !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw bad(`the value of ${key} is not base64`);
    result[key] = value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8');
  }
  return result;
}

/** The upload's input from its metadata: what it becomes (see {@link UPLOAD_METADATA_KEYS}). */
export function uploadInputOf(metadata: Record<string, string>, lengthBytes: number | null): CreateUploadInput {
  const unknown = Object.keys(metadata).filter(
    (k) => !CLIENT_METADATA_KEYS.has(k) && !(UPLOAD_METADATA_KEYS as readonly string[]).includes(k),
  );
  if (unknown.length > 0)
    throw new InstanceImagesError('VALIDATION_FAILED', `Upload-Metadata has unknown keys: ${unknown.join(', ')}`, {
      fields: unknown.map((k) => ({ path: `Upload-Metadata.${k}`, message: 'is not a known key' })),
    });
  const field = (key: string) => (metadata[key] === undefined ? {} : { [key]: metadata[key] });
  const name = metadata.name ?? metadata.filename;
  const common = { ...(name !== undefined ? { name } : {}), ...field('description'), ...field('sha256') };
  const target =
    metadata.kind === 'os-image'
      ? {
          kind: 'os-image' as const,
          ...common,
          ...field('osType'),
          ...field('storageId'),
          ...field('hypervisorId'),
          ...field('mediaGroupId'),
          ...(metadata.cloudInit !== undefined ? { cloudInit: metadata.cloudInit === 'true' ? true : metadata.cloudInit } : {}),
        }
      : { kind: (metadata.kind ?? 'image') as 'image', ...common, ...field('locationId'), ...field('accountId') };
  return { target: target as CreateUploadInput['target'], lengthBytes, metadata };
}

/** Key/value pairs as an `Upload-Metadata` header. */
export function formatMetadata(metadata: Record<string, string>): string {
  return Object.entries(metadata)
    .map(([k, v]) => (v === '' ? k : `${k} ${Buffer.from(v, 'utf8').toString('base64')}`))
    .join(',');
}

/** A non-negative integer header, or null when absent. */
function integerHeader(request: Request, name: string): number | null {
  const value = request.headers.get(name);
  if (value === null) return null;
  const number = /^\d{1,16}$/.test(value.trim()) ? Number(value.trim()) : NaN;
  if (!Number.isSafeInteger(number))
    throw new InstanceImagesError('VALIDATION_FAILED', `The ${name} header must be a non-negative integer`, {
      fields: [{ path: name, message: 'must be a non-negative integer' }],
    });
  return number;
}

function parseChecksum(header: string | null): PieceChecksum | null {
  if (header === null) return null;
  const [algorithm = '', digest = ''] = header.trim().split(' ');
  if (!(TUS_CHECKSUM_ALGORITHMS as readonly string[]).includes(algorithm) || !/^[A-Za-z0-9+/]+={0,2}$/.test(digest))
    throw new InstanceImagesError('VALIDATION_FAILED', `Upload-Checksum must be "<${TUS_CHECKSUM_ALGORITHMS.join('|')}> <base64 digest>"`, {
      fields: [{ path: 'Upload-Checksum', message: 'unsupported algorithm or malformed digest' }],
    });
  return { algorithm: algorithm as PieceChecksum['algorithm'], digest: Buffer.from(digest, 'base64') };
}

/** The state headers of an upload (HEAD, PATCH answers). */
function stateHeaders(info: UploadInfo): Headers {
  const headers = tusHeaders({ 'Upload-Offset': String(info.offsetBytes), 'Upload-Expires': info.expiresAt.toUTCString() });
  if (info.lengthBytes === null) headers.set('Upload-Defer-Length', '1');
  else headers.set('Upload-Length', String(info.lengthBytes));
  // tus: a HEAD answer carries the metadata the upload was created with.
  if (Object.keys(info.metadata).length > 0) headers.set('Upload-Metadata', formatMetadata(info.metadata));
  if (info.imageId !== null) headers.set('Upload-Image-Id', info.imageId);
  if (info.taskId !== null) headers.set('Upload-Task-Id', info.taskId);
  return headers;
}

/** The tus status of an error, where it differs from the problem mapping's. */
function tusStatus(error: unknown, status: number): number {
  if (!(error instanceof InstanceImagesError || error instanceof HttpProblem)) return status;
  if (error.details.reason === 'too-large') return 413;
  if (error.code === 'CHECKSUM_MISMATCH' && error.details.reason === 'piece-checksum') return 460;
  if (error.details.reason === 'tus-version') return 412;
  return status;
}

/**
 * Creates the tus handler. The caller routes `<base>` and `<base>/<id>` to it and passes the base
 * path, so that `Location` names the upload where this server serves it.
 */
export function createTusHandler(options: TusHandlerOptions): TusHandler {
  const { uploads } = options.service;
  const logger = options.logger;

  const problem = (error: unknown, actor: Actor | null, head: boolean): Response => {
    const body = problemFromError(error, actor?.kind === 'admin' ? 'admin' : 'customer');
    const status = tusStatus(error, body.status);
    if (body.status >= 500) logger?.error('instance-images upload request failed', { code: body.code, error: String(error) });
    const headers = tusHeaders({ 'Content-Type': PROBLEM_CONTENT_TYPE });
    if (status === 412) headers.set('Tus-Version', TUS_VERSION);
    if (body.code === 'CONFLICT' && typeof body.details?.offsetBytes === 'number')
      headers.set('Upload-Offset', String(body.details.offsetBytes));
    return new Response(head ? null : JSON.stringify({ ...body, status }), { status, headers });
  };

  const resolve = async (request: Request): Promise<Actor> => {
    const actor = await options.resolveActor(request);
    if (actor === null || actor === undefined) throw new HttpProblem('UNAUTHENTICATED');
    const checked = ActorSchema.safeParse(actor);
    if (!checked.success) throw new Error('resolveActor returned a malformed actor');
    return checked.data;
  };

  return async (request, context) => {
    const base = context.basePath.replace(/\/+$/, '');
    const path = new URL(request.url).pathname.replace(/\/+$/, '');
    const method = request.method.toUpperCase();
    const id = path === base ? null : path.startsWith(`${base}/`) ? decodedSegment(path.slice(base.length + 1)) : undefined;
    let actor: Actor | null = null;
    try {
      if (id === undefined || (id !== null && id.includes('/'))) throw new HttpProblem('NOT_FOUND', 'No such upload path');
      if (method === 'OPTIONS')
        return new Response(null, {
          status: 204,
          headers: tusHeaders({
            'Tus-Version': TUS_VERSION,
            'Tus-Extension': TUS_EXTENSIONS.join(','),
            'Tus-Max-Size': String(uploads.maxUploadBytes),
            'Tus-Checksum-Algorithm': TUS_CHECKSUM_ALGORITHMS.join(','),
          }),
        });
      const allowed = id === null ? ['POST', 'OPTIONS'] : ['HEAD', 'GET', 'PATCH', 'DELETE', 'OPTIONS'];
      if (!allowed.includes(method))
        throw new HttpProblem('METHOD_NOT_ALLOWED', `${method} is not allowed here; use ${allowed.join(' or ')}`, {
          details: { allow: allowed.join(', ') },
        });
      if (method !== 'GET' && request.headers.get('Tus-Resumable') !== TUS_VERSION)
        throw new HttpProblem('VALIDATION_FAILED', `Send Tus-Resumable: ${TUS_VERSION}`, {
          fields: [{ path: 'Tus-Resumable', message: `must be ${TUS_VERSION}` }],
          details: { reason: 'tus-version' },
        });
      actor = await resolve(request);
      if (id === null) return await create(request, actor, base);
      if (method === 'HEAD') return new Response(null, { status: 200, headers: stateHeaders(await uploads.getUpload(actor, id)) });
      if (method === 'GET') {
        const info = await uploads.getUpload(actor, id);
        return new Response(JSON.stringify(info), { status: 200, headers: tusHeaders({ 'Content-Type': 'application/json' }) });
      }
      if (method === 'DELETE') {
        await uploads.terminateUpload(actor, id);
        return new Response(null, { status: 204, headers: tusHeaders() });
      }
      return await patch(request, actor, id);
    } catch (error) {
      const response = problem(error, actor, method === 'HEAD');
      if (error instanceof HttpProblem && typeof error.details.allow === 'string') response.headers.set('Allow', error.details.allow);
      return response;
    }
  };

  async function create(request: Request, actor: Actor, base: string): Promise<Response> {
    const length = integerHeader(request, 'Upload-Length');
    const deferred = request.headers.get('Upload-Defer-Length');
    if ((length === null) === (deferred === null) || (deferred !== null && deferred.trim() !== '1'))
      throw new InstanceImagesError('VALIDATION_FAILED', 'Send either Upload-Length or Upload-Defer-Length: 1', {
        fields: [{ path: 'Upload-Length', message: 'or Upload-Defer-Length: 1 is required' }],
      });
    if (length !== null && length > uploads.maxUploadBytes)
      throw new HttpProblem('PAYLOAD_TOO_LARGE', `The upload exceeds the limit of ${uploads.maxUploadBytes} bytes`, {
        details: { reason: 'too-large', limitBytes: uploads.maxUploadBytes },
      });
    const metadata = parseUploadMetadata(request.headers.get('Upload-Metadata'));
    const info = await uploads.createUpload(actor, uploadInputOf(metadata, length));
    const headers = stateHeaders(info);
    headers.set('Location', `${base}/${encodeURIComponent(info.id)}`);
    return new Response(null, { status: 201, headers });
  }

  async function patch(request: Request, actor: Actor, id: string): Promise<Response> {
    const type = (request.headers.get('Content-Type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (type !== OFFSET_CONTENT_TYPE) throw new HttpProblem('UNSUPPORTED_MEDIA_TYPE', `Send each piece as ${OFFSET_CONTENT_TYPE}`);
    const offset = integerHeader(request, 'Upload-Offset');
    if (offset === null)
      throw new InstanceImagesError('VALIDATION_FAILED', 'Upload-Offset is required', {
        fields: [{ path: 'Upload-Offset', message: 'is required' }],
      });
    const info = await uploads.writeUpload(actor, id, {
      offsetBytes: offset,
      body: request.body ?? emptyBody(),
      contentLength: integerHeader(request, 'Content-Length'),
      lengthBytes: integerHeader(request, 'Upload-Length'),
      checksum: parseChecksum(request.headers.get('Upload-Checksum')),
    });
    return new Response(null, { status: 204, headers: stateHeaders(info) });
  }
}

/** A percent-decoded path segment; a malformed one names no upload (undefined: 404). */
function decodedSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

async function* emptyBody(): AsyncGenerator<Uint8Array> {
  // A piece without a body (e.g. only setting a deferred length).
}
