/**
 * The panel's own implementation of the image share and transfer repositories, over its
 * `panel_image_shares` and `panel_image_handovers` tables (schema.ts). Same techniques as
 * repositories.ts: field-by-field mapping, BEGIN IMMEDIATE around every read-then-write, and the
 * ownership change of an accepted transfer in the same transaction as its acceptance.
 * @module
 */
import type Database from 'better-sqlite3';
import {
  InstanceImagesError,
  decodeCursor,
  encodeCursor,
  pageSize,
  type ImageShare,
  type ImageShareRepository,
  type ImageTransfer,
  type ImageTransferRepository,
  type ListPage,
  type Page,
} from '../../src';

type Row = Record<string, unknown>;
const ms = (date: Date | null) => (date === null ? null : date.getTime());
const timeOrNull = (value: unknown) => (value === null || value === undefined ? null : new Date(Number(value)));
const time = (value: unknown) => new Date(Number(value));

const shareFromRow = (r: Row): ImageShare => ({
  id: String(r.id),
  imageId: String(r.image_id),
  ownerAccountId: String(r.owner_customer_id),
  accountId: String(r.customer_id),
  status: String(r.state) as ImageShare['status'],
  createdAt: time(r.created_on),
  updatedAt: time(r.changed_on),
  decidedAt: timeOrNull(r.decided_on),
});

const transferFromRow = (r: Row): ImageTransfer => ({
  id: String(r.id),
  imageId: String(r.image_id),
  fromAccountId: String(r.from_customer_id),
  toAccountId: String(r.to_customer_id),
  status: String(r.state) as ImageTransfer['status'],
  expiresAt: time(r.expires_on),
  createdAt: time(r.created_on),
  updatedAt: time(r.changed_on),
  decidedAt: timeOrNull(r.decided_on),
});

/** The share and transfer repositories over the panel's database. */
export function createImageMoveRepositories(db: Database.Database): {
  imageShares: ImageShareRepository;
  imageTransfers: ImageTransferRepository;
} {
  const all = (sql: string, ...params: unknown[]) => db.prepare(sql).all(...params) as Row[];
  const one = (sql: string, ...params: unknown[]) => (db.prepare(sql).get(...params) as Row | undefined) ?? null;
  const atomically = <T>(fn: () => T): T => db.transaction(fn).immediate();

  /** A newest-first keyset page of `table` under `clauses` (each `[sql, ...params]`). */
  const page = <T>(table: string, clauses: [string, ...unknown[]][], fromRow: (r: Row) => T, request: ListPage): Page<T> => {
    const limit = pageSize(request.limit);
    const conditions = [...clauses];
    if (request.cursor) {
      const [value, id] = decodeCursor(request.cursor);
      conditions.push(['(created_on < ? OR (created_on = ? AND id < ?))', value, value, id]);
    }
    const where = conditions.length === 0 ? '' : ` WHERE ${conditions.map(([sql]) => sql).join(' AND ')}`;
    const rows = all(
      `SELECT * FROM ${table}${where} ORDER BY created_on DESC, id DESC LIMIT ?`,
      ...conditions.flatMap(([, ...p]) => p),
      limit + 1,
    );
    const items = rows.slice(0, limit);
    const last = items[items.length - 1];
    return {
      items: items.map(fromRow),
      nextCursor: rows.length > limit && last ? encodeCursor([Number(last.created_on), String(last.id)]) : null,
    };
  };
  const optional = (column: string, value: string | undefined): [string, ...unknown[]][] =>
    value === undefined ? [] : [[`${column} = ?`, value]];
  const states = (values: readonly string[] | undefined): [string, ...unknown[]][] =>
    values === undefined ? [] : [['state IN (SELECT value FROM json_each(?))', JSON.stringify(values)]];
  const conflict = (message: string, details: Record<string, unknown>) => new InstanceImagesError('CONFLICT', message, { details });
  const decide = (table: string, id: string, from: readonly string[], to: string, now: Date) =>
    one(
      `UPDATE ${table} SET state = ?, decided_on = ?, changed_on = ? WHERE id = ? AND state IN (SELECT value FROM json_each(?)) RETURNING *`,
      to,
      ms(now),
      ms(now),
      id,
      JSON.stringify(from),
    );

  const imageShares: ImageShareRepository = {
    get: async (id) => {
      const row = one('SELECT * FROM panel_image_shares WHERE id = ?', id);
      return row ? shareFromRow(row) : null;
    },
    list: async (f = {}, request = {}) =>
      page(
        'panel_image_shares',
        [
          ...optional('image_id', f.imageId),
          ...optional('customer_id', f.accountId),
          ...optional('owner_customer_id', f.ownerAccountId),
          ...states(f.statuses),
        ],
        shareFromRow,
        request,
      ),
    insert: async (s) =>
      atomically(() => {
        if (one('SELECT id FROM panel_image_shares WHERE id = ?', s.id))
          throw conflict(`Image share ${JSON.stringify(s.id)} already exists`, { id: s.id });
        if (
          one(
            `SELECT id FROM panel_image_shares WHERE image_id = ? AND customer_id = ? AND state IN ('pending', 'accepted')`,
            s.imageId,
            s.accountId,
          )
        )
          throw conflict('The image is already shared with this account', { imageId: s.imageId, accountId: s.accountId });
        db.prepare(
          'INSERT INTO panel_image_shares (id, image_id, owner_customer_id, customer_id, state, created_on, changed_on, decided_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
        ).run(s.id, s.imageId, s.ownerAccountId, s.accountId, s.status, ms(s.createdAt), ms(s.updatedAt), ms(s.decidedAt));
      }),
    transition: async (id, from, to, now) => {
      const row = decide('panel_image_shares', id, from, to, now);
      return row ? shareFromRow(row) : null;
    },
    revokeAllOf: async (imageId, now) =>
      all(
        `UPDATE panel_image_shares SET state = 'revoked', decided_on = ?, changed_on = ? WHERE image_id = ? AND state IN ('pending', 'accepted') RETURNING *`,
        ms(now),
        ms(now),
        imageId,
      ).map(shareFromRow),
  };

  const imageTransfers: ImageTransferRepository = {
    get: async (id) => {
      const row = one('SELECT * FROM panel_image_handovers WHERE id = ?', id);
      return row ? transferFromRow(row) : null;
    },
    list: async (f = {}, request = {}) =>
      page(
        'panel_image_handovers',
        [
          ...optional('image_id', f.imageId),
          ...optional('from_customer_id', f.fromAccountId),
          ...optional('to_customer_id', f.toAccountId),
          ...states(f.statuses),
        ],
        transferFromRow,
        request,
      ),
    insert: async (t) =>
      atomically(() => {
        if (one('SELECT id FROM panel_image_handovers WHERE id = ?', t.id))
          throw conflict(`Image transfer ${JSON.stringify(t.id)} already exists`, { id: t.id });
        if (t.status === 'pending' && one(`SELECT id FROM panel_image_handovers WHERE image_id = ? AND state = 'pending'`, t.imageId))
          throw conflict('The image already has a pending transfer', { imageId: t.imageId });
        db.prepare(
          'INSERT INTO panel_image_handovers (id, image_id, from_customer_id, to_customer_id, state, expires_on, created_on, changed_on, decided_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
        ).run(
          t.id,
          t.imageId,
          t.fromAccountId,
          t.toAccountId,
          t.status,
          ms(t.expiresAt),
          ms(t.createdAt),
          ms(t.updatedAt),
          ms(t.decidedAt),
        );
      }),
    transition: async (id, from, to, now) => {
      const row = decide('panel_image_handovers', id, from, to, now);
      return row ? transferFromRow(row) : null;
    },
    // Checks and both writes under one write lock: the cap, the owner and the offer hold together.
    accept: async (id, limit, now) =>
      atomically(() => {
        const row = one('SELECT * FROM panel_image_handovers WHERE id = ?', id);
        if (!row) return null;
        const t = transferFromRow(row);
        if (t.status !== 'pending' || t.expiresAt.getTime() <= now.getTime()) return null;
        const image = one(
          `SELECT coalesce(file_bytes, disk_bytes, held_bytes, 0) AS bytes FROM panel_vm_images WHERE id = ? AND kind = 'custom' AND customer_id = ? AND state = 'available'`,
          t.imageId,
          t.fromAccountId,
        );
        if (!image) return null;
        if (limit !== null) {
          const n = Number(
            one(`SELECT count(*) AS n FROM panel_vm_images WHERE kind = 'custom' AND customer_id = ? AND state <> 'deleted'`, t.toAccountId)
              ?.n ?? 0,
          );
          if (n >= limit.max) return null;
          // The byte cap counts the recipient's images plus this one, as `insertIfUnderLimit` does.
          const used = Number(
            one(
              `SELECT coalesce(sum(coalesce(file_bytes, disk_bytes, held_bytes, 0)), 0) AS n FROM panel_vm_images WHERE kind = 'custom' AND customer_id = ? AND state <> 'deleted'`,
              t.toAccountId,
            )?.n ?? 0,
          );
          if (limit.maxBytes != null && used + Number(image.bytes) > limit.maxBytes) return null;
        }
        db.prepare('UPDATE panel_vm_images SET customer_id = ?, server_id = NULL, server_name = NULL, changed_on = ? WHERE id = ?').run(
          t.toAccountId,
          ms(now),
          t.imageId,
        );
        const accepted = decide('panel_image_handovers', id, ['pending'], 'accepted', now);
        return accepted ? transferFromRow(accepted) : null;
      }),
  };
  return { imageShares, imageTransfers };
}
