/**
 * Errors as `application/problem+json` (RFC 9457): the SDK's stable codes mapped to HTTP statuses,
 * plus the codes the HTTP layer itself produces (401, 413, 415, malformed JSON, 500).
 * @module
 */
import { ERROR_MESSAGES, InstanceImagesError, type ErrorCode, type FieldIssue } from '../../src/errors';
import { HTTP_ERROR_MESSAGES } from '../../src/messages';
import { publicError, type ErrorAudience } from '../../src/util/public-error';

/** Codes produced by the HTTP adapter itself (never by the core); their texts live in the message catalog. */
export { HTTP_ERROR_MESSAGES };

/** A code produced by the HTTP adapter itself. */
export type HttpErrorCode = keyof typeof HTTP_ERROR_MESSAGES;

/** Any code a problem response can carry. */
export type ProblemCode = ErrorCode | HttpErrorCode;

/** How one code is answered over HTTP. */
export interface ProblemMapping {
  /** The HTTP status. */
  status: number;
  /** The short, fixed title of the problem type. */
  title: string;
  /**
   * Whether a customer (or an unauthenticated caller) may see the error's own message and details.
   * When false, customers get the code's fixed default message: the error may come from a command
   * on a hypervisor and name paths or hosts. Admin actors always see the full message (it never
   * carries secrets). For the core's codes this mirrors `CUSTOMER_VISIBLE_CODES`, and the core's
   * `publicError` decides (it also hides the messages of every error a driver raised).
   */
  exposeToCustomers: boolean;
}

/**
 * Every problem code and its HTTP status.
 *
 * Choices worth knowing:
 * - `FEATURE_DISABLED` is **403**: the operator's configuration of the location refuses the action;
 *   retrying the same request cannot succeed until the operator changes it.
 * - `NO_IMAGE_STORAGE` and `STORAGE_FULL` are **507 Insufficient Storage**: the provider cannot
 *   store the image right now (no storage bound, or not enough space). Nothing about the request
 *   itself is wrong, so neither is a 4xx; the message says what to do.
 * - `HOST_DATA_INVALID` is **500**: the host panel's own directory returned an invalid instance or
 *   hypervisor (e.g. an empty domain name); the caller cannot fix it, the operator must.
 * - `ACCOUNT_SUSPENDED` and `ACCOUNT_CLOSED` are **403**: the host suspended or closed the account
 *   (`accounts.suspend` / `accounts.close`); nothing the caller sends changes that.
 * - `ACCOUNT_MISMATCH` is **409** (admins only): the custom image belongs to another account than
 *   the instance it was to be deployed onto; customers get `NOT_FOUND` for another's image.
 * - `IMAGE_PROTECTED` is **409** (the image's state refuses the delete until it is unprotected);
 *   `IMAGE_INCOMPATIBLE` is **422** (the image cannot boot on the requested disk size or firmware).
 * - `CANCELLED` is 409 (the work was cancelled by another request), `TIMEOUT` 504,
 *   `HOST_KEY_MISMATCH` and `COMMAND_FAILED` 502 (an upstream host misbehaved),
 *   `STORAGE_UNAVAILABLE`, `HYPERVISOR_UNREACHABLE` and `INTERRUPTED` 503.
 */
export const PROBLEM_STATUS: Readonly<Record<ProblemCode, ProblemMapping>> = {
  VALIDATION_FAILED: { status: 400, title: 'Validation failed', exposeToCustomers: true },
  MALFORMED_JSON: { status: 400, title: 'Malformed JSON', exposeToCustomers: true },
  UNAUTHENTICATED: { status: 401, title: 'Unauthenticated', exposeToCustomers: true },
  FORBIDDEN: { status: 403, title: 'Forbidden', exposeToCustomers: true },
  FEATURE_DISABLED: { status: 403, title: 'Feature disabled', exposeToCustomers: true },
  ACCOUNT_SUSPENDED: { status: 403, title: 'Account suspended', exposeToCustomers: true },
  ACCOUNT_CLOSED: { status: 403, title: 'Account closed', exposeToCustomers: true },
  NOT_FOUND: { status: 404, title: 'Not found', exposeToCustomers: true },
  METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed', exposeToCustomers: true },
  INVALID_STATE: { status: 409, title: 'Invalid state', exposeToCustomers: true },
  IN_USE: { status: 409, title: 'In use', exposeToCustomers: true },
  CONFLICT: { status: 409, title: 'Conflict', exposeToCustomers: true },
  IMAGE_LIMIT_REACHED: { status: 409, title: 'Image limit reached', exposeToCustomers: true },
  CANCELLED: { status: 409, title: 'Cancelled', exposeToCustomers: true },
  ACCOUNT_MISMATCH: { status: 409, title: 'Account mismatch', exposeToCustomers: false },
  IMAGE_PROTECTED: { status: 409, title: 'Image protected', exposeToCustomers: true },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Payload too large', exposeToCustomers: true },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type', exposeToCustomers: true },
  RANGE_NOT_SATISFIABLE: { status: 416, title: 'Range not satisfiable', exposeToCustomers: true },
  CHECKSUM_MISMATCH: { status: 422, title: 'Checksum mismatch', exposeToCustomers: true },
  DESTINATION_REFUSED: { status: 422, title: 'Destination refused', exposeToCustomers: true },
  UNSUPPORTED_IMAGE: { status: 422, title: 'Unsupported image', exposeToCustomers: true },
  IMAGE_INCOMPATIBLE: { status: 422, title: 'Image incompatible', exposeToCustomers: true },
  DOWNLOAD_FAILED: { status: 502, title: 'Download failed', exposeToCustomers: true },
  INTERNAL: { status: 500, title: 'Internal error', exposeToCustomers: false },
  HOST_DATA_INVALID: { status: 500, title: 'Host data invalid', exposeToCustomers: false },
  CAPTURE_FAILED: { status: 500, title: 'Capture failed', exposeToCustomers: false },
  DEPLOY_FAILED: { status: 500, title: 'Deploy failed', exposeToCustomers: false },
  HOST_KEY_MISMATCH: { status: 502, title: 'Host key mismatch', exposeToCustomers: false },
  COMMAND_FAILED: { status: 502, title: 'Command failed', exposeToCustomers: false },
  STORAGE_UNAVAILABLE: { status: 503, title: 'Storage unavailable', exposeToCustomers: false },
  HYPERVISOR_UNREACHABLE: { status: 503, title: 'Hypervisor unreachable', exposeToCustomers: false },
  INTERRUPTED: { status: 503, title: 'Interrupted', exposeToCustomers: false },
  TIMEOUT: { status: 504, title: 'Timeout', exposeToCustomers: false },
  NO_IMAGE_STORAGE: { status: 507, title: 'No image storage', exposeToCustomers: true },
  STORAGE_FULL: { status: 507, title: 'Storage full', exposeToCustomers: true },
};

/** The media type of problem responses. */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** The body of a problem response. */
export interface ProblemBody {
  /** A URI naming the problem type: `urn:instance-images:problem:<code>`. */
  type: string;
  /** The fixed title of the problem type. */
  title: string;
  /** The HTTP status. */
  status: number;
  /** What happened, for a person. */
  detail: string;
  /** The stable code to branch on. */
  code: ProblemCode;
  /** For VALIDATION_FAILED: the offending fields. */
  fields?: FieldIssue[];
  /** Extra machine-readable facts (never secrets). */
  details?: Record<string, unknown>;
}

/** An error raised by the HTTP layer, answered as a problem with its own code. */
export class HttpProblem extends Error {
  /** The problem code. */
  readonly code: ProblemCode;
  /** Offending fields, when any. */
  readonly fields: FieldIssue[];
  /** Extra facts. */
  readonly details: Record<string, unknown>;
  /** Response headers the problem answer carries besides its own (e.g. `Content-Range` of a 416). */
  readonly headers: Record<string, string>;

  constructor(
    code: ProblemCode,
    message?: string,
    options: { fields?: FieldIssue[]; details?: Record<string, unknown>; headers?: Record<string, string>; cause?: unknown } = {},
  ) {
    super(message ?? defaultMessage(code), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpProblem';
    this.code = code;
    this.fields = options.fields ?? [];
    this.details = options.details ?? {};
    this.headers = options.headers ?? {};
  }
}

function defaultMessage(code: ProblemCode): string {
  return code in HTTP_ERROR_MESSAGES ? HTTP_ERROR_MESSAGES[code as HttpErrorCode] : ERROR_MESSAGES[code as ErrorCode];
}

/** The problem type URI of a code. */
export function problemType(code: ProblemCode): string {
  return `urn:instance-images:problem:${code.toLowerCase().replace(/_/g, '-')}`;
}

/** The coded parts of an error the problem body is built from. */
export interface CodedError {
  code: ProblemCode;
  message: string;
  fields: FieldIssue[];
  details: Record<string, unknown>;
}

/**
 * The coded view of `error`, or null for an unknown error. Besides `instanceof`, an error named
 * `InstanceImagesError` with a known code counts: a CommonJS consumer may load the core and this
 * adapter as separate bundles, each with its own copy of the class.
 */
export function codedError(error: unknown): CodedError | null {
  if (error instanceof InstanceImagesError || error instanceof HttpProblem) return error;
  if (!(error instanceof Error) || (error.name !== 'InstanceImagesError' && error.name !== 'HttpProblem')) return null;
  const { code, fields, details } = error as Error & { code?: unknown; fields?: unknown; details?: unknown };
  if (typeof code !== 'string' || !(code in PROBLEM_STATUS)) return null;
  return {
    code: code as ProblemCode,
    message: error.message,
    fields: Array.isArray(fields) ? (fields as FieldIssue[]) : [],
    details: details && typeof details === 'object' ? (details as Record<string, unknown>) : {},
  };
}

/**
 * Builds the problem body for any thrown value. What a caller sees of an error of the core is
 * decided in one place, the core's `publicError` (customers never see a driver's message, paths,
 * hosts or commands); errors of the HTTP layer itself are shown as their mapping says. Unknown
 * errors become a 500 INTERNAL with a generic message (their text never reaches the client).
 * @param audience - `admin` sees every InstanceImagesError's own message; customers see what
 *   `publicError` allows.
 */
export function problemFromError(error: unknown, audience: ErrorAudience = 'customer'): ProblemBody {
  const known = codedError(error);
  const isHttp = known !== null && (error instanceof HttpProblem || (error instanceof Error && error.name === 'HttpProblem'));
  const view =
    isHttp && known
      ? PROBLEM_STATUS[known.code].exposeToCustomers || audience === 'admin'
        ? known
        : { code: known.code, message: defaultMessage(known.code), fields: [], details: {} }
      : publicError(error, audience);
  const code: ProblemCode = view.code;
  const mapping = PROBLEM_STATUS[code];
  const body: ProblemBody = { type: problemType(code), title: mapping.title, status: mapping.status, detail: view.message, code };
  if (view.fields.length > 0) body.fields = view.fields;
  if (Object.keys(view.details).length > 0) body.details = view.details;
  return body;
}

/**
 * A task as `audience` may see it. A failed task's `errorMessage` is the raw message of the error
 * (it may come from a command on a hypervisor and name paths or hosts): admins see it, customers
 * always get the code's fixed default message.
 */
export function taskForAudience<T extends { errorCode: string | null; errorMessage: string | null }>(
  task: T,
  audience: 'admin' | 'customer',
): T {
  if (audience === 'admin' || task.errorMessage === null) return task;
  // A task's message comes from whatever failed (often a driver: it can name hosts, users and
  // paths even for codes whose problem responses are shown as they are), so customers always get
  // the code's fixed message. The image's own status reason carries the customer-facing advice.
  const code = task.errorCode !== null && task.errorCode in PROBLEM_STATUS ? (task.errorCode as ProblemCode) : 'INTERNAL';
  return { ...task, errorMessage: defaultMessage(code) };
}
