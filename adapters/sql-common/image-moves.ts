/**
 * Image shares and ownership transfers over SQL. Same semantics as the memory repositories;
 * `accept` is one transaction that moves the image and accepts the transfer together.
 * @module
 */
import { InstanceImagesError, isInstanceImagesError } from '../../src/errors';
import type { Page } from '../../src/model/common';
import type { Image } from '../../src/model/image';
import type { ImageShare, ImageShareStatus, ImageTransfer, ImageTransferStatus } from '../../src/model/image-move';
import type {
  ImageLimit,
  ImageShareFilter,
  ImageShareRepository,
  ImageTransferFilter,
  ImageTransferRepository,
  ListPage,
} from '../../src/ports/repositories';
import type { OutboxEvent, OutboxEvents } from '../../src/ports/repositories-outbox';
import type { SqlParams, SqlRow, SqlStep } from './dialect';
import { outboxInsert, writeAllWithEvents, writeWithEvents } from './outbox';
import { activeCustomImages, capBytesSql, usedBytesSql } from './image-caps';
import type { SqlTable } from './sql-table';

const RECORD_IMMUTABLE = new Set(['id', 'createdAt', 'imageId', 'ownerAccountId', 'accountId', 'fromAccountId', 'toAccountId']);

function equals(where: string[], params: SqlParams, column: string, value: string | undefined): void {
  if (value !== undefined) where.push(`${column} = ${params.add(value, 'text')}`);
}

/**
 * Inserts (with the events `events` makes of the record, in the same transaction, stamped
 * `createdAt`), telling a duplicate id from a violated "one open record" index (both are unique
 * violations).
 */
async function insertGuarded<T extends { id: string; createdAt: Date }>(
  table: SqlTable<T>,
  outbox: SqlTable<OutboxEvent>,
  record: T,
  events: OutboxEvents<T> | undefined,
  openConflict: () => InstanceImagesError,
): Promise<void> {
  try {
    if (!events) await table.insert(record, record.id);
    else {
      const params = table.params();
      const { columns, placeholders } = table.values(record, params);
      const write = params.statement(`INSERT INTO ${table.ref} (${columns}) VALUES (${placeholders}) RETURNING ${table.selectList}`);
      await table.guard(
        writeWithEvents(table, outbox, write, events, () => record.createdAt),
        record.id,
      );
    }
  } catch (error) {
    if (isInstanceImagesError(error, 'CONFLICT') && (await table.getBy('id' as keyof T & string, record.id)) === null) throw openConflict();
    throw error;
  }
}

/** {@link ImageShareRepository} over SQL. */
export class SqlImageShareRepository implements ImageShareRepository {
  constructor(
    private readonly table: SqlTable<ImageShare>,
    private readonly outbox: SqlTable<OutboxEvent>,
  ) {}

  async get(id: string): Promise<ImageShare | null> {
    return this.table.getBy('id', id);
  }

  async list(filter: ImageShareFilter = {}, page: ListPage = {}): Promise<Page<ImageShare>> {
    const { table } = this;
    const params = table.params();
    const where: string[] = [];
    equals(where, params, table.col('imageId'), filter.imageId);
    equals(where, params, table.col('accountId'), filter.accountId);
    equals(where, params, table.col('ownerAccountId'), filter.ownerAccountId);
    if (filter.statuses !== undefined) where.push(params.inList('status', filter.statuses));
    return table.page(params, where, { field: 'createdAt', direction: 'desc' }, page);
  }

  async insert(share: ImageShare, events?: OutboxEvents<ImageShare>): Promise<void> {
    await insertGuarded(
      this.table,
      this.outbox,
      share,
      events,
      () =>
        new InstanceImagesError('CONFLICT', 'The image is already shared with this account', {
          details: { imageId: share.imageId, accountId: share.accountId },
        }),
    );
  }

  async transition(
    id: string,
    from: readonly ImageShareStatus[],
    to: ImageShareStatus,
    now: Date,
    events?: OutboxEvents<ImageShare>,
  ): Promise<ImageShare | null> {
    const write = this.table.patchStatement('id', id, { decidedAt: now }, { immutable: RECORD_IMMUTABLE, status: { from, to }, now });
    return writeWithEvents(this.table, this.outbox, write, events, () => now);
  }

  async revokeAllOf(imageId: string, now: Date, events?: OutboxEvents<ImageShare>): Promise<ImageShare[]> {
    const { table } = this;
    const params = table.params();
    const sql =
      `UPDATE ${table.ref} SET status = 'revoked', ${table.col('decidedAt')} = ${params.add(now, 'timestamp')}, updated_at = ${params.add(now, 'timestamp')}` +
      ` WHERE ${table.col('imageId')} = ${params.add(imageId, 'text')} AND status IN ('pending', 'accepted') RETURNING ${table.selectList}`;
    return writeAllWithEvents(table, this.outbox, params.statement(sql), events, now);
  }
}

/** {@link ImageTransferRepository} over SQL; `accept` also writes the images table. */
export class SqlImageTransferRepository implements ImageTransferRepository {
  constructor(
    private readonly table: SqlTable<ImageTransfer>,
    private readonly images: SqlTable<Image>,
    private readonly outbox: SqlTable<OutboxEvent>,
  ) {}

  async get(id: string): Promise<ImageTransfer | null> {
    return this.table.getBy('id', id);
  }

  async list(filter: ImageTransferFilter = {}, page: ListPage = {}): Promise<Page<ImageTransfer>> {
    const { table } = this;
    const params = table.params();
    const where: string[] = [];
    equals(where, params, table.col('imageId'), filter.imageId);
    equals(where, params, table.col('fromAccountId'), filter.fromAccountId);
    equals(where, params, table.col('toAccountId'), filter.toAccountId);
    if (filter.statuses !== undefined) where.push(params.inList('status', filter.statuses));
    return table.page(params, where, { field: 'createdAt', direction: 'desc' }, page);
  }

  async insert(transfer: ImageTransfer, events?: OutboxEvents<ImageTransfer>): Promise<void> {
    await insertGuarded(
      this.table,
      this.outbox,
      transfer,
      events,
      () => new InstanceImagesError('CONFLICT', 'The image already has a pending transfer', { details: { imageId: transfer.imageId } }),
    );
  }

  async transition(
    id: string,
    from: readonly ImageTransferStatus[],
    to: ImageTransferStatus,
    now: Date,
    events?: OutboxEvents<ImageTransfer>,
  ): Promise<ImageTransfer | null> {
    const write = this.table.patchStatement('id', id, { decidedAt: now }, { immutable: RECORD_IMMUTABLE, status: { from, to }, now });
    return writeWithEvents(this.table, this.outbox, write, events, () => now);
  }

  /**
   * One transaction: (the recipient's cap lock where the dialect needs one; it covers the count and
   * the byte cap), a no-op update that
   * locks the transfer row (so a concurrent `transition` is either before or after all of this),
   * the image's owner change under every condition, then the transfer's acceptance only when the
   * image was moved by this very statement (its `updatedAt` is `now` and its owner the recipient),
   * and last the events of the accepted transfer and the moved image.
   */
  async accept(
    id: string,
    limit: ImageLimit | null,
    now: Date,
    events?: OutboxEvents<{ transfer: ImageTransfer; image: Image }>,
  ): Promise<ImageTransfer | null> {
    const { table, images } = this;
    // The accounts and the image of a transfer never change: reading them first is safe.
    const known = await table.getBy('id', id);
    if (known === null || known.status !== 'pending') return null;
    const statements = [];
    const lock = limit === null ? null : table.dialect.imageLimitLock(known.toAccountId);
    if (lock) statements.push(lock);
    const touch = table.params();
    statements.push(touch.statement(`UPDATE ${table.ref} SET updated_at = updated_at WHERE id = ${touch.add(id, 'text')}`));

    // Parameters are added in the order their placeholders appear (SQLite's are positional).
    const move = images.params();
    const to = known.toAccountId;
    let sql = `UPDATE ${images.ref} SET ${images.col('accountId')} = ${move.add(to, 'text')}, ${images.col('sourceInstanceId')} = NULL`;
    sql += `, ${images.col('sourceInstanceName')} = NULL, updated_at = ${move.add(now, 'timestamp')}`;
    sql += ` WHERE id = ${move.add(known.imageId, 'text')} AND kind = 'custom' AND ${images.col('accountId')} = ${move.add(known.fromAccountId, 'text')}`;
    sql += ` AND status = 'available' AND EXISTS (SELECT 1 FROM ${table.ref} WHERE id = ${move.add(id, 'text')} AND status = 'pending'`;
    sql += ` AND ${table.col('expiresAt')} > ${move.add(now, 'timestamp')})`;
    if (limit !== null && Number.isFinite(limit.max))
      sql += ` AND (SELECT count(*) FROM ${images.ref} WHERE ${activeCustomImages(images, move, to)}) < ${move.add(limit.max, 'integer')}`;
    if (limit !== null && limit.maxBytes != null) {
      // The recipient's bytes plus the image's own, as `insertIfUnderLimit` counts a new image.
      sql += ` AND ${usedBytesSql(images, move, to)}`;
      sql += ` + (SELECT ${capBytesSql(images)} FROM ${images.ref} WHERE id = ${move.add(known.imageId, 'text')})`;
      sql += ` <= ${move.add(limit.maxBytes, 'bigint')}`;
    }
    statements.push(move.statement(`${sql} RETURNING ${images.selectList}`));
    const moved = statements.length - 1;

    const accept = table.params();
    statements.push(
      accept.statement(
        `UPDATE ${table.ref} SET status = 'accepted', ${table.col('decidedAt')} = ${accept.add(now, 'timestamp')}, updated_at = ${accept.add(now, 'timestamp')}` +
          ` WHERE id = ${accept.add(id, 'text')} AND status = 'pending' AND ${table.col('expiresAt')} > ${accept.add(now, 'timestamp')}` +
          ` AND EXISTS (SELECT 1 FROM ${images.ref} WHERE id = ${accept.add(known.imageId, 'text')} AND ${images.col('accountId')} = ${accept.add(to, 'text')}` +
          ` AND updated_at = ${accept.add(now, 'timestamp')}) RETURNING ${table.selectList}`,
      ),
    );
    const accepted = statements.length - 1;
    const record: SqlStep = (previous) => {
      const [transfer]: SqlRow[] = previous[accepted] ?? [];
      const [image]: SqlRow[] = previous[moved] ?? [];
      if (!events || transfer === undefined || image === undefined) return null;
      return outboxInsert(this.outbox, events({ transfer: table.decode(transfer), image: images.decode(image) }), now);
    };
    const results = await table.executor.transaction([...statements, record]);
    const [row] = results[accepted] ?? [];
    return row === undefined ? null : table.decode(row);
  }
}
