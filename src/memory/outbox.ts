/**
 * The in-memory event outbox (the reference for adapters). The repositories that record events
 * with a write call {@link MemoryOutboxRepository.appendNow} in the same synchronous step as the
 * write, so both happen or neither.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { OutboxClaim, OutboxDraft, OutboxEvent, OutboxEvents, OutboxRepository, OutboxWrite } from '../ports/repositories-outbox';

/** Every {@link OutboxWrite}: the memory, SQLite and PostgreSQL repositories record all of them. */
export const OUTBOX_WRITES: readonly OutboxWrite[] = ['imageShares', 'imageTransfers', 'accountStates', 'taskInserts'];

const copy = <T>(value: T): T => structuredClone(value);

/** The JSON form of a payload (dates as ISO strings), as every repository stores it. */
export function outboxJson(data: unknown): unknown {
  return JSON.parse(JSON.stringify(data ?? null)) as unknown;
}

/** In-memory {@link OutboxRepository}. */
export class MemoryOutboxRepository implements OutboxRepository {
  readonly recordedWrites = OUTBOX_WRITES;
  private readonly events = new Map<string, OutboxEvent>();
  private sequence = 0;

  /** @internal Synchronously records the events `build` makes of `record` (none when `build` is undefined). */
  appendNow<T>(build: OutboxEvents<T> | undefined, record: T, now: Date): OutboxEvent[] {
    return build ? this.store(build(record), now) : [];
  }

  async append(drafts: readonly OutboxDraft[], now: Date): Promise<OutboxEvent[]> {
    return this.store(drafts, now).map(copy);
  }

  async get(id: string): Promise<OutboxEvent | null> {
    const event = this.events.get(id);
    return event ? copy(event) : null;
  }

  async claim({ owner, now, leaseMs, limit }: OutboxClaim): Promise<OutboxEvent[]> {
    const at = now.getTime();
    const heads = new Map<string, OutboxEvent>();
    for (const event of this.events.values()) {
      if (event.deliveredAt !== null) continue;
      const head = heads.get(event.key);
      if (!head || event.sequence < head.sequence) heads.set(event.key, event);
    }
    const claimable = [...heads.values()]
      .filter((e) => e.availableAt.getTime() <= at && (e.leaseUntil === null || e.leaseUntil.getTime() <= at))
      .sort((a, b) => a.sequence - b.sequence)
      .slice(0, limit);
    for (const event of claimable) {
      event.claimedBy = owner;
      event.leaseUntil = new Date(at + leaseMs);
      event.attempts += 1;
    }
    return claimable.map(copy);
  }

  async complete(id: string, owner: string, now: Date, error?: string): Promise<boolean> {
    const event = this.held(id, owner);
    if (!event) return false;
    Object.assign(event, { deliveredAt: now, claimedBy: null, leaseUntil: null, lastError: error ?? event.lastError });
    return true;
  }

  async release(id: string, owner: string, retryAt: Date, error: string): Promise<boolean> {
    const event = this.held(id, owner);
    if (!event) return false;
    Object.assign(event, { availableAt: retryAt, claimedBy: null, leaseUntil: null, lastError: error });
    return true;
  }

  async prune(before: Date): Promise<number> {
    let removed = 0;
    for (const [id, event] of this.events) {
      if (event.deliveredAt !== null && event.deliveredAt.getTime() < before.getTime()) {
        this.events.delete(id);
        removed += 1;
      }
    }
    return removed;
  }

  async pruneUndelivered(before: Date, now: Date): Promise<number> {
    let removed = 0;
    for (const [id, event] of this.events) {
      const claimed = event.leaseUntil !== null && event.leaseUntil.getTime() > now.getTime();
      if (event.deliveredAt === null && !claimed && event.createdAt.getTime() < before.getTime()) {
        this.events.delete(id);
        removed += 1;
      }
    }
    return removed;
  }

  private held(id: string, owner: string): OutboxEvent | null {
    const event = this.events.get(id);
    return event && event.deliveredAt === null && event.claimedBy === owner ? event : null;
  }

  private store(drafts: readonly OutboxDraft[], now: Date): OutboxEvent[] {
    // JSON first, so a payload that cannot be stored fails before anything is recorded.
    const payloads = drafts.map((draft) => outboxJson(draft.data));
    return drafts.map((draft, index) => {
      this.sequence += 1;
      const event: OutboxEvent = {
        id: randomUUID(),
        sequence: this.sequence,
        type: draft.type,
        key: draft.key,
        data: payloads[index],
        createdAt: new Date(now),
        availableAt: new Date(now),
        attempts: 0,
        claimedBy: null,
        leaseUntil: null,
        deliveredAt: null,
        lastError: null,
      };
      this.events.set(event.id, event);
      return event;
    });
  }
}
