/**
 * sha256 of a stream off the main thread: the bytes are copied into 1 MiB batches that a worker
 * thread hashes while the main thread goes on downloading and writing (Node hashes synchronously
 * on the thread that calls it: on the main thread, hashing an import's bytes stalls every socket
 * of the process meanwhile). At most {@link IN_FLIGHT} batches are outstanding, so a slow worker
 * slows the stream instead of growing memory.
 * @module
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Bytes per batch handed to the worker. */
const BATCH_BYTES = 1024 * 1024;
/** Batches the worker may hold at once. */
const IN_FLIGHT = 4;
/** Below this many bytes in all, a stream is hashed on the calling thread (a worker costs more than it saves). */
export const WORKER_MIN_BYTES = 4 * BATCH_BYTES;

/**
 * The worker (plain CommonJS, run with `eval`, so the bundles need no extra file): hashes each
 * `{ buffer, length }` it is sent and sends the buffer back; on `{ digest: true }` answers the hex
 * digest.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (message) => {
  if (message.digest) { parentPort.postMessage({ digest: hash.digest('hex') }); return; }
  hash.update(new Uint8Array(message.buffer, 0, message.length));
  parentPort.postMessage({ buffer: message.buffer }, [message.buffer]);
});
`;

/** An incremental sha256. */
export interface StreamHasher {
  /** Adds bytes (copied; the caller may reuse `chunk`). Resolves when the hasher can take more. */
  update(chunk: Buffer): Promise<void>;
  /** The lowercase hex digest of everything added; the hasher is done then. */
  digest(): Promise<string>;
  /** Stops the hasher (idempotent); pending calls reject. */
  close(): void;
}

/** A hasher on the calling thread (for small inputs). */
export function inlineHasher(): StreamHasher {
  const hash = createHash('sha256');
  return {
    update: (chunk) => {
      hash.update(chunk);
      return Promise.resolve();
    },
    digest: () => Promise.resolve(hash.digest('hex')),
    close: () => undefined,
  };
}

/** A hasher whose hashing runs in a worker thread (started now, never keeping the process alive). */
export function workerHasher(): StreamHasher {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.unref();
  const free: ArrayBuffer[] = [];
  let allocated = 0;
  let batch: Buffer | null = null;
  let filled = 0;
  /** Waiters for a free batch buffer, and for the digest. */
  const waiting: { resolve(): void; reject(error: Error): void }[] = [];
  let digestWaiter: { resolve(hex: string): void; reject(error: Error): void } | null = null;
  let failure: Error | null = null;
  const fail = (error: Error) => {
    failure ??= error;
    for (const waiter of waiting.splice(0)) waiter.reject(failure);
    digestWaiter?.reject(failure);
    digestWaiter = null;
  };
  worker.on('message', (message: { buffer?: ArrayBuffer; digest?: string }) => {
    if (message.buffer) {
      free.push(message.buffer);
      waiting.shift()?.resolve();
    } else if (message.digest !== undefined) {
      digestWaiter?.resolve(message.digest);
      digestWaiter = null;
      void worker.terminate();
    }
  });
  worker.on('error', (error) => fail(error));
  worker.on('exit', () => fail(new Error('The hashing worker stopped')));

  /** A batch buffer: a free one, a new one while fewer than IN_FLIGHT exist, else the next one the worker sends back. */
  const nextBatch = async (): Promise<Buffer> => {
    while (free.length === 0 && allocated >= IN_FLIGHT) {
      if (failure) throw failure;
      await new Promise<void>((resolve, reject) => waiting.push({ resolve, reject }));
    }
    if (failure) throw failure;
    const buffer = free.pop() ?? (allocated++, new ArrayBuffer(BATCH_BYTES));
    return Buffer.from(buffer);
  };
  const send = () => {
    if (!batch || filled === 0) return;
    const buffer = batch.buffer as ArrayBuffer;
    worker.postMessage({ buffer, length: filled }, [buffer]);
    batch = null;
    filled = 0;
  };
  return {
    async update(chunk) {
      let offset = 0;
      while (offset < chunk.length) {
        if (failure) throw failure;
        batch ??= await nextBatch();
        const copied = chunk.copy(batch, filled, offset);
        filled += copied;
        offset += copied;
        if (filled === batch.length) send();
      }
    },
    digest() {
      if (failure) return Promise.reject(failure);
      send();
      return new Promise<string>((resolve, reject) => {
        digestWaiter = { resolve, reject };
        worker.postMessage({ digest: true });
      });
    },
    close() {
      if (failure) return;
      fail(new Error('The hasher was closed'));
      void worker.terminate();
    },
  };
}
