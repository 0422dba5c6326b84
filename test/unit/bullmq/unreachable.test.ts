import { describe, expect, it } from 'vitest';
import { createBullmqTaskQueue } from '../../../adapters/bullmq';
import { codeOf } from '../../support/errors';
import { admin, alice, setup } from '../service/setup';

describe('the BullMQ task queue without Redis', () => {
  it('a create fails with INTERRUPTED and leaves no queued task, no image in the list or the cap; close does not hang', async () => {
    // Nothing listens on port 1: Redis is unreachable for as long as the test runs.
    const queue = createBullmqTaskQueue({ connection: 'redis://127.0.0.1:1', role: 'web', enqueueTimeoutMs: 300 });
    const h = await setup({ queue });
    expect(await codeOf(h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'no redis' }))).toBe('INTERRUPTED');
    const tasks = await h.ii.images.listTasks(admin, {});
    expect(tasks.items.map((task) => [task.status, task.errorCode])).toEqual([['failed', 'INTERRUPTED']]);
    expect((await h.ii.images.listImages(alice, {})).items).toEqual([]);
    expect(await h.ii.repositories.images.countActive('acct-alice')).toBe(0);
    expect((await h.ii.repositories.usage.list({ accountId: 'acct-alice' })).items).toEqual([]);
    await h.ii.close();
  });

  it('refuses bad limits and roles, naming the option', async () => {
    expect(await codeOf(Promise.resolve().then(() => createBullmqTaskQueue({ connection: 'redis://x', concurrency: 0 })))).toBe(
      'VALIDATION_FAILED',
    );
    expect(() => createBullmqTaskQueue({ connection: 'redis://x', role: 'boss' as 'web' })).toThrow(/role/);
  });
});
