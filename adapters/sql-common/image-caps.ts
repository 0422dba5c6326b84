/**
 * The SQL fragments of the account caps, shared by `insertIfUnderLimit` and `imageTransfers.accept`
 * so that both count exactly what `imageCapBytes` counts.
 * @module
 */
import type { Image } from '../../src/model/image';
import type { SqlParams } from './dialect';
import type { SqlTable } from './sql-table';

/** The condition selecting an account's custom images that count against its caps. */
export function activeCustomImages(table: SqlTable<Image>, params: SqlParams, accountId: string): string {
  return `kind = 'custom' AND ${table.col('accountId')} = ${params.add(accountId, 'text')} AND status <> 'deleted'`;
}

/** The bytes one image row counts against the byte cap: `imageCapBytes` in SQL. */
export function capBytesSql(table: SqlTable<Image>): string {
  return `coalesce(${table.col('sizeBytes')}, ${table.col('virtualSizeBytes')}, ${table.col('reservedBytes')}, 0)`;
}

/** The total bytes of an account's images that count against its byte cap. */
export function usedBytesSql(table: SqlTable<Image>, params: SqlParams, accountId: string): string {
  return `(SELECT coalesce(sum(${capBytesSql(table)}), 0) FROM ${table.ref} WHERE ${activeCustomImages(table, params, accountId)})`;
}
