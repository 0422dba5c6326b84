/**
 * The client's resumable (tus) upload against the real tus handler and upload service (on fakes of
 * our own ports): pieces in order, a piece cut by a dropped connection resumed from the offset the
 * server reports (no stored byte sent twice), pause and resume, and problems that do not pass by
 * retrying (a cap) thrown at once as ImagesApiError.
 */
import { rmSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { createTusHandler, parseUploadMetadata, type TusHandler } from '../../../adapters/tus/handler';
import { createImagesClient, createResumableUpload, isImagesApiError, uploadMetadataHeader } from '../../../src/client';
import type { InstanceImages } from '../../../src';
import { uploadWorld } from '../../support/upload-world';
import { sha256 } from '../../support/fakes';

const BASE = '/api/uploads';
const CHUNK = 64 * 1024;
const bytes = Buffer.concat(Array.from({ length: 40 }, (_, i) => Buffer.alloc(8 * 1024, i + 1)));
const file = new Blob([bytes]);

let ii: InstanceImages | null = null;
let dir = '';
let tus: TusHandler;

async function setup(limit?: number): Promise<void> {
  ({ ii, dir } = await uploadWorld({}, limit !== undefined ? { defaultImageLimit: limit } : {}));
  tus = createTusHandler({
    service: ii,
    resolveActor: (request) => {
      const who = request.headers.get('x-account');
      return who ? { kind: 'customer', accountId: who } : null;
    },
  });
}

afterEach(async () => {
  await ii?.close();
  ii = null;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A fetch answered by the tus handler; `cut(n)` decides whether the n-th PATCH drops after `keep` bytes. */
function tusFetch(cut: (patch: number) => number | null = () => null) {
  const log = { patches: 0, bodyBytes: 0, methods: [] as string[] };
  const impl = async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const method = (init.method ?? 'GET').toUpperCase();
    log.methods.push(method);
    const url = new URL(String(input));
    if (method !== 'PATCH') return tus(new Request(url, init), { basePath: BASE });
    const body = Buffer.from(await new Response(init.body as Blob).arrayBuffer());
    const keep = cut(++log.patches);
    if (keep === null) {
      log.bodyBytes += body.length;
      return tus(new Request(url, { ...init, body }), { basePath: BASE });
    }
    // The connection drops after `keep` bytes: the server sees a body that errors, the client a network error.
    log.bodyBytes += keep;
    let sent = false;
    const dropped = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) return controller.error(new Error('socket hang up'));
        controller.enqueue(body.subarray(0, keep));
        sent = true;
      },
    });
    await tus(new Request(url, { ...init, body: dropped, duplex: 'half' } as RequestInit), { basePath: BASE });
    throw new TypeError('fetch failed');
  };
  return { log, fetch: impl as typeof fetch };
}

const metadata = { name: 'uploaded', locationId: 'loc-1', filename: 'disk.raw' };

describe('the client’s resumable uploads', () => {
  it('sends the file in pieces and the upload becomes an available image', async () => {
    await setup();
    const { log, fetch } = tusFetch();
    const client = createImagesClient({ baseUrl: 'http://panel/api', fetch, headers: { 'x-account': 'acct-alice' } });
    const progress: number[] = [];
    const upload = client.upload({ file, metadata, chunkBytes: CHUNK, onProgress: (stored) => progress.push(stored) });
    const outcome = await upload.start();
    expect(outcome.url).toMatch(/^http:\/\/panel\/api\/uploads\/upl_/);
    expect(log.methods).toEqual(['POST', 'PATCH', 'PATCH', 'PATCH', 'PATCH', 'PATCH']);
    expect(progress).toEqual([1, 2, 3, 4, 5].map((n) => Math.min(n * CHUNK, bytes.length)));
    await ii!.idle();
    expect(await ii!.repositories.images.get(outcome.imageId!)).toMatchObject({
      status: 'available',
      accountId: 'acct-alice',
      name: 'uploaded',
      sha256: sha256(bytes),
    });
    expect(await ii!.repositories.tasks.get(outcome.taskId!)).toMatchObject({ type: 'import', status: 'completed' });
  });

  it('resumes a piece cut mid-way from the offset the server reports, sending no stored byte twice', async () => {
    await setup();
    const { log, fetch } = tusFetch((n) => (n === 2 ? 10_000 : null));
    const resumed: number[] = [];
    const upload = createResumableUpload({
      endpoint: 'http://panel/api/uploads',
      file,
      metadata,
      chunkBytes: CHUNK,
      fetch,
      headers: { 'x-account': 'acct-alice' },
      retryDelaysMs: [1],
      onResume: (offset) => resumed.push(offset),
    });
    const outcome = await upload.start();
    expect(resumed).toEqual([CHUNK + 10_000]);
    expect(log.methods.filter((m) => m === 'HEAD')).toHaveLength(1);
    expect(log.bodyBytes).toBe(bytes.length);
    await ii!.idle();
    expect(await ii!.repositories.images.get(outcome.imageId!)).toMatchObject({ status: 'available', sha256: sha256(bytes) });
  });

  it('pauses (aborting the request under way) and resumes the same upload', async () => {
    await setup();
    const inner = tusFetch();
    let hold: (() => void) | null = null;
    const fetch = (async (input: string | URL | Request, init: RequestInit = {}) => {
      if (init.method === 'PATCH' && inner.log.patches === 1 && hold === null)
        await new Promise<void>((resolve, reject) => {
          hold = resolve;
          init.signal?.addEventListener('abort', () => reject(init.signal?.reason));
        });
      return inner.fetch(input, init);
    }) as typeof globalThis.fetch;
    const upload = createResumableUpload({
      endpoint: 'http://panel/api/uploads',
      file,
      metadata,
      chunkBytes: CHUNK,
      fetch,
      headers: { 'x-account': 'acct-alice' },
    });
    const first = upload.start();
    await expect.poll(() => hold !== null).toBe(true);
    upload.pause();
    await expect(first).rejects.toMatchObject({ name: 'AbortError' });
    expect(upload.offset).toBe(CHUNK);
    const outcome = await upload.start();
    expect(inner.log.methods.filter((m) => m === 'HEAD')).toHaveLength(1);
    expect(outcome.url).toBe(upload.url);
    await ii!.idle();
    expect(await ii!.repositories.images.get(outcome.imageId!)).toMatchObject({ status: 'available', sha256: sha256(bytes) });
  });

  it('throws a problem that does not pass by retrying (the image cap) at once', async () => {
    await setup(0);
    const { log, fetch } = tusFetch();
    const upload = createResumableUpload({
      endpoint: 'http://panel/api/uploads',
      file,
      metadata,
      fetch,
      headers: { 'x-account': 'acct-alice' },
    });
    const error = await upload.start().catch((e: unknown) => e);
    expect(isImagesApiError(error) && error.code).toBe('IMAGE_LIMIT_REACHED');
    expect(log.methods).toEqual(['POST']);
  });

  it('writes Upload-Metadata the server reads back (UTF-8 values, empty values as bare keys)', () => {
    const header = uploadMetadataHeader({ name: 'Bücher – web', filename: '' });
    expect(parseUploadMetadata(header)).toEqual({ name: 'Bücher – web', filename: '' });
  });
});
