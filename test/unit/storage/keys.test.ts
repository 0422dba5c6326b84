import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isInstanceImagesError } from '../../../src/errors';
import { normalizeStorageKey, normalizeStoragePrefix } from '../../../src/storage/keys';

function rejection(run: () => unknown): { code: string; field: string | undefined } | null {
  try {
    run();
    return null;
  } catch (error) {
    if (!isInstanceImagesError(error)) throw error;
    return { code: error.code, field: error.fields[0]?.path };
  }
}

describe('normalizeStorageKey', () => {
  it('accepts relative keys and returns them in NFC', () => {
    expect(normalizeStorageKey('images/acct-1/img-2.qcow2')).toBe('images/acct-1/img-2.qcow2');
    expect(normalizeStorageKey('cafe\u0301.raw')).toBe('caf\u00e9.raw');
    expect(normalizeStorageKey("odd name with 'quotes' $(x) ;*")).toBe("odd name with 'quotes' $(x) ;*");
    expect(normalizeStorageKey('.hidden/..dots..')).toBe('.hidden/..dots..');
  });

  it.each([
    ['', 'empty'],
    ['/etc/passwd', 'absolute'],
    ['../x', 'parent'],
    ['a/../../x', 'parent inside'],
    ['a/./b', 'dot segment'],
    ['.', 'dot'],
    ['a//b', 'empty segment'],
    ['a/', 'trailing slash'],
    ['a\\b', 'backslash'],
    ['a\nb', 'newline'],
    ['a\u0000b', 'NUL'],
    ['a\u007fb', 'DEL'],
    ['a\u0085b', 'C1 control'],
    ['x'.repeat(1025), 'too long'],
    [`${'é'.repeat(513)}`, 'too long in bytes'],
    [`${'s'.repeat(256)}/x`, 'segment too long'],
  ])('rejects %j (%s) with VALIDATION_FAILED naming the key', (key) => {
    expect(rejection(() => normalizeStorageKey(key))).toEqual({ code: 'VALIDATION_FAILED', field: 'key' });
  });

  it('rejects non-strings', () => {
    expect(rejection(() => normalizeStorageKey(42))?.code).toBe('VALIDATION_FAILED');
  });

  it('never returns a key that escapes its root (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('a', '..', '.', '', '/', 'b/', '\\', 'é', '\n'), { maxLength: 8 }).map((parts) => parts.join('')),
        (key) => {
          let normalized: string;
          try {
            normalized = normalizeStorageKey(key);
          } catch (error) {
            expect(isInstanceImagesError(error, 'VALIDATION_FAILED')).toBe(true);
            return;
          }
          expect(normalized.startsWith('/')).toBe(false);
          expect(normalized.split('/')).not.toContain('..');
          expect(normalized.split('/')).not.toContain('');
        },
      ),
    );
  });
});

describe('normalizeStoragePrefix', () => {
  it('allows an empty prefix and a trailing slash', () => {
    expect(normalizeStoragePrefix(undefined)).toBe('');
    expect(normalizeStoragePrefix('')).toBe('');
    expect(normalizeStoragePrefix('images/')).toBe('images/');
    expect(normalizeStoragePrefix('images/img-')).toBe('images/img-');
    expect(rejection(() => normalizeStoragePrefix('../'))).toEqual({ code: 'VALIDATION_FAILED', field: 'prefix' });
    expect(rejection(() => normalizeStoragePrefix('a//'))).toEqual({ code: 'VALIDATION_FAILED', field: 'prefix' });
  });
});
