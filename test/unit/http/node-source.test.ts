/**
 * A download body made from a Node stream is piped straight into a Node response (no promise per
 * chunk), with the web path's rules: the whole body arrives, a client that goes away cancels the
 * source, a source that fails cuts the connection; a body already read as a web stream is not
 * taken again.
 */
import { createServer, get, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { sendWebResponse } from '../../../adapters/http/node';
import { readableToWeb, takeNodeSource } from '../../../adapters/http/streams';

let server: Server | null = null;
afterEach(() => new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve())));

async function serve(body: () => Response): Promise<string> {
  server = createServer((req, res) => void sendWebResponse(body(), req, res));
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
}

describe('Node sources of web bodies', () => {
  it('hands the source out once, and not after the web stream was read', async () => {
    const stream = readableToWeb(Readable.from([Buffer.from('ab')]));
    expect(takeNodeSource(stream)?.source).toBeInstanceOf(Readable);
    expect(takeNodeSource(stream)).toBeUndefined();
    const read = readableToWeb(Readable.from([Buffer.from('a'), Buffer.from('b')]));
    const reader = read.getReader();
    await reader.read();
    reader.releaseLock();
    expect(takeNodeSource(read)).toBeUndefined();
  });

  it('sends the whole body through the Node pipe', async () => {
    const chunks = Array.from({ length: 64 }, (_, i) => Buffer.alloc(65536, i));
    const url = await serve(() => new Response(readableToWeb(Readable.from(chunks))));
    const response = await fetch(url);
    expect(Buffer.from(await response.arrayBuffer()).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('cancels the source when the client goes away, and cuts the connection when the source fails', async () => {
    const source = new PassThrough();
    let cancelled = false;
    const url = await serve(() => new Response(readableToWeb(source, () => (cancelled = true))));
    await new Promise<void>((resolve) => {
      const request = get(url, (res) => {
        res.once('data', () => request.destroy());
        res.on('error', () => undefined);
      });
      request.on('error', () => undefined);
      request.on('close', () => resolve());
      source.write(Buffer.alloc(1024));
    });
    await expect.poll(() => cancelled && source.destroyed).toBe(true);

    const failing = new PassThrough();
    const url2 = await (async () => {
      await new Promise<void>((resolve) => server?.close(() => resolve()));
      return serve(() => new Response(readableToWeb(failing)));
    })();
    const outcome = await new Promise<string>((resolve) => {
      get(url2, (res) => {
        res.on('data', () => failing.destroy(new Error('disk gone')));
        res.on('end', () => resolve('ended'));
        res.on('error', () => resolve('cut'));
        res.on('aborted', () => resolve('cut'));
      }).on('error', () => resolve('cut'));
      failing.write(Buffer.alloc(16));
    });
    expect(outcome).toBe('cut');
  });
});
