/**
 * Every task runs its progress through the one model: a capture, a deploy and a delete report
 * documented steps and a percentage that never decreases, and end completed at 100 % with their
 * final bytes (issue 13: it used to end at "completed 0/null").
 */
import { describe, expect, it } from 'vitest';
import type { Task } from '../../../src';
import { TASK_STEPS } from '../../../src/tasks/progress';
import { alice, deployAndWait, setup } from './setup';

function expectModel(events: Task[]): void {
  const type = events[0]!.type;
  const steps = ['starting', ...TASK_STEPS[type].map((s) => s.step), 'completed'];
  const progress = events.map((t) => t.progress);
  expect(
    progress.every((p) => steps.includes(p.step)),
    JSON.stringify(progress),
  ).toBe(true);
  const percents = progress.map((p) => p.percent);
  expect(percents).toEqual([...percents].sort((a, b) => a - b));
  expect(percents.slice(0, -1).every((p) => p < 100)).toBe(true);
  expect(events.at(-1)).toMatchObject({ status: 'completed', progress: { step: 'completed', percent: 100 } });
}

describe('task progress', () => {
  it('a capture, a deploy and a delete go forward only and end at 100 % with their final bytes', async () => {
    const h = await setup();
    const seen = new Map<string, Task[]>();
    const record = ({ task }: { task: Task }) => seen.set(task.id, [...(seen.get(task.id) ?? []), task]);
    h.ii.events.on('task.progress', record);
    h.ii.events.on('task.finished', record);
    const { image, task } = await h.ii.images.createImage(alice, { instanceId: 'web-1', name: 'mine' });
    await h.ii.idle();
    const available = await h.ii.images.getImage(alice, image.id);
    expect(available.status).toBe('available');
    expectModel(seen.get(task.id)!);
    expect(seen.get(task.id)!.at(-1)!.progress).toEqual({
      step: 'completed',
      percent: 100,
      bytesDone: available.sizeBytes,
      bytesTotal: available.sizeBytes,
    });
    expect(await h.ii.images.getTask(alice, task.id)).toMatchObject({
      progress: { step: 'completed', percent: 100, bytesDone: available.sizeBytes },
    });

    h.world.addInstance('new-1', 'acct-alice', { hypervisorId: 'hv-2' });
    const deploy = await deployAndWait(h.ii, alice, {
      imageId: image.id,
      instanceId: 'new-1',
      targetPath: '/var/lib/libvirt/images/new-1.qcow2',
    });
    expectModel(seen.get(deploy.task.id)!);

    const deleted = await h.ii.images.deleteImage(alice, image.id);
    await h.ii.idle();
    expectModel(seen.get(deleted.task!.id)!);
    expect(seen.get(deleted.task!.id)!.map((t) => t.progress.step)).toEqual(['waiting for deploys', 'removing file', 'completed']);
    await h.ii.close();
  });
});
