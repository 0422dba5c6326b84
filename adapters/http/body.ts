/**
 * JSON request bodies read from a web `Request`: the media type must be JSON and the charset UTF-8
 * (415 otherwise), a declared length over the limit is refused before a byte is read, a body that
 * grows past the limit is cut off (413), gzip and deflate bodies are decompressed (a body that
 * does not match its Content-Encoding is a 400), and only an object or an array is JSON here.
 * @module
 */
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { HttpProblem } from './problem';

const JSON_TYPES = /^application\/(?:json|[^/;\s]+\+json)$/;

/** The media type of a Content-Type header, lower-cased, without parameters. */
export function mediaType(header: string | null): string | null {
  if (header === null) return null;
  const type = header.split(';', 1)[0]?.trim().toLowerCase();
  return type ? type : null;
}

function charsetOf(header: string): string | null {
  const match = /;\s*charset\s*=\s*(?:"([^"]*)"|([^;\s]*))/i.exec(header);
  return match ? (match[1] ?? match[2] ?? '').toLowerCase() : null;
}

function tooLarge(limit: number): HttpProblem {
  return new HttpProblem('PAYLOAD_TOO_LARGE', 'The JSON body is too large', { details: { limitBytes: limit } });
}

/** Whether the request announces a body (a length other than 0, or chunked framing). */
function framing(request: Request): 'none' | 'announced' | 'unknown' {
  const length = request.headers.get('content-length');
  if (request.body === null || length === '0') return 'none';
  if (length !== null || request.headers.get('transfer-encoding') !== null) return 'announced';
  // A Request built in-process (a test, a framework's own request) carries no framing headers.
  return 'unknown';
}

function decoderFor(encoding: string): NodeJS.ReadWriteStream | null {
  if (encoding === 'identity') return null;
  if (encoding === 'gzip' || encoding === 'x-gzip') return createGunzip();
  if (encoding === 'deflate') return createInflate();
  if (encoding === 'br') return createBrotliDecompress();
  throw new HttpProblem(
    'UNSUPPORTED_MEDIA_TYPE',
    `The Content-Encoding ${JSON.stringify(encoding)} is not supported; send gzip, deflate, br or none`,
  );
}

/** Reads the (decoded) body up to `limit` bytes; over it, stops reading and throws 413. */
async function readLimited(request: Request, limit: number): Promise<Buffer> {
  const encoding = (request.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
  const decoder = decoderFor(encoding);
  const raw = Readable.fromWeb(request.body as NodeReadableStream<Uint8Array>);
  const source = decoder ? raw.pipe(decoder) : raw;
  if (decoder) raw.once('error', (error) => (decoder as unknown as Readable).destroy(error));
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) throw tooLarge(limit);
      chunks.push(chunk);
    }
  } catch (error) {
    // A zlib error: the body is not what its Content-Encoding says (e.g. gzip on plain JSON).
    const code = (error as { code?: unknown } | null)?.code;
    if (typeof code === 'string' && code.startsWith('Z_')) {
      throw new HttpProblem('MALFORMED_JSON', 'The request body could not be decompressed: it does not match its Content-Encoding');
    }
    throw error;
  } finally {
    raw.destroy();
  }
  return Buffer.concat(chunks);
}

/**
 * The JSON body of `request` (`{}` when it has none).
 * @throws HttpProblem UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE or MALFORMED_JSON.
 */
export async function readJsonBody(request: Request, limit: number): Promise<unknown> {
  const kind = framing(request);
  if (kind === 'none') return {};
  const contentType = request.headers.get('content-type');
  const checkType = () => {
    if (!JSON_TYPES.test(mediaType(contentType) ?? ''))
      throw new HttpProblem('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json');
    const charset = charsetOf(contentType as string);
    if (charset !== null && charset !== 'utf-8') {
      throw new HttpProblem('UNSUPPORTED_MEDIA_TYPE', "The body's charset or encoding is not supported; send UTF-8 JSON");
    }
  };
  if (kind === 'announced') {
    checkType();
    // Refuse an oversized declared length from the header, before reading (or waiting for) the body.
    const length = request.headers.get('content-length');
    if (length !== null && /^\d+$/.test(length) && Number(length) > limit) throw tooLarge(limit);
  }
  const bytes = await readLimited(request, limit);
  if (bytes.length === 0) return {};
  if (kind === 'unknown') checkType();
  const text = new TextDecoder().decode(bytes);
  // Strict JSON: an object or an array, like the schemas expect (a bare string or number is not a body).
  if (!/^[\s]*[[{]/.test(text)) throw new HttpProblem('MALFORMED_JSON', 'The request body is not valid JSON (an object is expected)');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpProblem('MALFORMED_JSON', 'The request body is not valid JSON (an object is expected)');
  }
}
