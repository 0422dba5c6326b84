/**
 * Bridges between Node streams (what the SDK's storage reads and writes) and web streams (what a
 * `Request` and a `Response` carry). Both directions are pulled: a chunk is read from the source
 * only when the other side asks for one, so a slow reader slows the source instead of filling
 * memory.
 * @module
 */
import type { Readable } from 'node:stream';

function toBytes(chunk: unknown): Uint8Array {
  if (chunk instanceof Uint8Array) return chunk;
  if (typeof chunk === 'string') return new TextEncoder().encode(chunk);
  throw new TypeError('a byte stream produced something other than bytes');
}

/**
 * A web stream reading `source` one chunk per pull. Cancelling it (the client went away) calls
 * `onCancel` and destroys `source`; an error of `source` errors the web stream (an adapter then
 * cuts the connection, so the client sees a short body rather than a complete-looking one).
 */
export function readableToWeb(source: Readable, onCancel: () => void = () => undefined): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const { value, done } = await iterator.next();
        if (done) controller.close();
        else controller.enqueue(toBytes(value));
      },
      async cancel() {
        onCancel();
        source.destroy();
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}
