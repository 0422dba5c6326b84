/**
 * The single error type of the SDK. Every error the SDK throws is an
 * {@link InstanceImagesError} with a stable {@link ErrorCode}; the underlying error is kept as `cause`.
 * Messages are written for a person to act on and never contain secrets.
 * @module
 */

/** Every stable error code, with the default message shown when no specific one is given. */
export const ERROR_MESSAGES = {
  FEATURE_DISABLED: 'Image feature is not enabled',
  IMAGE_LIMIT_REACHED: 'Maximum image limit reached',
  NOT_FOUND: 'Not found',
  FORBIDDEN: 'You are not allowed to do this',
  VALIDATION_FAILED: 'The input is not valid',
  INVALID_STATE: 'This action is not possible in the current state',
  NO_IMAGE_STORAGE: 'No image storage is bound to the hypervisor of this instance',
  STORAGE_FULL: 'Not enough free space on the image storage',
  STORAGE_UNAVAILABLE: 'The image storage is not reachable',
  HYPERVISOR_UNREACHABLE: 'The hypervisor is not reachable',
  HOST_KEY_MISMATCH: 'The hypervisor presented an unexpected SSH host key',
  CAPTURE_FAILED: 'Capturing the disk failed',
  CHECKSUM_MISMATCH: 'The stored file does not match its checksum',
  DEPLOY_FAILED: 'Deploying the image failed',
  IN_USE: 'This item is still in use',
  CONFLICT: 'This item already exists or was changed concurrently',
  CANCELLED: 'The operation was cancelled',
  TIMEOUT: 'The operation timed out',
  COMMAND_FAILED: 'A command on the hypervisor failed',
  INTERRUPTED: 'The task was interrupted by a restart',
  HOST_DATA_INVALID: 'The host panel returned invalid data; the operator must fix it',
  ACCOUNT_MISMATCH: 'The image belongs to another account than the instance',
  ACCOUNT_SUSPENDED: 'The account is suspended',
  ACCOUNT_CLOSED: 'The account is closed',
  DESTINATION_REFUSED: 'The URL points to a destination imports may not reach',
  DOWNLOAD_FAILED: 'The image could not be downloaded from its URL',
  UNSUPPORTED_IMAGE: 'The image format or content is not supported',
  IMAGE_PROTECTED: 'The image is protected; unprotect it before deleting it',
  IMAGE_INCOMPATIBLE: 'The image cannot boot on this plan',
} as const;

/** A stable, machine-readable error code. */
export type ErrorCode = keyof typeof ERROR_MESSAGES;

/** All error codes, in a stable order. */
export const ERROR_CODES: readonly ErrorCode[] = Object.keys(ERROR_MESSAGES) as ErrorCode[];

/** One offending field of a VALIDATION_FAILED error. */
export interface FieldIssue {
  /** Dotted path of the field, e.g. `config.endpoint` or `name`. */
  path: string;
  /** What is wrong with it. */
  message: string;
}

/** Options for constructing an {@link InstanceImagesError}. */
export interface InstanceImagesErrorOptions {
  /** The underlying error. */
  cause?: unknown;
  /** For VALIDATION_FAILED: the offending fields. */
  fields?: FieldIssue[];
  /** Extra machine-readable facts (never secrets), e.g. `{ limit: 5 }`. */
  details?: Record<string, unknown>;
}

/** The error every SDK function throws. Check `code`, not the message. */
export class InstanceImagesError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;
  /** For VALIDATION_FAILED: the offending fields. */
  readonly fields: FieldIssue[];
  /** Extra machine-readable facts. */
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message?: string, options: InstanceImagesErrorOptions = {}) {
    super(message ?? ERROR_MESSAGES[code], options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'InstanceImagesError';
    this.code = code;
    this.fields = options.fields ?? [];
    this.details = options.details ?? {};
  }

  /** A JSON-safe view (no cause, no stack) for logs and HTTP bodies. */
  toJSON(): { code: ErrorCode; message: string; fields: FieldIssue[]; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, fields: this.fields, details: this.details };
  }
}

/** True when `error` is an {@link InstanceImagesError}, optionally with the given code. */
export function isInstanceImagesError(error: unknown, code?: ErrorCode): error is InstanceImagesError {
  return error instanceof InstanceImagesError && (code === undefined || error.code === code);
}

/** A NOT_FOUND error for a kind of thing and its id. */
export function notFound(kind: string, id: string): InstanceImagesError {
  return new InstanceImagesError('NOT_FOUND', `${kind} ${JSON.stringify(id)} was not found`, { details: { kind, id } });
}

/** A VALIDATION_FAILED error naming the fields. */
export function validationFailed(fields: FieldIssue[], what = 'The input'): InstanceImagesError {
  const list = fields.map((f) => (f.path ? `${f.path}: ${f.message}` : f.message)).join('; ');
  return new InstanceImagesError('VALIDATION_FAILED', `${what} is not valid: ${list}`, { fields });
}

/** Wraps any thrown value as an {@link InstanceImagesError}, keeping it as the cause. */
export function toInstanceImagesError(error: unknown, fallback: ErrorCode, message?: string): InstanceImagesError {
  if (error instanceof InstanceImagesError) return error;
  return new InstanceImagesError(fallback, message, { cause: error });
}
