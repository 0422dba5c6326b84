/**
 * Delivery of the event outbox: claims undelivered events with a lease, hands each to the host's
 * handlers and webhooks, marks it delivered, retries failures with backoff, and prunes delivered
 * events after a retention. Safe with any number of processes on one database: the repository's
 * claim gives each event to one claimer at a time, and a claim that lapses (its process died or
 * hung) is taken over. Delivery is at least once: receivers deduplicate on the event's `id`.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { InstanceImagesEvents } from './events';
import type { Logger } from './ports/logger';
import type { OutboxEvent, OutboxRepository } from './ports/repositories-outbox';
import { InstanceImagesError } from './errors';
import { parseOrThrow } from './util/validate';

/** Where {@link startOutboxDelivery} hands events: a host handler or a webhook ({@link outboxWebhook}). */
export interface OutboxTarget {
  /** For logs, e.g. `notifications` or a webhook's origin. */
  name: string;
  /** The event names it wants. @default every event */
  events?: readonly (keyof InstanceImagesEvents | (string & {}))[];
  /**
   * Handles one event (its `data` is the payload as JSON: dates are ISO 8601 strings). Resolve when
   * done; throw to have the event retried later (every target then gets it again).
   */
  deliver(event: OutboxEvent): Promise<void> | void;
}

/** Options of {@link startOutboxDelivery}. */
export interface OutboxDeliveryOptions {
  /** The handlers and webhooks; each event goes to every target that wants it. */
  targets: readonly OutboxTarget[];
  /** This claimer's id, unique per process. @default a random UUID */
  owner?: string;
  /** How long a claim holds before another process may take the event over. @default 60000 */
  leaseMs?: number;
  /** How often to look for events. @default 1000 */
  pollIntervalMs?: number;
  /** Events claimed at a time. @default 20 */
  batchSize?: number;
  /** Attempts before an event is given up (marked delivered with its error, logged). @default 10 */
  maxAttempts?: number;
  /** Delay before the first retry; doubles each time, with ±20 % jitter. @default 1000 */
  initialDelayMs?: number;
  /** Longest delay between retries. @default 300000 */
  maxDelayMs?: number;
  /** Delivered events are deleted this long after delivery. @default 604800000 (7 days) */
  retentionMs?: number;
  /** How often to prune. @default 3600000 */
  pruneIntervalMs?: number;
  /** @default silent */
  logger?: Logger;
  /** The clock. @default () => new Date() */
  now?: () => Date;
}

/** A running delivery loop. */
export interface OutboxDelivery {
  /** This claimer's id. */
  readonly owner: string;
  /** Runs passes now until nothing is claimable; resolves with how many events it handled. */
  drain(): Promise<number>;
  /** Stops polling and waits for the pass in progress; unfinished claims lapse and are taken over. */
  stop(): Promise<void>;
}

const ms = (max: number) => z.number().int().min(1).max(max);
const OptionsSchema = z.strictObject({
  targets: z.array(
    z.custom<OutboxTarget>(
      (v) => typeof v === 'object' && v !== null && typeof (v as OutboxTarget).deliver === 'function',
      'must be an object with a deliver function',
    ),
  ),
  owner: z.string().min(1).max(200).optional(),
  leaseMs: ms(86_400_000).default(60_000),
  pollIntervalMs: ms(3_600_000).default(1_000),
  batchSize: z.number().int().min(1).max(1000).default(20),
  maxAttempts: z.number().int().min(1).max(1000).default(10),
  initialDelayMs: ms(3_600_000).default(1_000),
  maxDelayMs: ms(86_400_000).default(300_000),
  retentionMs: ms(365 * 86_400_000).default(7 * 86_400_000),
  pruneIntervalMs: ms(86_400_000).default(3_600_000),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null, 'must be a logger').optional(),
  now: z.custom<() => Date>((v) => typeof v === 'function', 'must be a function').optional(),
});

/** How long {@link pruneOutbox} keeps events. */
export interface OutboxRetention {
  /** Delivered events are deleted this long after delivery. @default 604800000 (7 days) */
  retentionMs?: number;
  /**
   * Undelivered events (nobody delivers them, or delivery was stopped) are deleted this long after
   * they were recorded, unless under a live claim; `null` keeps them until delivered. Needs the
   * repository's optional `pruneUndelivered`. @default 2592000000 (30 days)
   */
  undeliveredRetentionMs?: number | null;
}

/** What {@link pruneOutbox} deleted. */
export interface OutboxPruneReport {
  /** Delivered events past their retention. */
  delivered: number;
  /** Undelivered events past theirs (0 without `pruneUndelivered`, or with `undeliveredRetentionMs: null`). */
  undelivered: number;
}

const RetentionSchema = z.strictObject({
  retentionMs: ms(365 * 86_400_000).default(7 * 86_400_000),
  undeliveredRetentionMs: ms(3650 * 86_400_000)
    .nullable()
    .default(30 * 86_400_000),
});

/**
 * Prunes the outbox once: delivered events older than `retentionMs` (after delivery), and
 * undelivered ones older than `undeliveredRetentionMs` (after recording), so the table stays
 * bounded whether or not this process delivers. The SDK's reaper runs it by itself
 * (`outbox.pruneIntervalMs` of `createInstanceImages`); a delivery loop prunes delivered events too.
 * Idempotent and safe from every process at once.
 * @throws VALIDATION_FAILED for bad options.
 */
export async function pruneOutbox(outbox: OutboxRepository, now: Date, retention: OutboxRetention = {}): Promise<OutboxPruneReport> {
  const opts = parseOrThrow(RetentionSchema, retention, 'The outbox retention');
  const delivered = await outbox.prune(new Date(now.getTime() - opts.retentionMs));
  const undelivered =
    opts.undeliveredRetentionMs === null || !outbox.pruneUndelivered
      ? 0
      : await outbox.pruneUndelivered(new Date(now.getTime() - opts.undeliveredRetentionMs), now);
  return { delivered, undelivered };
}

/** The `outbox` option of `createInstanceImages`: the retention and how often its reaper prunes. */
export interface OutboxPruneOptions extends OutboxRetention {
  /** How often the SDK's reaper prunes the outbox (at its first pass, then at most this often). @default 3600000 */
  pruneIntervalMs?: number;
}

/** The zod schema of {@link OutboxPruneOptions}. */
export const OutboxPruneOptionsSchema = RetentionSchema.extend({ pruneIntervalMs: ms(86_400_000).default(3_600_000) });

/** Prunes at most once per interval, from the SDK's reaper; see {@link pruneOutbox}. */
export interface OutboxPruner {
  /** Prunes when the interval has passed since the last time (never throws: a failure is logged). */
  runIfDue(): Promise<void>;
  /** Prunes now. @returns what it deleted (nothing when the repositories have no outbox). */
  runNow(): Promise<OutboxPruneReport>;
}

/** A pruner of `outbox` (none: nothing to prune) with options already parsed by {@link OutboxPruneOptionsSchema}. */
export function createOutboxPruner(
  outbox: OutboxRepository | undefined,
  options: z.output<typeof OutboxPruneOptionsSchema>,
  now: () => Date,
  logger: Logger,
): OutboxPruner {
  let last: number | null = null;
  const runNow = async (): Promise<OutboxPruneReport> => {
    last = now().getTime();
    if (!outbox) return { delivered: 0, undelivered: 0 };
    const { retentionMs, undeliveredRetentionMs } = options;
    const report = await pruneOutbox(outbox, now(), { retentionMs, undeliveredRetentionMs });
    if (report.undelivered > 0)
      logger.warn('undelivered outbox events were pruned after their retention (is event delivery running?)', { ...report });
    else if (report.delivered > 0) logger.debug('outbox pruned', { ...report });
    return report;
  };
  return {
    runNow,
    async runIfDue() {
      if (last !== null && now().getTime() - last < options.pruneIntervalMs) return;
      await runNow().catch((error: unknown) =>
        logger.error('outbox pruning failed; retrying at the next interval', { error: String(error) }),
      );
    },
  };
}

/** The delay before attempt `attempts + 1`: exponential from `initial`, capped, ±20 % jitter. */
export function retryDelay(attempts: number, initialMs: number, maxMs: number): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.max(0, attempts - 1));
  return Math.max(1, Math.round(base * (0.8 + Math.random() * 0.4)));
}

/**
 * Starts delivering the outbox of `outbox` (the repositories' `outbox`) to `options.targets`.
 * @throws VALIDATION_FAILED for bad options; INVALID_STATE when there is no outbox.
 */
export function startOutboxDelivery(outbox: OutboxRepository | undefined, options: OutboxDeliveryOptions): OutboxDelivery {
  if (!outbox) {
    throw new InstanceImagesError(
      'INVALID_STATE',
      'These repositories have no outbox (repositories.outbox); implement it (docs/repositories.md, "Outbox") to deliver events',
    );
  }
  const opts = parseOrThrow(OptionsSchema, options, 'The outbox delivery options');
  const owner = opts.owner ?? randomUUID();
  const now = opts.now ?? (() => new Date());
  const logger = opts.logger;
  let stopped = false;
  let running: Promise<number> | null = null;
  let lastPrune = 0;

  const handle = async (event: OutboxEvent): Promise<void> => {
    const wanting = opts.targets.filter((t) => !t.events || t.events.includes(event.type));
    try {
      for (const target of wanting) await target.deliver(event);
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      if (event.attempts >= opts.maxAttempts) {
        logger?.error('outbox event given up after its last attempt', { id: event.id, type: event.type, why });
        await outbox.complete(event.id, owner, now(), `given up: ${why}`);
        return;
      }
      const delay = retryDelay(event.attempts, opts.initialDelayMs, opts.maxDelayMs);
      logger?.warn('outbox event delivery failed; retrying', {
        id: event.id,
        type: event.type,
        attempt: event.attempts,
        delayMs: delay,
        why,
      });
      await outbox.release(event.id, owner, new Date(now().getTime() + delay), why);
      return;
    }
    if (!(await outbox.complete(event.id, owner, now())))
      logger?.warn('outbox event delivered after its claim lapsed (it may be delivered again)', { id: event.id, type: event.type });
  };

  const pass = async (): Promise<number> => {
    let handled = 0;
    for (;;) {
      if (stopped) return handled;
      const claimed = await outbox.claim({ owner, now: now(), leaseMs: opts.leaseMs, limit: opts.batchSize });
      for (const event of claimed) await handle(event);
      handled += claimed.length;
      if (claimed.length === 0) break;
    }
    if (now().getTime() - lastPrune >= opts.pruneIntervalMs) {
      lastPrune = now().getTime();
      const pruned = await outbox.prune(new Date(lastPrune - opts.retentionMs));
      if (pruned > 0) logger?.debug('outbox pruned', { pruned });
    }
    return handled;
  };

  const drain = (): Promise<number> => {
    if (running) return running.then(() => drain());
    running = pass().finally(() => {
      running = null;
    });
    return running;
  };

  const timer = setInterval(() => {
    if (running || stopped) return;
    drain().catch((error: unknown) => logger?.error('outbox delivery pass failed; retrying at the next', { error: String(error) }));
  }, opts.pollIntervalMs);
  timer.unref?.();

  return {
    owner,
    drain,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => undefined);
    },
  };
}
