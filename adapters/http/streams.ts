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
  const stream = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // Once read as a web stream, it is no longer handed to a Node adapter as its source.
        nodeSources.delete(stream);
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
  nodeSources.set(stream, { source, onCancel });
  return stream;
}

/** The Node stream behind a web stream made by {@link readableToWeb}, while nothing has read it yet. */
export interface NodeSource {
  source: Readable;
  onCancel: () => void;
}

const nodeSources = new WeakMap<ReadableStream<Uint8Array>, NodeSource>();

/**
 * The Node stream behind `stream` when {@link readableToWeb} made it and nothing has read or locked
 * it: a Node adapter then pipes that source straight into its response, which skips a promise per
 * chunk of the web stream (a download through Express or node:http runs at the speed of the
 * storage read). Taking it removes it, so a body is sent at most once.
 */
export function takeNodeSource(stream: ReadableStream<Uint8Array>): NodeSource | undefined {
  if (stream.locked) return undefined;
  const found = nodeSources.get(stream);
  nodeSources.delete(stream);
  return found;
}
