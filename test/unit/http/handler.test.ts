/**
 * The web-standard handler called in process with `Request`s built here (no server, no framing
 * headers): JSON bodies, HEAD and conditional GETs, and streams that stop when the client goes
 * away — the task event stream unsubscribes and a download's storage read is destroyed and
 * aborted, whether the host cancels the body or the request's signal aborts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createImagesHandler, type ImagesHandler } from '../../../adapters/http';
import { PROBE_DOWNLOAD_PATH, probeDownload } from '../../support/download-probe';
import { ALICE, useExpressHarness, type ExpressHarness } from '../../support/express-harness';

const harness = useExpressHarness('node');
// Captures held by a gate are let go before the harness waits for the SDK to be idle (after hooks run last-registered first).
const releases: (() => void)[] = [];
afterEach(() => releases.splice(0).forEach((release) => release()));

/** Holds every capture of the harness until the test ends. */
function gateCaptures(t: ExpressHarness): void {
  t.world.captureGate = new Promise<void>((resolve) => releases.push(resolve));
}

function handlerFor(t: ExpressHarness): ImagesHandler {
  return createImagesHandler({ service: t.ii, resolveActor: () => ALICE, basePath: '/api/images' });
}

const url = (path: string) => `http://panel.example/api/images${path}`;
const listeners = (t: ExpressHarness) => (t.ii.events.all.get('task.progress') ?? []).length;

describe('createImagesHandler in process', () => {
  it('reads a JSON body without framing headers and answers with Location under the base path', async () => {
    const t = await harness();
    const images = handlerFor(t);
    const res = await images(
      new Request(url('/images'), {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instanceId: 'web-1', name: 'in process' }),
      }),
    );
    expect(res.status).toBe(202);
    const body = (await res.json()) as { image: { id: string } };
    expect(res.headers.get('location')).toBe(`/api/images/images/${body.image.id}`);
    const empty = await images(new Request(url('/images'), { method: 'POST', body: '' }));
    expect([empty.status, ((await empty.json()) as { code: string }).code]).toEqual([400, 'VALIDATION_FAILED']);
    const text = await images(new Request(url('/images'), { method: 'POST', body: 'name=x', headers: { 'content-type': 'text/plain' } }));
    expect(text.status).toBe(415);
    const outside = await images(new Request('http://panel.example/elsewhere'));
    expect([outside.status, outside.headers.get('content-type')]).toEqual([404, 'application/problem+json; charset=utf-8']);
  });

  it('answers HEAD like GET without a body, and 304 to a matching If-None-Match', async () => {
    const t = await harness();
    const images = handlerFor(t);
    const get = await images(new Request(url('/images')));
    const etag = get.headers.get('etag');
    expect(etag).toMatch(/^W\/"[0-9a-f]+-[A-Za-z0-9+/]{27}"$/);
    const head = await images(new Request(url('/images'), { method: 'HEAD' }));
    expect([head.status, head.body, head.headers.get('etag'), head.headers.get('content-length')]).toEqual([
      200,
      null,
      etag,
      get.headers.get('content-length'),
    ]);
    const cached = await images(new Request(url('/images'), { headers: { 'if-none-match': etag as string } }));
    expect([cached.status, cached.body]).toEqual([304, null]);
    const refreshed = await images(
      new Request(url('/images'), { headers: { 'if-none-match': etag as string, 'cache-control': 'no-cache' } }),
    );
    expect(refreshed.status).toBe(200);
  });

  it('a task event stream unsubscribes when the host cancels its body', async () => {
    const t = await harness();
    const images = handlerFor(t);
    gateCaptures(t);
    const created = await t.ii.images.createImage(ALICE, { instanceId: 'web-1', name: 'watched' });
    const res = await images(new Request(url(`/tasks/${created.task.id}/events`)));
    expect(res.headers.get('content-type')).toBe('text/event-stream; charset=utf-8');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^id: 1\nevent: task\n/);
    expect(listeners(t)).toBe(1);
    await reader.cancel();
    expect(listeners(t)).toBe(0);
  });

  it("a task event stream unsubscribes when the request's signal aborts", async () => {
    const t = await harness();
    const images = handlerFor(t);
    gateCaptures(t);
    const created = await t.ii.images.createImage(ALICE, { instanceId: 'web-1', name: 'watched' });
    const controller = new AbortController();
    const res = await images(new Request(url(`/tasks/${created.task.id}/events`), { signal: controller.signal }));
    expect(res.status).toBe(200);
    expect(listeners(t)).toBe(1);
    controller.abort();
    expect(listeners(t)).toBe(0);
    // The stream ends instead of waiting for events that will never be sent.
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read());
  });

  it('a task event stream that is not read keeps only the newest progress, not a backlog', async () => {
    const t = await harness();
    gateCaptures(t);
    const { task } = await t.ii.images.createImage(ALICE, { instanceId: 'web-1', name: 'slow reader' });
    const res = await handlerFor(t)(new Request(url(`/tasks/${task.id}/events`)));
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    const next = async () => {
      const text = new TextDecoder().decode((await reader.read()).value);
      return {
        event: /event: (.+)/.exec(text)?.[1],
        percent: (JSON.parse(/data: (.+)/.exec(text)?.[1] ?? '{}') as typeof task).progress?.percent,
      };
    };
    expect((await next()).event).toBe('task');
    // Five updates while the client reads nothing.
    for (let i = 1; i <= 5; i++) {
      const update = {
        ...task,
        status: 'running' as const,
        updatedAt: new Date(task.updatedAt.getTime() + i * 1000),
        progress: { ...task.progress, percent: i * 10 },
      };
      t.ii.events.emit('task.progress', { task: update });
    }
    expect(await next()).toEqual({ event: 'task.progress', percent: 50 });
    await reader.cancel();
  });

  it("a download's storage read is destroyed and aborted when the body is cancelled, and read only as it is pulled", async () => {
    const t = await harness();
    const probe = probeDownload(t);
    const res = await handlerFor(t)(new Request(url(PROBE_DOWNLOAD_PATH)));
    expect([res.status, res.headers.get('content-length'), res.headers.get('etag')]).toEqual([
      200,
      String(1024 ** 4),
      `"${'a'.repeat(64)}"`,
    ]);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    for (let i = 0; i < 3; i++) expect((await reader.read()).value?.length).toBe(64 * 1024);
    // Pulled, not pushed: what was produced is what was read plus what Node's stream buffers ahead.
    expect(probe.produced).toBeLessThan(3 + 20);
    await reader.cancel();
    expect([probe.destroyed, probe.signal?.aborted]).toEqual([true, true]);
  });

  it("a download stops when the request's signal aborts", async () => {
    const t = await harness();
    const probe = probeDownload(t);
    const controller = new AbortController();
    const res = await handlerFor(t)(new Request(url(PROBE_DOWNLOAD_PATH), { signal: controller.signal }));
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    controller.abort();
    expect(probe.signal?.aborted).toBe(true);
  });

  it('refuses a bad base path and unknown options, naming them', async () => {
    const t = await harness();
    expect(() => createImagesHandler({ service: t.ii, resolveActor: () => null, basePath: '/api/' })).toThrow(
      expect.objectContaining({ code: 'VALIDATION_FAILED', fields: [expect.objectContaining({ path: 'basePath' })] }),
    );
    expect(() => createImagesHandler({ service: t.ii, resolveActor: () => null, mount: '/x' } as never)).toThrow(
      expect.objectContaining({ fields: [{ path: 'mount', message: 'is not a known field' }] }),
    );
  });
});
