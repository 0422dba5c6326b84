/**
 * Routes of images that move: import from a URL (customers where the location allows it, and
 * operators for stock OS images), cancel an import, ask for a download link, and the signed
 * download itself — a public route: the link is the credential, checked by the export service.
 * @module
 */
import { z } from 'zod';
import { Sha256Schema } from '../../src/model/common';
import { DownloadLinkInputSchema, type DownloadLink, type ExportDownload } from '../../src/services/image-export';
import { ImportImageInputSchema, ImportOsImageInputSchema } from '../../src/services/image-import';
import { HttpProblem } from './problem';
import { defineRoute, type RouteDefinition } from './route-types';
import { readableToWeb } from './streams';
import { ImageWithTaskSchema, TaskSchema } from './schemas';

const id = (params: Record<string, string>, name: string): string => params[name] as string;

/** The path of signed downloads, below the API's mount point. */
export const DOWNLOAD_PATH = '/downloads/images/:imageId';

/** The query of a signed download link. */
export const SignedDownloadQuerySchema = z.strictObject({
  /** The owning account the link was signed for (empty for a stock image). */
  account: z.string().max(200),
  /** Expiry in seconds since the epoch. */
  expires: z.number().int().nonnegative(),
  /** The link's signature (base64url). */
  signature: z.string().min(1).max(200),
});

/** POST /admin/os-images/import: the future image id and the import task. */
export const OsImageImportSchema = z.object({ imageId: z.string(), task: TaskSchema });

/** A download link as answered (a presigned storage URL, or a panel URL relative to the panel's origin). */
export const DownloadLinkSchema = z.object({
  kind: z.enum(['presigned', 'signed']).describe('`presigned`: the storage serves the file; `signed`: the panel streams it'),
  url: z.string().describe('Absolute for `presigned`; for `signed` a path on the panel (resolve it against the panel origin)'),
  imageId: z.string(),
  filename: z.string(),
  format: z.enum(['qcow2', 'raw']),
  sizeBytes: z.number().int(),
  sha256: Sha256Schema,
  expiresAt: z.date(),
});

/** The answer of a link: a signed link's URL is built under the API's mount point. */
function linkBody(link: DownloadLink, baseUrl: string): z.input<typeof DownloadLinkSchema> {
  const { imageId, filename, format, sizeBytes, sha256, expiresAt } = link;
  const url =
    link.kind === 'presigned'
      ? link.url
      : `${baseUrl}${DOWNLOAD_PATH.replace(':imageId', encodeURIComponent(imageId))}?${new URLSearchParams({
          account: link.accountId,
          expires: String(link.expires),
          signature: link.signature,
        }).toString()}`;
  return { kind: link.kind, url, imageId, filename, format, sizeBytes, sha256, expiresAt };
}

/**
 * The one range of a `Range` header within `size` bytes: `undefined` for none (or several, which
 * are answered with the whole file), `null` when it cannot be satisfied.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | undefined {
  if (!header) return undefined;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match) return undefined;
  const [, from = '', to = ''] = match;
  if (from === '' && to === '') return undefined;
  if (from === '') {
    const suffix = Number(to);
    if (suffix === 0 || size === 0) return null;
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(from);
  const end = to === '' ? size - 1 : Math.min(Number(to), size - 1);
  if (start >= size || end < start) return null;
  return { start, end };
}

function contentDisposition(filename: string): string {
  return `attachment; filename="${filename.replace(/["\\]/g, '_')}"`;
}

/**
 * A signed download: the whole file (200) or one range (206), with its sha256. The file is pulled
 * through a web stream as the client reads it (never buffered); when the client goes away the
 * stream is cancelled, which destroys the storage read and aborts it.
 */
async function downloadResponse(download: ExportDownload, request: Request): Promise<Response> {
  const range = parseRange(request.headers.get('range') ?? undefined, download.sizeBytes);
  const digest = Buffer.from(download.sha256, 'hex').toString('base64');
  const headers = new Headers({
    'Accept-Ranges': 'bytes',
    'Cache-Control': 'private, no-store',
    ETag: `"${download.sha256}"`,
    'Repr-Digest': `sha-256=:${digest}:`,
    'X-Checksum-Sha256': download.sha256,
    'Content-Disposition': contentDisposition(download.filename),
  });
  if (range === null) {
    headers.set('Content-Range', `bytes */${download.sizeBytes}`);
    throw new HttpProblem('RANGE_NOT_SATISFIABLE', `The range lies outside the file of ${download.sizeBytes} bytes`, {
      headers: Object.fromEntries(headers),
    });
  }
  headers.set('Content-Type', 'application/octet-stream');
  headers.set('Content-Length', String(range ? range.end - range.start + 1 : download.sizeBytes));
  if (range) headers.set('Content-Range', `bytes ${range.start}-${range.end}/${download.sizeBytes}`);
  const status = range ? 206 : 200;
  if (request.method === 'HEAD') return new Response(null, { status, headers });
  const controller = new AbortController();
  const abort = () => controller.abort();
  request.signal.addEventListener('abort', abort, { once: true });
  const file = await download.open(range ?? undefined, controller.signal);
  const body = readableToWeb(file, () => {
    request.signal.removeEventListener('abort', abort);
    controller.abort();
  });
  return new Response(body, { status, headers });
}

/** The routes of imports and exports. */
export const MOVING_ROUTES: readonly RouteDefinition[] = [
  defineRoute({
    method: 'post',
    path: '/images/import',
    operationId: 'importImage',
    summary: 'Import an image from a URL (the download runs in the background)',
    tag: 'images',
    admin: false,
    body: ImportImageInputSchema,
    success: { status: 202, description: 'The image in `creating` and its import task', schema: ImageWithTaskSchema },
    errors: [403, 409, 422, 503, 507],
    handle: async ({ actor, body, runtime, baseUrl }) => {
      const result = await runtime.service.imports.importImage(actor, body);
      return { status: 202, body: result, location: `${baseUrl}/images/${encodeURIComponent(result.image.id)}` };
    },
  }),
  defineRoute({
    method: 'post',
    path: '/imports/:taskId/cancel',
    operationId: 'cancelImport',
    summary: 'Cancel an import; nothing downloaded is kept',
    tag: 'images',
    admin: false,
    success: { status: 200, description: 'The import task', schema: TaskSchema },
    handle: async ({ actor, params, runtime }) => ({
      status: 200,
      body: await runtime.service.imports.cancelImport(actor, id(params, 'taskId')),
    }),
  }),
  defineRoute({
    method: 'post',
    path: '/images/:imageId/download-link',
    operationId: 'createDownloadLink',
    summary: 'An expiring download link of an available image',
    tag: 'images',
    admin: false,
    body: DownloadLinkInputSchema,
    success: { status: 201, description: 'The link', schema: DownloadLinkSchema },
    errors: [403, 409, 503],
    handle: async ({ actor, params, body, runtime, baseUrl }) => {
      const link = await runtime.service.exports.createDownloadLink(actor, id(params, 'imageId'), body);
      return { status: 201, body: linkBody(link, baseUrl) };
    },
  }),
  defineRoute({
    method: 'get',
    path: DOWNLOAD_PATH,
    operationId: 'downloadImage',
    summary: 'Download an image through a signed link (no session: the link is the credential); Range supported',
    tag: 'images',
    admin: false,
    public: true,
    query: SignedDownloadQuerySchema,
    success: { status: 200, description: 'The image file (206 with one range)', contentType: 'application/octet-stream' },
    errors: [403, 416, 503],
    handle: async ({ params, query, runtime, request }) => {
      const download = await runtime.service.exports.openDownload({
        imageId: id(params, 'imageId'),
        accountId: query.account,
        expires: query.expires,
        signature: query.signature,
      });
      return { response: await downloadResponse(download, request) };
    },
  }),
  defineRoute({
    method: 'post',
    path: '/admin/os-images/import',
    operationId: 'importOsImage',
    summary: 'Import a stock OS image from a URL onto a template storage',
    tag: 'admin: catalog',
    admin: true,
    body: ImportOsImageInputSchema,
    success: { status: 202, description: 'The future image id and the import task', schema: OsImageImportSchema },
    errors: [422, 503, 507],
    handle: async ({ actor, body, runtime }) => ({ status: 202, body: await runtime.service.imports.importOsImage(actor, body) }),
  }),
];
