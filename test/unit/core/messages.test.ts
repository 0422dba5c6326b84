/**
 * The message catalog: one place for every customer-visible text the SDK writes. Every code the
 * services can put on an image's status reason or a task's error has a text for every operation;
 * the services build reasons only through the catalog; a host can find the key of a stored reason
 * and render it in its own language.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROBLEM_STATUS } from '../../../adapters/http/problem';
import { ERROR_CODES, ERROR_MESSAGES } from '../../../src/errors';
import {
  CLIENT_ERROR_MESSAGES,
  EXTRA_REASON_CODES,
  HTTP_ERROR_MESSAGES,
  failureReason,
  formatMessage,
  isMessageKey,
  MESSAGE_CATALOG,
  problemMessage,
  REASON_CODES,
  REASON_OPERATIONS,
  renderMessage,
  statusReasonKey,
  type MessageKey,
} from '../../../src/messages';

const SRC = join(import.meta.dirname, '../../../src');
const ADAPTERS = join(import.meta.dirname, '../../../adapters');

/** The .ts files under `dir`, recursively. */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}
/** The SDK's own code: not the test kit (its fixtures invent reasons) nor the generated client types. */
const serviceSources = sources(SRC).filter((file) => !file.includes('/testing/') && !file.endsWith('client/openapi.ts'));

describe('the message catalog', () => {
  it('has the default message of every error code under error.<CODE>', () => {
    for (const code of ERROR_CODES) expect(MESSAGE_CATALOG[`error.${code}`].customer).toBe(ERROR_MESSAGES[code]);
  });

  it('has a finished text for every code an image or a task can carry, after every operation, and finds its key again', () => {
    expect(REASON_CODES).toEqual([...ERROR_CODES, ...EXTRA_REASON_CODES]);
    for (const operation of REASON_OPERATIONS) {
      for (const code of REASON_CODES) {
        const reason = failureReason(operation, code);
        expect(reason.message, `${operation} ${code}`).toMatch(/^[A-Z].{10,}/);
        expect(reason.message, `${operation} ${code}`).not.toMatch(/[{}]/);
        const located = statusReasonKey(reason);
        expect(located, `${operation} ${code}`).not.toBeNull();
        expect(renderMessage(located!)).toBe(reason.message);
      }
    }
  });

  it('records a failed delete as DELETE_FAILED, whatever failed', () => {
    expect(failureReason('delete', 'STORAGE_UNAVAILABLE')).toEqual({
      code: 'DELETE_FAILED',
      message: `Removing the image file failed (${ERROR_MESSAGES.STORAGE_UNAVAILABLE}). Delete the image again to retry.`,
    });
    expect(failureReason('delete', 'INTERRUPTED').message).toBe(
      'Deleting was interrupted by a restart of the panel. Delete the image again.',
    );
  });

  it('every error code a service writes on a task or an image reason literally is in the catalog', () => {
    const written = new Set<string>();
    for (const file of serviceSources) {
      const text = readFileSync(file, 'utf8');
      for (const match of text.matchAll(/errorCode: '([A-Z_]+)'/g)) written.add(match[1]!);
      for (const match of text.matchAll(/failureReason\('\w+', '([A-Z_]+)'\)/g)) written.add(match[1]!);
    }
    expect(written.size).toBeGreaterThan(3);
    for (const code of written) expect(REASON_CODES, code).toContain(code);
  });

  it('every problem code the HTTP layer, the tus handler or the client answers with is in the catalog', () => {
    const answered = new Set<string>(Object.keys(PROBLEM_STATUS));
    const http = [...sources(join(ADAPTERS, 'http')), ...sources(join(ADAPTERS, 'tus')), ...sources(join(ADAPTERS, 'express'))];
    for (const file of http) {
      const text = readFileSync(file, 'utf8');
      // new HttpProblem('CODE', ...) and new InstanceImagesError('CODE', ...), also split over lines.
      for (const match of text.matchAll(/new (?:HttpProblem|InstanceImagesError)\(\s*'([A-Z_]+)'/g)) answered.add(match[1]!);
    }
    for (const file of sources(join(SRC, 'client')).filter((f) => !f.endsWith('openapi.ts'))) {
      const text = readFileSync(file, 'utf8');
      // The codes the client gives an answer without a problem body (`code: ... 'CODE'`).
      for (const line of text.split('\n').filter((l) => /\bcode: /.test(l)))
        for (const match of line.matchAll(/'([A-Z][A-Z_]+)'/g)) answered.add(match[1]!);
    }
    for (const code of [
      'UNAUTHENTICATED',
      'PAYLOAD_TOO_LARGE',
      'UNSUPPORTED_MEDIA_TYPE',
      'METHOD_NOT_ALLOWED',
      'RANGE_NOT_SATISFIABLE',
      'HTTP_ERROR',
    ])
      expect(answered, code).toContain(code);
    const missing = [...answered].filter((code) => !isMessageKey(`error.${code}`));
    expect(missing).toEqual([]);
    for (const code of answered) expect(problemMessage(code), code).toMatch(/^[A-Z].{5,}/);
    for (const [code, text] of Object.entries({ ...HTTP_ERROR_MESSAGES, ...CLIENT_ERROR_MESSAGES }))
      expect(problemMessage(code)).toBe(text);
    expect(problemMessage('IMAGE_PROTECTED', { 'error.IMAGE_PROTECTED': 'Geschützt' })).toBe('Geschützt');
    expect(problemMessage('NOT_A_CODE')).toBeUndefined();
    // HTTP-only codes are problem codes, never reasons an image or a task carries.
    for (const code of Object.keys(HTTP_ERROR_MESSAGES)) expect(REASON_CODES).not.toContain(code);
  });

  it('the services build image reasons only through the catalog (no literal { code, message } reason)', () => {
    const offenders: string[] = [];
    for (const file of serviceSources) {
      const text = readFileSync(file, 'utf8');
      // transitionImage(ctx, image, 'error', patch, actor, <reason>): the reason must not be a literal.
      for (const match of text.matchAll(/transitionImage\([^;]*?'error',\s*\{[^}]*\},\s*[\w.']+,\s*\{\s*code:/g))
        offenders.push(`${file}: ${match[0].slice(0, 80)}`);
      if (/const REASONS\b/.test(text)) offenders.push(`${file}: a REASONS table of its own`);
    }
    expect(offenders).toEqual([]);
  });

  it('lets a host translate a stored reason, including the error message inside it', () => {
    const reason = failureReason('capture', 'TIMEOUT');
    const located = statusReasonKey(reason)!;
    expect(located).toEqual({ key: 'reason.capture.failed', params: { error: ERROR_MESSAGES.TIMEOUT }, errorCode: 'TIMEOUT' });
    const german: Partial<Record<MessageKey, string>> = {
      'reason.capture.failed': '{error}. Wiederholen Sie die Erfassung.',
      'error.TIMEOUT': 'Zeitüberschreitung',
    };
    expect(renderMessage(located, german)).toBe('Zeitüberschreitung. Wiederholen Sie die Erfassung.');
    expect(renderMessage(statusReasonKey(failureReason('storage', 'MISSING_FILE'))!, {}, 'operator')).toMatch(/^Reconcile found no file/);
    expect(statusReasonKey({ code: 'CAPTURE_FAILED', message: 'words of an older version' })).toBeNull();
    expect(statusReasonKey({ code: 'NOT_A_CODE', message: 'x' })).toBeNull();
  });

  it('formats placeholders and knows its keys', () => {
    expect(formatMessage('{a} and {b}', { a: '1' })).toBe('1 and {b}');
    expect(isMessageKey('error.NOT_FOUND')).toBe(true);
    expect(isMessageKey('error.nope')).toBe(false);
  });
});
