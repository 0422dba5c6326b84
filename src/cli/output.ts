/**
 * Output of the operator CLI: aligned text tables for people, CSV (RFC 4180) and JSON for scripts.
 * @module
 */

/** A column of a table: its header and how to read the cell from a row. */
export interface Column<T> {
  header: string;
  value(row: T): string | number | boolean | null | undefined;
}

const cell = (v: string | number | boolean | null | undefined): string => (v === null || v === undefined ? '' : String(v));

/** Control characters (a name could hold an escape sequence) are shown escaped, never sent to the terminal. */
const printable = (s: string): string =>
  // eslint-disable-next-line no-control-regex
  s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

/** An aligned text table with a header line. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const grid = [columns.map((c) => c.header), ...rows.map((row) => columns.map((c) => printable(cell(c.value(row)))))];
  const widths = columns.map((_, i) => Math.max(...grid.map((line) => (line[i] ?? '').length)));
  return (
    grid
      .map((line) =>
        line
          .map((text, i) => text.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** CSV with a header line; fields with a comma, quote or line break are quoted. */
export function csv<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const field = (text: string) => {
    // A leading = + - @ could run as a formula in a spreadsheet: prefix it with a quote.
    const safe = /^[=+\-@\t\r]/.test(text) && !/^-?\d+(\.\d+)?$/.test(text) ? `'${text}` : text;
    return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
  };
  const lines = [columns.map((c) => field(c.header)), ...rows.map((row) => columns.map((c) => field(cell(c.value(row)))))];
  return lines.map((line) => line.join(',')).join('\r\n') + '\r\n';
}

/** JSON, indented, with a final newline. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
