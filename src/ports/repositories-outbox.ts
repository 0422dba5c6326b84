/**
 * The event outbox port: events recorded with the state changes that cause them, then claimed,
 * delivered at least once and pruned (docs/repositories.md, "Outbox").
 * @module
 */

/** An event to record: its name, the key its order is kept by (an image id, an account id) and its payload. */
export interface OutboxDraft {
  /** The event name, e.g. `image.available`. */
  type: string;
  /** Events with the same key are delivered in the order they were recorded, one at a time. */
  key: string;
  /** The payload; stored as JSON (dates become ISO 8601 strings). */
  data: unknown;
}

/**
 * The events a write causes, built from the record it wrote. A repository that takes this calls it
 * once, synchronously, only when the write happened, and records the events in the same
 * transaction as the write.
 */
export type OutboxEvents<T> = (record: T) => readonly OutboxDraft[];

/** A recorded event. */
export interface OutboxEvent {
  /** Stable id (a UUID): the same on every delivery attempt; receivers deduplicate on it. */
  id: string;
  /** Increases with every recorded event (gaps allowed): the order of events of one key. */
  sequence: number;
  type: string;
  key: string;
  /** The payload as JSON (dates as ISO 8601 strings). */
  data: unknown;
  /** When the event was recorded (the write's `now`). */
  createdAt: Date;
  /** Not claimable before this time (retry backoff). */
  availableAt: Date;
  /** How many times it was claimed. */
  attempts: number;
  /** The claimer holding it, or `null`. */
  claimedBy: string | null;
  /** When the current claim lapses, or `null`. */
  leaseUntil: Date | null;
  /** When delivery completed (or was given up), or `null` while undelivered. */
  deliveredAt: Date | null;
  /** Why the last attempt failed, or `null`. */
  lastError: string | null;
}

/** What {@link OutboxRepository.claim} takes. */
export interface OutboxClaim {
  /** Who claims (a process-unique id). */
  owner: string;
  /** The clock. */
  now: Date;
  /** How long the claim holds; after that another claimer may take the event. */
  leaseMs: number;
  /** At most this many events. */
  limit: number;
}

/**
 * Writes that took an {@link OutboxEvents} argument later than the first outbox port, named in
 * {@link OutboxRepository.recordedWrites} by a repository that records their events:
 * - `imageShares`: `imageShares.insert`, `transition`, `revokeAllOf`;
 * - `imageTransfers`: `imageTransfers.insert`, `transition`, `accept`;
 * - `accountStates`: `settings.putAccountState`;
 * - `taskInserts`: `tasks.insert`.
 */
export type OutboxWrite = 'imageShares' | 'imageTransfers' | 'accountStates' | 'taskInserts';

/**
 * The outbox. Besides these methods, the repository writes that accept an {@link OutboxEvents}
 * argument (`images.transition`, `tasks.transition`, `tasks.transitionWithImage`, `usage.insert`,
 * `usage.close`, and those {@link OutboxRepository.recordedWrites} names) record its events
 * atomically with the write: both or neither, also across processes.
 */
export interface OutboxRepository {
  /**
   * The later writes ({@link OutboxWrite}) whose `events` argument this repository set records in
   * the write's transaction. Optional: a host's repositories written before those writes took
   * `events` leave it out, and the SDK then appends those events right after the write (a crash
   * between the two loses them, as before). Declare a name only once every write it covers
   * records its events (the conformance suite checks the declared ones).
   */
  readonly recordedWrites?: readonly OutboxWrite[];
  /** Records events on their own (not tied to a write). @returns the recorded events, in order. */
  append(drafts: readonly OutboxDraft[], now: Date): Promise<OutboxEvent[]>;
  /** The event, or `null` (also once pruned). */
  get(id: string): Promise<OutboxEvent | null>;
  /**
   * Atomically claims up to `limit` undelivered events, lowest sequence first, that are available
   * (`availableAt <= now`), not under a live claim (`leaseUntil` null or `<= now`) and first of
   * their key (no undelivered event of the same key has a lower sequence): sets `claimedBy`,
   * `leaseUntil = now + leaseMs` and `attempts + 1`. Two concurrent claimers never get the same event.
   */
  claim(claim: OutboxClaim): Promise<OutboxEvent[]>;
  /**
   * Marks an event delivered (`deliveredAt = now`, claim cleared, `lastError` kept or set to `error`)
   * when `owner` still holds it. @returns whether it did.
   */
  complete(id: string, owner: string, now: Date, error?: string): Promise<boolean>;
  /**
   * Gives a claimed event back after a failed attempt: claim cleared, `availableAt = retryAt`,
   * `lastError = error`; only when `owner` still holds it. @returns whether it did.
   */
  release(id: string, owner: string, retryAt: Date, error: string): Promise<boolean>;
  /** Deletes events delivered before `before`. @returns how many. */
  prune(before: Date): Promise<number>;
  /**
   * Deletes undelivered events recorded (`createdAt`) before `before` that are not under a live
   * claim at `now` (their delivery was given up: nobody delivers, or delivery was stopped for longer
   * than the retention). Optional for hosts' repositories written before it existed: without it,
   * only delivered events are pruned (docs/operations.md, "Outbox pruning").
   * @returns how many.
   */
  pruneUndelivered?(before: Date, now: Date): Promise<number>;
}
