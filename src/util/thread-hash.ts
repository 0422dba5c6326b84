/**
 * A sha256 of a stream's bytes computed on a worker thread, so that hashing an import (about a
 * second of CPU per GiB) overlaps the event loop's own work (reading the socket, writing to the
 * receiving command) instead of adding to it. The bytes are copied into batches whose memory is
 * transferred to the worker (one copy, no structured clone); at most {@link MAX_PENDING_BATCHES}
 * batches are in flight, after which {@link ThreadHash.update} waits for the worker: memory stays
 * bounded however slow the worker is.
 * @module
 */
import { Worker } from 'node:worker_threads';

/** Bytes copied into one batch before it is handed to the worker. */
export const HASH_BATCH_BYTES = 1024 * 1024;
/** Batches handed over and not yet hashed, at most (then `update` waits). */
export const MAX_PENDING_BATCHES = 8;

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const hash = require('node:crypto').createHash('sha256');
parentPort.on('message', (message) => {
  if (message === null) parentPort.postMessage({ digest: hash.digest('hex') });
  else {
    hash.update(new Uint8Array(message.buffer, 0, message.length));
    parentPort.postMessage({ done: 1 });
  }
});`;

/** A running hash; {@link ThreadHash.digest} or {@link ThreadHash.destroy} ends its worker. */
export interface ThreadHash {
  /** Adds bytes (copied at once: the caller may reuse `chunk`); resolves when there is room for more. */
  update(chunk: Uint8Array): Promise<void>;
  /** The sha256 (lowercase hex) of everything added; the worker ends. */
  digest(): Promise<string>;
  /** Ends the worker (idempotent); without a digest, a later `update` or `digest` rejects. */
  destroy(): void;
}

/** Starts a hash on a worker thread of its own (which never keeps the process alive). */
export function threadHash(): ThreadHash {
  const worker = new Worker(WORKER_SOURCE, { eval: true });
  worker.unref();
  let failure: Error | null = null;
  let pending = 0;
  let room: (() => void) | null = null;
  let finished: ((digest: string) => void) | null = null;
  let failed: ((error: Error) => void) | null = null;
  let ended = false;
  const fail = (error: Error) => {
    failure ??= error;
    room?.();
    failed?.(failure);
  };
  worker.on('error', fail);
  worker.on('exit', () => {
    if (!ended) fail(new Error('The hashing thread ended early'));
  });
  worker.on('message', (message: { done?: number; digest?: string }) => {
    if (message.digest !== undefined) {
      ended = true;
      finished?.(message.digest);
      void worker.terminate();
      return;
    }
    pending--;
    const wake = room;
    room = null;
    wake?.();
  });
  let batch = Buffer.allocUnsafeSlow(HASH_BATCH_BYTES);
  let filled = 0;
  const send = () => {
    if (filled === 0) return;
    const buffer = batch.buffer;
    worker.postMessage({ buffer, length: filled }, [buffer]);
    pending++;
    batch = Buffer.allocUnsafeSlow(HASH_BATCH_BYTES);
    filled = 0;
  };
  return {
    async update(chunk) {
      let at = 0;
      while (at < chunk.length) {
        if (failure) throw failure;
        const n = Math.min(chunk.length - at, HASH_BATCH_BYTES - filled);
        batch.set(chunk.subarray(at, at + n), filled);
        filled += n;
        at += n;
        if (filled === HASH_BATCH_BYTES) {
          send();
          while (pending >= MAX_PENDING_BATCHES && !failure) await new Promise<void>((resolve) => (room = resolve));
        }
      }
      if (failure) throw failure;
    },
    digest() {
      if (failure) return Promise.reject(failure);
      return new Promise<string>((resolve, reject) => {
        finished = resolve;
        failed = reject;
        send();
        worker.postMessage(null);
      });
    },
    destroy() {
      if (!ended) fail(new Error('The hash was destroyed'));
      ended = true;
      void worker.terminate();
    },
  };
}
