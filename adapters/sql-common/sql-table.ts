/**
 * Generic statements over one {@link TableSpec}: get, insert (CONFLICT on a duplicate key),
 * patching updates and compare-and-set transitions with RETURNING, deletes, and keyset pages.
 * Every method issues exactly one executor call, so it is atomic on every database.
 * @module
 */
import { InstanceImagesError, notFound } from '../../src/errors';
import type { Page } from '../../src/model/common';
import type { ListPage } from '../../src/ports/repositories';
import { decodeCursor, encodeCursor, pageSize, type CursorKey } from '../../src/util/cursor';
import { SqlParams, type SqlDialect, type SqlExecutor, type SqlRow, type SqlStatement } from './dialect';
import { columnOf, fieldsOf, type TableSpec } from './table';

/** A CONFLICT error for a duplicate id, worded like the memory repositories'. */
export function conflictError(kind: string, id: string, cause?: unknown): InstanceImagesError {
  return new InstanceImagesError('CONFLICT', `${kind} ${JSON.stringify(id)} already exists`, { cause, details: { kind, id } });
}

/** Ordering of a keyset page: a timestamp or text field, then the id in the same direction. */
export interface KeysetOrder<T> {
  /** The sort field (a `timestamp` or `text` column). */
  field: keyof T & string;
  /** Sort direction. */
  direction: 'asc' | 'desc';
}

/** Options of {@link SqlTable.patch}. */
export interface PatchOptions {
  /** Fields a patch must not change (ignored when present); name `status` where only a compare-and-set may change it. */
  immutable: ReadonlySet<string>;
  /** When set, a compare-and-set: only rows whose status is in `from` change, and status becomes `to`. */
  status?: { from: readonly string[]; to: string };
  /** The new `updatedAt`, for tables that have one. */
  now?: Date;
  /** A further condition (SQL without parameters) the row must meet to change. */
  condition?: string;
}

/** Statements and codecs for one table. */
export class SqlTable<T extends object> {
  /** The qualified table name for SQL. */
  readonly ref: string;
  /** The select list of every column, for SELECT and RETURNING. */
  readonly selectList: string;
  private readonly fields: (keyof T & string)[];

  constructor(
    /** The table spec. */
    readonly spec: TableSpec<T>,
    /** The dialect. */
    readonly dialect: SqlDialect,
    /** The executor. */
    readonly executor: SqlExecutor,
    /** What a record is called in messages, e.g. `Image`. */
    readonly kind: string,
  ) {
    this.ref = dialect.table(spec.name);
    this.fields = fieldsOf(spec);
    this.selectList = this.fields.map((field) => dialect.selectColumn(this.col(field), spec.columns[field])).join(', ');
  }

  /** The column of a field. */
  col(field: keyof T & string): string {
    return columnOf(this.spec, field);
  }

  /** A fresh parameter list. */
  params(): SqlParams {
    return new SqlParams(this.dialect);
  }

  /** Decodes a row into a new record. */
  decode(row: SqlRow): T {
    const record: Record<string, unknown> = {};
    for (const field of this.fields) {
      const type = this.spec.columns[field];
      const value = this.dialect.decode(type, row[this.dialect.resultKey(this.col(field), type)]);
      if (value === null && this.spec.optional?.includes(field)) continue;
      record[field] = value;
    }
    return record as T;
  }

  /** The column list and the placeholders of a full record, for INSERT. */
  values(record: T, params: SqlParams): { columns: string; placeholders: string } {
    const source = record as Record<string, unknown>;
    const placeholders = this.fields.map((field) => params.add(source[field] ?? null, this.spec.columns[field]));
    return { columns: this.fields.map((field) => this.col(field)).join(', '), placeholders: placeholders.join(', ') };
  }

  /** Runs a SELECT (or RETURNING) statement and decodes its rows. */
  async rows(statement: SqlStatement): Promise<T[]> {
    return (await this.executor.query(statement)).map((row) => this.decode(row));
  }

  /** The record whose `field` equals `value`, or `null`. */
  async getBy(field: keyof T & string, value: string): Promise<T | null> {
    const params = this.params();
    const [found] = await this.rows(
      params.statement(`SELECT ${this.selectList} FROM ${this.ref} WHERE ${this.col(field)} = ${params.add(value, 'text')}`),
    );
    return found ?? null;
  }

  /** Records matching `where` (conditions joined by AND), in `orderBy` order. */
  async select(params: SqlParams, where: readonly string[], orderBy: string): Promise<T[]> {
    return this.rows(params.statement(`SELECT ${this.selectList} FROM ${this.ref}${whereClause(where)} ORDER BY ${orderBy}`));
  }

  /** Inserts a record. @throws CONFLICT when the key exists. */
  async insert(record: T, id: string): Promise<void> {
    const params = this.params();
    const { columns, placeholders } = this.values(record, params);
    await this.guard(this.executor.query(params.statement(`INSERT INTO ${this.ref} (${columns}) VALUES (${placeholders})`)), id);
  }

  /**
   * Updates the record whose `keyField` is `key` with the patch's known, mutable fields (undefined
   * values are skipped), optionally as a status compare-and-set. @returns the new record, or `null`.
   */
  async patch(keyField: keyof T & string, key: string, patch: object, options: PatchOptions): Promise<T | null> {
    const [updated] = await this.rows(this.patchStatement(keyField, key, patch, options));
    return updated ?? null;
  }

  /** The UPDATE … RETURNING statement of {@link SqlTable.patch}. */
  patchStatement(keyField: keyof T & string, key: string, patch: object, options: PatchOptions): SqlStatement {
    const params = this.params();
    const sets: string[] = [];
    for (const [field, value] of Object.entries(patch)) {
      // `status` changes only through a compare-and-set, or where the table lets update set it (ISOs).
      if (
        value === undefined ||
        options.immutable.has(field) ||
        (field === 'status' && options.status) ||
        field === 'updatedAt' ||
        !(field in this.spec.columns)
      )
        continue;
      const typed = field as keyof T & string;
      sets.push(`${this.col(typed)} = ${params.add(value, this.spec.columns[typed])}`);
    }
    if (options.status) sets.push(`status = ${params.add(options.status.to, 'text')}`);
    if (options.now) sets.push(`updated_at = ${params.add(options.now, 'timestamp')}`);
    // An empty patch of a table without updatedAt still reports whether the record exists.
    if (sets.length === 0) sets.push(`${this.col(keyField)} = ${this.col(keyField)}`);
    const where = [`${this.col(keyField)} = ${params.add(key, 'text')}`];
    if (options.status) where.push(params.inList('status', options.status.from));
    if (options.condition) where.push(`(${options.condition})`);
    return params.statement(`UPDATE ${this.ref} SET ${sets.join(', ')}${whereClause(where)} RETURNING ${this.selectList}`);
  }

  /** Deletes the record whose `keyField` is `key`. @returns whether it existed. */
  async deleteBy(keyField: keyof T & string, key: string): Promise<boolean> {
    const params = this.params();
    const rows = await this.executor.query(
      params.statement(`DELETE FROM ${this.ref} WHERE ${this.col(keyField)} = ${params.add(key, 'text')} RETURNING ${this.col(keyField)}`),
    );
    return rows.length > 0;
  }

  /**
   * A keyset page of the records matching `where`, ordered by `order.field` then id.
   * @throws VALIDATION_FAILED for a cursor that is not one of this list's.
   */
  async page(params: SqlParams, where: readonly string[], order: KeysetOrder<T>, page: ListPage): Promise<Page<T>> {
    const size = pageSize(page.limit);
    const sortType = this.spec.columns[order.field];
    const sortColumn = this.col(order.field);
    const idColumn = this.col('id' as keyof T & string);
    const conditions = [...where];
    if (page.cursor) {
      const [value, id] = decodeCursor(page.cursor);
      const sortValue =
        sortType === 'timestamp' ? (typeof value === 'number' ? new Date(value) : null) : typeof value === 'string' ? value : null;
      if (sortValue === null || (sortValue instanceof Date && Number.isNaN(sortValue.getTime()))) {
        throw new InstanceImagesError('VALIDATION_FAILED', 'The page cursor is not valid for this list', {
          fields: [{ path: 'cursor', message: 'is not valid for this list' }],
        });
      }
      const op = order.direction === 'asc' ? '>' : '<';
      conditions.push(`(${sortColumn}, ${idColumn}) ${op} (${params.add(sortValue, sortType)}, ${params.add(id, 'text')})`);
    }
    const direction = order.direction === 'asc' ? 'ASC' : 'DESC';
    const sql = `SELECT ${this.selectList} FROM ${this.ref}${whereClause(conditions)} ORDER BY ${sortColumn} ${direction}, ${idColumn} ${direction} LIMIT ${params.add(size + 1)}`;
    const rows = await this.rows(params.statement(sql));
    const items = rows.slice(0, size);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > size && last !== undefined ? encodeCursor(this.cursorKey(last, order.field)) : null };
  }

  /** Maps constraint violations of `operation` to CONFLICT (duplicate key) or NOT_FOUND (missing parent). */
  async guard<R>(operation: Promise<R>, id: string, parent?: { kind: string; id: string }): Promise<R> {
    try {
      return await operation;
    } catch (error) {
      const violation = this.dialect.constraintViolation(error);
      if (violation === 'unique') throw conflictError(this.kind, id, error);
      if (violation === 'foreign-key' && parent) {
        const missing = notFound(parent.kind, parent.id);
        throw new InstanceImagesError('NOT_FOUND', missing.message, { cause: error, details: missing.details });
      }
      throw error;
    }
  }

  private cursorKey(record: T, field: keyof T & string): CursorKey {
    const value = (record as Record<string, unknown>)[field];
    const id = String((record as Record<string, unknown>)['id']);
    return [value instanceof Date ? value.getTime() : String(value), id];
  }
}

/** ` WHERE a AND b`, or an empty string when there are no conditions. */
export function whereClause(conditions: readonly string[]): string {
  return conditions.length === 0 ? '' : ` WHERE ${conditions.join(' AND ')}`;
}
