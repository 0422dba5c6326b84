/**
 * The PostgreSQL dialect: `$n::type` placeholders, schema-qualified tables, `= ANY(array)` lists,
 * and an advisory transaction lock per account that serializes capped inserts under READ COMMITTED.
 * Timestamps and JSON are selected as epoch milliseconds and text, so results do not depend on
 * the type parsers a host may have installed on its `pg` pool.
 * @module
 */
import { InstanceImagesError } from '../../src/errors';
import type { ConstraintViolation, SqlDialect, SqlStatement } from '../sql-common/dialect';
import type { ColumnType } from '../sql-common/table';

const SQL_TYPES: Record<ColumnType, string> = {
  text: 'text',
  integer: 'integer',
  bigint: 'bigint',
  boolean: 'boolean',
  timestamp: 'timestamptz',
  json: 'jsonb',
};

/** A double-quoted SQL identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The advisory lock keys (two int4s from hashtext) of a named purpose in a schema. */
export function advisoryLock(purpose: string, schema: string, key: string): SqlStatement {
  return { sql: 'SELECT pg_advisory_xact_lock(hashtext($1), hashtext($2))', params: [`instance-images:${schema}:${purpose}`, key] };
}

function validDate(value: unknown): Date {
  if (value instanceof Date && !Number.isNaN(value.getTime())) return value;
  throw new InstanceImagesError('VALIDATION_FAILED', 'A timestamp field must be a valid Date', {
    fields: [{ path: 'timestamp', message: 'must be a valid Date' }],
  });
}

/** The {@link SqlDialect} of `pg` for tables in `schema`. */
export function postgresDialect(schema: string): SqlDialect {
  const qualified = quoteIdentifier(schema);
  return {
    name: 'postgres',
    table: (name) => `${qualified}.${name}`,
    placeholder: (index, type) => (type === undefined ? `$${index}` : `$${index}::${SQL_TYPES[type]}`),
    encode(type: ColumnType, value: unknown): unknown {
      if (value === null || value === undefined) return null;
      if (type === 'timestamp') return validDate(value);
      if (type === 'json') return JSON.stringify(value);
      return value;
    },
    selectColumn(column: string, type: ColumnType): string {
      if (type === 'timestamp') return `(extract(epoch FROM ${column}) * 1000)::bigint AS ${column}_ms`;
      if (type === 'json') return `${column}::text AS ${column}_json`;
      return column;
    },
    resultKey: (column, type) => (type === 'timestamp' ? `${column}_ms` : type === 'json' ? `${column}_json` : column),
    decode(type: ColumnType, raw: unknown): unknown {
      if (raw === null || raw === undefined) return null;
      switch (type) {
        case 'text':
          return String(raw);
        case 'integer':
        case 'bigint':
          return Number(raw);
        case 'boolean':
          return raw === true || raw === 't' || raw === 'true';
        case 'timestamp':
          return new Date(Number(raw));
        case 'json':
          return typeof raw === 'string' ? (JSON.parse(raw) as unknown) : raw;
      }
    },
    encodeList: (values) => [...values],
    inList: (expression, placeholder) => `${expression} = ANY(${placeholder}::text[])`,
    imageLimitLock: (accountId) => advisoryLock('image-limit', schema, accountId),
    claimLocking: ' FOR UPDATE SKIP LOCKED',
    constraintViolation(error: unknown): ConstraintViolation | null {
      const code = typeof error === 'object' && error !== null && 'code' in error ? (error as { code: unknown }).code : undefined;
      if (code === '23505') return 'unique';
      if (code === '23503') return 'foreign-key';
      return null;
    },
  };
}
