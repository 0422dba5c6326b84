/**
 * The typed client against the real router (on fakes of our own ports) over HTTP: typed calls,
 * problem+json thrown as ImagesApiError with its code and fields, and a capture followed to its
 * end over Server-Sent Events.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createImagesClient, isImagesApiError, sseMessages, type ApiTask } from '../../../src/client';
import { actorHeader, ALICE, BOB, startExpressHarness, type ExpressHarness } from '../../support/express-harness';

let h: ExpressHarness | null = null;
afterEach(async () => {
  await h?.close();
  h = null;
});

const errorOf = async (promise: Promise<unknown>) => {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
};

describe('instance-images/client', () => {
  it('captures an image and follows its task over SSE to the end, monotone percent', async () => {
    const t = (h = await startExpressHarness());
    let gateOpen: () => void = () => undefined;
    t.world.captureGate = new Promise<void>((resolve) => (gateOpen = resolve));
    const client = createImagesClient({ baseUrl: t.baseUrl, headers: () => ({ 'x-test-actor': actorHeader(ALICE) }) });
    const { data } = await client.api.POST('/images', { body: { instanceId: 'web-1', name: 'from the client' } });
    expect(data?.image.status).toBe('creating');
    const updates: ApiTask[] = [];
    const following = client.followTask(data!.task!.id, { onUpdate: (task) => updates.push(task) });
    setTimeout(gateOpen, 50);
    const finished = await following;
    expect(finished.status).toBe('completed');
    expect(finished.progress.percent).toBe(100);
    const percents = updates.map((u) => u.progress.percent);
    expect(percents).toEqual([...percents].sort((a, b) => a - b));
    const { data: image } = await client.api.GET('/images/{imageId}', { params: { path: { imageId: data!.image.id } } });
    expect(image?.status).toBe('available');
  });

  it('throws ImagesApiError with the code and the fields of a problem answer', async () => {
    const t = (h = await startExpressHarness());
    const alice = createImagesClient({ baseUrl: `${t.baseUrl}/`, headers: { 'x-test-actor': actorHeader(ALICE) } });
    const invalid = await errorOf(alice.api.POST('/images', { body: { instanceId: 'web-1', name: '' } }));
    expect(isImagesApiError(invalid)).toBe(true);
    expect(invalid).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', fields: [expect.objectContaining({ path: 'name' })] });
    const bob = createImagesClient({ baseUrl: t.baseUrl, headers: { 'x-test-actor': actorHeader(BOB) } });
    const { data } = await alice.api.POST('/images', { body: { instanceId: 'web-1', name: 'mine' } });
    await t.ii.idle();
    const hidden = await errorOf(bob.api.GET('/images/{imageId}', { params: { path: { imageId: data!.image.id } } }));
    expect(hidden).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const anonymous = createImagesClient({ baseUrl: t.baseUrl });
    expect(await errorOf(anonymous.api.GET('/images'))).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    expect(await errorOf(alice.followTask('00000000-0000-4000-8000-000000000009'))).toMatchObject({ code: 'NOT_FOUND' });
  });

  it('parses event streams split anywhere, with comments and multi-line data', async () => {
    const text = ': keep-alive\n\nid: 1\nevent: task\ndata: {"a":\ndata: 1}\n\nevent: task.finished\r\ndata: {}\r\n\r\n';
    const bytes = new TextEncoder().encode(text);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 7) controller.enqueue(bytes.subarray(i, i + 7));
        controller.close();
      },
    });
    const messages = [];
    for await (const message of sseMessages(stream)) messages.push(message);
    expect(messages).toEqual([
      { event: 'task', data: '{"a":\n1}' },
      { event: 'task.finished', data: '{}' },
    ]);
  });
});
