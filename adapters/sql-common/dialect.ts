/**
 * What differs between SQL databases, as far as the repositories care: placeholders, value
 * codecs, list membership, table qualification, the extra statement that serializes capped
 * inserts, and how constraint violations are reported.
 * @module
 */
import type { ColumnType } from './table';

/** A row as the database driver returns it. */
export type SqlRow = Record<string, unknown>;

/** One SQL statement and its parameters, in placeholder order. */
export interface SqlStatement {
  /** The SQL text. */
  sql: string;
  /** The parameter values, already encoded for the database. */
  params: unknown[];
}

/**
 * A statement made from the rows of the statements before it in the same transaction (called
 * synchronously between them), or `null` to run nothing (its result is then empty).
 */
export type SqlStep = (previous: readonly SqlRow[][]) => SqlStatement | null;

/** A constraint violation the repositories turn into a stable error code. */
export type ConstraintViolation = 'unique' | 'foreign-key';

/** The database-specific parts of the SQL repositories. */
export interface SqlDialect {
  /** `sqlite` or `postgres`, for messages. */
  readonly name: string;
  /** The (qualified, quoted when needed) name of one of our tables. */
  table(name: string): string;
  /** The placeholder of the `index`-th parameter (1-based); typed when `type` is given. */
  placeholder(index: number, type?: ColumnType): string;
  /** Encodes a field value for a parameter or column of `type`; `null`/`undefined` become `null`. */
  encode(type: ColumnType, value: unknown): unknown;
  /**
   * The expression that selects `column` of `type` for {@link SqlDialect.decode} (the column itself,
   * or a conversion that keeps results independent of the driver's type parsers), aliased to
   * {@link SqlDialect.resultKey} when that differs from the column.
   */
  selectColumn(column: string, type: ColumnType): string;
  /** The key of a row under which {@link SqlDialect.selectColumn}'s value arrives. */
  resultKey(column: string, type: ColumnType): string;
  /** Decodes a column value of `type` read from a row; `null` stays `null`. */
  decode(type: ColumnType, raw: unknown): unknown;
  /** Encodes a list of strings as one parameter for {@link SqlDialect.inList}. */
  encodeList(values: readonly string[]): unknown;
  /** A condition true when `expression` is one of the list bound at `placeholder`. */
  inList(expression: string, placeholder: string): string;
  /**
   * A statement to run first, in the same transaction, before inserting a capped image for an
   * account (PostgreSQL: an advisory transaction lock), or `null` when the transaction itself
   * already serializes writers (SQLite's BEGIN IMMEDIATE).
   */
  imageLimitLock(accountId: string): SqlStatement | null;
  /**
   * Appended to the SELECT that picks outbox events to claim, so concurrent claimers pass over
   * rows another one is claiming (PostgreSQL: `FOR UPDATE SKIP LOCKED`); empty where the
   * transaction already serializes writers (SQLite).
   */
  readonly claimLocking: string;
  /** Recognizes a constraint violation thrown by the driver. */
  constraintViolation(error: unknown): ConstraintViolation | null;
}

/** Runs statements. Every call is atomic on its own. */
export interface SqlExecutor {
  /** Runs one statement; returns its rows (empty for statements without results). */
  query(statement: SqlStatement): Promise<SqlRow[]>;
  /**
   * Runs statements in order in one write transaction; returns each statement's rows. A
   * {@link SqlStep} is turned into its statement when its turn comes.
   */
  transaction(statements: readonly (SqlStatement | SqlStep)[]): Promise<SqlRow[][]>;
}

/** Accumulates parameters while a statement's SQL is being written, left to right. */
export class SqlParams {
  /** The encoded values, in placeholder order. */
  readonly values: unknown[] = [];

  constructor(private readonly dialect: SqlDialect) {}

  /** Adds a value (encoded as `type` when given) and returns its placeholder. */
  add(value: unknown, type?: ColumnType): string {
    this.values.push(type === undefined ? value : this.dialect.encode(type, value));
    return this.dialect.placeholder(this.values.length, type);
  }

  /** Adds a list of strings and returns a condition that `expression` is one of them. */
  inList(expression: string, values: readonly string[]): string {
    this.values.push(this.dialect.encodeList(values));
    return this.dialect.inList(expression, this.dialect.placeholder(this.values.length));
  }

  /** The statement made of `sql` and the values added so far. */
  statement(sql: string): SqlStatement {
    return { sql, params: this.values };
  }
}
