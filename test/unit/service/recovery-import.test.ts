/**
 * Recovery of an import fetched on the hypervisor whose panel died mid-download: the fetch's work
 * directory (`<key base>.fetch-*`, next to the image file, curl maybe still writing into it) is
 * cleaned on the hypervisor that wrote it, besides the image file.
 */
import { describe, expect, it } from 'vitest';
import { makeImage, makeTask } from '../../../src/testing';
import { setup } from './setup';

describe('recovery of an import fetched on the hypervisor', () => {
  it('removes the work directory of the interrupted fetch on its hypervisor', async () => {
    const h = await setup({ storage: 'path' });
    const image = makeImage({
      accountId: 'acct-alice',
      storageId: h.storageId,
      hypervisorId: null,
      fileKey: 'images/acct-alice/img-1.qcow2',
    });
    await h.ii.repositories.images.insert(image);
    const task = makeTask({
      type: 'import',
      subjectId: image.id,
      hypervisorId: 'hv-1',
      status: 'running',
      heartbeatAt: new Date('2026-11-01T00:00:00Z'),
      accountId: 'acct-alice',
    });
    await h.ii.repositories.tasks.insert(task);
    h.world.commandOutput = (argv) => (argv.some((a) => a.includes('.fetch-*')) ? `${argv.at(-1)}.fetch-1234\n` : '');

    const report = await h.ii.recover();
    expect(report.interruptedTasks).toEqual([task.id]);
    const cleanup = h.world.commands.filter((c) => c.argv.some((a) => a.includes('.fetch-*')));
    expect(cleanup).toHaveLength(1);
    expect(cleanup[0]?.hypervisorId).toBe('hv-1');
    // The key base's path on that hypervisor, as one argument.
    expect(cleanup[0]?.argv.at(-1)).toMatch(/\/images\/acct-alice\/img-1$/);
    expect(report.removedFiles).toEqual([
      'images/acct-alice/img-1.qcow2',
      `${cleanup[0]?.argv.at(-1)}.fetch-1234 (work directory of the fetch)`,
    ]);
    expect((await h.ii.repositories.images.get(image.id))?.statusReason?.code).toBe('INTERRUPTED');
    await h.ii.close();
  });
});
