import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { shellCommand, shellQuote } from '../../../drivers/exec/quote';
import { isInstanceImagesError } from '../../../src/errors';

/** What a POSIX shell makes of a command line: the argv printf receives, NUL-separated. */
function shellWords(line: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
  return out.split('\u0000').slice(0, -1);
}

describe('shellQuote', () => {
  it('leaves plain words alone and single-quotes everything else', () => {
    expect(shellQuote('qemu-img')).toBe('qemu-img');
    expect(shellQuote('/var/lib/images/a_b-c.qcow2')).toBe('/var/lib/images/a_b-c.qcow2');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote('$(x)')).toBe("'$(x)'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
    expect(shellQuote('*')).toBe("'*'");
    expect(shellQuote('a\nb')).toBe("'a\nb'");
  });

  it('rejects NUL bytes with VALIDATION_FAILED', () => {
    let caught: unknown;
    try {
      shellQuote('a\u0000b');
    } catch (error) {
      caught = error;
    }
    expect(isInstanceImagesError(caught, 'VALIDATION_FAILED')).toBe(true);
  });

  it('round-trips hostile strings through a real POSIX shell', () => {
    const hostile = [
      `'; touch /tmp/x #`,
      '$(id)',
      '`id`',
      '"',
      "'",
      "''",
      '\\',
      'a\nb',
      '*',
      '?',
      '[a]',
      '~',
      '--help',
      '-n',
      '$HOME',
      '${IFS}',
      'ü日本🙂',
      ' ',
      '',
      '!',
      '#',
      '&',
      '|',
      ';',
      '<',
      '>',
      '(',
      ')',
      '{a,b}',
    ];
    expect(shellWords(hostile.map(shellQuote).join(' '))).toEqual(hostile);
  });

  it('round-trips arbitrary strings (property)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ unit: 'binary' }).map((s) => s.replaceAll('\u0000', '')),
          { minLength: 1, maxLength: 4 },
        ),
        (args) => {
          // sh cannot carry invalid UTF-16 (lone surrogates) through argv: compare what node sends.
          const sendable = args.map((a) => Buffer.from(a, 'utf8').toString('utf8'));
          expect(shellWords(sendable.map(shellQuote).join(' '))).toEqual(sendable);
        },
      ),
      { numRuns: 60 },
    );
  });
});

describe('shellCommand', () => {
  it('quotes every element and rejects an empty argv', () => {
    expect(shellCommand(['printf', '%s', "a'b"])).toBe(`printf %s 'a'\\''b'`);
    expect(() => shellCommand([])).toThrow(/program/);
  });
});
