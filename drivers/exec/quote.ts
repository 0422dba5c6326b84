/**
 * The one audited quoting function. Every string that reaches a remote shell (SSH exec runs the
 * command line through the login shell) goes through {@link shellQuote} / {@link shellCommand}.
 *
 * POSIX single quotes make every byte literal except the single quote itself, which is written as
 * `'\''` (close, escaped quote, reopen). Nothing else is special inside single quotes: not `$`,
 * backticks, `\`, `;`, newlines, globs or unicode. NUL bytes cannot be passed in an argv at all and
 * are rejected. Leading dashes are a property of the called program, not the shell: callers pass
 * `--` or absolute paths where a value could start with `-`.
 * @module
 */
import { InstanceImagesError } from '../../src/errors';

/** Quotes one argument for a POSIX shell. @throws VALIDATION_FAILED for a NUL byte. */
export function shellQuote(argument: string): string {
  if (argument.includes('\u0000')) {
    throw new InstanceImagesError('VALIDATION_FAILED', 'A command argument contains a NUL byte', {
      fields: [{ path: 'argument', message: 'contains a NUL byte' }],
    });
  }
  if (argument !== '' && /^[A-Za-z0-9_@%+=:,./-]+$/.test(argument)) return argument;
  return `'${argument.replace(/'/g, `'\\''`)}'`;
}

/** Joins an argv into one shell command line, every element quoted by {@link shellQuote}. */
export function shellCommand(argv: readonly string[]): string {
  if (argv.length === 0) throw new InstanceImagesError('VALIDATION_FAILED', 'A command needs a program name');
  return argv.map(shellQuote).join(' ');
}
