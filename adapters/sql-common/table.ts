/**
 * Table specs: which column holds each field of a record and how it is typed, so both SQL
 * dialects can encode parameters and decode rows the same way.
 * @module
 */

/** How a field is stored. Each dialect maps these to its own column types and codecs. */
export type ColumnType = 'text' | 'integer' | 'bigint' | 'boolean' | 'timestamp' | 'json';

/** A table holding records of type `T`: one column per field. */
export interface TableSpec<T> {
  /** The unqualified table name (always `ii_`-prefixed). */
  readonly name: string;
  /** The type of every field's column. */
  readonly columns: { readonly [K in keyof T]-?: ColumnType };
  /** Column names that differ from the snake_case of the field name. */
  readonly renamed?: { readonly [K in keyof T]?: string };
  /**
   * Fields that are optional in the model (added after its first release): a NULL column reads back
   * as an absent field, as the record was written, not as `null`.
   */
  readonly optional?: readonly (keyof T & string)[];
}

/** The snake_case column name of a camelCase field. */
export function snakeCase(field: string): string {
  return field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
}

/** The column that stores `field` in `spec`. */
export function columnOf<T>(spec: TableSpec<T>, field: keyof T & string): string {
  return spec.renamed?.[field] ?? snakeCase(field);
}

/** The fields of `spec`, in declaration order. */
export function fieldsOf<T>(spec: TableSpec<T>): (keyof T & string)[] {
  return Object.keys(spec.columns) as (keyof T & string)[];
}
