/**
 * The panel's event outbox, in its own table `panel_image_events`: what a host's repositories
 * implement so the SDK's events survive a crash (docs/repositories.md, "Outbox"). `record` runs
 * inside the transaction of the write that causes the events; the rest is the
 * {@link OutboxRepository} that `startOutboxDelivery` claims from.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type Database from 'better-sqlite3';
import type { OutboxDraft, OutboxEvent, OutboxRepository } from '../../src';

type Row = Record<string, unknown>;

const time = (value: unknown): Date | null => (value === null || value === undefined ? null : new Date(Number(value)));

function fromRow(row: Row): OutboxEvent {
  return {
    id: String(row.id),
    sequence: Number(row.seq),
    type: String(row.event_type),
    key: String(row.event_key),
    data: JSON.parse(String(row.payload)) as unknown,
    createdAt: time(row.created_on) as Date,
    availableAt: time(row.available_on) as Date,
    attempts: Number(row.attempts),
    claimedBy: row.claimed_by === null ? null : String(row.claimed_by),
    leaseUntil: time(row.lease_until),
    deliveredAt: time(row.delivered_on),
    lastError: row.last_error === null ? null : String(row.last_error),
  };
}

/** The panel's outbox over its connection. */
export function createHostOutbox(db: Database.Database): OutboxRepository & {
  /** Inserts the events synchronously: call it inside the write's transaction. */
  record(drafts: readonly OutboxDraft[], now: Date): OutboxEvent[];
} {
  const record = (drafts: readonly OutboxDraft[], now: Date): OutboxEvent[] => {
    const payloads = drafts.map((draft) => JSON.stringify(draft.data ?? null));
    const insert = db.prepare(
      `INSERT INTO panel_image_events (id, event_type, event_key, payload, created_on, available_on, attempts)
       VALUES (?, ?, ?, ?, ?, ?, 0) RETURNING *`,
    );
    return drafts.map((draft, n) =>
      fromRow(insert.get(randomUUID(), draft.type, draft.key, payloads[n], now.getTime(), now.getTime()) as Row),
    );
  };
  const held = (sets: string, id: string, owner: string, ...params: unknown[]): boolean =>
    db
      .prepare(
        `UPDATE panel_image_events SET ${sets}, claimed_by = NULL, lease_until = NULL
         WHERE id = ? AND claimed_by = ? AND delivered_on IS NULL`,
      )
      .run(...params, id, owner).changes > 0;
  return {
    record,
    append: async (drafts, now) => db.transaction(() => record(drafts, now)).immediate(),
    get: async (id) => {
      const row = db.prepare('SELECT * FROM panel_image_events WHERE id = ?').get(id) as Row | undefined;
      return row ? fromRow(row) : null;
    },
    claim: async ({ owner, now, leaseMs, limit }) => {
      // One statement: SQLite serializes writers, so two claimers never take the same event.
      const rows = db
        .prepare(
          `UPDATE panel_image_events SET claimed_by = ?, lease_until = ?, attempts = attempts + 1
           WHERE seq IN (
             SELECT o.seq FROM panel_image_events o
             WHERE o.delivered_on IS NULL AND o.available_on <= ? AND (o.lease_until IS NULL OR o.lease_until <= ?)
               AND NOT EXISTS (SELECT 1 FROM panel_image_events p WHERE p.event_key = o.event_key AND p.delivered_on IS NULL AND p.seq < o.seq)
             ORDER BY o.seq LIMIT ?)
           RETURNING *`,
        )
        .all(owner, now.getTime() + leaseMs, now.getTime(), now.getTime(), limit) as Row[];
      return rows.map(fromRow).sort((a, b) => a.sequence - b.sequence);
    },
    complete: async (id, owner, now, error) =>
      held('delivered_on = ?, last_error = coalesce(?, last_error)', id, owner, now.getTime(), error ?? null),
    release: async (id, owner, retryAt, error) => held('available_on = ?, last_error = ?', id, owner, retryAt.getTime(), error),
    prune: async (before) => db.prepare('DELETE FROM panel_image_events WHERE delivered_on < ?').run(before.getTime()).changes,
  };
}
