/**
 * Events survive crashes: a process killed (SIGKILL) right after a status change, before any
 * delivery, leaves the change's events in the outbox, and a later process delivers them; a process
 * killed while delivering leaves a claim that lapses and another process delivers the event again.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSqliteRepositories } from '../../../adapters/sqlite';
import { startOutboxDelivery } from '../../../src/outbox-delivery';
import type { OutboxEvent } from '../../../src/ports/repositories-outbox';

const CHILD = new URL('./crash.child.ts', import.meta.url);
const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

/** Forks the child, resolves with its first message, then kills it with SIGKILL and waits for its exit. */
async function runUntilKilled(filename: string, mode: 'transition' | 'deliver'): Promise<Record<string, unknown>> {
  const child: ChildProcess = fork(CHILD, [filename, mode], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const message = await new Promise<Record<string, unknown>>((resolve, reject) => {
    child.once('message', (m) => resolve(m as Record<string, unknown>));
    child.once('exit', (code) => reject(new Error(`the child exited (${code}) before reporting`)));
  });
  const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  child.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return message;
}

function freshFile(): string {
  const directory = mkdtempSync(join(tmpdir(), 'ii-outbox-crash-'));
  directories.push(directory);
  return join(directory, 'panel.db');
}

describe('events survive a SIGKILL', () => {
  it('between a status change and its delivery: the next process delivers the events', async () => {
    const filename = freshFile();
    await createSqliteRepositories({ filename }).close?.();
    const { imageId, status } = await runUntilKilled(filename, 'transition');
    expect(status).toBe('available');

    const repos = createSqliteRepositories({ filename });
    const delivered: OutboxEvent[] = [];
    const delivery = startOutboxDelivery(repos.outbox, { targets: [{ name: 'host', deliver: (e) => void delivered.push(e) }] });
    await delivery.drain();
    await delivery.stop();
    expect(delivered.map((e) => e.type)).toEqual(['image.status-changed', 'image.available']);
    expect(delivered.every((e) => e.key === imageId)).toBe(true);
    expect(delivered[1]?.data).toMatchObject({ image: { id: imageId, status: 'available', sizeBytes: 1024 } });
    expect((await repos.outbox?.get(delivered[1]?.id ?? ''))?.deliveredAt).toBeInstanceOf(Date);
    await repos.close?.();
  }, 60_000);

  it('while delivering: the claim lapses and another process delivers the event again, with the same id', async () => {
    const filename = freshFile();
    const setup = createSqliteRepositories({ filename });
    const [event] =
      (await setup.outbox?.append([{ type: 'image.deleted', key: 'img-1', data: { image: { id: 'img-1' } } }], new Date())) ?? [];
    await setup.close?.();
    const { delivering } = await runUntilKilled(filename, 'deliver');
    expect(delivering).toBe(event?.id);

    const repos = createSqliteRepositories({ filename });
    const delivered: OutboxEvent[] = [];
    const target = { name: 'host', deliver: (e: OutboxEvent) => void delivered.push(e) };
    const now = startOutboxDelivery(repos.outbox, { targets: [target] });
    expect(await now.drain()).toBe(0); // the dead process's claim still holds
    await now.stop();
    const later = startOutboxDelivery(repos.outbox, { targets: [target], now: () => new Date(Date.now() + 61_000) });
    expect(await later.drain()).toBe(1);
    await later.stop();
    expect(delivered.map((e) => [e.id, e.attempts])).toEqual([[event?.id, 2]]);
    await repos.close?.();
  }, 60_000);
});
