/**
 * Webhooks: the SDK's events delivered to a host URL as signed HTTP POSTs, following the Standard
 * Webhooks convention (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64
 * HMAC-SHA256 of "id.timestamp.body">`), so receivers can use any Standard Webhooks library or
 * {@link verifyWebhook}. Two ways to deliver:
 * - {@link outboxWebhook} (recommended): a target of `startOutboxDelivery`, fed from the
 *   repositories' outbox, so events survive a crash and each is sent by one process of the
 *   deployment; the `webhook-id` is the outbox event id.
 * - {@link startWebhookDelivery}: from this process's emitter (every event, `task.progress`
 *   included), while this process runs; lost when it dies.
 * Either way each event has a stable id (the receiver deduplicates on it), is retried with
 * exponential backoff and jitter on network errors, timeouts, 408, 429 and 5xx; another 4xx drops
 * it (logged).
 * @module
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { InstanceImagesError } from './errors';
import type { InstanceImagesEmitter, InstanceImagesEvents } from './events';
import type { Logger } from './ports/logger';
import type { OutboxTarget } from './outbox-delivery';
import type { OutboxEvent } from './ports/repositories-outbox';
import { parseOrThrow } from './util/validate';

/** The name of an event of the SDK. */
export type WebhookEventType = keyof InstanceImagesEvents;

/** What a webhook POST carries (JSON; dates as ISO 8601 strings). */
export interface WebhookMessage<T extends WebhookEventType = WebhookEventType> {
  /** Stable id of this event: the same on every retry (also in the `webhook-id` header). */
  id: string;
  type: T;
  /** When the event happened (ISO 8601). */
  createdAt: string;
  data: InstanceImagesEvents[T];
}

/** Options of {@link startWebhookDelivery}. */
export interface WebhookOptions {
  /** Where to POST: an absolute http(s) URL of the host. */
  url: string;
  /** The signing secret: at least 24 bytes, e.g. `whsec_` + base64 of 32 random bytes (never logged). */
  secret: string;
  /** The events to deliver. @default every event */
  events?: readonly WebhookEventType[];
  /** Attempts per event before it is dropped (logged). @default 8 */
  maxAttempts?: number;
  /** Delay before the first retry; doubles each time, with ±20 % jitter. @default 1000 */
  initialDelayMs?: number;
  /** Longest delay between retries. @default 300000 */
  maxDelayMs?: number;
  /** Timeout of one POST. @default 10000 */
  timeoutMs?: number;
  /** Deliveries in flight at most (the order of events is then not guaranteed). @default 4 */
  concurrency?: number;
  /** Events waiting at most; beyond, the oldest is dropped (logged). @default 10000 */
  maxQueue?: number;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default silent */
  logger?: Logger;
}

const OptionsSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }),
  secret: z.string().min(24, 'must be at least 24 characters').max(1024),
  events: z.array(z.string().min(1)).optional(),
  maxAttempts: z.number().int().min(1).max(100).default(8),
  initialDelayMs: z.number().int().min(1).max(3_600_000).default(1_000),
  maxDelayMs: z.number().int().min(1).max(86_400_000).default(300_000),
  timeoutMs: z.number().int().min(10).max(600_000).default(10_000),
  concurrency: z.number().int().min(1).max(64).default(4),
  maxQueue: z.number().int().min(1).max(1_000_000).default(10_000),
  fetch: z.custom<typeof fetch>((v) => typeof v === 'function', 'must be a function').optional(),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'must be a logger').optional(),
});

/** A running delivery. */
export interface WebhookDelivery {
  /** Events waiting or in flight. */
  pending(): number;
  /** Resolves when nothing is waiting or in flight (retries included). */
  idle(): Promise<void>;
  /** Stops listening and delivering; events not yet delivered are dropped (logged with their ids). */
  stop(): void;
}

/** The secret's key bytes: Standard Webhooks secrets are `whsec_` + base64; anything else is used as UTF-8. */
function keyOf(secret: string): Buffer {
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : Buffer.from(secret, 'utf8');
}

/** The `webhook-signature` value of a message. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string): string {
  return `v1,${createHmac('sha256', keyOf(secret)).update(`${id}.${timestampSeconds}.${body}`).digest('base64')}`;
}

/**
 * Checks a received webhook (for hosts' receivers and tests): the signature (any `v1` entry of the
 * header, compared in constant time) and the timestamp (within `toleranceSeconds` of now).
 * @returns the parsed message. @throws VALIDATION_FAILED when anything does not hold.
 */
export function verifyWebhook(
  secret: string,
  headers: { get(name: string): string | null } | Record<string, string | string[] | undefined>,
  body: string,
  options: { toleranceSeconds?: number; now?: () => Date } = {},
): WebhookMessage {
  const header = (name: string): string => {
    const value =
      typeof (headers as { get?: unknown }).get === 'function'
        ? (headers as { get(name: string): string | null }).get(name)
        : (headers as Record<string, string | string[] | undefined>)[name];
    return (Array.isArray(value) ? value[0] : value) ?? '';
  };
  const refuse = (why: string): never => {
    throw new InstanceImagesError('VALIDATION_FAILED', `The webhook is not authentic: ${why}`);
  };
  const id = header('webhook-id');
  const timestamp = header('webhook-timestamp');
  if (!id || !/^\d{1,12}$/.test(timestamp)) refuse('the webhook-id or webhook-timestamp header is missing');
  const now = Math.floor((options.now?.() ?? new Date()).getTime() / 1000);
  if (Math.abs(now - Number(timestamp)) > (options.toleranceSeconds ?? 300)) refuse('its timestamp is too old or in the future');
  const expected = Buffer.from(signWebhook(secret, id, Number(timestamp), body));
  const matches = header('webhook-signature')
    .split(' ')
    .some((candidate) => {
      const given = Buffer.from(candidate);
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
  if (!matches) refuse('the signature does not match');
  const message = JSON.parse(body) as WebhookMessage;
  if (message.id !== id) refuse('the body belongs to another webhook id');
  return message;
}

/** What one POST came to: delivered, the subscription is gone (410), or a failure to retry or not. */
export type WebhookOutcome = 'delivered' | 'gone' | { retry: true; why: string } | { retry: false; why: string; status: number };

/**
 * POSTs one signed message once. @returns the outcome: network errors, timeouts, 408, 429 and 5xx
 * are worth a retry; another 4xx is not.
 */
export async function postWebhook(
  opts: { url: string; secret: string; timeoutMs: number },
  fetchImpl: typeof fetch,
  message: WebhookMessage,
  body: string,
): Promise<WebhookOutcome> {
  const timestamp = Math.floor(Date.now() / 1000);
  let response: Response;
  try {
    response = await fetchImpl(opts.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'user-agent': 'instance-images-webhooks',
        'webhook-id': message.id,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signWebhook(opts.secret, message.id, timestamp, body),
      },
      body,
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs),
    });
    await response.body?.cancel().catch(() => undefined);
  } catch (error) {
    return { retry: true, why: error instanceof Error && error.name === 'TimeoutError' ? 'timeout' : 'network error' };
  }
  if (response.status >= 200 && response.status < 300) return 'delivered';
  if (response.status === 410) return 'gone';
  if (response.status === 408 || response.status === 429 || response.status >= 500) return { retry: true, why: `HTTP ${response.status}` };
  return { retry: false, why: `HTTP ${response.status}`, status: response.status };
}

interface Pending {
  message: WebhookMessage;
  body: string;
  attempt: number;
}

/**
 * Delivers the events of `events` to `options.url` until stopped.
 * @throws VALIDATION_FAILED for bad options (naming the field; the secret is never echoed).
 */
export function startWebhookDelivery(events: InstanceImagesEmitter, options: WebhookOptions): WebhookDelivery {
  const opts = parseOrThrow(OptionsSchema, options, 'The webhook options');
  const fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const logger = opts.logger;
  const wanted = opts.events ? new Set(opts.events) : null;
  const queue: Pending[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  let inFlight = 0;
  let stopped = false;
  let waiters: Array<() => void> = [];
  const where = new URL(opts.url).origin;

  const settleIfIdle = () => {
    if (queue.length === 0 && inFlight === 0 && timers.size === 0) {
      const done = waiters;
      waiters = [];
      for (const resolve of done) resolve();
    }
  };

  const pump = () => {
    while (!stopped && inFlight < opts.concurrency && queue.length > 0) {
      const item = queue.shift() as Pending;
      inFlight += 1;
      void deliver(item).finally(() => {
        inFlight -= 1;
        pump();
        settleIfIdle();
      });
    }
  };

  const retryLater = (item: Pending, why: string) => {
    if (item.attempt >= opts.maxAttempts) {
      logger?.error('webhook dropped after its last attempt', { id: item.message.id, type: item.message.type, where, why });
      return;
    }
    const base = Math.min(opts.maxDelayMs, opts.initialDelayMs * 2 ** (item.attempt - 1));
    const delay = Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
    logger?.warn('webhook delivery failed; retrying', { id: item.message.id, attempt: item.attempt, delayMs: delay, why });
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (stopped) return settleIfIdle();
      queue.push(item);
      pump();
    }, delay);
    timer.unref?.();
    timers.add(timer);
  };

  async function deliver(item: Pending): Promise<void> {
    item.attempt += 1;
    const outcome = await postWebhook(opts, fetchImpl, item.message, item.body);
    if (outcome === 'delivered') return;
    if (outcome === 'gone') {
      logger?.error('the webhook receiver answered 410 Gone: delivery stopped', { where });
      stop();
      return;
    }
    if (outcome.retry) return retryLater(item, outcome.why);
    logger?.error('the webhook receiver refused an event; dropped', {
      id: item.message.id,
      type: item.message.type,
      status: outcome.status,
    });
  }

  const onEvent = (type: WebhookEventType, data: unknown) => {
    if (stopped || (wanted && !wanted.has(type))) return;
    const message = { id: randomUUID(), type, createdAt: new Date().toISOString(), data } as WebhookMessage;
    if (queue.length >= opts.maxQueue) {
      const dropped = queue.shift() as Pending;
      logger?.error('webhook queue full: the oldest event was dropped', { id: dropped.message.id, type: dropped.message.type });
    }
    queue.push({ message, body: JSON.stringify(message), attempt: 0 });
    pump();
  };
  events.on('*', onEvent as (type: WebhookEventType, data: InstanceImagesEvents[WebhookEventType]) => void);

  function stop(): void {
    if (stopped) return;
    stopped = true;
    events.off('*', onEvent as (type: WebhookEventType, data: InstanceImagesEvents[WebhookEventType]) => void);
    for (const timer of timers) clearTimeout(timer);
    timers.clear();
    if (queue.length > 0) logger?.warn('webhook delivery stopped with events undelivered', { ids: queue.map((p) => p.message.id) });
    queue.length = 0;
    settleIfIdle();
  }

  return {
    pending: () => queue.length + inFlight + timers.size,
    idle: () =>
      new Promise<void>((resolve) => {
        waiters.push(resolve);
        settleIfIdle();
      }),
    stop,
  };
}

/** Options of {@link outboxWebhook}: retries and backoff are the outbox delivery's. */
export type OutboxWebhookOptions = Pick<WebhookOptions, 'url' | 'secret' | 'events' | 'timeoutMs' | 'fetch' | 'logger'>;

const OutboxWebhookSchema = OptionsSchema.pick({ url: true, secret: true, events: true, timeoutMs: true, fetch: true, logger: true });

/**
 * A webhook as a target of {@link startOutboxDelivery}: each outbox event is POSTed once per
 * attempt, signed like {@link startWebhookDelivery}'s, with the event's outbox id as `webhook-id`
 * (the same on every attempt and from every process). Network errors, timeouts, 408, 429 and 5xx
 * make the delivery retry it; a 410 or another 4xx is logged and the event counts as delivered.
 * @throws VALIDATION_FAILED for bad options (naming the field; the secret is never echoed).
 */
export function outboxWebhook(options: OutboxWebhookOptions): OutboxTarget {
  const opts = parseOrThrow(OutboxWebhookSchema, options, 'The webhook options');
  const fetchImpl = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const where = new URL(opts.url).origin;
  return {
    name: where,
    ...(opts.events ? { events: opts.events } : {}),
    async deliver(event: OutboxEvent) {
      const message = { id: event.id, type: event.type, createdAt: event.createdAt.toISOString(), data: event.data } as WebhookMessage;
      const outcome = await postWebhook(opts, fetchImpl, message, JSON.stringify(message));
      if (outcome === 'delivered') return;
      if (outcome === 'gone') {
        opts.logger?.error('the webhook receiver answered 410 Gone; the event is not sent again', { where, id: event.id });
        return;
      }
      if (outcome.retry) throw new Error(`webhook ${where}: ${outcome.why}`);
      opts.logger?.error('the webhook receiver refused an event; dropped', { id: event.id, type: event.type, status: outcome.status });
    },
  };
}
