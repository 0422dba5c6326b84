/**
 * `instance-images/adapters/bullmq`: the task queue for several processes and machines. Jobs run
 * on BullMQ over Redis; the per-hypervisor and global limits hold for all workers together;
 * cancel reaches the worker that runs the task; events cross processes. Needs the optional peer
 * dependencies `bullmq` and `ioredis` (loaded only by this subpath).
 *
 * ```ts
 * import { createBullmqTaskQueue } from 'instance-images/adapters/bullmq';
 * const queue = createBullmqTaskQueue({ connection: process.env.REDIS_URL!, role: 'web' }); // or 'worker'
 * const images = createInstanceImages({ ...options, queue });
 * queue.handleOnce('billing', 'usage.started', ({ interval }) => openInvoiceLine(interval)); // one process per event
 * ```
 * See docs/scaling.md.
 * @module
 */
export { createBullmqTaskQueue, type BullmqTaskQueue, type BullmqTaskQueueOptions } from './queue';
export { type ClusterEventListener, type ClusterEventMeta } from './bridge';
