/**
 * The SQLite dialect: `?` placeholders, integer-millisecond timestamps, 0/1 booleans, JSON text,
 * list membership through `json_each`, and BEGIN IMMEDIATE as the serialization of capped inserts.
 * @module
 */
import { InstanceImagesError } from '../../src/errors';
import type { ConstraintViolation, SqlDialect } from '../sql-common/dialect';
import type { ColumnType } from '../sql-common/table';

function timestampMs(value: unknown): number {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value.getTime();
  throw new InstanceImagesError('VALIDATION_FAILED', 'A timestamp field must be a valid Date', {
    fields: [{ path: 'timestamp', message: 'must be a valid Date' }],
  });
}

/** The {@link SqlDialect} of better-sqlite3. */
export const sqliteDialect: SqlDialect = {
  name: 'sqlite',
  table: (name) => name,
  placeholder: () => '?',
  encode(type: ColumnType, value: unknown): unknown {
    if (value === null || value === undefined) return null;
    switch (type) {
      case 'boolean':
        return value ? 1 : 0;
      case 'timestamp':
        return timestampMs(value);
      case 'json':
        return JSON.stringify(value);
      default:
        return value;
    }
  },
  selectColumn: (column) => column,
  resultKey: (column) => column,
  decode(type: ColumnType, raw: unknown): unknown {
    if (raw === null || raw === undefined) return null;
    switch (type) {
      case 'text':
        return String(raw);
      case 'integer':
      case 'bigint':
        return Number(raw);
      case 'boolean':
        return Number(raw) === 1;
      case 'timestamp':
        return new Date(Number(raw));
      case 'json':
        return JSON.parse(String(raw)) as unknown;
    }
  },
  encodeList: (values) => JSON.stringify(values),
  inList: (expression, placeholder) => `${expression} IN (SELECT value FROM json_each(${placeholder}))`,
  // The executor runs every transaction as BEGIN IMMEDIATE: writers are already serialized.
  imageLimitLock: () => null,
  claimLocking: '',
  constraintViolation(error: unknown): ConstraintViolation | null {
    const code = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
    if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') return 'unique';
    if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign-key';
    return null;
  },
};
