/**
 * The message catalog: every customer-visible text the SDK writes (the default message of each
 * error code, and the status reasons it puts on images), under a stable key, in English.
 *
 * - `error.<CODE>`: the default message of an {@link ErrorCode} (what a customer sees of an error
 *   whose own message may name infrastructure), of the other {@link ReasonCode}s, and of the codes
 *   only the HTTP layer answers with ({@link HTTP_ERROR_MESSAGES}: no session, a body too large or
 *   of the wrong type, a wrong method, a range outside the file, an unexpected error) or the
 *   client makes of an answer without a problem body (`HTTP_ERROR`).
 * - `reason.<operation>.<CODE>`: why an image ended in `error` after a capture, import, copy,
 *   delete, or a storage check; `reason.<operation>.failed` is the operation's fallback for codes
 *   without a text of their own (`{error}` is the code's default message).
 *
 * An entry has a `customer` text and, where operators need more, an `operator` text. Records keep
 * the English text (`statusReason.message`) and the stable `statusReason.code`; a host that
 * translates finds the key of a stored reason with {@link statusReasonKey} and renders its own
 * text for it (see docs/embedding.md, "Messages and translation").
 * @module
 */
import { ERROR_MESSAGES, type ErrorCode } from './errors';
import type { StatusReason } from './model/common';

/** One entry of the catalog. */
export interface CatalogMessage {
  /** What a customer reads. May hold `{name}` placeholders (see {@link formatMessage}). */
  readonly customer: string;
  /** What an operator reads, when it differs from the customer's text. */
  readonly operator?: string;
}

/** The operations that leave a reason on an image. */
export const REASON_OPERATIONS = ['capture', 'import', 'copy', 'delete', 'storage'] as const;
/** An operation that leaves a reason on an image. */
export type ReasonOperation = (typeof REASON_OPERATIONS)[number];

/** Reason codes that are not error codes: what a storage check or a failed delete finds. */
export const EXTRA_REASON_CODES = ['DELETE_FAILED', 'MISSING_FILE', 'IMAGE_DATA_MISSING', 'IMAGE_DATA_CORRUPT'] as const;
/** Every code the SDK can put on an image's `statusReason` or a task's `errorCode`. */
export type ReasonCode = ErrorCode | (typeof EXTRA_REASON_CODES)[number];

/** Default messages of the reason codes that are not error codes. */
const EXTRA_CODE_MESSAGES: Record<(typeof EXTRA_REASON_CODES)[number], string> = {
  DELETE_FAILED: 'Deleting the image failed',
  MISSING_FILE: 'The image file is missing from the storage',
  IMAGE_DATA_MISSING: 'Part of the image data is missing from the storage',
  IMAGE_DATA_CORRUPT: 'Part of the image data is damaged on the storage',
};

/**
 * Default messages of the codes the HTTP layer answers with on its own (adapters/http and the tus
 * handler), never written by a service: they are problem codes, not reasons an image can carry.
 */
export const HTTP_ERROR_MESSAGES = {
  UNAUTHENTICATED: 'Sign in to use this API',
  PAYLOAD_TOO_LARGE: 'The request body is too large',
  UNSUPPORTED_MEDIA_TYPE: 'The request body has an unsupported content type',
  MALFORMED_JSON: 'The request body is not valid JSON',
  METHOD_NOT_ALLOWED: 'This path does not take that method',
  RANGE_NOT_SATISFIABLE: 'The requested range lies outside the file',
  INTERNAL: 'An unexpected error occurred; try again later or contact support',
} as const;

/** A code only the HTTP layer answers with. */
export type HttpOnlyCode = keyof typeof HTTP_ERROR_MESSAGES;

/** What the typed client calls an error answer that has no problem body (e.g. a proxy's 502 page). */
export const CLIENT_ERROR_MESSAGES = {
  HTTP_ERROR: 'The panel could not be reached or answered in an unexpected way; try again later',
} as const;

/** Every code a caller of the HTTP API can meet: the services', the HTTP layer's and the client's. */
export type ProblemMessageCode = ReasonCode | HttpOnlyCode | keyof typeof CLIENT_ERROR_MESSAGES;

const errorEntries = Object.fromEntries(
  Object.entries({ ...ERROR_MESSAGES, ...EXTRA_CODE_MESSAGES, ...HTTP_ERROR_MESSAGES, ...CLIENT_ERROR_MESSAGES }).map(([code, text]) => [
    `error.${code}`,
    { customer: text },
  ]),
) as { readonly [C in ProblemMessageCode as `error.${C}`]: CatalogMessage };

const reasonEntries = {
  'reason.capture.failed': { customer: '{error}. Retry the capture; contact support if it fails again.' },
  'reason.capture.STORAGE_FULL': {
    customer: 'There was not enough free space on the image storage. Delete unused images, or ask your provider to add space, then retry.',
    operator: 'The image storage bound to the hypervisor is full; add space or bind another storage.',
  },
  'reason.capture.STORAGE_UNAVAILABLE': {
    customer: 'The image storage could not be reached. Retry later; contact support if it keeps failing.',
    operator: 'The image storage did not answer; check its health on the Image Storages page.',
  },
  'reason.capture.HYPERVISOR_UNREACHABLE': { customer: 'The server hosting your instance could not be reached. Retry later.' },
  'reason.capture.NOT_FOUND': { customer: 'The instance no longer exists, so its disk cannot be captured.' },
  'reason.capture.CHECKSUM_MISMATCH': { customer: 'The stored image did not match the captured disk. Retry the capture.' },
  'reason.capture.CANCELLED': { customer: 'The capture was cancelled.' },
  'reason.capture.INTERRUPTED': { customer: 'The capture was interrupted by a restart of the panel. Retry the capture.' },
  'reason.import.failed': { customer: '{error}. Try the import again; contact support if it fails again.' },
  'reason.import.DESTINATION_REFUSED': { customer: 'The URL leads to an address imports may not reach.' },
  'reason.import.DOWNLOAD_FAILED': { customer: 'The image could not be downloaded from its URL. Check the URL and try again.' },
  'reason.import.UNSUPPORTED_IMAGE': { customer: 'The file is not a disk image this panel can import (or names other files).' },
  'reason.import.CHECKSUM_MISMATCH': { customer: 'The downloaded image does not match the expected sha256.' },
  'reason.import.STORAGE_FULL': { customer: 'There was not enough free space on the image storage.' },
  'reason.import.CANCELLED': { customer: 'The import was cancelled.' },
  'reason.import.INTERRUPTED': { customer: 'The import was interrupted by a restart of the panel. Import it again.' },
  'reason.import.NOT_FOUND': {
    customer: 'The uploaded file is no longer on the panel. Upload the image again; contact support if it fails again.',
    operator: 'The process that ran the import did not find the staged upload: share uploads.directory with every process that runs jobs.',
  },
  'reason.import.FEATURE_DISABLED': {
    customer: 'The panel could not read the uploaded file. Upload the image again; contact support if it fails again.',
    operator: 'The process that ran the import has no uploads.directory: set it, on a shared filesystem, on every process that runs jobs.',
  },
  'reason.copy.failed': { customer: '{error}. Copying the image failed; delete this copy and copy the image again.' },
  'reason.copy.INTERRUPTED': {
    customer: 'The copy was interrupted by a restart of the panel. Delete this copy and copy the image again.',
  },
  'reason.delete.failed': { customer: 'Removing the image file failed ({error}). Delete the image again to retry.' },
  'reason.delete.INTERRUPTED': { customer: 'Deleting was interrupted by a restart of the panel. Delete the image again.' },
  'reason.storage.failed': { customer: '{error}. Delete the image and capture a new one.' },
  'reason.storage.MISSING_FILE': {
    customer: 'The image file is missing from the storage; delete the image',
    operator: 'Reconcile found no file for this image on its storage; the image was marked Error and its billing stopped.',
  },
  'reason.storage.IMAGE_DATA_MISSING': {
    customer: 'Part of this image is missing from the image storage, so it can no longer be deployed. Delete it and capture a new one.',
  },
  'reason.storage.IMAGE_DATA_CORRUPT': {
    customer: 'Part of this image was damaged on the image storage, so it can no longer be deployed. Delete it and capture a new one.',
  },
} as const satisfies Record<`reason.${ReasonOperation}.${string}`, CatalogMessage>;

/** The catalog (English): stable key → texts. */
export const MESSAGE_CATALOG: { readonly [K in MessageKey]: CatalogMessage } = { ...errorEntries, ...reasonEntries };

/** A stable key of the catalog. */
export type MessageKey = keyof typeof errorEntries | keyof typeof reasonEntries;

/**
 * The catalog's text of a problem code (`error.<code>`), e.g. for an error answer a page shows;
 * `undefined` for a code the catalog does not know (a newer server's).
 */
export function problemMessage(code: string, translations: Partial<Record<MessageKey, string>> = {}): string | undefined {
  const key = `error.${code}`;
  return isMessageKey(key) ? (translations[key] ?? MESSAGE_CATALOG[key].customer) : undefined;
}

/** Whether `key` is a key of the catalog. */
export function isMessageKey(key: string): key is MessageKey {
  return Object.prototype.hasOwnProperty.call(MESSAGE_CATALOG, key);
}

/** Replaces `{name}` placeholders of `text` with `params[name]` (unknown ones stay as they are). */
export function formatMessage(text: string, params: Readonly<Record<string, string>> = {}): string {
  return text.replace(/\{(\w+)\}/g, (whole, name: string) => params[name] ?? whole);
}

/** The key of the text of a failure with `code` in `operation`: its own entry, or the operation's fallback. */
function reasonKey(operation: ReasonOperation, code: ReasonCode): MessageKey {
  const own = `reason.${operation}.${code}`;
  return isMessageKey(own) ? own : `reason.${operation}.failed`;
}

/** The code an image's reason carries: a failed delete is `DELETE_FAILED` whatever failed. */
function recordedCode(operation: ReasonOperation, code: ReasonCode): ReasonCode {
  return operation === 'delete' ? 'DELETE_FAILED' : code;
}

/** The default (English) message of a code. */
function codeText(code: ReasonCode): string {
  return MESSAGE_CATALOG[`error.${code}`].customer;
}

/**
 * The status reason (customer text, in English) the SDK records when `operation` ends an image in
 * `error` because of `code`. Built from the code only: an error's own message may come from a
 * driver and name hypervisors, users and paths (operators see that one on the failed task). A
 * failed delete is recorded as `DELETE_FAILED` (a second delete retries it).
 */
export function failureReason(operation: ReasonOperation, code: ReasonCode): { code: ReasonCode; message: string } {
  return { code: recordedCode(operation, code), message: locate(operation, code).text };
}

function locate(operation: ReasonOperation, code: ReasonCode): LocatedMessage & { text: string } {
  const key = reasonKey(operation, code);
  const text = (params: Record<string, string>) => formatMessage(MESSAGE_CATALOG[key].customer, params);
  if (!key.endsWith('.failed')) return { key, params: {}, text: text({}) };
  const params = { error: codeText(code) };
  return { key, params, errorCode: code, text: text(params) };
}

/** A located message: its key and the values of its placeholders. */
export interface LocatedMessage {
  key: MessageKey;
  /** Placeholder values (English): `error` is the default message of {@link LocatedMessage.errorCode}. */
  params: Record<string, string>;
  /** The code whose message (`error.<code>`) fills `{error}`, when the text has that placeholder. */
  errorCode?: ReasonCode;
}

/**
 * The catalog key (and placeholder values) of a stored status reason, for hosts that translate:
 * render it with {@link renderMessage}. `null` for a reason the SDK did not write from the catalog
 * (e.g. one written by an older version with other words).
 */
export function statusReasonKey(reason: StatusReason): LocatedMessage | null {
  for (const operation of REASON_OPERATIONS) {
    for (const code of REASON_CODES) {
      if (recordedCode(operation, code) !== reason.code) continue;
      const { text, ...located } = locate(operation, code);
      if (text === reason.message) return located;
    }
  }
  return null;
}

/**
 * The text of a message in a host's language: `translations[key]` when the host has it, else
 * the catalog's English (and `{error}` from `translations['error.<code>']` when the host has it);
 * `audience: 'operator'` prefers the operator text.
 */
export function renderMessage(
  located: LocatedMessage,
  translations: Partial<Record<MessageKey, string>> = {},
  audience: 'customer' | 'operator' = 'customer',
): string {
  const entry = MESSAGE_CATALOG[located.key];
  const english = audience === 'operator' ? (entry.operator ?? entry.customer) : entry.customer;
  const inner = located.errorCode === undefined ? undefined : translations[`error.${located.errorCode}`];
  return formatMessage(translations[located.key] ?? english, inner === undefined ? located.params : { ...located.params, error: inner });
}

/** Every code the SDK can put on an image's reason or a task's error, in a stable order. */
export const REASON_CODES: readonly ReasonCode[] = [...(Object.keys(ERROR_MESSAGES) as ErrorCode[]), ...EXTRA_REASON_CODES];
