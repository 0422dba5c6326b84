/**
 * Node's HTTP objects as web ones and back, for mounting the framework-agnostic tus handler in a
 * Node framework (the Express router does): the request body is streamed, never buffered, and a
 * client that goes away mid-piece ends the web body with an error (the bytes received still count).
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';

/** A web `Request` for a Node request; `origin` is any absolute origin (only the path is read). */
export function toWebRequest(req: IncomingMessage, path: string, origin = 'http://localhost'): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item);
  }
  const method = req.method ?? 'GET';
  const hasBody = method !== 'GET' && method !== 'HEAD' && method !== 'OPTIONS';
  return new Request(new URL(path, origin), {
    method,
    headers,
    ...(hasBody ? { body: Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>, duplex: 'half' } : {}),
  } as RequestInit);
}

/** Writes a web `Response` to a Node response (streaming its body). */
export async function sendWebResponse(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status;
  response.headers.forEach((value, name) => res.setHeader(name, value));
  if (response.body === null) {
    res.end();
    return;
  }
  await new Promise<void>((resolve, reject) => {
    Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>)
      .once('error', reject)
      .pipe(res)
      .once('finish', resolve)
      .once('error', reject);
  });
}
