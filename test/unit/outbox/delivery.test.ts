/**
 * The outbox delivery: a capture's events reach a host handler and a signed webhook with the
 * outbox id as `webhook-id`; failures are retried with backoff, then given up; several loops on one
 * outbox deliver each event once; progress stays emitter-only.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { outboxWebhook, startOutboxDelivery, verifyWebhook, type OutboxEvent } from '../../../src';
import { createMemoryRepositories } from '../../../src/memory';
import { admin, alice, deployAndWait, setup } from '../service/setup';

const SECRET = 'whsec_' + Buffer.alloc(32, 9).toString('base64');

let server: Server | null = null;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

/** A receiver answering with the next status of `statuses` (the last one repeats). */
async function receiver(statuses: number[]): Promise<{ url: string; received: { headers: IncomingMessage['headers']; body: string }[] }> {
  const received: { headers: IncomingMessage['headers']; body: string }[] = [];
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.statusCode = statuses[Math.min(received.length - 1, statuses.length - 1)] ?? 200;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/hooks`, received };
}

describe('outbox delivery', () => {
  it("delivers a capture's lifecycle events to a handler and a signed webhook, in order, with the outbox ids", async () => {
    const h = await setup();
    const { url, received } = await receiver([200]);
    const handled: OutboxEvent[] = [];
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'nightly' });
    await h.ii.images.waitForTask(alice, task.id);
    const delivery = startOutboxDelivery(h.ii.repositories.outbox, {
      targets: [{ name: 'host', deliver: (e) => void handled.push(e) }, outboxWebhook({ url, secret: SECRET })],
    });
    await delivery.drain();
    await delivery.stop();
    const ofImage = handled.filter((e) => e.key === image.id).map((e) => e.type);
    expect(ofImage).toEqual(['image.status-changed', 'image.available', 'usage.started', 'task.finished']);
    expect(handled.map((e) => e.type)).not.toContain('task.progress');
    const messages = received.map((r) => verifyWebhook(SECRET, r.headers as Record<string, string>, r.body));
    expect(messages.map((m) => m.id)).toEqual(handled.map((e) => e.id));
    expect(messages.find((m) => m.type === 'image.available')?.data).toMatchObject({ image: { id: image.id, status: 'available' } });
    await h.ii.close();
  });

  it("records a deploy's image.deployed in the transaction of its task's end (not by a later append)", async () => {
    const repositories = createMemoryRepositories();
    // A later, separate append would be lost here: only what the writes record gets in.
    repositories.outbox!.append = () => Promise.reject(new Error('planted: the database went away'));
    const h = await setup({ repositories });
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'golden' });
    await h.ii.images.waitForTask(alice, task.id);
    h.world.addInstance('new-1', 'acct-alice');
    const deployed = await deployAndWait(h.ii, admin, { imageId: image.id, instanceId: 'new-1', targetPath: '/disks/new-1.qcow2' });
    const handled: OutboxEvent[] = [];
    const delivery = startOutboxDelivery(h.ii.repositories.outbox, { targets: [{ name: 'host', deliver: (e) => void handled.push(e) }] });
    await delivery.drain();
    await delivery.stop();
    const end = handled.filter((e) => (e.data as { task?: { id: string } }).task?.id === deployed.task.id);
    expect(end.map((e) => e.type)).toEqual(['task.finished', 'image.deployed']);
    expect(end[1]!.sequence).toBe(end[0]!.sequence + 1);
    expect(end[1]!.createdAt.getTime()).toBe(deployed.task.finishedAt?.getTime());
    expect(end[1]!.data).toMatchObject({ instanceId: 'new-1', result: { path: deployed.result.path } });
    await h.ii.close();
  });

  it('retries a failed delivery with backoff and the same id, and gives up after maxAttempts', async () => {
    const repos = createMemoryRepositories();
    const [event] = await repos.outbox!.append([{ type: 'image.deleted', key: 'img-1', data: {} }], new Date());
    const { url, received } = await receiver([503, 500, 200]);
    let clock = Date.now();
    const delivery = startOutboxDelivery(repos.outbox, {
      targets: [outboxWebhook({ url, secret: SECRET })],
      initialDelayMs: 1_000,
      now: () => new Date(clock),
    });
    expect(await delivery.drain()).toBe(1);
    expect((await repos.outbox!.get(event!.id))?.lastError).toMatch(/HTTP 503/);
    expect(await delivery.drain()).toBe(0); // waits for its retry time
    clock += 10_000;
    await delivery.drain();
    clock += 10_000;
    await delivery.drain();
    expect(received.map((r) => r.headers['webhook-id'])).toEqual([event!.id, event!.id, event!.id]);
    expect((await repos.outbox!.get(event!.id))?.deliveredAt).toBeInstanceOf(Date);
    await delivery.stop();

    const [doomed] = await repos.outbox!.append([{ type: 'image.deleted', key: 'img-2', data: {} }], new Date(clock));
    const failing = startOutboxDelivery(repos.outbox, {
      targets: [{ name: 'broken', deliver: () => Promise.reject(new Error('the notification service is down')) }],
      maxAttempts: 2,
      now: () => new Date(clock),
    });
    await failing.drain();
    clock += 10_000;
    await failing.drain();
    await failing.stop();
    const given = await repos.outbox!.get(doomed!.id);
    expect(given).toMatchObject({ attempts: 2, lastError: 'given up: the notification service is down' });
    expect(given?.deliveredAt).toBeInstanceOf(Date);
  });

  it('several loops on one outbox hand each event to one of them; pruning removes delivered events after the retention', async () => {
    const repos = createMemoryRepositories();
    const at = new Date('2026-11-03T10:00:00.000Z');
    await repos.outbox!.append(
      Array.from({ length: 30 }, (_, n) => ({ type: 'usage.started', key: `img-${n % 7}`, data: { n } })),
      at,
    );
    const seen: number[] = [];
    const loops = [1, 2, 3].map(() =>
      startOutboxDelivery(repos.outbox, {
        targets: [{ name: 'host', deliver: async (e) => void seen.push((e.data as { n: number }).n) }],
        batchSize: 3,
        now: () => at,
        retentionMs: 60_000,
      }),
    );
    await Promise.all(loops.map((loop) => loop.drain()));
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, n) => n));
    for (let key = 0; key < 7; key++) {
      const ofKey = seen.filter((n) => n % 7 === key);
      expect(ofKey).toEqual([...ofKey].sort((a, b) => a - b));
    }
    await Promise.all(loops.map((loop) => loop.stop()));
    const later = startOutboxDelivery(repos.outbox, { targets: [], now: () => new Date(at.getTime() + 120_000), retentionMs: 60_000 });
    await later.drain();
    await later.stop();
    expect(await repos.outbox!.prune(new Date(at.getTime() + 10 ** 9))).toBe(0);
  });

  it('refuses repositories without an outbox and bad options', () => {
    expect(() => startOutboxDelivery(undefined, { targets: [] })).toThrow(/no outbox/);
    const repos = createMemoryRepositories();
    expect(() => startOutboxDelivery(repos.outbox, { targets: [], leaseMs: 0 })).toThrow(/leaseMs/);
    expect(() => outboxWebhook({ url: 'ftp://x', secret: SECRET })).toThrow(/url/);
  });
});
