import { describe, expect, it } from 'vitest';
import { JobKeeper, type JobStore } from '../../../adapters/bullmq/keeper';
import { silentLogger, type TaskJob } from '../../../src';

/** A fake BullMQ: job states by id, and what the keeper did. */
function fakeStore(states: Map<string, string>) {
  const calls: string[] = [];
  let down = false;
  const store: JobStore = {
    state: async (_queue, jobId) => {
      if (down) throw new Error('ECONNREFUSED');
      return states.get(jobId) ?? 'unknown';
    },
    remove: async (_queue, jobId) => {
      calls.push(`remove ${jobId}`);
      states.delete(jobId);
    },
    store: async (queue, job, again) => {
      calls.push(`store ${queue} ${job.taskId} ${again}`);
      states.set(`task-${job.taskId}`, 'waiting');
    },
  };
  return { store, calls, setDown: (value: boolean) => (down = value) };
}

const job = (taskId: string): TaskJob => ({ taskId, type: 'capture', hypervisorId: 'hv-1' });

describe('the BullMQ job keeper', () => {
  it('stores lost and failed jobs again, forgets completed ones, keeps waiting and active ones', async () => {
    const states = new Map([
      ['task-a', 'waiting'],
      ['task-b', 'active'],
      ['task-c', 'completed'],
      ['task-e', 'failed'],
    ]);
    const { store, calls } = fakeStore(states);
    const keeper = new JobKeeper(store, () => silentLogger, 1_000);
    for (const id of ['a', 'b', 'c', 'd', 'e']) keeper.keep(`task-${id}`, 'hv-q', job(id));

    await keeper.check();
    expect(calls).toEqual(['store hv-q d true', 'remove task-e', 'store hv-q e true']);
    expect(keeper.size).toBe(4);

    // Once BullMQ completed them, they are forgotten.
    for (const id of ['a', 'b', 'd', 'e']) states.set(`task-${id}`, 'completed');
    await keeper.check();
    expect(keeper.size).toBe(0);
    await keeper.stop();
  });

  it('keeps everything while Redis does not answer, and stores the lost job once it does', async () => {
    const { store, calls, setDown } = fakeStore(new Map());
    const keeper = new JobKeeper(store, () => silentLogger, 1_000);
    keeper.keep('task-a', 'hv-q', job('a'));
    setDown(true);
    await keeper.check();
    expect(calls).toEqual([]);
    expect(keeper.size).toBe(1);
    setDown(false);
    await keeper.check();
    expect(calls).toEqual(['store hv-q a true']);
    await keeper.stop();
  });
});
