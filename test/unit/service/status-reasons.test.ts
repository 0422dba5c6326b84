/**
 * An image's status reason is shown to its customer (My Images, GET /images/:id). A driver's raw
 * message can name hypervisors, SSH users and paths, so the reason is built from the error's code,
 * never from its message; admins find the raw message on the failed task.
 */
import { describe, expect, it } from 'vitest';
import { ERROR_MESSAGES } from '../../../src/errors';
import { admin, alice, setup } from './setup';

describe('image status reasons never carry a driver message', () => {
  it('a capture failing with a code that has no specific advice gets the code’s fixed message plus advice', async () => {
    for (const code of ['COMMAND_FAILED', 'CAPTURE_FAILED', 'TIMEOUT', 'HOST_KEY_MISMATCH'] as const) {
      const h = await setup();
      h.world.failNextCapture = code;
      const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: `fails with ${code}` });
      await h.ii.idle();
      const failed = await h.ii.images.getImage(alice, image.id);
      expect(failed.status).toBe('error');
      expect(failed.statusReason?.code).toBe(code);
      expect(failed.statusReason?.message).not.toContain('injected failure');
      expect(failed.statusReason?.message).toContain(ERROR_MESSAGES[code]);
      expect(failed.statusReason?.message).toMatch(/Retry the capture/);
      // the operator still sees what the driver said
      expect((await h.ii.images.getTask(admin, task.id)).errorMessage).toBe('injected failure');
    }
  });

  it('a failed delete says what to do, without the storage driver’s message', async () => {
    const h = await setup();
    const { image } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'keep trying' });
    await h.ii.idle();
    h.world.failDeletes = true;
    const { task } = await h.ii.images.deleteImage(alice, image.id);
    await h.ii.idle();
    const failed = await h.ii.images.getImage(alice, image.id);
    expect(failed.statusReason?.code).toBe('DELETE_FAILED');
    expect(failed.statusReason?.message).not.toContain('fake outage');
    expect(failed.statusReason?.message).toContain(ERROR_MESSAGES.STORAGE_UNAVAILABLE);
    expect(failed.statusReason?.message).toMatch(/Delete the image again/);
    expect((await h.ii.images.getTask(admin, task!.id)).errorMessage).toBe('fake outage');
  });
});
