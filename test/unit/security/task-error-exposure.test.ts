/**
 * A failed task's errorMessage is the raw error of a hypervisor command (paths, hosts, SSH users).
 * Problem responses hide such messages from customers; task answers must do the same.
 */
import { describe, expect, it } from 'vitest';
import { ERROR_MESSAGES } from '../../../src/errors';
import { ADMIN, readSse, useExpressHarness } from '../../support/express-harness';

const harness = useExpressHarness();

describe('express router: task error messages and the customer audience', () => {
  it('shows customers the fixed message of an internal failure, admins the real one', async () => {
    const t = await harness();
    t.world.failNextCapture = 'COMMAND_FAILED';
    const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'doomed' } });
    const taskId = created.json.task.id as string;
    await t.ii.idle();

    const admin = await t.call('GET', `/tasks/${taskId}`, { actor: ADMIN });
    expect(admin.json).toMatchObject({ status: 'failed', errorCode: 'COMMAND_FAILED', errorMessage: 'injected failure' });

    const one = await t.call('GET', `/tasks/${taskId}`);
    expect(one.json).toMatchObject({ status: 'failed', errorCode: 'COMMAND_FAILED', errorMessage: ERROR_MESSAGES.COMMAND_FAILED });

    const page = await t.call('GET', '/tasks');
    const listed = (page.json.items as { id: string; errorMessage: string | null }[]).find((task) => task.id === taskId);
    expect(listed?.errorMessage).toBe(ERROR_MESSAGES.COMMAND_FAILED);

    const response = await fetch(`${t.baseUrl}/tasks/${taskId}/events`, { headers: { 'x-test-actor': 'customer:acct-alice' } });
    const events = await readSse(response);
    expect(events.length).toBeGreaterThan(0);
    for (const event of events) expect(JSON.parse(event.data)).toMatchObject({ errorMessage: ERROR_MESSAGES.COMMAND_FAILED });
  });

  it('also for codes whose problem responses customers see (a driver message names hosts)', async () => {
    const t = await harness();
    t.world.failNextCapture = 'STORAGE_FULL';
    const created = await t.call('POST', '/images', { json: { instanceId: 'web-1', name: 'full' } });
    await t.ii.idle();
    const one = await t.call('GET', `/tasks/${created.json.task.id as string}`);
    expect(one.json).toMatchObject({ status: 'failed', errorCode: 'STORAGE_FULL', errorMessage: ERROR_MESSAGES.STORAGE_FULL });
    const image = await t.call('GET', `/images/${created.json.image.id as string}`);
    expect(image.json.statusReason.message).toMatch(/free space/);
  });
});
