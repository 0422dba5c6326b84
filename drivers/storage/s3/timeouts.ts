/**
 * The S3 driver's request timeouts: a connection timeout, and a "no progress" timeout that fails a
 * request once nothing moved for a while (no answer, no byte sent or received). The second one is
 * what ends a request to a service that accepts connections but never answers: radosgw stopped or
 * hung, a full Ceph cluster blocking writes, a network that drops packets.
 *
 * Both paths measure silence, not duration: the SDK client through its handler's `socketTimeout`
 * (`requestTimeout` would bound the whole request, and in @smithy/node-http-handler 4 it only
 * logs a warning unless `throwOnRequestTimeout` is set), the driver's own part requests through the
 * socket's idle timeout. A timed-out request is final: it is not retried, so an operation fails
 * about one timeout after the service went silent instead of after three (the SDK's and the part
 * path's retries would otherwise try again on a fresh connection, each waiting the full time).
 *
 * A body that moves is never cut, also one big write (a 16 MiB part in one `end(body)`): Node's
 * socket timeout, on expiry, checks whether the write queue shrank since the last time and then
 * waits on. Measured here (a server reading at 512 KiB/s, a 3 s timeout): one 16 MiB write moved
 * for 28 s without being cut. What no timer sees is the tail in the kernel's buffers (at most a few
 * MiB) draining after the last byte left Node, plus the server's own work before it answers: the
 * timeout must exceed both; the default of 60 s drains a 4 MiB tail down to about 70 KiB/s.
 * @module
 */
import type { S3Client } from '@aws-sdk/client-s3';

/** Which timeout ended a request. */
export type S3TimeoutKind = 'connect' | 'no-progress';

/** The timeouts of one driver instance, in ms. */
export interface S3Timeouts {
  /** How long a TCP (and TLS) connection may take. */
  connectionMs: number;
  /** How long a request may make no progress. */
  noProgressMs: number;
}

/** What a timed-out request carries, so that the error mapping can name the limit. */
export interface S3TimeoutInfo {
  kind: S3TimeoutKind;
  /** The limit that was reached, when known. */
  ms: number | undefined;
}

/** The name of the driver's timeout errors: not one the SDK's retry strategy retries. */
export const S3_TIMEOUT_ERROR_NAME = 'S3TimeoutError';

/** A request that ended on a timeout, as the driver throws it. */
export interface S3TimeoutError extends Error {
  s3Timeout: S3TimeoutInfo;
}

/** `3 s` for whole seconds, `1500 ms` otherwise. */
export function formatTimeout(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * The error of a request that reached `kind`'s limit of `ms`. It has no `code` and no `cause`: the
 * SDK's retry strategy retries anything that looks like a network timeout, also in the cause chain.
 */
export function s3TimeoutError(kind: S3TimeoutKind, ms: number, host: string): S3TimeoutError {
  const message =
    kind === 'connect'
      ? `No connection to ${host} within ${formatTimeout(ms)}`
      : `No progress on the request to ${host} for ${formatTimeout(ms)} (no answer, no data moved)`;
  return Object.assign(new Error(message), { name: S3_TIMEOUT_ERROR_NAME, s3Timeout: { kind, ms } });
}

interface TimeoutShape {
  name?: unknown;
  message?: unknown;
  s3Timeout?: unknown;
  cause?: unknown;
}

/** The limit in a handler message (`... of 10000 ms.`, `... after 60000 ms of inactivity`). */
function msInMessage(message: string): number | undefined {
  const match = /(\d+) ms/.exec(message);
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/**
 * The timeout behind `error` (or one of its causes): the driver's own timeout errors, and the
 * SDK's handler errors for a connection that was not made in time or a socket without activity
 * (recognized by their messages, the only thing that tells them apart). `undefined` for anything else.
 */
export function s3TimeoutOf(error: unknown): S3TimeoutInfo | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && typeof current === 'object' && current !== null; depth += 1) {
    const shape = current as TimeoutShape;
    if (shape.name === S3_TIMEOUT_ERROR_NAME && typeof shape.s3Timeout === 'object' && shape.s3Timeout !== null)
      return shape.s3Timeout as S3TimeoutInfo;
    if (shape.name === 'TimeoutError' && typeof shape.message === 'string') {
      if (shape.message.includes('did not establish a connection')) return { kind: 'connect', ms: msInMessage(shape.message) };
      if (shape.message.includes('of inactivity')) return { kind: 'no-progress', ms: msInMessage(shape.message) };
    }
    current = shape.cause;
  }
  return undefined;
}

/** The options of the SDK client's request handler for `timeouts`. */
export function s3RequestHandlerOptions(timeouts: S3Timeouts): { connectionTimeout: number; socketTimeout: number } {
  return { connectionTimeout: timeouts.connectionMs, socketTimeout: timeouts.noProgressMs };
}

/**
 * Makes a timed-out request of `client` final: a middleware inside the SDK's retry loop turns the
 * handler's timeout into an {@link S3TimeoutError}, which the retry strategy does not retry.
 */
export function makeS3TimeoutsFinal(client: S3Client, host: string, timeouts: S3Timeouts): void {
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        const timeout = s3TimeoutOf(error);
        if (timeout === undefined || (error as TimeoutShape).name === S3_TIMEOUT_ERROR_NAME) throw error;
        throw s3TimeoutError(timeout.kind, timeout.kind === 'connect' ? timeouts.connectionMs : timeouts.noProgressMs, host);
      }
    },
    { step: 'deserialize', priority: 'high', name: 'instanceImagesFinalTimeouts' },
  );
}
