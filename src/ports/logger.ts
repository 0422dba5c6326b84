/**
 * The logger port: where the SDK writes what it did and what went wrong. Hosts pass their own
 * (`console` fits); the default drops everything (`silentLogger`).
 * @module
 */

/** A minimal logger (console fits). Messages never contain secrets. */
export interface Logger {
  /** Detail for debugging. */
  debug(message: string, context?: Record<string, unknown>): void;
  /** Normal operation. */
  info(message: string, context?: Record<string, unknown>): void;
  /** Something unexpected that the SDK handled. */
  warn(message: string, context?: Record<string, unknown>): void;
  /** A failure. */
  error(message: string, context?: Record<string, unknown>): void;
}
