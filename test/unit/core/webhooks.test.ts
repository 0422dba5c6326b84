/**
 * Webhooks over real HTTP (a node:http receiver in the test): signed per Standard Webhooks,
 * retried with backoff until accepted with the same id, 410 ends the subscription, a 4xx drops the
 * event, and the secret never reaches a log.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createEmitter } from '../../../src/events';
import { signWebhook, startWebhookDelivery, verifyWebhook, type WebhookMessage } from '../../../src';
import { makeTask } from '../../../src/testing';

const SECRET = 'whsec_' + Buffer.alloc(32, 7).toString('base64');

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server | null = null;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = null;
});

/** A receiver answering with the next status of `statuses` (the last one repeats). */
async function receiver(statuses: number[]): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
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

function logs() {
  const lines: string[] = [];
  const log = (message: string, context?: Record<string, unknown>) => lines.push(`${message} ${JSON.stringify(context ?? {})}`);
  return { lines, logger: { debug: log, info: log, warn: log, error: log } };
}

describe('webhooks', () => {
  it('posts each event signed, and retries a failed one with the same id until accepted', async () => {
    const { url, received } = await receiver([503, 500, 200]);
    const events = createEmitter();
    const { lines, logger } = logs();
    const delivery = startWebhookDelivery(events, { url, secret: SECRET, initialDelayMs: 5, logger });
    const task = makeTask({ status: 'completed' });
    events.emit('task.finished', { task });
    await delivery.idle();
    expect(received).toHaveLength(3);
    const ids = received.map((r) => r.headers['webhook-id']);
    expect(new Set(ids).size).toBe(1);
    const last = received[2]!;
    const message = verifyWebhook(SECRET, last.headers as Record<string, string>, last.body);
    expect(message).toMatchObject({ id: ids[0], type: 'task.finished', data: { task: { id: task.id, status: 'completed' } } });
    expect(lines.some((l) => l.includes('retrying'))).toBe(true);
    expect(lines.join('\n')).not.toContain(SECRET.slice(6));
    delivery.stop();
  });

  it('delivers only the chosen events, stops on 410 Gone, and drops an event refused with 400', async () => {
    const gone = await receiver([410]);
    const events = createEmitter();
    const { lines, logger } = logs();
    const delivery = startWebhookDelivery(events, { url: gone.url, secret: SECRET, events: ['task.finished'], logger });
    events.emit('task.progress', { task: makeTask() });
    events.emit('task.finished', { task: makeTask() });
    await delivery.idle();
    events.emit('task.finished', { task: makeTask() });
    await delivery.idle();
    expect(gone.received).toHaveLength(1);
    expect(JSON.parse(gone.received[0]!.body).type).toBe('task.finished');
    expect(lines.some((l) => l.includes('410 Gone'))).toBe(true);
    await new Promise<void>((resolve) => server!.close(() => resolve()));

    const refusing = await receiver([400]);
    const second = startWebhookDelivery(events, { url: refusing.url, secret: SECRET, initialDelayMs: 5, logger });
    events.emit('task.finished', { task: makeTask() });
    await second.idle();
    expect(refusing.received).toHaveLength(1);
    expect(lines.some((l) => l.includes('refused an event'))).toBe(true);
    second.stop();
  });

  it('verifyWebhook refuses a forged signature, a changed body, a stale timestamp and a swapped id', () => {
    const message: WebhookMessage = { id: 'msg_1', type: 'task.progress', createdAt: new Date().toISOString(), data: { task: makeTask() } };
    const body = JSON.stringify(message);
    const now = Math.floor(Date.now() / 1000);
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': String(now),
      'webhook-signature': signWebhook(SECRET, 'msg_1', now, body),
    };
    expect(verifyWebhook(SECRET, headers, body).id).toBe('msg_1');
    const code = (fn: () => unknown) => {
      try {
        fn();
        return 'accepted';
      } catch (error) {
        return (error as { code?: string }).code;
      }
    };
    expect(code(() => verifyWebhook('whsec_' + Buffer.alloc(32, 8).toString('base64'), headers, body))).toBe('VALIDATION_FAILED');
    expect(code(() => verifyWebhook(SECRET, headers, body.replace('msg_1', 'msg_2')))).toBe('VALIDATION_FAILED');
    expect(code(() => verifyWebhook(SECRET, headers, body, { now: () => new Date((now + 3600) * 1000) }))).toBe('VALIDATION_FAILED');
    const other = { ...headers, 'webhook-id': 'msg_2', 'webhook-signature': signWebhook(SECRET, 'msg_2', now, body) };
    expect(code(() => verifyWebhook(SECRET, other, body))).toBe('VALIDATION_FAILED');
    // Several signatures (a secret being rotated): any matching one is enough.
    const rotated = { ...headers, 'webhook-signature': `v1,AAAA ${headers['webhook-signature']}` };
    expect(verifyWebhook(SECRET, rotated, body).id).toBe('msg_1');
  });

  it('refuses bad options naming the field, never echoing the secret', () => {
    const events = createEmitter();
    const error = (() => {
      try {
        startWebhookDelivery(events, { url: 'ftp://example.com/x', secret: 'short-secret-value' });
      } catch (thrown) {
        return thrown as { code: string; fields: { path: string }[]; message: string };
      }
      return null;
    })();
    expect(error?.code).toBe('VALIDATION_FAILED');
    expect(error?.fields.map((f) => f.path).sort()).toEqual(['secret', 'url']);
    expect(JSON.stringify(error)).not.toContain('short-secret-value');
  });
});
