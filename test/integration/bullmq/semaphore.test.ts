/** The cluster-wide slot limit of the BullMQ task queue, on the real Redis, from two connections (two "processes"). */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisSemaphore } from '../../../adapters/bullmq/slots';
import { reachableRedis } from '../../support/redis';

const url = await reachableRedis();
const suite = url ? describe : describe.skip;

suite('RedisSemaphore on Redis', () => {
  const clients = url ? [new Redis(url), new Redis(url)] : [];
  const key = `ii-test-slots-${process.pid}-${Date.now()}`;
  afterAll(async () => {
    await clients[0]?.del(key);
    await Promise.all(clients.map((client) => client.quit()));
  });

  it('holds the limit across connections, frees a released slot, and expires a dead holder', async () => {
    const [a, b] = clients.map((client) => new RedisSemaphore(client, key, 2, 1_000, 50)) as [RedisSemaphore, RedisSemaphore];
    expect(await a.tryAcquire('t1')).toBe(true);
    expect(await b.tryAcquire('t2')).toBe(true);
    expect(await b.tryAcquire('t3')).toBe(false);
    expect(await a.tryAcquire('t1')).toBe(true); // a holder renews its own slot
    const release = a.hold('t1', (error) => {
      throw error;
    });
    await release();
    expect(await b.tryAcquire('t3')).toBe(true);
    const keepT3 = b.hold('t3', (error) => {
      throw error;
    });
    // t2's holder "dies" (never renews): its claim expires on Redis's clock and t4 gets the slot; t3, renewed, keeps its.
    const controller = new AbortController();
    expect(await b.acquire('t4', controller.signal)).toBe(true);
    expect((await clients[0]!.zrange(key, '0', '-1')).sort()).toEqual(['t3', 't4']);
    await keepT3();
    // Waiting stops when aborted.
    controller.abort();
    expect(await a.acquire('t5', controller.signal)).toBe(false);
  });
});
