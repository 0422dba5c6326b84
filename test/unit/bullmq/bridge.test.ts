import type { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import { EventBridge, decodeWire, encodeWire } from '../../../adapters/bullmq/bridge';
import { silentLogger, type InstanceImagesEvents, type Task } from '../../../src';
import { createEmitter } from '../../../src/events';
import { makeTask } from '../../../src/testing';

/** Two processes' bridges on one fake Redis: publish delivers to every bridge (as pub/sub does), SET NX is shared. */
function fakeRedis() {
  const bridges: EventBridge[] = [];
  const keys = new Map<string, string>();
  const redis = {
    publish: async (_channel: string, message: string) => {
      for (const bridge of bridges) bridge.receive(message);
      return bridges.length;
    },
    set: async (key: string, value: string, ..._rest: unknown[]) => {
      if (keys.has(key)) return null;
      keys.set(key, value);
      return 'OK';
    },
  } as unknown as Redis;
  const newProcess = () => {
    const bridge = new EventBridge(redis, 'events', 'handled', () => silentLogger, 1000);
    bridges.push(bridge);
    const events = createEmitter();
    bridge.attach(events);
    return { bridge, events };
  };
  return { process: newProcess, keys };
}

describe('the BullMQ event bridge', () => {
  it('keeps dates through the wire', () => {
    const task = makeTask({ startedAt: new Date('2026-12-03T05:00:00.000Z') });
    const back = decodeWire(encodeWire({ id: 'e1', origin: 'p1', type: 'task.progress', payload: { task } }));
    const payload = back.payload as InstanceImagesEvents['task.progress'];
    expect(payload.task).toEqual(task);
    expect(payload.task.startedAt).toBeInstanceOf(Date);
    expect(payload.task.createdAt).toBeInstanceOf(Date);
  });

  it("re-emits another process's events typed, its own once, and runs a handleOnce listener in one process only", async () => {
    const redis = fakeRedis();
    const worker = redis.process();
    const web = redis.process();
    const seenByWeb: Task[] = [];
    const seenByWorker: Task[] = [];
    web.events.on('task.finished', ({ task }) => seenByWeb.push(task));
    worker.events.on('task.finished', ({ task }) => seenByWorker.push(task));
    const handled: string[] = [];
    worker.bridge.handleOnce('audit', 'task.finished', ({ task }, meta) => handled.push(`worker:${task.id}:${meta.local}`));
    web.bridge.handleOnce('audit', 'task.finished', ({ task }, meta) => handled.push(`web:${task.id}:${meta.local}`));

    const task = makeTask({ id: 'task-1', status: 'completed', finishedAt: new Date('2026-12-03T05:01:00.000Z') });
    worker.events.emit('task.finished', { task });
    await vi.waitFor(() => expect(handled).toHaveLength(1), { timeout: 15_000 });
    expect(seenByWorker).toHaveLength(1); // not again from its own publication
    expect(seenByWeb).toHaveLength(1);
    expect(seenByWeb[0]).toEqual(task);
    expect(seenByWeb[0]!.finishedAt).toBeInstanceOf(Date);
    // The emitting process claims first here; either way, exactly one ran it.
    expect(handled).toEqual(['worker:task-1:true']);
    expect([...redis.keys.keys()]).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(handled).toHaveLength(1);
  });

  it('refuses a handleOnce name that is not a plain identifier', () => {
    const { bridge } = fakeRedis().process();
    expect(() => bridge.handleOnce('a b', 'image.available', () => undefined)).toThrow(/name/);
  });
});
