/**
 * What a caller may see of an error. One place decides it for every transport (the Express
 * router's problem responses today, any other handler tomorrow), so that the promise of
 * docs/security.md ("no infrastructure names to customers") holds for every error a customer can
 * receive, whichever route or service raised it.
 *
 * The rule: customers see the stable code of every error; they see its own message, fields and
 * details only when the core raised it with a code meant for them ({@link CUSTOMER_VISIBLE_CODES})
 * and not when it came from a driver (a hypervisor or storage driver: its messages quote commands,
 * paths, hosts and tool output, e.g. `virsh dumpxml failed (exit 1): error: failed to get domain
 * '…'`). Anything else gets the code's fixed message. Admins see everything (messages never carry
 * secrets). Unknown errors are `INTERNAL` with a generic message for everyone.
 * @module
 */
import { ERROR_MESSAGES, InstanceImagesError, type ErrorCode, type FieldIssue } from '../errors';

/** Who is looking at an error: an operator, or a customer (also: an unauthenticated caller). */
export type ErrorAudience = 'admin' | 'customer';

/** The code of an error that is not an InstanceImagesError (a bug, or a host callback's own error). */
export const INTERNAL_ERROR_CODE = 'INTERNAL';

/** The generic message of {@link INTERNAL_ERROR_CODE}. */
export const INTERNAL_ERROR_MESSAGE = 'An unexpected error occurred; try again later or contact support';

/** An error as one audience may see it. */
export interface PublicError {
  /** The stable code (`INTERNAL` for an unknown error). */
  code: ErrorCode | typeof INTERNAL_ERROR_CODE;
  /** The message this audience may read. */
  message: string;
  /** Offending fields (VALIDATION_FAILED), when this audience may see them. */
  fields: FieldIssue[];
  /** Extra facts, when this audience may see them. */
  details: Record<string, unknown>;
}

/**
 * Codes whose own message, fields and details a customer may see when the core raised them: they
 * are about the customer's request or account (and their messages are written for a person).
 * Every other code (COMMAND_FAILED, STORAGE_UNAVAILABLE, HYPERVISOR_UNREACHABLE,
 * HOST_KEY_MISMATCH, TIMEOUT, INTERRUPTED, CAPTURE_FAILED, DEPLOY_FAILED) is answered to customers
 * with its fixed message only.
 */
export const CUSTOMER_VISIBLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'VALIDATION_FAILED',
  'FORBIDDEN',
  'FEATURE_DISABLED',
  'ACCOUNT_SUSPENDED',
  'ACCOUNT_CLOSED',
  'NOT_FOUND',
  'INVALID_STATE',
  'IN_USE',
  'CONFLICT',
  'IMAGE_LIMIT_REACHED',
  'CANCELLED',
  'CHECKSUM_MISMATCH',
  'NO_IMAGE_STORAGE',
  'STORAGE_FULL',
  'DESTINATION_REFUSED',
  'DOWNLOAD_FAILED',
  'UNSUPPORTED_IMAGE',
  'IMAGE_PROTECTED',
  'IMAGE_INCOMPATIBLE',
]);

/** Detail keys never shown to customers, whatever raised the error: they name infrastructure. */
const INFRASTRUCTURE_DETAIL = /path|root|host|dir|file|command|argv|stderr|stdout|exit|uri|domain|hypervisor|executor|ssh|user/i;

/** Marks errors that came out of a driver (shared across bundles: CommonJS may load two copies). */
const INFRASTRUCTURE = Symbol.for('instance-images.infrastructure-error');

/**
 * Marks `error` as raised by a driver (hypervisor or storage): customers then see only its code and
 * the code's fixed message. Returns `error`.
 */
export function markInfrastructureError<T>(error: T): T {
  if (
    error !== null &&
    typeof error === 'object' &&
    !Object.prototype.hasOwnProperty.call(error, INFRASTRUCTURE) &&
    Object.isExtensible(error)
  ) {
    Object.defineProperty(error, INFRASTRUCTURE, { value: true, enumerable: false });
  }
  return error;
}

/** True when `error` was raised by a driver (see {@link markInfrastructureError}). */
export function isInfrastructureError(error: unknown): boolean {
  return error !== null && typeof error === 'object' && (error as Record<symbol, unknown>)[INFRASTRUCTURE] === true;
}

/**
 * A driver object whose every method marks what it throws or rejects with as infrastructure
 * errors. Properties that are not functions are passed through; the driver itself is unchanged.
 */
export function withInfrastructureErrors<T extends object>(driver: T): T {
  return new Proxy(driver, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]): unknown => {
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (error) {
          throw markInfrastructureError(error);
        }
        if (result instanceof Promise) {
          return result.catch((error: unknown) => {
            throw markInfrastructureError(error);
          });
        }
        return result;
      };
    },
  });
}

/** The coded parts of an InstanceImagesError, also when it comes from another copy of the class. */
function asCoded(error: unknown): InstanceImagesError | null {
  if (error instanceof InstanceImagesError) return error;
  if (!(error instanceof Error) || error.name !== 'InstanceImagesError') return null;
  const { code } = error as Error & { code?: unknown };
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_MESSAGES, code) ? (error as InstanceImagesError) : null;
}

/** True when customers may see this code's own messages when the core raised it. */
export function isCustomerVisibleCode(code: string): boolean {
  return CUSTOMER_VISIBLE_CODES.has(code as ErrorCode);
}

/**
 * What `audience` may see of `error` (see the module's rule).
 * @param error - anything thrown.
 */
export function publicError(error: unknown, audience: ErrorAudience): PublicError {
  const coded = asCoded(error);
  if (coded === null) return { code: INTERNAL_ERROR_CODE, message: INTERNAL_ERROR_MESSAGE, fields: [], details: {} };
  const fields = Array.isArray(coded.fields) ? coded.fields : [];
  const details = coded.details !== null && typeof coded.details === 'object' ? coded.details : {};
  if (audience === 'admin') return { code: coded.code, message: coded.message, fields, details };
  if (!isCustomerVisibleCode(coded.code) || isInfrastructureError(coded)) {
    return { code: coded.code, message: ERROR_MESSAGES[coded.code], fields: [], details: {} };
  }
  const safeDetails = Object.fromEntries(Object.entries(details).filter(([key]) => !INFRASTRUCTURE_DETAIL.test(key)));
  return { code: coded.code, message: coded.message, fields, details: safeDetails };
}
