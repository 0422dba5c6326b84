/**
 * The event outbox over SQL, and the step that records a write's events in the write's own
 * transaction.
 * @module
 */
import { randomUUID } from 'node:crypto';
import { OUTBOX_WRITES, outboxJson } from '../../src/memory/outbox';
import type { OutboxClaim, OutboxDraft, OutboxEvent, OutboxEvents, OutboxRepository } from '../../src/ports/repositories-outbox';
import type { SqlRow, SqlStatement, SqlStep } from './dialect';
import type { SqlTable } from './sql-table';

/** The INSERT of `drafts` (returning the recorded rows), or `null` when there are none. */
export function outboxInsert(table: SqlTable<OutboxEvent>, drafts: readonly OutboxDraft[], now: Date): SqlStatement | null {
  if (drafts.length === 0) return null;
  const params = table.params();
  const rows = drafts.map((draft) => {
    const values = [
      params.add(randomUUID(), 'text'),
      params.add(draft.type, 'text'),
      params.add(draft.key, 'text'),
      params.add(outboxJson(draft.data), 'json'),
      params.add(now, 'timestamp'),
      params.add(now, 'timestamp'),
    ];
    return `(${values.join(', ')}, 0)`;
  });
  const columns = ['id', 'type', 'key', 'data', 'createdAt', 'availableAt', 'attempts'] as const;
  return params.statement(
    `INSERT INTO ${table.ref} (${columns.map((field) => table.col(field)).join(', ')}) VALUES ${rows.join(', ')} RETURNING ${table.selectList}`,
  );
}

/**
 * Runs `write` (a statement returning the written row, or nothing when it did not write) and, in
 * the same transaction, records the events `events` makes of the written record.
 * @returns the written record, or `null` when the write changed nothing.
 */
export async function writeWithEvents<T extends object>(
  table: SqlTable<T>,
  outbox: SqlTable<OutboxEvent>,
  write: SqlStatement,
  events: OutboxEvents<T> | undefined,
  now: (record: T) => Date,
): Promise<T | null> {
  if (!events) return (await table.rows(write))[0] ?? null;
  const record = (rows: readonly SqlRow[][]): T | null => {
    const [row] = rows[0] ?? [];
    return row ? table.decode(row) : null;
  };
  const step: SqlStep = (previous) => {
    const written = record(previous);
    return written ? outboxInsert(outbox, events(written), now(written)) : null;
  };
  return record(await table.executor.transaction([write, step]));
}

/**
 * Runs `write` (a statement returning every row it wrote) and, in the same transaction, records
 * the events `events` makes of each written record (in row order), stamped `now`.
 * @returns the written records.
 */
export async function writeAllWithEvents<T extends object>(
  table: SqlTable<T>,
  outbox: SqlTable<OutboxEvent>,
  write: SqlStatement,
  events: OutboxEvents<T> | undefined,
  now: Date,
): Promise<T[]> {
  if (!events) return table.rows(write);
  const step: SqlStep = (previous) => outboxInsert(outbox, (previous[0] ?? []).map((row) => table.decode(row)).flatMap(events), now);
  const [rows] = await table.executor.transaction([write, step]);
  return (rows ?? []).map((row) => table.decode(row));
}

/** {@link OutboxRepository} over SQL. */
export class SqlOutboxRepository implements OutboxRepository {
  readonly recordedWrites = OUTBOX_WRITES;

  constructor(private readonly table: SqlTable<OutboxEvent>) {}

  async append(drafts: readonly OutboxDraft[], now: Date): Promise<OutboxEvent[]> {
    const insert = outboxInsert(this.table, drafts, now);
    return insert ? this.sorted(await this.table.rows(insert)) : [];
  }

  async get(id: string): Promise<OutboxEvent | null> {
    return this.table.getBy('id', id);
  }

  async claim({ owner, now, leaseMs, limit }: OutboxClaim): Promise<OutboxEvent[]> {
    const { table } = this;
    const params = table.params();
    const [seq, key, delivered, available, lease] = (['sequence', 'key', 'deliveredAt', 'availableAt', 'leaseUntil'] as const).map(
      (field) => table.col(field),
    );
    const sets = `${table.col('claimedBy')} = ${params.add(owner, 'text')}, ${lease} = ${params.add(new Date(now.getTime() + leaseMs), 'timestamp')}, attempts = attempts + 1`;
    const at = (): string => params.add(now, 'timestamp');
    const picked =
      `SELECT o.${seq} FROM ${table.ref} o WHERE o.${delivered} IS NULL AND o.${available} <= ${at()}` +
      ` AND (o.${lease} IS NULL OR o.${lease} <= ${at()})` +
      ` AND NOT EXISTS (SELECT 1 FROM ${table.ref} p WHERE p.${key} = o.${key} AND p.${delivered} IS NULL AND p.${seq} < o.${seq})` +
      ` ORDER BY o.${seq} LIMIT ${params.add(limit, 'integer')}${table.dialect.claimLocking}`;
    return this.sorted(
      await table.rows(params.statement(`UPDATE ${table.ref} SET ${sets} WHERE ${seq} IN (${picked}) RETURNING ${table.selectList}`)),
    );
  }

  async complete(id: string, owner: string, now: Date, error?: string): Promise<boolean> {
    const { table } = this;
    const params = table.params();
    // Placeholders are added in the order they appear in the SQL (SQLite's are positional).
    const delivered = `${table.col('deliveredAt')} = ${params.add(now, 'timestamp')}`;
    const sets = `${delivered}, ${table.col('lastError')} = ${error === undefined ? table.col('lastError') : params.add(error, 'text')}`;
    return this.updateHeld(params, sets, id, owner);
  }

  async release(id: string, owner: string, retryAt: Date, error: string): Promise<boolean> {
    const { table } = this;
    const params = table.params();
    const sets = `${table.col('availableAt')} = ${params.add(retryAt, 'timestamp')}, ${table.col('lastError')} = ${params.add(error, 'text')}`;
    return this.updateHeld(params, sets, id, owner);
  }

  async prune(before: Date): Promise<number> {
    const { table } = this;
    const params = table.params();
    const rows = await table.executor.query(
      params.statement(`DELETE FROM ${table.ref} WHERE ${table.col('deliveredAt')} < ${params.add(before, 'timestamp')} RETURNING id`),
    );
    return rows.length;
  }

  async pruneUndelivered(before: Date, now: Date): Promise<number> {
    const { table } = this;
    const params = table.params();
    const lease = table.col('leaseUntil');
    const sql =
      `DELETE FROM ${table.ref} WHERE ${table.col('deliveredAt')} IS NULL AND ${table.col('createdAt')} < ${params.add(before, 'timestamp')}` +
      ` AND (${lease} IS NULL OR ${lease} <= ${params.add(now, 'timestamp')}) RETURNING id`;
    return (await table.executor.query(params.statement(sql))).length;
  }

  private async updateHeld(params: ReturnType<SqlTable<OutboxEvent>['params']>, sets: string, id: string, owner: string): Promise<boolean> {
    const { table } = this;
    const claimed = table.col('claimedBy');
    const sql =
      `UPDATE ${table.ref} SET ${sets}, ${claimed} = NULL, ${table.col('leaseUntil')} = NULL` +
      ` WHERE id = ${params.add(id, 'text')} AND ${claimed} = ${params.add(owner, 'text')} AND ${table.col('deliveredAt')} IS NULL RETURNING id`;
    return (await table.executor.query(params.statement(sql))).length > 0;
  }

  private sorted(events: OutboxEvent[]): OutboxEvent[] {
    return events.sort((a, b) => a.sequence - b.sequence);
  }
}
